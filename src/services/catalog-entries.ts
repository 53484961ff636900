import type { SqlRunner } from '../db/driver-sql.js';
import { catalogEntries } from '../db/list-sql.js';
import type { CatalogAppRow, CatalogListRow } from '../db/models.js';
import { BoundedLru } from '../platform/bounded-lru.js';

/**
 * Entries kept parsed at most (one per app, its latest revision): a thousand of the fixture
 * catalogue's entries (~6 KB of JSON each) take 10.6 MB of heap once parsed.
 */
const MAX_KEPT = 1_000;

/**
 * The entries of catalogue pages, kept parsed by app id and `entryRevision`, which the database
 * moves whenever an entry changes, whoever writes it (a trigger, migration 0008): a page reads
 * only the entries it does not hold at the revision its rows carry. Real entries run to ~6 KB of
 * JSON (the fixture catalogue's average), so each page read and parsed ~120 KB. Measured (two
 * servers pinned to one core, alternating 4 s loads of `catalog(first: 20)`, SQLite): with the
 * fixture catalogue 831–988 → 424–480 µs of server CPU per request (with `icon` and
 * `title(locale:)` asked: 792–936 → 351–471); with the bundled demo one (~1.1 KB entries)
 * 511–570 → 409–454.
 *
 * Entries kept are shared by every request: they are frozen, so that nothing can change one for
 * the others. A database restored under a running server could hold other entries under the same
 * (id, revision): restart the servers after a restore.
 */
export class CatalogEntries {
  /** By app id. */
  private readonly kept: BoundedLru<number, { revision: number; entry: CatalogAppRow['entry'] }>;

  constructor(
    private readonly sql: SqlRunner,
    private readonly maxKept = MAX_KEPT,
  ) {
    this.kept = new BoundedLru({ maxEntries: maxKept });
  }

  /** Apps kept now (for tests). */
  get size(): number {
    return this.kept.size;
  }

  /**
   * The rows, given their entries. An entry read here may be newer than its row (written since
   * the page was read): the newer is shown. A row deleted meanwhile gets an empty entry.
   */
  async attach<Row extends CatalogListRow>(rows: Row[]): Promise<(Row & Pick<CatalogAppRow, 'entry'>)[]> {
    // Taken before reading the others: keeping those may push out the ones this page uses.
    const found = new Map<number, CatalogAppRow['entry']>();
    const missing: number[] = [];
    for (const row of rows) {
      // Only an entry at the row's revision counts as used (and moves last: least recently used first out).
      const kept = this.kept.peek(row.id)?.revision === row.entryRevision ? this.kept.get(row.id) : undefined;
      if (kept) found.set(row.id, kept.entry);
      else missing.push(row.id);
    }
    // A read of more than half of what is kept (installed apps' entries for a large runtime
    // snapshot) is used as it is: keeping it would only push out what pages use.
    const keep = missing.length <= this.maxKept / 2;
    if (missing.length > 0) {
      for (const { id, entryRevision, entry } of await catalogEntries(this.sql, missing)) {
        found.set(id, keep ? this.keep(id, Number(entryRevision), entry) : entry);
      }
    }
    // Given to the rows themselves (fresh from the database, this call's own): a copy of
    // each cost more than finding its entry.
    const withEntries = rows as (Row & { entry?: CatalogAppRow['entry'] })[];
    for (const row of withEntries) row.entry = found.get(row.id) ?? {};
    return withEntries as (Row & Pick<CatalogAppRow, 'entry'>)[];
  }

  private keep(id: number, revision: number, entry: CatalogAppRow['entry']): CatalogAppRow['entry'] {
    const frozen = deepFreeze(entry);
    this.kept.set(id, { revision, entry: frozen });
    return frozen;
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
