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
 * Nothing runs until `listen()` or `start()`. The port is bound first, so that a port in use fails
 * before anything has started; requests that come meanwhile wait for the start-up (the probes
 * answer: readiness.ts). Then the database, the task engine, the jobs and the collector start.
 * `stop()` first stops accepting, ends every stream and WebSocket (1012) and lets the requests in
 * flight finish (up to SHUTDOWN_TIMEOUT_MS), then stops the rest in reverse and closes the
 * database (database.ts).
 */
import type { Server } from 'node:http';
import { Authenticator } from '../auth/viewer.js';
import {
  createPrismaClient,
  type DatabaseProbe,
  type Db,
  databaseProbe,
  type PrismaOptions,
  poolFigures,
} from '../db/client.js';
import { clientGone } from '../domain/operation-client.js';
import { OriginPolicy } from '../http/cross-site.js';
import { DocumentCache } from '../http/document-cache.js';
import { MAX_WAIT_MS, UserPlaces, WAITING_PER_USER } from '../http/operations-in-flight.js';
import { Lifecycle, READINESS_TIMEOUT_MS } from '../http/readiness.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import { manifestOperationNames } from '../platform/metrics.js';
import { instanceComponentName } from '../runtime/components.js';
import type { StateCollector } from '../runtime/state-collector.js';
import { HttpFastPath } from '../transports/http-fast-path.js';
import { clientErrorLog } from './client-error-log.js';
import { createServices, resolverServices, type Services } from './create-services.js';
import { closeDatabase } from './database.js';
import { createGraphQL, operationPipeline } from './graphql.js';
import { createHttpServer, type HttpServer, type RunningApp, settledBy } from './http-server.js';
import { createPeriodicJobs, type PeriodicJobs, SERVER_STOPPING } from './jobs.js';
import { createLiveTransports, type LiveTransports, type SubscriptionStats } from './live.js';
import { AppMetrics } from './metrics.js';
import { stopOutbox } from './outbox.js';
import { watchOutbox } from './outbox-metrics.js';
import { createRouter } from './routes.js';
import { explainedStartFailure, startSteps } from './start-steps.js';

export { StartAbandoned } from './start-steps.js';

/**
 * How long the stop may take after the drain beyond the budgets of the engine's sends and the
 * outbox's deliveries in progress (SHUTDOWN_TIMEOUT_MS each): handing tasks over, the collector's
 * last read-back, the log and the database close. Unbounded, a database that stops answering made
 * each wait for its driver's timeout (a minute for a query), past any orchestrator's grace period
 * (by default: 10 s drain + 30 s here with CLUSTER_LOG_STOP_WAIT_MS, within Kubernetes' 50 s after
 * the 5 s preStop pause).
 */
const STOP_ALLOWANCE_MS = 5_000;
/**
 * How long a stop waits for Redis to come back when changes of this instance are still to be
 * appended to the cluster log (a stop while cut off from Redis); included in the stop's bound.
 */
const CLUSTER_LOG_STOP_WAIT_MS = 5_000;

export interface AppOptions {
  logger: Logger;
  /** Options of the Prisma client, such as a query recorder in tests. */
  prisma?: PrismaOptions;
  /**
   * Internal, not a setting: false builds the app without metrics (no counting, no /metrics), the
   * baseline against which `npm run bench -- --only metrics` measures what they cost.
   * @default true
   */
  metrics?: boolean;
}

