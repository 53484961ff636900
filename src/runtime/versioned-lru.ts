/**
 * A cache of values computed from one version of some state (the runtime store's), shared by
 * every reader of that version: it holds entries of a single version only, and the first read or
 * write at a newer version drops them all (a value of an older version is never served, and
 * never kept beyond the next use of the cache). Within the version it is an LRU bounded twice,
 * since the keys are the clients' to choose (a filter, a document): by how many entries it holds
 * and by their total weight (what the caller says one costs, e.g. the length of a text).
 */
export interface VersionedLruOptions {
  /** Entries held at most; the least recently used leaves first. */
  maxEntries: number;
  /** Total weight held at most; a value heavier than this alone is not kept. */
  maxWeight: number;
}

interface Entry<V> {
  value: V;
  weight: number;
}

export class VersionedLru<V> {
  /** In least-recently-used-first order: a hit moves its entry last. */
  private readonly entries = new Map<string, Entry<V>>();
  private version: number | null = null;
  private weight = 0;

  constructor(private readonly options: VersionedLruOptions) {}

  /** Entries held now (all of one version). */
  get size(): number {
    return this.entries.size;
  }

  /** Total weight held now. */
  get totalWeight(): number {
    return this.weight;
  }

  /** The value computed for `key` at `version`, if held. */
  get(version: number, key: string): V | undefined {
    this.moveTo(version);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Keeps `value` for `key` at `version` (when it fits), evicting the least recently used beyond the bounds. */
  set(version: number, key: string, value: V, weight: number): void {
    this.moveTo(version);
    if (weight > this.options.maxWeight || this.options.maxEntries < 1) return;
    const replaced = this.entries.get(key);
    if (replaced) {
      this.entries.delete(key);
      this.weight -= replaced.weight;
    }
    this.entries.set(key, { value, weight });
    this.weight += weight;
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.options.maxEntries && this.weight <= this.options.maxWeight) break;
      this.entries.delete(oldest); // deleting the entry being visited is safe while iterating
      this.weight -= entry.weight;
    }
  }

  /** Another version: what is held was computed from a state that is gone. */
  private moveTo(version: number): void {
    if (version === this.version) return;
    this.version = version;
    this.entries.clear();
    this.weight = 0;
  }
}
