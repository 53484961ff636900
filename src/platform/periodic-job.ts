import { MAX_TIMER_MS } from './config-values.js';
import type { Logger } from './logger.js';
import { RepeatedFailure } from './repeated-failure.js';

/** What a job's last run did, for health reporting (the collector shows it as a component). */
export interface JobStatus {
  name: string;
  intervalMs: number;
  runs: number;
  lastStartedAt: Date | null;
  lastDurationMs: number | null;
  /** The last run's error message, or null when it succeeded. */
  lastError: string | null;
  /** Whether a run is in progress (the one started at `lastStartedAt`). */
  running: boolean;
}

export interface PeriodicJob {
  /** Settles when the first run (started at once) is over. */
  firstRun: Promise<void>;
  status(): JobStatus;
  stop(): Promise<void>;
}

/**
 * Runs `work` now and then every `intervalMs`, never two runs at once; a failing run is logged
 * (a failure that repeats only now and then, RepeatedFailure) and the next one still happens, its
 * error kept in the status as `describe` words it (the status is shown to every user). `stop()`
 * aborts `signal` and waits for a run in progress: a long run that looks at it between its steps
 * ends early (status correction's thousands of corrections held a graceful stop past its budget).
 */
export function startPeriodicJob(
  name: string,
  intervalMs: number,
  work: (signal: AbortSignal) => Promise<void>,
  logger: Logger,
  describe: (error: unknown) => string,
): PeriodicJob {
  const state: JobStatus = {
    name,
    intervalMs,
    runs: 0,
    lastStartedAt: null,
    lastDurationMs: null,
    lastError: null,
    running: false,
  };
  let running: Promise<void> | null = null;
  const stopping = new AbortController();
  const failures = new RepeatedFailure(logger, name);
  const run = (): void => {
    if (running) return;
    const started = performance.now();
    state.lastStartedAt = new Date();
    state.running = true;
    running = work(stopping.signal)
      .then(() => {
        state.lastError = null;
        failures.succeeded({ job: name });
      })
      .catch((error) => {
        state.lastError = describe(error);
        failures.failed(error, { job: name });
      })
      .finally(() => {
        state.runs += 1;
        state.lastDurationMs = Math.round(performance.now() - started);
        state.running = false;
        running = null;
      });
  };
  run();
  const firstRun = running ?? Promise.resolve();
  // A longer interval (one computed from a setting: 3 × PAYMENT_POLL_INTERVAL_MS) Node takes as 1
  // ms, and the job ran back to back (60 % of a core, a database read each time).
  const timer = setInterval(run, Math.min(intervalMs, MAX_TIMER_MS));
  timer.unref();
  return {
    firstRun,
    status: () => ({ ...state }),
    async stop() {
      clearInterval(timer);
      stopping.abort();
      await running;
    },
  };
}