export interface App {
  /**
   * Binds `port` (default `config.port`) and nothing else: requests wait for `start()`. A port in
   * use rejects with a one-line ListenError.
   */
  listen(port?: number): Promise<RunningApp>;
  /** Listens (unless `listen()` did), prepares the database, starts the engine, the jobs and the collector. */
  start(port?: number): Promise<RunningApp>;
  /**
   * Stops accepting, ends every stream and WebSocket, waits for the requests in flight (up to
   * SHUTDOWN_TIMEOUT_MS), then stops everything `start()` started and closes the database.
   * `signal` only goes into the log. Once only: a second call waits for the first stop.
   */
  stop(signal?: string): Promise<void>;
  /** Every service, the engine, bus and store included: for tests and benchmarks, never for resolvers. */
  services: Services;
  db: Db;
  server: Server;
  /** The lean path for plain JSON POSTs; null when GRAPHQL_FAST_PATH is off. */
  fastPath: HttpFastPath | null;
  /** Parsed documents and validation results kept (what they weigh, for tests). */
  documents: DocumentCache;
  /** WebSocket connections, SSE streams, subscription cohorts and subscriptions now open. */
  subscriptionStats(): SubscriptionStats;
  /** The Prometheus metrics served on /metrics; null when built without (AppOptions.metrics). */
  metrics: AppMetrics | null;
}

/** Yoga over the schema, with what it shares with the other transports: authentication, origins, documents. */
function graphqlParts(
  config: Config,
  { logger, services, metrics }: { logger: Logger; services: Services; metrics: AppMetrics | null },
) {
  const authenticator = new Authenticator(config.auth);
  const origins = new OriginPolicy(config.corsOrigins, { loopbackHostsOnly: config.auth.localDevelopment });
  const documents = new DocumentCache();
  const operationPlaces = new UserPlaces(
    config.operationsInFlightPerUser,
    clientGone,
    WAITING_PER_USER,
    MAX_WAIT_MS,
    config.maxWaitingBytes,
  );
  const yoga = createGraphQL({
    config,
    logger,
    services: resolverServices(services),
    authenticator,
    origins,
    metrics,
    documents,
    operationPlaces,
    diskFull: services.diskFull,
  });
  return { authenticator, origins, documents, yoga, operationPlaces };
}

/** The app's metrics; the Redis change log's only in cluster mode (a single process talks to no Redis). */
function appMetrics(config: Config): AppMetrics {
  const knownOperations = manifestOperationNames(config.persistedDocuments);
  return new AppMetrics({ knownOperations, clustered: config.redis !== null });
}

/** The Prisma client and /readiness's probe of the database (on PostgreSQL, a connection of its own). */
function databaseOf(config: Config, prisma: PrismaOptions | undefined): { db: Db; probe: DatabaseProbe } {
  const db = createPrismaClient(config.databaseUrl, {
    ...prisma,
    queryTimeoutMs: config.databaseQueryTimeoutMs,
    poolSize: config.databasePoolSize,
  });
  return { db, probe: databaseProbe(db, config.databaseUrl, READINESS_TIMEOUT_MS) };
}

