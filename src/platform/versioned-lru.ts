import { BoundedLru, type BoundedLruOptions } from './bounded-lru.js';

/**
 * A cache of values computed from one version of some state (the runtime store's), shared by
 * every reader of that version: it holds entries of a single version only, and the first read or
 * write at a newer version drops them all (a value of an older version is never served, and
 * never kept beyond the next use of the cache). Within the version it is a BoundedLru, bounded by
 * its entries and their total weight, since the keys are the clients' to choose (a filter, a
 * document).
 */
export type VersionedLruOptions = BoundedLruOptions;

export class VersionedLru<V> {
  private readonly entries: BoundedLru<string, V>;
  private version: number | null = null;

  constructor(options: VersionedLruOptions) {
    this.entries = new BoundedLru(options);
  }

  /** Entries held now (all of one version). */
  get size(): number {
    return this.entries.size;
  }

  /** Total weight held now. */
  get totalWeight(): number {
    return this.entries.totalWeight;
  }

  /** The value computed for `key` at `version`, if held. */
  get(version: number, key: string): V | undefined {
    this.moveTo(version);
    return this.entries.get(key);
  }

  /** Keeps `value` for `key` at `version` (when it fits), evicting the least recently used beyond the bounds. */
  set(version: number, key: string, value: V, weight: number): void {
    this.moveTo(version);
    this.entries.set(key, value, weight);
  }

  /** Another version: what is held was computed from a state that is gone. */
  private moveTo(version: number): void {
    if (version === this.version) return;
    this.version = version;
    this.entries.clear();
  }
}
