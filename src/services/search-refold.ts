import type { Db } from '../db/client.js';
import {
  replaceSearchText,
  type StoredSearchText,
  searchSourceOf,
  searchTextsAfter,
  searchTextsOf,
} from '../db/search-refold-sql.js';
import { entrySearchText } from '../domain/catalogue-entry.js';
import { isSearchFolded } from '../domain/search-fold.js';
import type { CatalogueChanged, EventBus } from '../events/change-feed.js';
import type { Logger } from '../platform/logger.js';

/** Rows whose search text one read of the scan takes: ids and texts only, a few kB per row at most. */
const SCAN_BATCH = 1000;

/** What one run (the scan, or one catalogue change) did, for its log line. */
interface Tally {
  refolded: number;
  failed: number;
}

/**
 * Folds again the catalogue search text that a release before the current folding stored (it
 * only lower-cased): search folds what is typed (domain/search-fold.ts), so "cafe" would miss such
 * a row's "Café" for good, as a sync rewrites only the apps that changed. A row needs it when its
 * text is not a fixed point of searchFold; an ASCII row reads the same either way.
 *
 * In the background, never waited for by the start (search finds such rows' accented words once
 * it is done): a scan of the whole table at start, and, as long as the server runs, the apps of
 * each catalogue change any instance announces, an older release's included (cluster mode), so
 * the rows an older instance writes during a rolling upgrade, or a rollback, are repaired too.
 *
 * Each row is computed again as a sync computes it (the row's name and its stored entry's whole
 * title and description; the columns hold clipped copies) and written by a compare-and-set of its
 * own (db/search-refold-sql.ts): no transaction over several rows (so no deadlock), and a row that
 * another writer changed between the read and the write keeps that writer's text (it is folded
 * again later if that text is an old one). So several instances may refold at once: each write
 * either sets the text every instance computes from that row, or finds the row changed and does
 * nothing. A failing statement is logged once per run and the run goes on. A stop ends the runs
 * between two rows.
 */
export class SearchRefold {
  private readonly stopping = new AbortController();
  private readonly runs = new Set<Promise<void>>();
  private stopListening: (() => void) | null = null;

  constructor(
    private readonly db: Db,
    private readonly bus: EventBus,
    private readonly logger: Logger,
    private readonly batch = SCAN_BATCH,
  ) {}

  /** Starts the scan and the following of catalogue changes, waiting for neither (once; never after a stop). */
  start(): void {
    if (this.stopping.signal.aborted || this.stopListening) return;
    this.stopListening = this.bus.listen(
      'catalogue:changed',
      (change) => this.track(this.refoldChange(change)),
      (error) => this.logger.warn({ err: error }, 'a catalogue change could not be refolded'),
    );
    this.track(this.run('scan', (tally) => this.scan(tally)));
  }

  /** Ends the runs between two rows and waits for the statements in flight (at the server's stop). */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.stopListening?.();
    await Promise.all(this.runs);
  }

  private track(run: Promise<void>): void {
    this.runs.add(run);
    void run.finally(() => this.runs.delete(run));
  }

  private refoldChange({ sourceId, added, updated }: CatalogueChanged): Promise<void> {
    if (added.length + updated.length === 0) return Promise.resolve();
    return this.run(`change of ${sourceId}`, async (tally) => {
      const rows = await searchTextsOf(this.db, sourceId, [...added, ...updated]);
      await this.refoldRows(rows, tally);
    });
  }

  /** Reads the table in id order, batch after batch, until its end or a stop. */
  private async scan(tally: Tally): Promise<void> {
    let after = 0;
    while (!this.stopping.signal.aborted) {
      const rows = await searchTextsAfter(this.db, after, this.batch);
      const last = rows.at(-1);
      if (!last) return;
      after = last.id;
      await this.refoldRows(rows, tally);
    }
  }

  /** One run, never rejecting: its outcome in one log line when it rewrote or failed anything. */
  private async run(what: string, work: (tally: Tally) => Promise<void>): Promise<void> {
    const tally: Tally = { refolded: 0, failed: 0 };
    try {
      await work(tally);
    } catch (error) {
      this.logger.warn({ err: error, run: what }, "the catalogue's search text could not be read to fold it again");
    }
    if (tally.refolded === 0 && tally.failed === 0) return;
    const stopped = this.stopping.signal.aborted;
    this.logger.info({ run: what, ...tally, stopped }, "folded the catalogue's stored search text the current way");
  }

  private async refoldRows(rows: readonly StoredSearchText[], tally: Tally): Promise<void> {
    for (const row of rows) {
      if (this.stopping.signal.aborted) return;
      if (isSearchFolded(row.searchText)) continue;
      try {
        if (await this.refoldRow(row)) tally.refolded += 1;
      } catch (error) {
        tally.failed += 1;
        if (tally.failed === 1) this.logger.warn({ err: error, id: row.id }, 'a catalogue row could not be refolded');
      }
    }
  }

  private async refoldRow({ id, searchText }: StoredSearchText): Promise<boolean> {
    const source = await searchSourceOf(this.db, id);
    if (!source) return false;
    const next = entrySearchText(source.name, source.entry);
    return next !== searchText && (await replaceSearchText(this.db, id, searchText, next));
  }
}
