import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { createYoga, type Plugin } from 'graphql-yoga';
import { Authenticator } from './auth/viewer.js';
import type { Config } from './config.js';
import { createPrismaClient, type Db, type PrismaOptions } from './db/client.js';
import { seedDemoData } from './db/demo-data.js';
import { createErrorMasker, domainGraphQLError } from './http/graphql-errors.js';
import type { Logger } from './logger.js';
import type { Context } from './schema/builder.js';
import { schema } from './schema/index.js';
import { DomainError } from './services/errors.js';
import { createServices, type Services } from './services/index.js';
import { createLoaders } from './services/loaders.js';

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
}

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
  const services = createServices({ db, maxPageSize: config.maxPageSize });
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

  const yoga = createYoga<{ req: TrackedRequest }, Context>({
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
      EnvelopArmorPlugin({
        maxDepth: { n: config.maxQueryDepth, ignoreIntrospection: true },
        blockFieldSuggestion: { enabled: false },
      }),
    ],
    context: ({ request, req, params }) => {
      const requestId = req?.requestId ?? randomUUID();
      if (req) req.operationName = params.operationName ?? undefined;
      let viewer: Context['viewer'];
      try {
        viewer = authenticator.fromHeaders(request.headers);
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
    if (path === '/') {
      res.writeHead(302, { location: '/graphql' });
      return res.end();
    }
    return yoga(req, res, { req });
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
    async start(port = config.port) {
      try {
        if (config.demoData && (await seedDemoData(db))) logger.info('seeded demo data into the empty database');
      } catch (error) {
        throw new Error(
          `The database is not ready (${(error as Error).message.split('\n')[0]}). Run "npm run db:migrate" first.`,
        );
      }
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
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
      await db.$disconnect();
    },
  };
}
