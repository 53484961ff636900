/** Rows whose last writer in the cluster log is remembered. */
const KEPT = 100_000;

/**
 * Cluster mode: two instances may read one row one after the other and append what they read the
 * other way round, so the log would end on the older read. This remembers, per row, whether the
 * log's last entry for it was this instance's; when this instance's rows come back right after
 * another instance's entry for the same row, the collector reads them again, and if they moved
 * meanwhile, the newer read is appended after both and every instance ends on it. (With a single
 * writer of a row nothing is read twice.)
 */
export class LastWriters {
  /** By row key, in the order last touched: whether the last entry was this instance's. */
  private readonly own = new Map<string, boolean>();

  /** Notes an entry's rows; returns those of this instance's entry to read again. */
  note(rows: string[], own: boolean): string[] {
    const again = own ? rows.filter((row) => this.own.get(row) === false) : [];
    for (const row of rows) {
      this.own.delete(row); // to the end of the insertion order
      this.own.set(row, own);
    }
    for (const row of this.own.keys()) {
      if (this.own.size <= KEPT) break;
      this.own.delete(row);
    }
    return again;
  }
}
