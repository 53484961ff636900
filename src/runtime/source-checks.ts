/**
 * The collector's checks of its sources, each bounded in time and never running twice at once.
 * A check that does not answer within the timeout fails its cycle, but cannot be cancelled: it
 * goes on, and until it ends the next cycles start no other check of that source. Started anew at
 * every cycle, a chart repo that hung got a new round of calls each time, until it held as many
 * calls at once as there are (user, source) pairs instead of the collect's cap of 8.
 */
export class SourceChecks {
  private readonly inFlight = new Set<string>();

  constructor(private readonly timeoutMs: number) {}

  /** Runs the check of `name`; rejects when it fails, times out, or the previous one still runs. */
  async run(name: string, check: () => Promise<void>): Promise<void> {
    if (this.inFlight.has(name)) {
      throw new Error(`still waiting for the previous check, which did not answer within ${this.timeoutMs} ms`);
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
          timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
