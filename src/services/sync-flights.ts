/**
 * The syncs this process runs, at most one per source at a time (the Syncer's single flight).
 * `join` starts a sync unless one of the source is running, which it joins: the scheduled job,
 * for which any sync of the source will do. `after` is for a sync asked for (syncMarketSource):
 * its answer must reflect the source as it was when asked, and a sync already running read it
 * before; so it waits for that one to end and runs one more, which every request made meanwhile
 * shares (coalesced: ten requests during a sync cost one follow-up, not ten). Across instances
 * the database orders the syncs (catalogue-sync.ts, the sync tickets).
 */
export class SyncFlights<T> {
  private readonly running = new Map<string, Promise<T>>();
  /** The follow-up each source's requests wait for, until it starts (then it is `running`). */
  private readonly next = new Map<string, Promise<T>>();

  join(key: string, run: () => Promise<T>): Promise<T> {
    const running = this.running.get(key);
    if (running) return running;
    const started = run();
    this.running.set(key, started);
    const forget = () => {
      if (this.running.get(key) === started) this.running.delete(key);
    };
    started.then(forget, forget);
    return started;
  }

  after(key: string, run: () => Promise<T>): Promise<T> {
    const running = this.running.get(key);
    if (!running) return this.join(key, run);
    let next = this.next.get(key);
    if (!next) {
      const ended = running.then(
        () => undefined,
        () => undefined,
      );
      // Joins a sync started after the one running ended (by the schedule, say): it read later too.
      next = ended.then(() => {
        this.next.delete(key);
        return this.join(key, run);
      });
      this.next.set(key, next);
    }
    return next;
  }

  /** The keys of the syncs running or waiting to follow one. */
  keys(): string[] {
    return [...new Set([...this.running.keys(), ...this.next.keys()])];
  }

  /** Resolves once no sync runs and none waits to follow one. */
  async idle(): Promise<void> {
    while (this.running.size + this.next.size > 0) {
      await Promise.allSettled([...this.running.values(), ...this.next.values()]);
    }
  }
}
