import { join, type Sql, sql } from '../generated/prisma-sqlite/internal/prismaNamespace.js';
import { chunks } from './chunks.js';
import type { SqlRunner } from './driver-sql.js';
import type { MarketSourceRow } from './models.js';

/**
 * Hand-written SQL for the Syncer: its write transaction, its read of the stored catalogue and
 * its every-interval status, under the rules of hot-path-sql.ts (one text for both providers,
 * rows written and read exactly as Prisma writes and reads them; test/catalogue-sync.test.ts and
 * test/catalogue-writes.test.ts read them back through Prisma on both). Why not the query API:
 * measured with the `catalogue` benchmark, 500 apps on SQLite, Prisma's `createMany` spent ~1 s
 * preparing the statement (its query compiler), the raw multi-row INSERTs a few ms each; an
 * unchanged-hash sync spent ~2.5 ms of CPU reading the source row and ~1.7 ms writing its status.
 * Why a SqlRunner (the driver-level one of driver-sql.ts, in the Syncer): through Prisma's
 * `$queryRaw` each statement still went through Prisma's request pipeline and the adapter's
 * `prepare`: writing 2,000 new bench apps on SQLite took ~850 ms that way and ~220 ms on the
 * driver (of which ~80 ms went to serialising their JSON again, until the reading's own text was
 * bound instead: see jsonText in catalogue-entry.ts), against ~130 ms for better-sqlite3 inserting the
 * same rows with one prepared INSERT each. Changed rows, 5.3 s as one Prisma `update` each, take
 * ~210 ms as the multi-row upsert of updateCatalogApps.
 */

/**
 * Rows per INSERT: SQLite's historical limit of 999 parameters per statement (builds of the
 * driver may allow more; this holds everywhere), over 15 columns.
 */
const APPS_PER_INSERT = 66;
/** Two parameters per category row. */
const CATEGORIES_PER_INSERT = 499;
/** Ids per `IN (…)` list, with a parameter or two beside them: within the same limit. */
const IDS_PER_STATEMENT = 500;

/**
 * Gathers the catalogue table's statistics for the query planner, after a sync changed it. Why:
 * a `catalog` page's usual condition is "one of the visible sources" (the active remote and the
 * local ones), which matches nearly every row; without statistics SQLite took it for selective,
 * read every matching row through the (sourceId, name) index and sorted them all for the page
 * (1.4 ms per page of 20 with 2,000 apps), where walking the table in id order stops after the
 * page (58–93 µs, the plan SQLite picks once it knows the table). PostgreSQL's autovacuum gathers
 * them too, later; a sync's change is the moment they go stale.
 */
export function refreshCatalogueStatistics(db: SqlRunner): Promise<number> {
  return db.$executeRaw`ANALYZE "CatalogApp"`;
}

/** A catalogue row as the Syncer writes it (JSON columns already as text, a free app's price NULL). */
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

function appValues(sourceId: string, rows: readonly NewCatalogApp[], now: Date): Sql {
  return join(
    rows.map(
      (row) =>
        sql`(${sourceId}, ${row.appId}, ${row.name}, ${row.version}, ${row.versions}, ${row.cfgType}, ${row.title},
            ${row.description}, ${row.searchText}, ${row.paid}, ${row.price}, ${row.entry}, ${row.summaryHash}, ${now}, ${now})`,
    ),
  );
}

const APP_COLUMNS = sql`("sourceId", "appId", "name", "version", "versions", "cfgType", "title", "description",
  "searchText", "paid", "price", "entry", "summaryHash", "createdAt", "updatedAt")`;

/** Inserts new catalogue rows of a source, in chunks; returns their ids by app id. */
export async function insertCatalogApps(
  db: SqlRunner,
  sourceId: string,
  rows: readonly NewCatalogApp[],
  now: Date,
): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  for (const chunk of chunks(rows, APPS_PER_INSERT)) {
    const inserted = await db.$queryRaw<{ id: number; appId: string }[]>`
      INSERT INTO "CatalogApp" ${APP_COLUMNS} VALUES ${appValues(sourceId, chunk, now)}
      RETURNING "id", "appId"`;
    for (const row of inserted) ids.set(row.appId, Number(row.id));
  }
  return ids;
}

