import type { Logger } from './logger.js';

/** How often at most a failure that keeps repeating is logged again, with how often it failed since. */
const REMIND_MS = 60_000;

/**
 * How the log tells of work that runs again and again (a periodic job, a worker's poll) and fails
 * the same way at each run, as it does all through an outage of the database: the first failure in
 * full (error and stack), then, while it keeps failing, a reminder at most every minute with the
 * count, since when and the latest error; and the first success after failures says the work
 * recovered and after how long. A reminder does not wait for the same message: one outage fails
 * the same work in turns with "read ECONNRESET", "Connection terminated unexpectedly" and a
 * connection timeout. Logged at every run, a 60-second outage of
 * PostgreSQL wrote 143 lines (the outbox's poll 60, the task engine's claims and recovery 65, the
 * jobs 18) and none when it was over.
 */
export class RepeatedFailure {
  private failures = 0;
  private since = 0;
  private lastLoggedAt = Number.NEGATIVE_INFINITY;
  /** When the last two runs of failures that reached the log began (the times of their "failed" lines). */
  private toldStarts: number[] = [];
  /** Whether this run of failures reached the log (a recovery is told only then). */
  private told = false;

  constructor(
    private readonly logger: Logger,
    /** What runs, as the log lines name it: "<what> failed", "<what> still failing", "<what> recovered". */
    private readonly what: string,
    private readonly level: 'error' | 'warn' = 'error',
    private readonly remindMs = REMIND_MS,
  ) {}

  /**
   * The work failed with `error`; `fields` go into the log line too. The first failure after a
   * success starts a new run of failures, logged at once: held back for a minute after the last
   * line, a new outage right after a recovery went unlogged for ~50 s. Only when two runs of
   * failures already began within the last minute is a third only counted until a minute has
   * passed: work that fails every other run (a flapping connection) would otherwise log a stack
   * and a recovery per run. A line after the first failure says for how long it has been failing.
   */
  failed(error: unknown, fields: Record<string, unknown> = {}): void {
    const now = Date.now();
    if (this.failures === 0) this.since = now;
    this.failures += 1;
    const first = !this.told;
    if (first) {
      const [earlier] = this.toldStarts;
      if (this.toldStarts.length === 2 && earlier !== undefined && now - earlier < this.remindMs) return;
      this.toldStarts = [...this.toldStarts.slice(-1), now];
    } else if (now - this.lastLoggedAt < this.remindMs) {
      return;
    }
    this.told = true;
    this.lastLoggedAt = now;
    const line = {
      ...fields,
      err: error,
      failures: this.failures,
      ...(this.failures > 1 ? { failingForMs: now - this.since } : {}),
    };
    this.logger[this.level](line, first ? `${this.what} failed` : `${this.what} still failing`);
  }

  /** The work succeeded: after failures the log told of, it says it recovered. */
  succeeded(fields: Record<string, unknown> = {}): void {
    if (this.failures === 0) return;
    if (this.told) {
      const failingForMs = Date.now() - this.since;
      this.logger.info({ ...fields, failures: this.failures, failingForMs }, `${this.what} recovered`);
    }
    this.failures = 0;
    this.told = false;
  }
}
