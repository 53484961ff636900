import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { createYoga } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import { ChartRepoSource } from '../adapters/chart-repo/http.js';
import { Authenticator, type Viewer } from '../auth/viewer.js';
import { createPrismaClient, type Db, databaseProvider, type PrismaOptions, prepareDatabase } from '../db/client.js';
import { seedDemoData } from '../db/demo-data.js';
import { DomainError } from '../domain/errors.js';
import { SubscriptionCohorts, useMissedEventsExecution } from '../fanout/cohorts.js';
import { receiveAppStateEvent } from '../http/app-state-intake.js';
import { BodyTooLarge, readBody } from '../http/body.js';
import { OriginPolicy, refuseCrossSite } from '../http/cross-site.js';
import { createErrorMasker, domainGraphQLError } from '../http/graphql-errors.js';
import { useInputBounds } from '../http/input-bounds.js';
import { productionSwitches } from '../http/production-switches.js';
import { checkReadiness } from '../http/readiness.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import { type PeriodicJob, startPeriodicJob } from '../platform/periodic-job.js';
import { appServiceSource, databaseSource, jobsSource, pubsubSource, taskEngineSource } from '../runtime/sources.js';
import { StateCollector } from '../runtime/state-collector.js';
import type { Context } from '../schema/builder.js';
import { schema } from '../schema/index.js';
import { createLoaders } from '../services/loaders.js';
import { ConnectionBudget } from '../transports/connection-budget.js';
import { SseTransport } from '../transports/sse-transport.js';
import { WsTransport } from '../transports/ws-transport.js';
import { createServices, type Services } from './create-services.js';

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
    { type, body: readFileSync(new URL(`../dashboard/${file}`, import.meta.url), 'utf8') },
  ]),
);

const REQUEST_ID = /^[\w.-]{1,64}$/;
/** A GraphQL name as the spec defines it, bounded: anything else is not copied into the log. */
const OPERATION_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,99}$/;

/** What the HTTP layer learns about a request on its way through, for the request log line. */
type TrackedRequest = IncomingMessage & {
  requestId?: string;
  userId?: string;
  operationName?: string;
  /** The body, read (and bounded) before Yoga sees the request; Yoga uses it as is. */
  body?: Buffer;
};

/** The operation name as the request log shows it: client-controlled, so only a valid, short name. */
function loggedOperationName(name: unknown): string | undefined {
  if (typeof name !== 'string' || !name) return undefined;
  return OPERATION_NAME.test(name) ? name : '[invalid name]';
}