/**
 * Rewrites stored rows of a source (matched by app id, every one known to exist) in chunks:
 * a multi-row INSERT whose every row conflicts, so each updates its row in place, keeping its id
 * and createdAt, as one `update` per row would (on PostgreSQL one round trip per chunk instead of
 * one per app). The names the rows take must be free (see renameToPlaceholders): a conflict on
 * the name is an error, as it is for an update. On PostgreSQL each row still draws an id from the
 * sequence and leaves it unused: gaps in new ids, nothing more.
 */
export async function updateCatalogApps(
  db: SqlRunner,
  sourceId: string,
  rows: readonly NewCatalogApp[],
  now: Date,
): Promise<void> {
  for (const chunk of chunks(rows, APPS_PER_INSERT)) {
    await db.$executeRaw`
      INSERT INTO "CatalogApp" ${APP_COLUMNS} VALUES ${appValues(sourceId, chunk, now)}
      ON CONFLICT ("sourceId", "appId") DO UPDATE SET "name" = excluded."name", "version" = excluded."version",
        "versions" = excluded."versions", "cfgType" = excluded."cfgType", "title" = excluded."title",
        "description" = excluded."description", "searchText" = excluded."searchText", "paid" = excluded."paid",
        "price" = excluded."price", "entry" = excluded."entry", "summaryHash" = excluded."summaryHash",
        "updatedAt" = excluded."updatedAt"`;
  }
}

/** The stored rows of a source that a sync matches its entries against. */
export function findCatalogAppIds(db: SqlRunner, sourceId: string) {
  return db.$queryRaw<{ id: number; appId: string; name: string; summaryHash: string | null }[]>`
    SELECT "id", "appId", "name", "summaryHash" FROM "CatalogApp" WHERE "sourceId" = ${sourceId}`;
}

/** What the Syncer compares a source's index with: each stored app's name and summary fingerprint. */
export function findCatalogSummaries(db: SqlRunner, sourceId: string) {
  return db.$queryRaw<{ appId: string; name: string; summaryHash: string | null }[]>`
    SELECT "appId", "name", "summaryHash" FROM "CatalogApp" WHERE "sourceId" = ${sourceId}`;
}

/**
 * Gives rows a name no entry can have (`~appId`: app names start with a letter or a digit), so
 * that apps swapping names never collide on the unique name while their rows are rewritten.
 */
export async function renameToPlaceholders(db: SqlRunner, ids: readonly number[], now: Date): Promise<void> {
  for (const chunk of chunks(ids, IDS_PER_STATEMENT)) {
    await db.$executeRaw`
      UPDATE "CatalogApp" SET "name" = '~' || "appId", "updatedAt" = ${now} WHERE "id" IN (${join(chunk)})`;
  }
}

/**
 * Removes apps of a source with their categories. Categories first: SQLite enforces the cascade
 * only with its foreign keys switched on.
 */
export async function deleteCatalogApps(db: SqlRunner, sourceId: string, appIds: readonly string[]): Promise<void> {
  for (const chunk of chunks(appIds, IDS_PER_STATEMENT)) {
    await db.$executeRaw`
      DELETE FROM "CatalogAppCategory" WHERE "catalogAppId" IN (
        SELECT "id" FROM "CatalogApp" WHERE "sourceId" = ${sourceId} AND "appId" IN (${join(chunk)}))`;
    await db.$executeRaw`DELETE FROM "CatalogApp" WHERE "sourceId" = ${sourceId} AND "appId" IN (${join(chunk)})`;
  }
}

/** Removes the categories of rows (by row id), in chunks. */
export async function deleteCategoriesOf(db: SqlRunner, ids: readonly number[]): Promise<void> {
  for (const chunk of chunks(ids, IDS_PER_STATEMENT)) {
    await db.$executeRaw`DELETE FROM "CatalogAppCategory" WHERE "catalogAppId" IN (${join(chunk)})`;
  }
}

