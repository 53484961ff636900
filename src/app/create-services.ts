import { createAppService } from '../adapters/app-service/factory.js';
import { createDeveloperService } from '../adapters/developer-service/factory.js';
import { type Db, onFailedCommit } from '../db/client.js';
import { type DatabaseClock, databaseClockOf } from '../db/database-clock.js';
import { DiskFullWatch } from '../db/disk-full.js';
import { OwedResyncMarker, takeOwedResync } from '../db/owed-resync.js';
import { ProcessPresence } from '../db/process-presence.js';
import { StatusCorrection } from '../engine/status-correction.js';
import { TaskEngine } from '../engine/task-engine.js';
import { ChangeFeed, createEventBus } from '../events/change-feed.js';
import { RedisChangeLog } from '../events/redis-change-log.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import { AHEAD_WAIT_MS } from '../runtime/event-stream.js';
import { type RuntimeChange, RuntimeEntries, runtimeChangeOf } from '../runtime/runtime-change.js';
import { RuntimeService } from '../runtime/runtime-service.js';
import { RECENT_FINISHED_TASKS, StateStore } from '../runtime/state-store.js';
import { StoreBarrier } from '../runtime/store-barrier.js';
import type { ResolverServices } from '../schema/builder.js';
import { CatalogService } from '../services/catalog-service.js';
import { ChartUploadService } from '../services/chart-upload-service.js';
import { HistoryService } from '../services/history-service.js';
import { InstalledAppService } from '../services/installed-app-service.js';
import { LifecycleService } from '../services/lifecycle-service.js';
import { MarketSourceService } from '../services/market-source-service.js';
import { OperationService } from '../services/operation-service.js';
import { PaymentService } from '../services/payment-service.js';
import { PurchaseService } from '../services/purchase-service.js';
import { SearchRefold } from '../services/search-refold.js';
import { TaskService } from '../services/task-service.js';
import { createCatalogue } from './catalogue.js';
import { watchedDatabaseFile } from './database.js';
import { createOutbox } from './outbox.js';
import { storedApps } from './simulated-cluster.js';

export interface ServiceDeps {
  db: Db;
  config: Config;
  logger: Logger;
  /** Told the Redis round trip of each change-log append (AppMetrics.redisAppend). */
  onRedisAppend?: (seconds: number) => void;
}

/** Cluster mode's change log on Redis; while Redis does not take this instance's changes, `owedResync` says so. */
function clusterLogOf(
  { config, logger, onRedisAppend }: ServiceDeps,
  redis: NonNullable<Config['redis']>,
  owedResync: OwedResyncMarker,
) {
  return new RedisChangeLog({
    url: redis.url,
    prefix: redis.prefix,
    retention: redis.changeLogRetention,
    eventRetention: config.runtime.eventBuffer,
    logger: logger.child({ component: 'cluster-log' }),
    ...(onRedisAppend ? { onAppend: onRedisAppend } : {}),
    owing: (owing) => owedResync.owing(owing),
  });
}

