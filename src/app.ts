import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useGraphQLSSE } from '@graphql-yoga/plugin-graphql-sse';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { createYoga, type Plugin } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import { Authenticator } from './auth/viewer.js';
import { ChartRepoSource } from './collector/chart-repo-source.js';
import { appServiceSource, databaseSource, jobsSource, pubsubSource, taskEngineSource } from './collector/sources.js';
import { StateCollector } from './collector/state-collector.js';
import type { Config } from './config.js';
import { createPrismaClient, type Db, databaseProvider, type PrismaOptions, prepareDatabase } from './db/client.js';
import { seedDemoData } from './db/demo-data.js';
import { parseAppStateEvent } from './engine/app-state-event.js';
import { createErrorMasker, domainGraphQLError } from './http/graphql-errors.js';
import type { Logger } from './logger.js';
import type { Context } from './schema/builder.js';
import { schema } from './schema/index.js';
import { DomainError } from './services/errors.js';
import { createServices, type Services } from './services/index.js';
import { createLoaders } from './services/loaders.js';
import { type PeriodicJob, startPeriodicJob } from './services/periodic-job.js';
import { SubscriptionCohorts, useMissedEventsExecution } from './subscriptions/cohorts.js';
import { SseTransport } from './subscriptions/sse-transport.js';
import { WsTransport } from './subscriptions/ws-transport.js';

export interface AppOptions {
  logger: Logger;
  prisma?: PrismaOptions;
}

export interface RunningApp {
  url: string;
  port: number;
}

export interface App {
  start(port?: number): Promise<RunningApp>;
  stop(): Promise<void>;
  services: Services;
  db: Db;
  server: Server;
  /** WebSocket connections, subscription cohorts and subscriptions now open. */
  subscriptionStats(): { connections: number; streams: number; cohorts: number; subscriptions: number };
}

/** The live dashboard: a static page that talks to /graphql over graphql-ws. */
const DASHBOARD: Record<string, { type: string; body: string }> = Object.fromEntries(
  (
    [
      ['/dashboard', 'dashboard.html', 'text/html; charset=utf-8'],
      ['/dashboard/dashboard.js', 'dashboard.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/dashboard.css', 'dashboard.css', 'text/css; charset=utf-8'],
    ] as const
  ).map(([route, file, type]) => [
    route,
    { type, body: readFileSync(new URL(`./dashboard/${file}`, import.meta.url), 'utf8') },
  ]),
);

const REQUEST_ID = /^[\w.-]{1,64}$/;

/** What the HTTP layer learns about a request on its way through, for the request log line. */
type TrackedRequest = IncomingMessage & { requestId?: string; userId?: string; operationName?: string };

const DEFAULT_QUERY = `# Welcome to the Market Runtime GraphQL API.
# Press the run button to see the apps and their active tasks.
query Apps {
  viewer { userId isAdmin }
  apps(first: 10) {
    totalCount
    edges {
      node { appName sourceId userId stage health installedVersion activeTask { taskId type status progress } }
    }
  }
}
`;

/** Per-request id: the caller's `x-request-id` when sane, else a new one; echoed in the response. */
function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/**
 * The composition root: database, services, GraphQL (Yoga) and the HTTP server with its
 * operational routes. Nothing listens until `start()`; `stop()` closes every socket and the
 * database.
 */
