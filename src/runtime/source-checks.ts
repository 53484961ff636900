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
  private readonly inFlight = new Set<string>();
  private readonly failures = new Map<string, RepeatedFailure>();

  constructor(
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {}

  /** Runs the check of `name`; rejects when it fails, times out, or the previous one still runs. */
  async run(name: string, check: () => Promise<void>): Promise<void> {
    try {
      await this.bounded(name, check);
    } catch (error) {
      this.failuresOf(name).failed(error instanceof CheckTimeout ? error.message : error, { source: name });
      throw error;
    }
    this.failures.get(name)?.succeeded({ source: name });
  }

  private failuresOf(name: string): RepeatedFailure {
    let failures = this.failures.get(name);
    if (!failures) {
      failures = new RepeatedFailure(this.logger, 'check', 'warn');
      this.failures.set(name, failures);
    }
    return failures;
  }

  private async bounded(name: string, check: () => Promise<void>): Promise<void> {
    if (this.inFlight.has(name)) {
      throw new CheckTimeout(`still waiting for the previous check, which did not answer within ${this.timeoutMs} ms`);
    }
    this.inFlight.add(name);
    const running = check();
    const settled = () => {
      this.inFlight.delete(name);
    };
    running.then(settled, settled);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        running,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new CheckTimeout(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