/** Builds the domain services and the task engine: the first step of the composition root (build-app.ts). */
export function createServices({ db, config, logger, onRedisAppend }: ServiceDeps) {
  const { maxPageSize } = config;
  const bus = createEventBus();
  // The database's clock, for every time that instances compare (leases, outbox locks, task ages).
  const clock = databaseClockOf(db);
  // Cluster mode: announcements also go to the Redis change log, and other instances' come from it.
  // While Redis does not take this instance's changes, a marker in the database says so (owed-resync.ts).
  const owedResync = config.redis ? new OwedResyncMarker(db, config.redis.instance, logger, clock) : null;
  const clusterLog =
    config.redis && owedResync ? clusterLogOf({ db, config, logger, onRedisAppend }, config.redis, owedResync) : null;
  // What the runtime collector follows: this instance's own announcements (in cluster mode the
  // others' changes reach its store through the log, as runtime changes).
  const localBus = clusterLog ? createEventBus() : bus;
  const feed = new ChangeFeed(bus, clusterLog, localBus);
  const history = new HistoryService(db, maxPageSize, bus);
  // The app service reports state events to the engine, which itself drives the app service.
  const appService = createAppService(config.appService, (event) => engine.onAppState(event), logger, {
    ...storedApps(db),
    clock,
  });
  const engine = new TaskEngine(
    db,
    appService,
    history,
    feed,
    logger.child({ component: 'task-engine' }),
    config.tasks,
    clock,
  );
  followTaskChanges(bus, engine, logger);
  // Compares the app service's list with the stored states: run by the leader's jobs (jobs.ts).
  const statusCorrection = new StatusCorrection({
    db,
    appService,
    engine,
    history,
    feed,
    logger: logger.child({ component: 'status-correction' }),
    intervalMs: config.statusCorrectionIntervalMs,
    clock,
  });
  const catalog = new CatalogService(db, maxPageSize);
  const catalogue = createCatalogue({
    db,
    logger: logger.child({ component: 'catalogue' }),
    config,
    bus,
    feed,
    history,
    catalog,
  });
  const purchases = createPurchases({ db, config, logger }, catalog, history, feed, clock);
  return {
    apps: new InstalledAppService(db, maxPageSize, bus),
    tasks: new TaskService(db, maxPageSize, bus),
    payments: new PaymentService(db, maxPageSize, bus, catalog),
    purchases,
    history,
    catalog,
    // An upload's catalogue change is announced like a sync's.
    uploads: new ChartUploadService(db, catalog, { maxBytes: config.chartUploadMaxBytes }, (change) =>
      catalogue.changes.changed(change),
    ),
    marketSources: createMarketSources({ db, catalog, history, feed }, catalogue),
    catalogueSync: catalogue.syncer,
    catalogueChanges: catalogue.changes,
    /** Folds search text stored by an older release again, in the background (started by the start's steps). */
    searchRefold: new SearchRefold(db, bus, logger.child({ component: 'search-refold' })),
    operations: new OperationService(db, catalog, history, feed, engine),
    lifecycle: new LifecycleService(db, history, feed, engine),
    engine,
    /** The database's clock (DatabaseClock): for every time that instances compare. */
    clock,
    appService,
    statusCorrection,
    bus,
    localBus,
    /** Where committed changes are announced (the engine and the services hold it too). */
    feed,
    clusterLog,
    owedResync,
    databaseFile: watchedDatabaseFile(config, db),
    processPresence: processPresenceOf(db, config, logger, clock),
    /** Writes refused for want of room: one log line per episode, a count, and `/readiness`. */
    diskFull: diskFullWatch(db, logger),
    ...createRuntime(config, feed),
    ...createOutbox({
      db,
      config,
      logger,
      clock,
      // A payment push delivered or given up on is a line in the buyer's history.
      onSettled: async (message) => {
        if (message.kind !== 'payment' || message.notificationId === null) return;
        const { notificationId, topic, status, attempts, lastError } = message;
        await purchases.recordDelivery({ notificationId, topic, status, attempts, lastError });
      },
    }),
  };
}

/** Market-source management: its syncs, and the announcements of a source's installed apps, go through the catalogue. */
function createMarketSources(
  { db, catalog, history, feed }: { db: Db; catalog: CatalogService; history: HistoryService; feed: ChangeFeed },
  catalogue: ReturnType<typeof createCatalogue>,
) {
  return new MarketSourceService(
    db,
    catalog,
    history,
    feed,
    async (sourceId) => {
      await catalogue.syncer.syncNow(sourceId);
    },
    (sourceId) => catalogue.changes.sourceAddedOrRemoved(sourceId),
  );
}

/** The runtime store, what the collector tells of its progress (read-your-writes), and the service over them. */
function createRuntime(config: Config, feed: ChangeFeed) {
  const store = new StateStore({
    bufferSize: config.runtime.eventBuffer,
    recentFinishedTasks: RECENT_FINISHED_TASKS,
    componentMetricsPushMs: config.runtime.componentMetricsPushMs,
  });
  const barrier = new StoreBarrier();
  const runtime = new RuntimeService(
    store,
    {
      snapshotMaxHz: config.runtime.snapshotMaxHz,
      subscriberBuffer: config.runtime.subscriberBuffer,
      aheadWaitMs: config.redis ? AHEAD_WAIT_MS : 0,
    },
    { barrier, delivered: () => feed.delivered() },
  );
  return { store, barrier, runtime };
}