/** Inserts category rows, in chunks. */
export async function insertCategories(
  db: SqlRunner,
  categories: readonly { catalogAppId: number; category: string }[],
): Promise<void> {
  for (const chunk of chunks(categories, CATEGORIES_PER_INSERT)) {
    const values = chunk.map((row) => sql`(${row.catalogAppId}, ${row.category})`);
    await db.$executeRaw`INSERT INTO "CatalogAppCategory" ("catalogAppId", "category") VALUES ${join(values)}`;
  }
}

/** One market source, as `marketSource.findUnique` returns it. */
export async function findMarketSource(db: SqlRunner, sourceId: string): Promise<MarketSourceRow | null> {
  const rows = await db.$queryRaw<MarketSourceRow[]>`SELECT * FROM "MarketSource" WHERE "sourceId" = ${sourceId}`;
  return rows[0] ?? null;
}

/**
 * Starts a sync of the source's row (by row id): takes the row's next sync ticket, which orders
 * this sync after every sync of the row started before it, on any instance. Returns the ticket,
 * or null when the row is gone.
 */
export async function takeSyncTicket(db: SqlRunner, sourceRowId: number): Promise<number | null> {
  const rows = await db.$queryRaw<{ syncTicket: number }[]>`
    UPDATE "MarketSource" SET "syncTicket" = "syncTicket" + 1 WHERE "id" = ${sourceRowId} RETURNING "syncTicket"`;
  return rows[0] ? Number(rows[0].syncTicket) : null;
}

/**
 * The ticket of the sync whose outcome the row holds (null when the row is gone): a write that
 * matched no row tells by it whether the row went or a later sync's outcome is stored.
 */
export async function findSyncOutcomeTicket(db: SqlRunner, sourceRowId: number): Promise<number | null> {
  const rows = await db.$queryRaw<{ syncOutcomeTicket: number }[]>`
    SELECT "syncOutcomeTicket" FROM "MarketSource" WHERE "id" = ${sourceRowId}`;
  return rows[0] ? Number(rows[0].syncOutcomeTicket) : null;
}

/** A source's sync status after a success (the catalogue hash too when the sync was complete). */
export interface SyncSuccess {
  catalogHash: string | null;
  at: Date;
  error: string | null;
  durationMs: number;
  nextSyncAt: Date;
  /** The sync's ticket (takeSyncTicket): written only over the outcome of a sync started before it. */
  ticket: number;
}

/**
 * Records a successful sync of the source's row (by row id: one removed and added again under the
 * same source id is another), unless the row holds the outcome of a sync started after this one
 * (0 rows: findSyncOutcomeTicket tells which). A null `catalogHash` (a sync that rejected entries) clears the
 * stored one, so that the next sync reads the index again whatever hash the source shows: kept,
 * a source going back to that hash (a rollback) left the entries the incomplete sync had taken.
 */
export function recordSyncSuccess(db: SqlRunner, sourceRowId: number, status: SyncSuccess) {
  return db.$executeRaw`
    UPDATE "MarketSource" SET "catalogHash" = ${status.catalogHash}, "syncedAt" = ${status.at},
      "syncAttemptAt" = ${status.at}, "syncError" = ${status.error}, "syncFailures" = 0,
      "syncDurationMs" = ${status.durationMs}, "nextSyncAt" = ${status.nextSyncAt}, "updatedAt" = ${status.at},
      "syncOutcomeTicket" = ${status.ticket}
    WHERE "id" = ${sourceRowId} AND "syncOutcomeTicket" < ${status.ticket}`;
}

/**
 * Sets the duration of the source's sync, as the last statement of its write: recordSyncSuccess,
 * its first (it locks the row), cannot know how long the write takes.
 */
