import type { CompiledFilter, Lookup } from '../domain/filters.js';

/**
 * Rows held by key (the runtime store's apps, its tasks) with secondary indexes on the columns
 * filters name, so a filtered read costs what its result costs instead of a scan of the fleet.
 *
 * Order: rows come back in "store order", the order of a Map's insertion (a replaced row keeps
 * its place, a removed and re-added one goes last), as they did when the store was a plain Map.
 * Each key gets an ordinal when it is added, and a read from the indexes sorts its matches by it.
 * The other way, buckets kept in store order, cannot survive a row that moves between buckets (an
 * app whose stage changes lands last in its new bucket). Matches of one bucket of a key column
 * (user, source, app name) are already in order, so only moved rows or several buckets cost a sort.
 * That sort is most of a read of moved rows: 6.4k FAILED apps out of order, 1.1–2.0 ms sorted
 * against 0.2–0.3 ms not (a native sort of packed ordinals in a Float64Array measured the same).
 *
 * Measured in-process at 100k apps (50 users × 2k apps, 4 sources, 3.5 % FAILED, 2.1k tasks),
 * before (a scan) → after, interleaved in one process on a shared 2-core machine (load average 4–7;
 * a run at load 12 gave 2–4× these times and similar ratios), and after ÷ JSON.stringify of the
 * same result: snapshot by user (2k apps) 23 → 1.15 ms (0.15); by app name (50 apps) 18 → 0.25 ms
 * (1.5); by source (25k) 31.5 → 23.6 ms (0.22); stage FAILED 42 → 9.2 ms (0.39); health 54 → 35 ms
 * (0.23); task status (every app matches) 45 → 39 ms (0.07); user + stage FAILED (56 apps, the
 * user's 2k matched) 17.6 → 0.78 ms (3.2); a filter matching nothing 16.4 → 0.017 ms; everything
 * 44 → 35 ms. Cost per change (CPU time): putApp 13.0 → 14.0 µs, putTask 7.6 → 9.4 µs (five Set
 * moves each); heap of the store 137 → 155 MB.
 */

/** A row held, with the position its key took when it was added: what store order sorts by. */
interface Slot<Row> {
  row: Row;
  readonly ordinal: number;
}

/** A column to index: a stored one, or one of `row.derived` (named as filters name them). */
export interface IndexedColumn {
  readonly column: string;
  readonly derived?: boolean;
}

interface Index<Row> {
  readonly read: (row: Row) => unknown;
  /** The slots per value of the column; a value with no row left has no bucket. */
  readonly buckets: Map<unknown, Set<Slot<Row>>>;
}

const indexName = (column: string, derived: boolean | undefined) => (derived ? `derived.${column}` : column);

function reader<Row>({ column, derived }: IndexedColumn): (row: Row) => unknown {
  if (derived) return (row) => (row as { derived: Record<string, unknown> }).derived[column];
  return (row) => (row as Record<string, unknown>)[column];
}

function inStoreOrder<Row>(slots: readonly Slot<Row>[]): boolean {
  for (let i = 1; i < slots.length; i += 1) {
    if ((slots[i - 1] as Slot<Row>).ordinal > (slots[i] as Slot<Row>).ordinal) return false;
  }
  return true;
}

export class IndexedRows<Row> {
  private readonly slots = new Map<string, Slot<Row>>();
  /** An array, not a Map: every put walks it, and an array's loop allocates no iterator. */
  private readonly indexes: Index<Row>[];
  private readonly indexByName = new Map<string, Index<Row>>();
  private nextOrdinal = 0;

  constructor(columns: readonly IndexedColumn[]) {
    this.indexes = [];
    for (const column of columns) {
      const index: Index<Row> = { read: reader(column), buckets: new Map() };
      this.indexes.push(index);
      this.indexByName.set(indexName(column.column, column.derived), index);
    }
  }

  get size(): number {
    return this.slots.size;
  }

  /** Buckets held over every index: values no row holds any more must leave none behind. */
  get bucketCount(): number {
    let count = 0;
    for (const index of this.indexes) count += index.buckets.size;
    return count;
  }

