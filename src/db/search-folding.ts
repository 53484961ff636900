import { entrySearchText } from '../domain/catalogue-entry.js';
import { SEARCH_FOLDING } from '../domain/search-fold.js';
import type { Db } from './client.js';

/**
 * Folds again the search text of catalogue rows stored with an older folding (`searchFolding`
 * below SEARCH_FOLDING; migration 0022 says why there is such a column). A sync rewrites only
 * the entries whose summary changed, so without this step an unchanged app kept the old folding
 * for good and "cafe" never found its "Café".
 *
 * The text is computed again as readCatalogueEntry computed it (entrySearchText): the row's name
 * and its stored entry's title and description, whole. Not from the `title` and `description`
 * columns, which hold copies clipped at 1,000 characters, while the search text covers up to
 * 3,000. Every writer (sync, upload, demo data) stores the entry it read the texts from, so the
 * result is what a write today would store.
 *
 * Several instances starting at once may all run it: each row's UPDATE applies only while the
 * row is still below SEARCH_FOLDING, so a row rewritten meanwhile by a sync (whose text is
 * already current, and perhaps of a newer entry) is left as the sync wrote it, and two instances
 * folding the same row write the same text. Rows are read in id order from after the last one
 * read, so a row one instance skipped is not read again, and the step ends. Once every row is
 * current, a start costs one query finding none (a scan of the table: no index, as the catalogue
 * is a few thousand rows and the query runs once per start). Not covered: during a rolling
 * upgrade, an instance of the release before, still running, rewrites a changed app with the old
 * folding and leaves the row's `searchFolding` as it was; that app is found the new way again
 * once its entry next changes.
 */

/** Rows read, folded and written per transaction: entries are a few kB each. */
const ROWS_PER_BATCH = 200;

/** Folds the rows stored with an older folding; returns how many this call rewrote. */
export async function refoldCatalogueSearch(db: Db, batch = ROWS_PER_BATCH): Promise<number> {
  let refolded = 0;
  let after = 0;
  for (;;) {
    const rows = await db.catalogApp.findMany({
      where: { searchFolding: { lt: SEARCH_FOLDING }, id: { gt: after } },
      orderBy: { id: 'asc' },
      take: batch,
      select: { id: true, name: true, entry: true },
    });
    if (rows.length === 0) return refolded;
    after = rows[rows.length - 1]?.id ?? after;
    // Raw, not `update`: Prisma's would move updatedAt, and the app itself did not change.
    const counts = await db.$transaction(
      rows.map(
        (row) => db.$executeRaw`
          UPDATE "CatalogApp" SET "searchText" = ${entrySearchText(row.name, row.entry)}, "searchFolding" = ${SEARCH_FOLDING}
          WHERE "id" = ${row.id} AND "searchFolding" < ${SEARCH_FOLDING}`,
      ),
    );
    refolded += counts.reduce((sum, count) => sum + count, 0);
  }
}
