import {
  deleteCatalogApps,
  deleteCategoriesOf,
  findCatalogAppIds,
  findSyncOutcomeTicket,
  insertCatalogApps,
  insertCategories,
  type NewCatalogApp,
  recordSyncDuration,
  recordSyncSuccess,
  refreshCatalogueStatistics,
  renameToPlaceholders,
  type SyncSuccess,
  updateCatalogApps,
} from '../db/catalogue-sql.js';
import type { Db } from '../db/client.js';
import { driverSqlOf } from '../db/driver-sql.js';
import { DbNull, type Prisma } from '../db/models.js';
import { type CatalogueRow, jsonText } from '../domain/catalogue-entry.js';

/** A read entry with its summary's fingerprint, as one sync writes it. */
export type CatalogueUpsert = CatalogueRow & { summaryHash: string | null };

/**
 * The same as the write binds it: the columns, JSON ones as text, and the categories. The Syncer
 * keeps its entries so (storedUpsert) from the moment each is read, not as parsed objects.
 */
export interface StoredUpsert extends NewCatalogApp {
  categories: string[];
}

/** What one sync writes to a source's catalogue. */
export interface CatalogueWrite {
  sourceId: string;
  /**
   * The source's row as the sync read it: a source removed during its sync and added again under
   * the same id is another row, which the sync must not fill (SourceGone).
   */
  sourceRowId: number;
  /** New and changed entries (matched by appId) as stored, each with its summary's fingerprint. */
  upserts: StoredUpsert[];
  /** App ids to remove, with their categories. */
  removals: string[];
}

/**
 * Writes a sync in one transaction, with the source's new sync status, so that readers see the
 * old catalogue or the new one, never a mix. Every statement is hand-written (db/catalogue-sql.ts)
 * and runs straight on the driver (db/driver-sql.ts): through Prisma, its per-statement work was
 * most of a full sync's time. New entries go in with multi-row INSERTs; changed ones are
 * rewritten in place, keeping their row ids (the CatalogApp node ids clients hold). Unlike
 * Prisma's interactive transactions, this one has no timeout: a first sync of thousands of apps
 * took seconds through Prisma (past its default 5 s on PostgreSQL under load), a fraction now.
 */
export async function writeCatalogue(
  db: Db,
  { sourceId, sourceRowId, upserts, removals }: CatalogueWrite,
  status: SyncSuccess,
  /** The sync's time so far, read once the write is done (without it: `status.durationMs`). */
  elapsedMs?: () => number,
): Promise<WrittenChanges> {
  const now = status.at;
  return driverSqlOf(db).$transaction(async (tx) => {
    // First, so that a source removed while its sync ran, or synced by a sync that started after
    // this one, is noticed before anything is written (on PostgreSQL the update also locks the row
    // against a removal until this commits, and against another instance's write of the same
    // source: that one's rows are seen below).
    if ((await recordSyncSuccess(tx, sourceRowId, status)) === 0) {
      const stored = await findSyncOutcomeTicket(tx, sourceRowId);
      throw stored === null ? new SourceGone(sourceId) : new SyncSuperseded(sourceId, status.ticket, stored);
    }
    // By source, not by an `in` list of every app id (the parameter limit).
    const before = await findCatalogAppIds(tx, sourceId);
    const removed = new Set(removals);
    const written = { removed: before.filter((row) => removed.has(row.appId)).map((row) => row.appId) };
    await deleteCatalogApps(tx, sourceId, written.removed);
    const stored = before.filter((row) => !removed.has(row.appId));
    const ids = new Map(stored.map((row) => [row.appId, row.id]));
    // An entry another writer stored with the same summary since this sync read the catalogue
    // (two syncs of one source at once, on two instances) is no change: not written, not announced.
    const hashes = new Map(stored.map((row) => [row.appId, row.summaryHash]));
    const unchanged = (row: StoredUpsert) => row.summaryHash !== null && hashes.get(row.appId) === row.summaryHash;
    const created = upserts.filter((row) => !ids.has(row.appId));
    const changed = upserts.filter((row) => ids.has(row.appId) && !unchanged(row));
    // Apps that swap names (a → b, b → a) would collide on the unique name, which is checked row
    // by row even within one statement: each renamed row first gets a name no entry can have.
    const newNames = new Map(upserts.map((row) => [row.appId, row.name]));
    const renamed = stored.filter((row) => (newNames.get(row.appId) ?? row.name) !== row.name).map((row) => row.id);
    await renameToPlaceholders(tx, renamed, now);
    await updateCatalogApps(tx, sourceId, changed, now);
    const changedIds = changed.map((row) => ids.get(row.appId) as number);
    await deleteCategoriesOf(tx, changedIds);
    const inserted = await insertCatalogApps(tx, sourceId, created, now);
    for (const [appId, id] of inserted) ids.set(appId, id);
    const categories = [...created, ...changed].flatMap((row) =>
      row.categories.map((category) => ({ catalogAppId: ids.get(row.appId) as number, category })),
    );
    await insertCategories(tx, categories);
    // In the transaction: should it fail, the sync fails visibly rather than half-reported.
    if (created.length > 0 || changed.length > 0 || written.removed.length > 0) await refreshCatalogueStatistics(tx);
    // Last, so that the duration stored covers the write (all of it but the commit): taken before
    // it, the duration left the write out (a sync of 13.4 s said 10,211 ms).
    const durationMs = elapsedMs?.() ?? status.durationMs;
    if (elapsedMs) await recordSyncDuration(tx, sourceRowId, durationMs);
    return { added: created.map((row) => row.appId), updated: changed.map((row) => row.appId), ...written, durationMs };
  });
}

