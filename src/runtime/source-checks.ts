import type { Logger } from '../platform/logger.js';
import { RepeatedFailure } from '../platform/repeated-failure.js';

/** A check that did not answer in time, or whose previous run still has not: no stack to show. */
class CheckTimeout extends Error {}

/**
 * The collector's checks of its sources, each bounded in time and never running twice at once.
 * A check that does not answer within the timeout fails its cycle, but cannot be cancelled: it
 * goes on, and until it ends the next cycles start no other check of that source. Started anew at
 * every cycle, a chart repo that hung got a new round of calls each time, until it held as many
 * calls at once as there are (user, source) pairs instead of the collect's cap of 8.
 *
 * Failures are logged per source as other repeated work is (RepeatedFailure): the first, then at
 * most one line a minute while it goes on, then its recovery. Logged whenever the message changed,
 * a blackholed database wrote four lines with stacks every ~6 s for the whole outage, as each
 * check's message went back and forth between "no answer within" and "still waiting".
 */
export class SourceChecks {
  /** The checks running, with when each began and how long it may take (its bound). */
  private readonly inFlight = new Map<string, { startedAt: number; boundMs: number }>();
  private readonly failures = new Map<string, RepeatedFailure>();

  /** `timeoutMs`: how long a cycle waits for a check, and the bound of a check not given its own. */
  constructor(
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {}

  /**
   * Runs the check of `name`; rejects when it fails, outlives its bound, or the previous one has.
   * `boundMs` beyond the cycle's wait (the chart repo's, from CHART_REPO_TIMEOUT_MS) lets a slow
   * check go on after the cycle stops waiting: 'running', with no error and its component as it
   * was, until it answers (and publishes its own result) or outlives its bound. Failing it at the
   * cycle's wait made a chart repo slower than that, yet within its setting, ERROR at every other
   * cycle and RUNNING at the rest.
   */
  async run(name: string, check: () => Promise<void>, boundMs = this.timeoutMs): Promise<'answered' | 'running'> {
    let outcome: 'answered' | 'running';
    try {
      outcome = await this.bounded(name, check, boundMs);
    } catch (error) {
      this.failed(name, error);
      throw error;
    }
    if (outcome === 'answered') this.failures.get(name)?.succeeded({ source: name });
    return outcome;
  }

  private failed(name: string, error: unknown): void {
    let failures = this.failures.get(name);
    if (!failures) {
      failures = new RepeatedFailure(this.logger, 'check', 'warn');
      this.failures.set(name, failures);
    }
    failures.failed(error instanceof CheckTimeout ? error.message : error, { source: name });
  }

  private async bounded(name: string, check: () => Promise<void>, boundMs: number): Promise<'answered' | 'running'> {
    const previous = this.inFlight.get(name);
    if (previous) {
      if (performance.now() - previous.startedAt < previous.boundMs) return 'running';
      throw new CheckTimeout(
        `still waiting for the previous check, which did not answer within ${previous.boundMs} ms`,
      );
    }
    this.inFlight.set(name, { startedAt: performance.now(), boundMs });
    const running = check();
    const settled = () => {
      this.inFlight.delete(name);
    };
    running.then(settled, settled);
    const waitMs = Math.min(this.timeoutMs, boundMs);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        running.then(() => 'answered' as const),
        new Promise<'running'>((resolve, reject) => {
          timer = setTimeout(() => {
            if (boundMs > waitMs) resolve('running');
            else reject(new CheckTimeout(`no answer within ${boundMs} ms`));
          }, waitMs);
        }),
      ]).then((outcome) => {
        // Answered after the cycle stopped waiting: its result is published by the check itself, its failure logged here.
        if (outcome === 'running') {
          running.then(
            () => this.failures.get(name)?.succeeded({ source: name }),
            (error: unknown) => this.failed(name, error),
          );
        }
        return outcome;
      });
    } finally {
      clearTimeout(timer);
    }
  }
}
