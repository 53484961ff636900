import { createChartRepo } from '../adapters/chart-repo/factory.js';
import { type Db, databaseProvider } from '../db/client.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import { outboxSource } from '../runtime/outbox-source.js';
import type { RuntimeEntries } from '../runtime/runtime-change.js';
import { clusterSource, databaseSource, pubsubSource, taskEngineSource } from '../runtime/sources.js';
import { StateCollector } from '../runtime/state-collector.js';
import type { Services } from './create-services.js';
import type { PeriodicJobs } from './jobs.js';
import type { SubscriptionStats } from './live.js';

export interface CollectorDeps {
  db: Db;
  config: Config;
  services: Pick<
    Services,
    | 'store'
    | 'localBus'
    | 'engine'
    | 'clusterLog'
    | 'barrier'
    | 'databaseFile'
    | 'processPresence'
    | 'diskFull'
    | 'outboxWorker'
    | 'clock'
  >;
  logger: Logger;
  /** The fan-out figures the `pubsub` component shows. */
  subscriptionStats(): SubscriptionStats;
  /** The periodic jobs: their components, and who leads (the chart repo is polled by the leader only). */
  jobs: Pick<PeriodicJobs, 'sources' | 'leadership'>;
  /** Cluster mode: the change log's runtime changes (connectCluster); null in one process. */
  runtimeEntries: RuntimeEntries | null;
}

/**
 * The collector that fills the runtime store: the database, the task engine, the outbox, the
 * subscription fan-out and the periodic jobs as components, and the chart repo when CHART_REPO_URL is set.
 */
export function createCollector({
  db,
  config,
  services,
  logger,
  subscriptionStats,
  jobs,
  runtimeEntries,
}: CollectorDeps): StateCollector {
  const collectorLogger = logger.child({ component: 'collector' });
  const { collectIntervalMs } = config.runtime;
  const { clusterLog } = services;
  return new StateCollector(
    db,
    services.store,
    services.localBus,
    [
      databaseSource(db, {
        provider: databaseProvider(config.databaseUrl),
        file: services.databaseFile,
        presence: services.processPresence,
        diskFull: services.diskFull,
      }),
      taskEngineSource(db, services.engine, config.tasks.concurrency),
      outboxSource(db, services.outboxWorker.figures, config.outbox),
      pubsubSource(subscriptionStats, services.clusterLog, () => jobs.leadership.status().lastError),
      ...jobs.sources(),
      ...(config.redis
        ? [clusterSource(config.redis.instance, jobs.leadership, () => services.store.allComponents())]
        : []),
    ],
    createChartRepo(config.runtime, collectorLogger),
    collectorLogger,
    {
      intervalMs: collectIntervalMs,
      sourceTimeoutMs: Math.min(collectIntervalMs, 10_000),
      barrier: services.barrier,
    },
    clusterLog && runtimeEntries && config.redis
      ? {
          log: clusterLog,
          entries: runtimeEntries,
          instance: config.redis.instance,
          leader: jobs.leadership,
          eventBuffer: config.runtime.eventBuffer,
          settings: {
            TASK_LEASE_MS: config.tasks.leaseMs,
            RUNTIME_EVENT_BUFFER: config.runtime.eventBuffer,
            CHANGE_LOG_RETENTION: config.redis.changeLogRetention,
            // An adopted task's send is taken to be open for the adopter's timeout (leases.ts).
            ...(config.appService.kind === 'http' ? { APP_SERVICE_TIMEOUT_MS: config.appService.timeoutMs } : {}),
          },
          sweep: {
            silenceMs: config.redis.instanceSilenceMs,
            retentionMs: config.redis.stoppedComponentRetentionMs,
          },
          clock: services.clock,
        }
      : null,
  );
}
