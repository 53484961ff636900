import { PRISMA_PARAMETERS, readInChunks } from './chunks.js';
import type { Db } from './client.js';

/**
 * The statements of the catalogue's search refold (services/search-refold.ts): reads of the
 * stored search text, and its compare-and-set rewrite, one row per statement.
 */

/** A catalogue row's stored search text, as read before deciding whether it needs folding again. */
export interface StoredSearchText {
  id: number;
  searchText: string;
}

/** Up to `limit` rows after id `after`, in id order: a scan reads each row once however the table changes meanwhile. */
export function searchTextsAfter(db: Db, after: number, limit: number): Promise<StoredSearchText[]> {
  return db.catalogApp.findMany({
    where: { id: { gt: after } },
    orderBy: { id: 'asc' },
    take: limit,
    select: { id: true, searchText: true },
  });
}

/** The rows of `appIds` of a source (those of a catalogue change). */
export function searchTextsOf(db: Db, sourceId: string, appIds: readonly string[]): Promise<StoredSearchText[]> {
  return readInChunks(appIds, PRISMA_PARAMETERS - 1, (chunk) =>
    db.catalogApp.findMany({
      where: { sourceId, appId: { in: [...chunk] } },
      orderBy: { id: 'asc' },
      select: { id: true, searchText: true },
    }),
  );
}

/** What a row's search text is computed from: its name and its stored entry (null: the row is gone). */
export function searchSourceOf(db: Db, id: number): Promise<{ name: string; entry: unknown } | null> {
  return db.catalogApp.findUnique({ where: { id }, select: { name: true, entry: true } });
}

/**
 * Sets a row's search text to `next` only while it still holds `read`, the text the refold read:
 * a writer that changed the row since (a sync of any release, with a newer entry) keeps what it
 * wrote. Raw, not `update`: Prisma's would move updatedAt, and the app itself did not change.
 * Returns whether the row was rewritten.
 */
export async function replaceSearchText(db: Db, id: number, read: string, next: string): Promise<boolean> {
  const count = await db.$executeRaw`
    UPDATE "CatalogApp" SET "searchText" = ${next} WHERE "id" = ${id} AND "searchText" = ${read}`;
  return count > 0;
}
