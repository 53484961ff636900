import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import { type PeriodicJob, startPeriodicJob } from '../platform/periodic-job.js';
import { appServiceSource, jobsSource } from '../runtime/sources.js';
import type { PollSource } from '../runtime/state-collector.js';
import type { Services } from './create-services.js';

export interface JobDeps {
  config: Config;
  services: Pick<Services, 'purchases' | 'history' | 'engine' | 'appService'>;
  logger: Logger;
}

/** The work the server does on a timer, beside answering requests. */
export interface PeriodicJobs {
  /**
   * Starts payment polling recovery, history cleanup (and waits for its first run, so old history
   * is gone before the first request) and, with a real app service, reconciliation against it.
   */
  start(): Promise<void>;
  /** How the collector reports them: the `app_service` component and the `jobs` ones. */
  sources(): PollSource[];
  /** Stops the jobs started, waiting for runs in progress. */
  stop(): Promise<void>;
}

export function createPeriodicJobs({ config, services, logger }: JobDeps): PeriodicJobs {
  const started: PeriodicJob[] = [];
  let paymentRecovery: PeriodicJob | null = null;
  let historyCleanup: PeriodicJob | null = null;
  let reconciliation: PeriodicJob | null = null;
  const startJob = (name: string, intervalMs: number, work: () => Promise<void>) => {
    const job = startPeriodicJob(name, intervalMs, work, logger);
    started.push(job);
    return job;
  };
  return {
    async start() {
      paymentRecovery = startJob('payment polling recovery', services.purchases.resumeIntervalMs, () =>
        services.purchases.resumePolling(),
      );
      historyCleanup = startJob('history cleanup', config.history.cleanupIntervalMs, () =>
        removeOldHistory({ config, services, logger }),
      );
      await historyCleanup.firstRun; // old history is gone before the first request
      const { appService } = services;
      if (config.appService.kind === 'http' && appService.listApps) {
        const listApps = appService.listApps.bind(appService);
        reconciliation = startJob('app-service reconciliation', config.appService.reconcileIntervalMs, async () => {
          for (const event of await listApps()) await services.engine.onAppState(event);
        });
      }
    },
    sources: () => [
      appServiceSource(config.appService.kind, () => reconciliation?.status() ?? null),
      jobsSource(() => [
        { component: 'history_cleanup', status: historyCleanup?.status() ?? null },
        { component: 'payment_polling', status: paymentRecovery?.status() ?? null },
      ]),
    ],
    async stop() {
      await Promise.all(started.splice(0).map((job) => job.stop()));
    },
  };
}

/** Removes the history records older than HISTORY_RETENTION_DAYS. */
async function removeOldHistory({ config, services, logger }: JobDeps): Promise<void> {
  const cutoff = new Date(Date.now() - config.history.retentionDays * 24 * 60 * 60 * 1000);
  const removed = await services.history.removeOlderThan(cutoff);
  if (removed) logger.info({ removed, cutoff }, 'removed old history records');
}
