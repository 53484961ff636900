import type { Logger } from '../logger.js';

export interface PeriodicJob {
  /** Settles when the first run (started at once) is over. */
  firstRun: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Runs `work` now and then every `intervalMs`, never two runs at once; a failing run is logged
 * and the next one still happens. `stop()` waits for a run in progress.
 */
export function startPeriodicJob(
  name: string,
  intervalMs: number,
  work: () => Promise<void>,
  logger: Logger,
): PeriodicJob {
  let running: Promise<void> | null = null;
  const run = (): void => {
    if (running) return;
    running = work()
      .catch((error) => logger.error({ err: error, job: name }, `${name} failed`))
      .finally(() => {
        running = null;
      });
  };
  run();
  const firstRun = running ?? Promise.resolve();
  const timer = setInterval(run, intervalMs);
  timer.unref();
  return {
    firstRun,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