export function buildApp(config: Config, { logger, prisma: prismaOptions }: AppOptions): App {
  const db = createPrismaClient(config.databaseUrl, prismaOptions);
  const services = createServices({ db, config, logger });
  const jobs: PeriodicJob[] = [];
  let collector: StateCollector | null = null;
  const authenticator = new Authenticator(config.auth);

  // Rejects bodies over the limit before Yoga reads them.
  const bodyLimit: Plugin = {
    onRequest({ request, endResponse, fetchAPI }) {
      const length = Number(request.headers.get('content-length') ?? 0);
      if (length > config.maxBodyBytes) {
        endResponse(
          new fetchAPI.Response(
            JSON.stringify({ errors: [{ message: `Request body is larger than ${config.maxBodyBytes} bytes` }] }),
            { status: 413, headers: { 'content-type': 'application/json' } },
          ),
        );
      }
    },
  };

  /** WebSocket operations carry their credentials in graphql-ws `connectionParams`. */
  type ConnectionParams = Record<string, unknown> | undefined;
  const fromConnectionParams = (params: ConnectionParams) => {
    const text = (key: string | undefined) =>
      key && typeof params?.[key] === 'string' ? (params[key] as string) : null;
    return authenticator.authenticate(text('authorization') ?? text('Authorization'), text(config.auth.userHeader));
  };

  const yoga = createYoga<{ req: TrackedRequest; connectionParams?: ConnectionParams }, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    logging: false,
    graphiql: { title: 'Market Runtime GraphQL API', defaultQuery: DEFAULT_QUERY },
    renderGraphiQL,
    maskedErrors: {
      maskError: createErrorMasker((error) => logger.error({ err: error }, 'unexpected error in a GraphQL operation')),
    },
    plugins: [
      bodyLimit,
      // graphql-sse protocol on /graphql/stream (Yoga's own SSE on /graphql works as well).
      useGraphQLSSE(),
      useMissedEventsExecution,
      EnvelopArmorPlugin({
        maxDepth: { n: config.maxQueryDepth, ignoreIntrospection: true },
        blockFieldSuggestion: { enabled: false },
      }),
    ],
    context: ({ request, req, params, connectionParams }) => {
      const requestId = req?.requestId ?? randomUUID();
      if (req) req.operationName = params.operationName ?? undefined;
      let viewer: Context['viewer'];
      try {
        // graphql-ws hands us the upgrade request without a fetch Request: its identity is in connectionParams.
        viewer = request ? authenticator.fromHeaders(request.headers) : fromConnectionParams(connectionParams);
      } catch (error) {
        throw error instanceof DomainError ? domainGraphQLError(error) : error;
      }
      if (req) req.userId = viewer.userId;
      return {
        viewer,
        services,
        loaders: createLoaders(services),
        requestId,
        logger: logger.child({ requestId, userId: viewer.userId }),
      };
    },
  });

  async function readiness(): Promise<{ ok: boolean; error?: string }> {
    try {
      await db.$queryRawUnsafe('SELECT 1');
      return { ok: true };
    } catch {
      return { ok: false, error: 'database unreachable' };
    }
  }

  function json(res: ServerResponse, status: number, body: unknown) {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  }

  const server = createServer(async (req: TrackedRequest, res) => {
    const started = performance.now();
    const requestId = requestIdOf(req);
    req.requestId = requestId;
    res.setHeader('x-request-id', requestId);
    res.on('finish', () => {
      logger.info(
        {
          requestId,
          method: req.method,
          path: req.url?.split('?')[0],
          status: res.statusCode,
          ms: Math.round(performance.now() - started),
          ...(req.userId ? { userId: req.userId } : {}),
          ...(req.operationName ? { operation: req.operationName } : {}),
        },
        'request',
      );
    });
    const path = req.url?.split('?')[0];
    if (path === '/health') return json(res, 200, { status: 'ok' });
    if (path === '/readiness') {
      const ready = await readiness();
      return json(
        res,
        ready.ok ? 200 : 503,
        ready.ok ? { status: 'ready' } : { status: 'not ready', error: ready.error },
      );
    }
    const asset = DASHBOARD[path ?? ''];
    if (asset && req.method === 'GET') {
      res.writeHead(200, {
        'content-type': asset.type,
        'cache-control': 'no-cache',
        // Everything the page needs comes from this server; nothing else may load.
        'content-security-policy':
          "default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
      });
      return res.end(asset.body);
    }
    if (path === '/events/app-state' && config.appService.kind === 'http') {
      return receiveAppStateEvent(req, res, config.appService.eventSecret);
    }
    if (path === '/') {
      res.writeHead(302, { location: '/graphql' });
      return res.end();
    }
    if (path && sseTransport.accepts(req, path)) {
      return sseTransport.handle(req, res).catch((error: unknown) => {
        logger.error({ err: error }, 'SSE request failed');
        if (!res.headersSent) json(res, 500, { errors: [{ message: 'Unexpected error.' }] });
        else res.end();
      });
    }
    return yoga(req, res, { req });
  });

  /**
   * State-event intake of the real app service (HTTP mode): `POST /events/app-state` with
   * `Authorization: Bearer <APP_SERVICE_EVENT_SECRET>` and one §6.5 event as JSON. 202 once the
   * event is applied; older events than the app's current state are accepted and ignored.
   */
  async function receiveAppStateEvent(req: IncomingMessage, res: ServerResponse, secret: string) {
    if (req.method !== 'POST') return json(res, 405, { error: 'use POST' });
    const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const digest = (value: string) => createHash('sha256').update(value).digest();
    if (!timingSafeEqual(digest(given), digest(secret))) return json(res, 401, { error: 'invalid event secret' });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > config.maxBodyBytes) return json(res, 413, { error: `body larger than ${config.maxBodyBytes} bytes` });
      chunks.push(chunk as Buffer);
    }
    let event: ReturnType<typeof parseAppStateEvent>;
    try {
      event = parseAppStateEvent(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    } catch (error) {
      return json(res, 400, {
        error: error instanceof DomainError ? error.message : 'body must be a JSON app-state event',
      });
    }
    await services.engine.onAppState(event);
    return json(res, 202, { accepted: true });
  }

  // Subscribers over WebSockets and SSE with the same document, variables and scope share one
  // execution (both transports run the same pipeline, so their results are the same).
  const cohorts = new SubscriptionCohorts();
  const sseTransport = new SseTransport({
    authenticate: (headers) => authenticator.fromHeaders(headers),
    pipeline: (params, headers, req) => yoga.getEnveloped({ params, request: { headers }, req }),
    cohorts,
    maxBufferedBytes: config.runtime.maxBufferedBytes,
    subscriberBuffer: config.runtime.subscriberBuffer,
    keepAliveMs: config.runtime.keepAliveMs,
    maxBodyBytes: config.maxBodyBytes,
    errorBody: (error) => {
      const graphqlError = domainGraphQLError(error);
      const status = (graphqlError.extensions.http as { status?: number } | undefined)?.status ?? 400;
      return { status, body: { errors: [graphqlError.toJSON()] } };
    },
    identify: (req: TrackedRequest, viewer, operationName) => {
      req.userId = viewer.userId;
      req.operationName = operationName ?? undefined;
    },
    logger: logger.child({ component: 'sse' }),
  });

  // graphql-transport-ws on the same path, through Yoga's envelop pipeline (same schema, plugins,
  // context), with subscriptions of the same document, variables and scope sharing one execution.
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
  const wsTransport = new WsTransport(wss, {
    authenticate: fromConnectionParams,
    pipeline: (params, connectionParams) => yoga.getEnveloped({ params, connectionParams }),
    cohorts,
    maxBufferedBytes: config.runtime.maxBufferedBytes,
    subscriberBuffer: config.runtime.subscriberBuffer,
    keepAliveMs: config.runtime.keepAliveMs,
    connectionInitWaitMs: 3000,
    logger: logger.child({ component: 'graphql-ws' }),
  });

  /** What the `pubsub` component reports: the fan-out across both transports. */
  const subscriptionStats = () => ({
    connections: wsTransport.connectionCount,
    streams: sseTransport.streamCount,
    ...cohorts.stats(),
  });

  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  return {
    services,
    db,
    server,
    subscriptionStats,
    async start(port = config.port) {
      try {
        await prepareDatabase(db, config.databaseUrl);
        if (config.demoData && (await seedDemoData(db))) logger.info('seeded demo data into the empty database');
      } catch (error) {
        throw new Error(
          `The database is not ready (${(error as Error).message.split('\n')[0]}). Run "npm run db:migrate" first.`,
        );
      }
      await services.engine.start();
      const paymentRecovery = startPeriodicJob(
        'payment polling recovery',
        services.purchases.resumeIntervalMs,
        () => services.purchases.resumePolling(),
        logger,
      );
      jobs.push(paymentRecovery);
      const historyCleanup = startPeriodicJob(
        'history cleanup',
        config.history.cleanupIntervalMs,
        async () => {
          const cutoff = new Date(Date.now() - config.history.retentionDays * 24 * 60 * 60 * 1000);
          const removed = await services.history.removeOlderThan(cutoff);
          if (removed) logger.info({ removed, cutoff }, 'removed old history records');
        },
        logger,
      );
      jobs.push(historyCleanup);
      await historyCleanup.firstRun; // old history is gone before the first request
      const { appService } = services;
      let reconciliation: PeriodicJob | null = null;
      if (config.appService.kind === 'http' && appService.listApps) {
        const listApps = appService.listApps.bind(appService);
        reconciliation = startPeriodicJob(
          'app-service reconciliation',
          config.appService.reconcileIntervalMs,
          async () => {
            for (const event of await listApps()) await services.engine.onAppState(event);
          },
          logger,
        );
        jobs.push(reconciliation);
      }
      const collectorLogger = logger.child({ component: 'collector' });
      collector = new StateCollector(
        db,
        services.store,
        services.bus,
        [
          databaseSource(db, databaseProvider(config.databaseUrl)),
          taskEngineSource(db, services.engine, config.tasks.concurrency),
          pubsubSource(subscriptionStats),
          appServiceSource(config.appService.kind, () => reconciliation?.status() ?? null),
          jobsSource(() => [
            { component: 'history_cleanup', status: historyCleanup.status() },
            { component: 'payment_polling', status: paymentRecovery.status() },
          ]),
        ],
        config.runtime.chartRepoUrl
          ? new ChartRepoSource({ baseUrl: config.runtime.chartRepoUrl, logger: collectorLogger })
          : null,
        collectorLogger,
        {
          intervalMs: config.runtime.collectIntervalMs,
          sourceTimeoutMs: Math.min(config.runtime.collectIntervalMs, 10_000),
        },
      );
      await collector.start();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, config.host, () => resolve());
      });
      const address = server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      return { port: actualPort, url: `http://${host}:${actualPort}` };
    },
    async stop() {
      await collector?.stop();
      await Promise.all(jobs.splice(0).map((job) => job.stop()));
      await services.engine.stop();
      services.purchases.stop();
      sseTransport.dispose();
      const wsClosed = wsTransport.dispose();
      for (const client of wss.clients) client.terminate();
      await wsClosed;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
      // A database that vanished can leave the driver's pool waiting forever: bound the wait.
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = await Promise.race([
        db.$disconnect().then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), 5000);
        }),
      ]);
      clearTimeout(timer);
      if (gaveUp) logger.warn('the database connection did not close within 5 s; leaving it');
    },
  };
}
