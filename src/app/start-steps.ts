import { type Db, databaseShown } from '../db/client.js';
import { CONNECTION_LIMIT_ADVICE, tooManyConnections } from '../db/connection-limits.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import type { StateCollector } from '../runtime/state-collector.js';
import { syncBundledCatalogue } from './catalogue.js';
import { createCollector } from './collector.js';
import { connectCluster, type Services } from './create-services.js';
import { openDatabase, seedDemo } from './database.js';
import type { PeriodicJobs } from './jobs.js';
import type { LiveTransports } from './live.js';
import { startOutbox } from './outbox.js';

/**
 * What `start()` (build-app.ts) runs once the port is bound, step by step, and what a failure of
 * a step says.
 */

/** What the steps start. */
interface StartParts {
  config: Config;
  logger: Logger;
  db: Db;
  services: Services;
  jobs: PeriodicJobs;
  live: LiveTransports;
}

/**
 * What `start()` rejects with when a stop began before it was done (Ctrl-C during the first
 * `npm start`, an orchestrator stopping a pod still starting): it stops between its steps, before
 * the task engine sends anything, and the server never says it is listening. Up to the task
 * engine's start a stop is checked before every step; the steps from there on are quick (a stop
 * that began during them lets `start()` resolve: src/app/main.ts checks for it before the banner).
 */
export class StartAbandoned extends Error {
  constructor() {
    super('start-up abandoned: a stop began');
  }
}

/**
 * The start's steps once the port is bound, `progress.step` naming the one under way (for
 * explainedStartFailure); `started` hears of the collector before its start, so a stop stops it
 * even when its start fails.
 */
export async function startSteps(
  { config, logger, db, services, jobs, live }: StartParts,
  progress: { step: string },
  { stopRequested, started }: { stopRequested: () => boolean; started: (collector: StateCollector) => void },
): Promise<void> {
  const runtimeEntries = await prepareStart({ config, logger, db, services }, stopRequested, progress);
  progress.step = "the task engine's start";
  await services.engine.start();
  progress.step = "the outbox's start";
  await startOutbox(services, services.localBus);
  progress.step = 'the periodic jobs';
  await jobs.start();
  progress.step = "the runtime collector's first read";
  const collector = createCollector({
    db,
    config,
    services,
    logger,
    subscriptionStats: live.stats,
    jobs,
    runtimeEntries,
  });
  started(collector);
  await collector.start();
  // Once the rest has started, and not waited for: searches find the accented words of rows an
  // older release stored once it is done.
  services.searchRefold.start();
}

/**
 * A start that failed because PostgreSQL refused a connection slot: one line with the step, the
 * database and what to change (it was PostgreSQL's bare message). Any other failure as it is.
 */
export function explainedStartFailure(error: unknown, step: string, databaseUrl: string): unknown {
  const refusal = tooManyConnections(error);
  if (!refusal) return error;
  return new Error(
    `Could not start: ${databaseShown(databaseUrl)} refused a connection during ${step} (${refusal}). ${CONNECTION_LIMIT_ADVICE}.`,
  );
}

/**
 * The start-up's steps up to the task engine's start, each only if no stop began meanwhile: the
 * database, the cluster log (other instances' changes reach this one's bus from here on, and this
 * one's, such as the catalogue sync's, reach the others), the bundled catalogue, the demo data.
 * Returns the cluster log's entries for the collector.
 */
async function prepareStart(
  { config, logger, db, services }: Omit<StartParts, 'jobs' | 'live'>,
  stopRequested: () => boolean,
  progress: { step: string },
) {
  const unlessStopping = (next: string) => {
    if (stopRequested()) throw new StartAbandoned();
    progress.step = next;
  };
  unlessStopping('opening the database');
  await openDatabase(db, config, services.databaseFile);
  unlessStopping("joining the cluster log and reading the runtime's state");
  const runtimeEntries = await connectCluster(services, db, logger);
  unlessStopping("the bundled catalogue's sync");
  await syncBundledCatalogue(services.catalogueSync, config, logger);
  unlessStopping('the demo data');
  await seedDemo(db, config, logger);
  unlessStopping("the task engine's start");
  return runtimeEntries;
}