/** The app ids a write really added, updated and removed (what the history and the announcement name). */
export interface WrittenChanges {
  added: string[];
  updated: string[];
  removed: string[];
  /** The sync's duration as stored: up to the write's last statement. */
  durationMs: number;
}

/** The source was removed while its sync ran: nothing of the sync is written. */
export class SourceGone extends Error {
  constructor(readonly sourceId: string) {
    super(`market source ${sourceId} was removed during the sync; nothing was written`);
    this.name = 'SourceGone';
  }
}

/**
 * A sync that started after this one (on this instance or another) stored its outcome first: it
 * read the source later, so this one's older reading is dropped, nothing of it written.
 */
export class SyncSuperseded extends Error {
  constructor(
    readonly sourceId: string,
    readonly ticket: number,
    readonly storedTicket: number,
  ) {
    super(`market source ${sourceId}: a sync started later stored its outcome first; this one's was dropped`);
    this.name = 'SyncSuperseded';
  }
}

/**
 * A read entry as the write binds it (JSON columns as text): the entry's (and a price's) text is
 * the one readCatalogueEntry checked (jsonText), not a second JSON.stringify of every entry.
 */
export function storedUpsert(row: CatalogueRow, summaryHash: string | null): StoredUpsert {
  return {
    appId: row.appId,
    name: row.name,
    version: row.version,
    versions: JSON.stringify(row.versions),
    cfgType: row.cfgType,
    title: row.title,
    description: row.description,
    searchText: row.searchText,
    paid: row.paid,
    price: row.price === null ? null : jsonText(row.price),
    entry: jsonText(row.entry),
    summaryHash,
    categories: row.categories,
  };
}

/** The columns of one catalogue row as Prisma writes them (JSON columns typed, a free app's price NULL). */
export function catalogueColumns(sourceId: string, row: CatalogueUpsert) {
  return {
    sourceId,
    appId: row.appId,
    name: row.name,
    version: row.version,
    versions: row.versions,
    cfgType: row.cfgType,
    title: row.title,
    description: row.description,
    searchText: row.searchText,
    paid: row.paid,
    price: row.price === null ? DbNull : (row.price as Prisma.InputJsonValue),
    entry: row.entry as Prisma.InputJsonValue,
    summaryHash: row.summaryHash,
  };
}
