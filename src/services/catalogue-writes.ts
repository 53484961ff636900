import {
  insertCatalogApps,
  insertCategories,
  type NewCatalogApp,
  recordSyncSuccess,
  type SyncSuccess,
} from '../db/catalogue-sql.js';
import type { Db } from '../db/client.js';
import { DbNull, type Prisma } from '../db/models.js';
import type { CatalogueRow } from '../domain/catalogue-entry.js';

/**
 * A first sync of thousands of apps writes for seconds (Prisma's default interactive-transaction
 * timeout is 5 s): measured 4.6–4.9 s for 2,000 apps on PostgreSQL under load (bench `catalogue`).
 */
const WRITE_TRANSACTION = { timeout: 120_000, maxWait: 10_000 };

/** What one sync writes to a source's catalogue. */
export interface CatalogueWrite {
  sourceId: string;
  /** New and changed entries (matched by appId), each with its summary's fingerprint. */
  upserts: (CatalogueRow & { summaryHash: string | null })[];
  /** App ids to remove, with their categories. */
  removals: string[];
}

/** App ids per `in (…)` list: within SQLite's historical 999 parameters per statement. */
const IDS_PER_STATEMENT = 500;

/**
 * Writes a sync in one transaction, with the source's new sync status, so that readers see the
 * old catalogue or the new one, never a mix. New entries go in with multi-row INSERTs
 * (db/catalogue-sql.ts: a first sync of thousands of apps is a few dozen statements); changed ones
 * are updated row by row, keeping their row ids (the CatalogApp node ids clients hold).
 */
export async function writeCatalogue(
  db: Db,
  { sourceId, upserts, removals }: CatalogueWrite,
  status: SyncSuccess,
): Promise<void> {
  const now = status.at;
  await db.$transaction(async (tx) => {
    // First, so that a source removed while its sync ran is noticed before anything is written
    // (on PostgreSQL the update also locks the row against a removal until this commits).
    if ((await recordSyncSuccess(tx, sourceId, status)) === 0) throw new SourceGone(sourceId);
    for (const chunk of chunks(removals)) {
      // Categories first: SQLite enforces the cascade only with its foreign keys switched on.
      await tx.catalogAppCategory.deleteMany({ where: { app: { sourceId, appId: { in: chunk } } } });
      await tx.catalogApp.deleteMany({ where: { sourceId, appId: { in: chunk } } });
    }
    // By source, not by an `in` list of every app id (the parameter limit again).
    const stored = await tx.catalogApp.findMany({ where: { sourceId }, select: { id: true, appId: true, name: true } });
    const ids = new Map(stored.map((row) => [row.appId, row.id]));
    const created = upserts.filter((row) => !ids.has(row.appId));
    // Apps that swap names (a → b, b → a) would collide on the unique name while updated one by
    // one: each renamed row first gets a name no entry can have (app names start with a letter or
    // a digit), then its own.
    const newNames = new Map(upserts.map((row) => [row.appId, row.name]));
    for (const row of stored) {
      const name = newNames.get(row.appId);
      if (name !== undefined && name !== row.name) {
        await tx.catalogApp.update({ where: { id: row.id }, data: { name: `~${row.appId}` } });
      }
    }
    for (const row of upserts) {
      const id = ids.get(row.appId);
      if (id === undefined) continue;
      await tx.catalogApp.update({ where: { id }, data: catalogueColumns(sourceId, row) });
      await tx.catalogAppCategory.deleteMany({ where: { catalogAppId: id } });
    }
    const inserted = await insertCatalogApps(tx, sourceId, created.map(asText), now);
    for (const [appId, id] of inserted) ids.set(appId, id);
    const categories = upserts.flatMap((row) =>
      row.categories.map((category) => ({ catalogAppId: ids.get(row.appId) as number, category })),
    );
    await insertCategories(tx, categories);
  }, WRITE_TRANSACTION);
}

/** The source was removed while its sync ran: nothing of the sync is written. */
export class SourceGone extends Error {
  constructor(sourceId: string) {
    super(`market source ${sourceId} was removed during the sync; nothing was written`);
    this.name = 'SourceGone';
  }
}

/** A row with its JSON columns as the text the raw INSERT binds. */
function asText(row: CatalogueWrite['upserts'][number]): NewCatalogApp {
  return {
    ...row,
    versions: JSON.stringify(row.versions),
    price: row.price === null ? null : JSON.stringify(row.price),
    entry: JSON.stringify(row.entry),
  };
}

function chunks<T>(items: readonly T[]): T[][] {
  const result: T[][] = [];
  for (let start = 0; start < items.length; start += IDS_PER_STATEMENT) {
    result.push(items.slice(start, start + IDS_PER_STATEMENT));
  }
  return result;
}

/** The columns of one catalogue row as Prisma writes them (JSON columns typed, a free app's price NULL). */
export function catalogueColumns(sourceId: string, row: CatalogueWrite['upserts'][number]) {
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
