import { createChartRepo } from '../adapters/chart-repo/factory.js';
import { type Db, databaseProvider } from '../db/client.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import { databaseSource, pubsubSource, taskEngineSource } from '../runtime/sources.js';
import { type PollSource, StateCollector } from '../runtime/state-collector.js';
import type { Services } from './create-services.js';
import type { SubscriptionStats } from './live.js';

export interface CollectorDeps {
  db: Db;
  config: Config;
  services: Pick<Services, 'store' | 'localBus' | 'engine' | 'clusterLog' | 'runtimeEntries'>;
  logger: Logger;
  /** The fan-out figures the `pubsub` component shows. */
  subscriptionStats(): SubscriptionStats;
  /** The periodic jobs' components. */
  jobSources: PollSource[];
}

/**
 * The collector that fills the runtime store: the database, the task engine, the subscription
 * fan-out and the periodic jobs as components, and the chart repo when CHART_REPO_URL is set.
 */
export function createCollector({
  db,
  config,
  services,
  logger,
  subscriptionStats,
  jobSources,
}: CollectorDeps): StateCollector {
  const collectorLogger = logger.child({ component: 'collector' });
  const { collectIntervalMs } = config.runtime;
  const { clusterLog, runtimeEntries } = services;
  return new StateCollector(
    db,
    services.store,
    services.localBus,
    [
      databaseSource(db, databaseProvider(config.databaseUrl)),
      taskEngineSource(db, services.engine, config.tasks.concurrency),
      pubsubSource(subscriptionStats, services.clusterLog),
      ...jobSources,
    ],
    createChartRepo(config.runtime, collectorLogger),
    collectorLogger,
    { intervalMs: collectIntervalMs, sourceTimeoutMs: Math.min(collectIntervalMs, 10_000) },
    clusterLog && runtimeEntries && config.redis
      ? { log: clusterLog, entries: runtimeEntries, instance: config.redis.instance }
      : null,
  );
}