/** graphql-sse's distinct-connections endpoint, beside Yoga's own SSE on /graphql. */
const STREAM_PATH = '/graphql/stream';

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
  const origins = new OriginPolicy(config.corsOrigins);
  const connectionBudget = new ConnectionBudget(config.connectionLimits);

  /**
   * A WebSocket's credentials: a verified one from `connectionParams.authorization`, or the
   * upgrade request's headers (a gateway's user header, an Authorization header). A user name the
   * client writes into `connectionParams` is never an identity: no gateway sees or strips it.
   */
  const authenticateSocket = (params: Record<string, unknown> | undefined, upgrade: IncomingMessage) => {
    const fromUpgrade = authenticator.credentialsOf(upgrade.headers);
    const given = params?.authorization ?? params?.Authorization;
    return authenticator.authenticate({
      authorization: typeof given === 'string' && given ? given : fromUpgrade.authorization,
      gatewayUser: fromUpgrade.gatewayUser,
    });
  };

  /** The streaming transports authenticate once per connection and hand the viewer in. */
  const yoga = createYoga<{ req?: TrackedRequest; viewer?: Viewer }, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    logging: false,
    // Off (GRAPHIQL=0, the default unless in local development mode): Yoga answers as without it.
    graphiql: config.graphiql && { title: 'Market Runtime GraphQL API', defaultQuery: DEFAULT_QUERY },
    renderGraphiQL,
    maskedErrors: {
      maskError: createErrorMasker((error) => logger.error({ err: error }, 'unexpected error in a GraphQL operation')),
    },
    // Browsers: only the allow-list gets CORS headers (the server's own pages need none).
    cors: (request) => {
      const origin = request.headers.get('origin');
      if (!origin || !origins.allowsCrossOrigin(origin)) return false;
      return {
        origin: [origin],
        credentials: true,
        methods: ['GET', 'POST'],
        allowedHeaders: ['content-type', 'authorization', 'accept', 'x-request-id'],
        maxAge: 600,
      };
    },
    plugins: [
      // First, so that a refused document is never parsed and a limited mutation never runs.
      ...productionSwitches(config),
      useMissedEventsExecution,
      EnvelopArmorPlugin({
        maxDepth: { n: config.maxQueryDepth, ignoreIntrospection: true },
        blockFieldSuggestion: { enabled: false },
      }),
      useInputBounds(config.inputLimits),
    ],
    context: async ({ request, req, params, viewer: given }) => {
      const requestId = req?.requestId ?? randomUUID();
      if (req) req.operationName = loggedOperationName(params.operationName);
      let viewer: Context['viewer'];
      try {
        viewer = given ?? (await authenticator.fromHeaders(request.headers));
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

  function json(res: ServerResponse, status: number, body: unknown) {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  }

  const server = createServer(async (req: TrackedRequest, res) => {
    const started = performance.now();
    const requestId = requestIdOf(req);
    req.requestId = requestId;
    const path = req.url?.split('?')[0];
    res.setHeader('x-request-id', requestId);
    res.on('finish', () => {
      logger.info(
        {
          requestId,
          method: req.method?.slice(0, 16),
          path: path?.slice(0, 200),
          status: res.statusCode,
          ms: Math.round(performance.now() - started),
          ...(req.userId ? { userId: req.userId } : {}),
          ...(req.operationName ? { operation: req.operationName } : {}),
        },
        'request',
      );
    });
    if (path === '/health') return json(res, 200, { status: 'ok' });
    if (path === '/readiness') {
      const ready = await checkReadiness(db);
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
          "default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
      });
      return res.end(asset.body);
    }
    if (path === '/events/app-state' && config.appService.kind === 'http') {
      return receiveAppStateEvent(req, res, {
        secret: config.appService.eventSecret,
        maxBodyBytes: config.maxBodyBytes,
        apply: (event) => services.engine.onAppState(event),
      });
    }
    if (path === '/') {
      res.writeHead(302, { location: '/graphql' });
      return res.end();
    }
    if (path === yoga.graphqlEndpoint || path === STREAM_PATH) {
      const refusal = refuseCrossSite(req, origins);
      if (refusal)
        return json(res, refusal.status, {
          errors: [{ message: refusal.message, extensions: { code: refusal.code } }],
        });
    }
    if (path && sseTransport.accepts(req, path)) {
      return sseTransport.handle(req, res).catch((error: unknown) => {
        logger.error({ err: error }, 'SSE request failed');
        if (!res.headersSent) json(res, 500, { errors: [{ message: 'Unexpected error.' }] });
        else res.end();
      });
    }
    if (req.method === 'POST' && path === yoga.graphqlEndpoint) {
      try {
        req.body = await readBody(req, config.maxBodyBytes);
      } catch (error) {
        if (!(error instanceof BodyTooLarge)) throw error;
        res.setHeader('connection', 'close'); // the rest of the body is not read
        return json(res, 413, { errors: [{ message: error.message, extensions: { code: 'VALIDATION' } }] });
      }
    }
    return yoga(req, res, { req });
  });

  // Subscribers over WebSockets and SSE with the same document, variables and scope share one
  // execution (both transports run the same pipeline, so their results are the same).
  const cohorts = new SubscriptionCohorts();
  const sseTransport = new SseTransport({
    authenticate: (req) => authenticator.fromHeaders(req.headers),
    pipeline: (params, viewer, req) => yoga.getEnveloped({ params, viewer, req }),
    cohorts,
    budget: connectionBudget,
    maxBufferedBytes: config.runtime.maxBufferedBytes,
    subscriberBuffer: config.runtime.subscriberBuffer,
    keepAliveMs: config.runtime.keepAliveMs,
    maxBodyBytes: config.maxBodyBytes,
    errorBody: (error) => {
      // The status goes into the response line; the body keeps only the code (as Yoga's does).
      const { http, ...extensions } = domainGraphQLError(error).extensions as { http?: { status?: number } };
      return {
        status: http?.status ?? 400,
        body: { errors: [{ message: error.message, extensions }] },
      };
    },
    identify: (req: TrackedRequest, viewer, operationName) => {
      req.userId = viewer.userId;
      req.operationName = loggedOperationName(operationName);
    },
    logger: logger.child({ component: 'sse' }),
  });

  // graphql-transport-ws on the same path, through Yoga's envelop pipeline (same schema, plugins,
  // context), with subscriptions of the same document, variables and scope sharing one execution.
  const wss = new WebSocketServer({
    server,
    path: yoga.graphqlEndpoint,
    // ws refuses a larger frame from its header (close 1009) before reading it.
    maxPayload: config.maxBodyBytes,
    // Browsers always send Origin on an upgrade: pages of other sites may not connect.
    verifyClient: ({ req }: { req: IncomingMessage }, done: (ok: boolean, status?: number, message?: string) => void) =>
      done(origins.allows(req.headers.origin, req.headers.host), 403, 'Origin not allowed (CORS_ORIGINS)'),
  });
  const wsTransport = new WsTransport(wss, {
    authenticate: authenticateSocket,
    pipeline: (params, viewer) => yoga.getEnveloped({ params, viewer }),
    cohorts,
    budget: connectionBudget,
    maxOperations: config.connectionLimits.perConnectionSubscriptions,
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