/** The purchase service, with its developer service and where its pushes go. */
function createPurchases(
  { db, config, logger }: ServiceDeps,
  catalog: CatalogService,
  history: HistoryService,
  feed: ChangeFeed,
  clock: DatabaseClock,
) {
  const developerService = config.payments.developerService;
  return new PurchaseService(
    db,
    catalog,
    history,
    createDeveloperService(developerService, logger),
    feed,
    logger.child({ component: 'purchases' }),
    {
      attempts: config.payments.pollAttempts,
      intervalMs: config.payments.pollIntervalMs,
      callTimeoutMs: developerService.kind === 'http' ? developerService.timeoutMs : 0,
    },
    {
      // The wallet answers with the submitSignature / signatureCallback mutations on the
      // GraphQL endpoint (graphql.ts), reached from outside under PUBLIC_BASE_URL.
      callbackUrl: `${config.publicBaseUrl}/graphql`,
      walletUrl: config.payments.pushes.walletUrl,
      frontendUrl: config.payments.pushes.frontendUrl,
    },
    clock,
  );
}

export type Services = ReturnType<typeof createServices>;

/**
 * Cluster mode: starts reading the change log (before the engine and the collector start, so that
 * nothing another instance commits meanwhile is missed). The runtime changes it brings are held
 * until the collector has loaded the state and takes them over; null without REDIS_URL.
 */
export async function connectCluster(
  { clusterLog, bus, localBus }: Services,
  db: Db,
  logger: Logger,
): Promise<RuntimeEntries | null> {
  if (!clusterLog) return null;
  const entries = new RuntimeEntries();
  entries.position = await clusterLog.start({
    announcement: ([topic, event]) => bus.publish(topic, event as never),
    runtime: (value, first, last, own) => {
      const change = runtimeChangeOf(value);
      entries.deliver(change, first, last, own);
      if (!own) announceRows(bus, change);
    },
    resync: (reason) => localBus.publish('runtime:resync', { reason }),
  });
  if (await takeOwedResync(db)) {
    logger.warn('an instance owed cluster changes Redis never took: every instance re-reads its state');
    clusterLog.requestResync();
  }
  return entries;
}

/**
 * The task engine follows the announced task changes: in cluster mode, another instance's end of a
 * task this one runs, which it then stops supervising (see forgetEndedElsewhere).
 */
function followTaskChanges(bus: Services['bus'], engine: TaskEngine, logger: Logger): void {
  const failed = (error: unknown) => logger.error({ err: error }, 'task engine: could not take a task change');
  bus.listen('task:updated', (event) => engine.onTaskChanged(event), failed);
}

/**
 * Another instance's task and app changes, as its rows read back came through the log, announced
 * on this instance's bus for taskUpdated and appUpdated (the subscribers re-read the rows), and for
 * the task engine (a task's status as read back: one it runs may have ended there). Several
 * announcements of one row read back together arrive as one.
 */
function announceRows(bus: Services['bus'], change: RuntimeChange): void {
  if (change.kind !== 'rows') return;
  for (const { taskId, userId, sourceId, appName, status } of change.tasks) {
    bus.publish('task:updated', { taskId, userId, sourceId, appName, status });
  }
  for (const { userId, sourceId, appName } of change.appKeys) bus.publish('app:updated', { userId, sourceId, appName });
}

/**
 * The request-time services, the only ones the GraphQL context carries: resolvers cannot reach
 * the task engine, the event bus, the runtime store or the app service.
 */
export function resolverServices(services: Services): ResolverServices {
  const { apps, tasks, payments, purchases, history, catalog, uploads, marketSources, operations, runtime } = services;
  const catalogueChanges = services.catalogueChanges;
  return {
    apps,
    tasks,
    payments,
    purchases,
    history,
    catalog,
    catalogueChanges,
    uploads,
    marketSources,
    operations,
    lifecycle: services.lifecycle,
    runtime,
    webhooks: services.webhooks,
  };
}

/** The watch, told also of the failed COMMITs of Prisma's own transactions (their cause reaches only the adapter). */
function diskFullWatch(db: Db, logger: Logger): DiskFullWatch {
  const watch = new DiskFullWatch(logger.child({ component: 'database' }));
  onFailedCommit(db, (error) => watch.observe(error));
  return watch;
}

/** Without REDIS_URL: whether other server processes use the database (null in cluster mode). */
function processPresenceOf(db: Db, config: Config, logger: Logger, clock: DatabaseClock): ProcessPresence | null {
  if (config.redis) return null;
  // Longer than three collector cycles between two of a live process's beats, and never under 15 s.
  const staleMs = Math.max(3 * config.runtime.collectIntervalMs, 15_000);
  return new ProcessPresence(db, staleMs, clock, logger.child({ component: 'database' }));
}