export function buildApp(config: Config, { logger, prisma, metrics: measured = true }: AppOptions): App {
  const { db, probe } = databaseOf(config, prisma);
  const metrics = measured ? appMetrics(config) : null;
  const onRedisAppend = metrics?.redisAppend;
  const services = createServices({ db, config, logger, ...(onRedisAppend ? { onRedisAppend } : {}) });

  const parts = graphqlParts(config, { logger, services, metrics });
  const { authenticator, origins, documents, yoga } = parts;

  const fastPath = config.graphqlFastPath
    ? new HttpFastPath({ pipeline: (initial) => operationPipeline(yoga, initial), authenticator, origins, logger })
    : null;

  const lifecycle = new Lifecycle();
  const http = createHttpServer({ ...config.http, onClientError: clientErrorLog(logger, metrics) });
  const live = createLiveTransports({
    config,
    logger,
    yoga,
    authenticator,
    origins,
    server: http.server,
    serving: lifecycle.serving,
    metrics,
  });
  const router = createRouter({
    config,
    logger,
    probe,
    databaseFile: services.databaseFile,
    diskFull: services.diskFull,
    engine: services.engine,
    yoga,
    fastPath,
    origins,
    authenticator,
    sse: live.sse,
    clusterLog: services.clusterLog,
    metrics,
    lifecycle,
  });
  http.onRequest(lifecycle.gate(router));

  const jobs = createPeriodicJobs({ config, services, logger });
  let collector: StateCollector | null = null;
  metrics?.watch(watchedParts({ services, config, db, operationPlaces: parts.operationPlaces }, live, () => collector));
  if (metrics) watchOutbox(metrics.registry, services.outboxWorker.figures);
  let listening: Promise<RunningApp> | null = null;
  let starting: Promise<RunningApp> | null = null;

  const listen = (port = config.port) => (listening ??= http.listen(port, config.host));

  // Set when a stop begins: a start-up still under way starts nothing more (StartAbandoned).
  let stopRequested = false;
  let stopping: Promise<void> | null = null;

  const listenAndStart = async (port?: number) => {
    const running = await listen(port);
    const progress = { step: 'the start' };
    const parts = { config, logger, db, services, jobs, live };
    await startSteps(parts, progress, { stopRequested: () => stopRequested, started: (c) => (collector = c) }).catch(
      (error: unknown) => {
        throw explainedStartFailure(error, progress.step, config.databaseUrl);
      },
    );
    metrics?.followRuntime(services.store);
    lifecycle.started();
    return running;
  };

  return {
    services,
    db,
    server: http.server,
    fastPath,
    documents,
    subscriptionStats: live.stats,
    metrics,
    listen,
    start(port) {
      starting = listenAndStart(port);
      return starting;
    },
    stop(signal) {
      stopRequested = true;
      const started = { config, logger, db, probe, services, jobs, starting, collector: () => collector };
      stopping ??= stopOnce({ config, logger, lifecycle, http, live }, started, signal);
      return stopping;
    },
  };
}

/** What `stop()` does, once: stops serving, then what `start()` started, within a deadline. */
async function stopOnce(serving: Edge, started: Started, signal?: string): Promise<void> {
  const { config, logger } = started;
  const began = Date.now();
  // Before the requests in flight are waited for: a syncMarketSource one answers (cut short) at once.
  void started.services.catalogueSync.stop(SERVER_STOPPING);
  // The search refold too: it ends between two rows, and the stop waits for that later (stopStarted).
  void started.services.searchRefold.stop();
  const connections = await stopServing(serving, signal);
  const progress: StopProgress = { step: 'the start-up still under way' };
  const deadline = Date.now() + 2 * config.shutdownTimeoutMs + STOP_ALLOWANCE_MS + CLUSTER_LOG_STOP_WAIT_MS;
  if (!(await settledBy(stopStarted(started, progress), deadline))) {
    const waited = Date.now() - began;
    // Named when known (a slow upstream, not the database, held the periodic jobs); else a guess.
    const still = progress.stillRunning?.() ?? [];
    const why = still.length > 0 ? `still running: ${still.join(', ')}` : 'is the database or Redis not answering?';
    throw new Error(
      `stop cut after ${waited} ms: ${progress.step} did not stop in time (${why}); running tasks are taken over once their lease expires`,
    );
  }
  logger.info({ ...connections, ms: Date.now() - began }, 'stopped');
}

/** The part of a stop under way, and what it still waits for when that is known. */
interface StopProgress {
  step: string;
  stillRunning?: (() => string[]) | undefined;
}

/** What `start()` started, as it stands when the stop begins. */
interface Started {
  config: Config;
  logger: Logger;
  db: Db;
  probe: DatabaseProbe;
  services: Services;
  jobs: PeriodicJobs;
  starting: Promise<RunningApp> | null;
  /** Created by the start-up, which may still be under way when the stop begins. */
  collector: () => StateCollector | null;
}