export function recordSyncDuration(db: SqlRunner, sourceRowId: number, durationMs: number) {
  return db.$executeRaw`UPDATE "MarketSource" SET "syncDurationMs" = ${durationMs} WHERE "id" = ${sourceRowId}`;
}

/**
 * Records a sync that found the source's hash unchanged, only if the row still has that hash and
 * that base URL (the Syncer read it before asking the hash; another instance may have synced it
 * meanwhile, or it was removed and added again) and holds no later sync's outcome. Returns the
 * rows written (0: read the row again and sync from it, or stop there if a later sync's outcome is
 * stored).
 */
export function recordUnchangedSync(
  db: SqlRunner,
  source: { sourceId: string; baseUrl: string | null; catalogHash: string },
  status: Omit<SyncSuccess, 'catalogHash' | 'error'>,
) {
  return db.$executeRaw`
    UPDATE "MarketSource" SET "syncedAt" = ${status.at}, "syncAttemptAt" = ${status.at}, "syncError" = NULL,
      "syncFailures" = 0, "syncDurationMs" = ${status.durationMs}, "nextSyncAt" = ${status.nextSyncAt},
      "updatedAt" = ${status.at}, "syncOutcomeTicket" = ${status.ticket}
    WHERE "sourceId" = ${source.sourceId} AND "catalogHash" = ${source.catalogHash}
      AND COALESCE("baseUrl", '') = ${source.baseUrl ?? ''} AND "syncOutcomeTicket" < ${status.ticket}`;
}

/** A failed sync, as recordSyncFailure stores it. */
export interface SyncFailure {
  at: Date;
  error: string;
  durationMs: number;
  ticket: number;
}

/**
 * Records a failed sync of the source's row, unless the row holds the outcome of a sync started
 * after it (a later success, or a later failure that counted already): the failures are counted
 * from the row as it is now, not as the sync read it at its start. Returns the consecutive
 * failures now stored, or null when nothing was written. `nextSyncAt` (the backoff, from that
 * count) is the caller's, in the same transaction: on PostgreSQL the update locks the row till then.
 */
export async function recordSyncFailure(
  db: SqlRunner,
  sourceRowId: number,
  failure: SyncFailure,
): Promise<number | null> {
  const rows = await db.$queryRaw<{ syncFailures: number }[]>`
    UPDATE "MarketSource" SET "syncAttemptAt" = ${failure.at}, "syncError" = ${failure.error},
      "syncFailures" = "syncFailures" + 1, "syncDurationMs" = ${failure.durationMs},
      "syncOutcomeTicket" = ${failure.ticket}
    WHERE "id" = ${sourceRowId} AND "syncOutcomeTicket" < ${failure.ticket}
    RETURNING "syncFailures"`;
  return rows[0] ? Number(rows[0].syncFailures) : null;
}

/** Sets the next sync of the source's row (a failure's backoff, counted by recordSyncFailure). */
export function recordNextSync(db: SqlRunner, sourceRowId: number, nextSyncAt: Date) {
  return db.$executeRaw`UPDATE "MarketSource" SET "nextSyncAt" = ${nextSyncAt} WHERE "id" = ${sourceRowId}`;
}

/**
 * Who has installed the entries of these app ids of a source (their state rows), in one join: a
 * sync announces those apps, whose `latestVersion` moved. Through Prisma, two `findMany` per 500
 * ids cost a 2,000-app sync 100–150 ms of CPU after its commit.
 */
export function installedAppsOf(
  db: SqlRunner,
  sourceId: string,
  appIds: readonly string[],
): Promise<{ userId: string; appName: string }[]> {
  if (appIds.length === 0) return Promise.resolve([]);
  return db.$queryRaw`
    SELECT "AppState"."userId", "AppState"."appName" FROM "CatalogApp"
    JOIN "AppState" ON "AppState"."sourceId" = "CatalogApp"."sourceId" AND "AppState"."appName" = "CatalogApp"."name"
    WHERE "CatalogApp"."sourceId" = ${sourceId} AND "CatalogApp"."appId" IN (${join([...appIds])})`;
}
