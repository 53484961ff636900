import { join, sql } from '../generated/prisma-sqlite/internal/prismaNamespace.js';
import type { SqlClient } from './hot-path-sql.js';
import type { MarketSourceRow } from './models.js';

/**
 * Hand-written SQL for the Syncer's bulk writes and its every-interval status, under the rules of
 * hot-path-sql.ts (one text for both providers, rows read back exactly as Prisma writes them;
 * test/catalogue-sync.test.ts reads them through Prisma on both). Measured with the `catalogue`
 * benchmark, 500 apps on SQLite: Prisma's `createMany` spent ~1 s preparing the statement (its
 * query compiler), the raw multi-row INSERTs below a few ms each; an unchanged-hash sync spent
 * ~2.5 ms of CPU reading the source row and ~1.7 ms writing its status through the query API.
 */

/**
 * Rows per INSERT: SQLite's historical limit of 999 parameters per statement (builds of the
 * driver may allow more; this holds everywhere), over 15 columns.
 */
const APPS_PER_INSERT = 66;
/** Two parameters per category row. */
const CATEGORIES_PER_INSERT = 499;

/** A catalogue row as the Syncer inserts it (JSON columns already as text). */
export interface NewCatalogApp {
  appId: string;
  name: string;
  version: string;
  versions: string;
  cfgType: string;
  title: string | null;
  description: string | null;
  searchText: string;
  paid: boolean;
  price: string | null;
  entry: string;
  summaryHash: string | null;
}

/** Inserts new catalogue rows of a source, in chunks; returns their ids by app id. */
export async function insertCatalogApps(
  db: SqlClient,
  sourceId: string,
  rows: readonly NewCatalogApp[],
  now: Date,
): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  for (let start = 0; start < rows.length; start += APPS_PER_INSERT) {
    const values = rows.slice(start, start + APPS_PER_INSERT).map(
      (row) =>
        sql`(${sourceId}, ${row.appId}, ${row.name}, ${row.version}, ${row.versions}, ${row.cfgType}, ${row.title},
            ${row.description}, ${row.searchText}, ${row.paid}, ${row.price}, ${row.entry}, ${row.summaryHash}, ${now}, ${now})`,
    );
    const inserted = await db.$queryRaw<{ id: number; appId: string }[]>`
      INSERT INTO "CatalogApp" ("sourceId", "appId", "name", "version", "versions", "cfgType", "title", "description",
        "searchText", "paid", "price", "entry", "summaryHash", "createdAt", "updatedAt")
      VALUES ${join(values)}
      RETURNING "id", "appId"`;
    for (const row of inserted) ids.set(row.appId, Number(row.id));
  }
  return ids;
}

/** Inserts category rows, in chunks. */
export async function insertCategories(
  db: SqlClient,
  categories: readonly { catalogAppId: number; category: string }[],
): Promise<void> {
  for (let start = 0; start < categories.length; start += CATEGORIES_PER_INSERT) {
    const values = categories
      .slice(start, start + CATEGORIES_PER_INSERT)
      .map((row) => sql`(${row.catalogAppId}, ${row.category})`);
    await db.$executeRaw`INSERT INTO "CatalogAppCategory" ("catalogAppId", "category") VALUES ${join(values)}`;
  }
}

/** One market source, as `marketSource.findUnique` returns it. */
export async function findMarketSource(db: SqlClient, sourceId: string): Promise<MarketSourceRow | null> {
  const rows = await db.$queryRaw<MarketSourceRow[]>`SELECT * FROM "MarketSource" WHERE "sourceId" = ${sourceId}`;
  return rows[0] ?? null;
}

/** A source's sync status after a success (the catalogue hash too when the sync was complete). */
export interface SyncSuccess {
  catalogHash: string | null;
  at: Date;
  error: string | null;
  durationMs: number;
  nextSyncAt: Date;
}

/** Records a successful sync; a null `catalogHash` keeps the stored one. */
export function recordSyncSuccess(db: SqlClient, sourceId: string, status: SyncSuccess) {
  return db.$executeRaw`
    UPDATE "MarketSource" SET "catalogHash" = COALESCE(${status.catalogHash}, "catalogHash"), "syncedAt" = ${status.at},
      "syncAttemptAt" = ${status.at}, "syncError" = ${status.error}, "syncFailures" = 0,
      "syncDurationMs" = ${status.durationMs}, "nextSyncAt" = ${status.nextSyncAt}, "updatedAt" = ${status.at}
    WHERE "sourceId" = ${sourceId}`;
}

/**
 * Records a sync that found the source's hash unchanged, only if the row still has that hash and
 * that base URL (the Syncer read it in an earlier sync; another instance may have synced since,
 * or a restart pointed it elsewhere). One statement instead of a read and a write; returns the
 * rows written (0: read the row again and sync from it).
 */
export function recordUnchangedSync(
  db: SqlClient,
  source: { sourceId: string; baseUrl: string | null; catalogHash: string },
  status: Omit<SyncSuccess, 'catalogHash' | 'error'>,
) {
  return db.$executeRaw`
    UPDATE "MarketSource" SET "syncedAt" = ${status.at}, "syncAttemptAt" = ${status.at}, "syncError" = NULL,
      "syncFailures" = 0, "syncDurationMs" = ${status.durationMs}, "nextSyncAt" = ${status.nextSyncAt},
      "updatedAt" = ${status.at}
    WHERE "sourceId" = ${source.sourceId} AND "catalogHash" = ${source.catalogHash}
      AND COALESCE("baseUrl", '') = ${source.baseUrl ?? ''}`;
}