/** Everything `start()` started, in reverse; `progress.step` names the part being stopped. */
async function stopStarted(started: Started, progress: StopProgress): Promise<void> {
  const { config, logger, db, probe, services, jobs } = started;
  const step = (name: string, stillRunning?: () => string[]) => {
    progress.step = name;
    progress.stillRunning = stillRunning;
  };
  // A start-up still under way finishes first, so that what it started is stopped too.
  await started.starting?.catch(() => {});
  step("the catalogue's search refold");
  // Ended between two rows when the stop began: a long scan is not waited for (the next start goes on).
  await services.searchRefold.stop();
  step('the periodic jobs', () => jobs.stillRunning());
  await jobs.stop();
  step('the task engine');
  // The engine's sends to the app service in progress get a budget of their own.
  await services.engine.stop(Date.now() + config.shutdownTimeoutMs);
  // After the engine: the collector reads back what the engine committed while stopping (a
  // task ending, its handover) and, in cluster mode, is the only way those rows reach the other
  // instances' runtime stores (each instance reads back its own changes only). Stopped first,
  // a task that ended during the stop stayed RUNNING on the others (rolling-restart.test.ts).
  step('the collector');
  await started.collector()?.stop();
  step('the leader lease');
  await jobs.release();
  step('the outbox');
  // Its deliveries in flight get up to SHUTDOWN_TIMEOUT_MS; one cut then is retried once its lock expires.
  await stopOutbox(services, Date.now() + config.shutdownTimeoutMs);
  step('the cluster log');
  // After the engine: what it announced while handing its tasks over still reaches the others.
  // Cut off from Redis, it waits for Redis a while; what it cannot send is owed as a resync.
  const unsent = await services.clusterLog?.stop(Date.now() + CLUSTER_LOG_STOP_WAIT_MS);
  if (unsent) services.owedResync?.record();
  else services.owedResync?.owing(false);
  await services.owedResync?.settled();
  services.purchases.stop();
  step('the catalogue changes');
  await services.catalogueChanges.close();
  step('the database connection');
  await services.processPresence?.leave().catch(() => {}); // a database gone: its row goes stale by itself
  await closeDatabase(db, logger, { file: services.databaseFile, probe });
}

/** What the metrics read at scrape time; the collector exists once the app has started. */
function watchedParts(
  {
    services,
    config,
    db,
    operationPlaces,
  }: { services: Services; config: Config; db: Db; operationPlaces: UserPlaces },
  live: LiveTransports,
  collector: () => StateCollector | null,
) {
  return {
    store: services.store,
    engine: services.engine,
    workers: config.tasks.concurrency,
    live: live.stats,
    sourceRuns: () => collector()?.sourceRuns ?? null,
    databaseComponent: instanceComponentName('database', config.redis?.instance),
    redisConnected: services.clusterLog ? () => services.clusterLog?.connected ?? false : null,
    databasePool: poolFigures(db),
    diskFull: services.diskFull,
    operationsWaiting: () => operationPlaces.waitingCount,
  };
}

interface Edge {
  config: Config;
  logger: Logger;
  lifecycle: Lifecycle;
  http: HttpServer;
  live: LiveTransports;
}

/**
 * The first part of a stop: no new connection, every stream ended and WebSocket closed (1012),
 * the requests in flight given until SHUTDOWN_TIMEOUT_MS, then every connection left cut.
 */
async function stopServing({ config, logger, lifecycle, http, live }: Edge, signal: string | undefined) {
  const deadline = Date.now() + config.shutdownTimeoutMs;
  // Synchronously, before anything else: no new connection from here on.
  lifecycle.stopping();
  const idleSocketsClosed = http.stopAccepting();
  logger.info(
    { signal, timeoutMs: config.shutdownTimeoutMs, ...live.stats() },
    'shutting down: no longer accepting connections',
  );
  // live.stop() ends the streams at once, so that drain() counts (and waits for) requests only.
  const [transports, requests] = await Promise.all([live.stop(deadline), http.drain(deadline)]);
  await http.close();
  return { ...requests, idleSocketsClosed, ...transports };
}
