/**
 * Read-your-writes for the runtime store. A committed change reaches the store later than its
 * mutation: announced on the bus a macrotask after the commit, read back by the collector (one
 * SELECT), and in cluster mode appended to the change log and applied when it comes back from
 * Redis. A mutation that answered before that could be followed by a `runtimeSnapshot` without
 * it. So mutations wait here (the store-barrier plugin, http/store-barrier.ts) until the store
 * holds every change announced before they finished.
 *
 * Generations: each change the collector notes (a task or app announced) is one; the collector
 * reports the generations whose read-backs the store holds (`applied`). A waiter resolves once
 * the store holds the generation that was current when it asked.
 */
export class StoreBarrier {
  private noted = 0;
  private held = 0;
  private readonly waiters: { through: number; resolve: () => void }[] = [];
  /** Cluster mode: read-backs on their way through the change log, with the generation each covers. */
  private readonly inFlight: { change: unknown; covers: number }[] = [];

  /** The collector noted an announced change (a stale task or app to read back). */
  note(): void {
    this.noted += 1;
  }

  /** The generation current now: what a read-back taken now covers. */
  get generation(): number {
    return this.noted;
  }

  /** The store holds every change noted up to `generation` (or there is nothing more to wait for). */
  applied(generation: number): void {
    if (generation <= this.held) return;
    this.held = Math.min(generation, this.noted);
    for (let index = this.waiters.length - 1; index >= 0; index--) {
      const waiter = this.waiters[index] as (typeof this.waiters)[number];
      if (waiter.through > this.held) continue;
      this.waiters.splice(index, 1);
      waiter.resolve();
    }
  }

  /** Cluster mode: a read-back covering `covers` went into the change log; applied when it comes back. */
  sent(change: unknown, covers: number): void {
    this.inFlight.push({ change, covers });
  }

  /**
   * Cluster mode: an entry of this instance came back from the log and is applied. The log returns
   * an instance's entries in the order appended, so a read-back sent before it that never came
   * back (dropped while Redis was away, and a resync reads everything again) is given up too.
   */
  returned(change: unknown): void {
    const at = this.inFlight.findIndex((entry) => entry.change === change);
    if (at < 0) return;
    const done = this.inFlight.splice(0, at + 1);
    this.applied((done[done.length - 1] as { covers: number }).covers);
  }

  /**
   * Resolves once the store holds every change announced before the call (`delivered`: the
   * change feed's, so that the announcements still queued are noted first), or after
   * `timeoutMs` at most: a collector that is stopped or cannot read never holds a mutation longer.
   */
  async caughtUp(delivered: () => Promise<void>, timeoutMs: number): Promise<void> {
    await delivered();
    // The bus hands announcements to the collector in microtasks after publishing them: a
    // macrotask later every one of them is noted.
    await new Promise((resolve) => setImmediate(resolve));
    const through = this.noted;
    if (through <= this.held) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      const waiter = { through, resolve };
      this.waiters.push(waiter);
      timer = setTimeout(() => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        resolve();
      }, timeoutMs);
    });
    clearTimeout(timer);
  }
}