  get(key: string): Row | undefined {
    return this.slots.get(key)?.row;
  }

  /** Adds the row, or replaces the one under its key (which keeps its place). Returns the one replaced. */
  set(key: string, row: Row): Row | undefined {
    const slot = this.slots.get(key);
    if (!slot) {
      const added: Slot<Row> = { row, ordinal: this.nextOrdinal++ };
      this.slots.set(key, added);
      for (const index of this.indexes) addTo(index.buckets, index.read(row), added);
      return undefined;
    }
    const before = slot.row;
    for (const index of this.indexes) {
      const was = index.read(before);
      const now = index.read(row);
      if (was === now) continue;
      removeFrom(index.buckets, was, slot);
      addTo(index.buckets, now, slot);
    }
    slot.row = row;
    return before;
  }

  /** Removes the row under the key; returns it. */
  delete(key: string): Row | undefined {
    const slot = this.slots.get(key);
    if (!slot) return undefined;
    this.slots.delete(key);
    for (const index of this.indexes) removeFrom(index.buckets, index.read(slot.row), slot);
    return slot.row;
  }

  /** Every row, in store order. */
  all(): Row[] {
    const rows: Row[] = new Array(this.slots.size);
    let i = 0;
    for (const slot of this.slots.values()) rows[i++] = slot.row;
    return rows;
  }

  /**
   * The rows the filter matches: in store order, or in any order (`ordered` false) for what only
   * counts them. The predicate runs over the smallest set an index gives for one of the filter's
   * conditions (a oneOf: its buckets together); over every row when no condition is indexed.
   */
  select(filter: CompiledFilter<Row>, ordered = true): Row[] {
    if (filter.matchesAll) return this.all();
    const candidates = this.candidates(filter.lookups);
    const matched: Slot<Row>[] = [];
    for (const bucket of candidates ?? [this.slots.values()]) {
      for (const slot of bucket) if (filter.matches(slot.row)) matched.push(slot);
    }
    // Buckets of a column a row never changes (a part of its key) are already in store order;
    // several buckets, or one a row moved into, are sorted (runs already in order cost a pass).
    if (ordered && candidates && !inStoreOrder(matched)) matched.sort((a, b) => a.ordinal - b.ordinal);
    const rows: Row[] = new Array(matched.length);
    for (let i = 0; i < matched.length; i += 1) rows[i] = (matched[i] as Slot<Row>).row;
    return rows;
  }

  /** The buckets of the most selective indexed condition; null when none of them is indexed. */
  private candidates(lookups: readonly Lookup[]): Iterable<Slot<Row>>[] | null {
    let best: Set<Slot<Row>>[] | null = null;
    let bestSize = Number.POSITIVE_INFINITY;
    for (const lookup of lookups) {
      const index = this.indexByName.get(indexName(lookup.column, lookup.derived));
      if (!index) continue;
      const buckets: Set<Slot<Row>>[] = [];
      let size = 0;
      for (const value of lookup.values) {
        const bucket = index.buckets.get(value);
        if (!bucket) continue;
        buckets.push(bucket);
        size += bucket.size;
      }
      if (size < bestSize) {
        best = buckets;
        bestSize = size;
      }
      if (size === 0) break;
    }
    return best;
  }
}

function addTo<Row>(buckets: Map<unknown, Set<Slot<Row>>>, value: unknown, slot: Slot<Row>): void {
  const bucket = buckets.get(value);
  if (bucket) bucket.add(slot);
  else buckets.set(value, new Set<Slot<Row>>().add(slot));
}

function removeFrom<Row>(buckets: Map<unknown, Set<Slot<Row>>>, value: unknown, slot: Slot<Row>): void {
  const bucket = buckets.get(value);
  if (!bucket) return;
  bucket.delete(slot);
  // Values seen once (a user gone, an app name uninstalled everywhere) hold no memory.
  if (bucket.size === 0) buckets.delete(value);
}
