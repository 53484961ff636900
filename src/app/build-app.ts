/**
 * The composition root. `buildApp` builds, in this order:
 *
 * 1. the database client and the services (create-services.ts);
 * 2. GraphQL: Yoga with its plugins, whose context carries only the resolver services (graphql.ts);
 * 3. the HTTP server (http-server.ts) with both subscription transports, graphql-ws and SSE
 *    (live.ts), and the router: operational routes, app-state intake, SSE, the lean path for
 *    plain JSON POSTs (transports/http-fast-path.ts), Yoga (routes.ts);
 * 4. the periodic jobs (jobs.ts) and the runtime collector over them (collector.ts).
 *
 * Nothing runs until `start()`: database, task engine, jobs, collector, then listening.
 * `stop()` takes them down in reverse, ending every socket, then closes the database (database.ts).
 */
import type { Server } from 'node:http';
import { Authenticator } from '../auth/viewer.js';
import { createPrismaClient, type Db, type PrismaOptions } from '../db/client.js';
import { OriginPolicy } from '../http/cross-site.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import type { StateCollector } from '../runtime/state-collector.js';
import { HttpFastPath } from '../transports/http-fast-path.js';
import { createCollector } from './collector.js';
import { createServices, resolverServices, type Services } from './create-services.js';
import { closeDatabase, openDatabase } from './database.js';
import { createGraphQL, operationPipeline } from './graphql.js';
import { createHttpServer, type RunningApp } from './http-server.js';
import { createPeriodicJobs } from './jobs.js';
import { createLiveTransports, type SubscriptionStats } from './live.js';
import { createRouter } from './routes.js';

export interface AppOptions {
  logger: Logger;
  /** Options of the Prisma client, such as a query recorder in tests. */
  prisma?: PrismaOptions;
}

export interface App {
  /** Prepares the database, starts the engine, the jobs and the collector, then listens on `port` (default `config.port`). */
  start(port?: number): Promise<RunningApp>;
  /** Stops everything `start()` started, ends every connection and closes the database. */
  stop(): Promise<void>;
  /** Every service, the engine, bus and store included: for tests and benchmarks, never for resolvers. */
  services: Services;
  db: Db;
  server: Server;
  /** The lean path for plain JSON POSTs; null when GRAPHQL_FAST_PATH is off. */
  fastPath: HttpFastPath | null;
  /** WebSocket connections, SSE streams, subscription cohorts and subscriptions now open. */
  subscriptionStats(): SubscriptionStats;
}

export function buildApp(config: Config, { logger, prisma: prismaOptions }: AppOptions): App {
  const db = createPrismaClient(config.databaseUrl, prismaOptions);
  const services = createServices({ db, config, logger });

  const authenticator = new Authenticator(config.auth);
  const origins = new OriginPolicy(config.corsOrigins);
  const yoga = createGraphQL({ config, logger, services: resolverServices(services), authenticator, origins });

  const fastPath = config.graphqlFastPath
    ? new HttpFastPath({
        pipeline: (initial) => operationPipeline(yoga, initial),
        authenticator,
        origins,
        logger,
      })
    : null;

  const http = createHttpServer();
  const live = createLiveTransports({ config, logger, yoga, authenticator, origins, server: http.server });
  http.server.on(
    'request',
    createRouter({ config, logger, db, engine: services.engine, yoga, fastPath, origins, sse: live.sse }),
  );

  const jobs = createPeriodicJobs({ config, services, logger });
  let collector: StateCollector | null = null;

  return {
    services,
    db,
    server: http.server,
    fastPath,
    subscriptionStats: live.stats,
    async start(port = config.port) {
      await openDatabase(db, config, logger);
      await services.engine.start();
      await jobs.start();
      collector = createCollector({
        db,
        config,
        services,
        logger,
        subscriptionStats: live.stats,
        jobSources: jobs.sources(),
      });
      await collector.start();
      return http.listen(port, config.host);
    },
    async stop() {
      await collector?.stop();
      await jobs.stop();
      await services.engine.stop();
      services.purchases.stop();
      await live.stop();
      await http.close();
      await closeDatabase(db, logger);
    },
  };
}
