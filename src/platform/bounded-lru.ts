/**
 * A map bounded twice, least recently used out first: by how many entries it holds and by their
 * total weight (what the caller says one costs, e.g. the length of a text), since the keys of the
 * caches built on it are often the clients' to choose (a document, a header, a filter).
 */
export interface BoundedLruOptions {
  /** Entries held at most; the least recently used leaves first. */
  maxEntries: number;
  /** Total weight held at most; a value heavier than this alone is not kept. Unbounded when left out. */
  maxWeight?: number;
}

interface Entry<V> {
  value: V;
  weight: number;
}

export class BoundedLru<K, V> {
  /** In least-recently-used-first order: a hit moves its entry last. */
  private readonly entries = new Map<K, Entry<V>>();
  private weight = 0;
  private readonly maxEntries: number;
  private readonly maxWeight: number;

  constructor({ maxEntries, maxWeight = Number.POSITIVE_INFINITY }: BoundedLruOptions) {
    this.maxEntries = maxEntries;
    this.maxWeight = maxWeight;
  }

  /** Entries held now. */
  get size(): number {
    return this.entries.size;
  }

  /** Total weight held now. */
  get totalWeight(): number {
    return this.weight;
  }

  /** The value held for `key`, which becomes the most recently used. */
  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /** The value held for `key`, leaving the order as it is. */
  peek(key: K): V | undefined {
    return this.entries.get(key)?.value;
  }

  /** Keeps `value` for `key` (when it fits) as the most recently used, evicting beyond the bounds. */
  set(key: K, value: V, weight = 1): void {
    if (weight > this.maxWeight || this.maxEntries < 1) return;
    const replaced = this.entries.get(key);
    if (replaced) {
      this.entries.delete(key);
      this.weight -= replaced.weight;
    }
    this.entries.set(key, { value, weight });
    this.weight += weight;
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.weight <= this.maxWeight) break;
      this.entries.delete(oldest); // deleting the entry being visited is safe while iterating
      this.weight -= entry.weight;
    }
  }

  /** Lets the entry for `key` go, if held. */
  delete(key: K): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.weight -= entry.weight;
  }

  clear(): void {
    this.entries.clear();
    this.weight = 0;
  }
}
