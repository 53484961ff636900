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

/**
 * Writes a sync in one transaction, with the source's new sync status, so that readers see the
 * old catalogue or the new one, never a mix. New entries go in with one multi-row insert per
 * table (a first sync of thousands of apps is a few statements, not thousands); changed ones are
 * updated row by row, keeping their row ids (the CatalogApp node ids clients hold).
 */
export async function writeCatalogue(
  db: Db,
  { sourceId, upserts, removals }: CatalogueWrite,
  status: Prisma.MarketSourceUpdateInput,
): Promise<void> {
  await db.$transaction(async (tx) => {
    if (removals.length) await tx.catalogApp.deleteMany({ where: { sourceId, appId: { in: removals } } });
    // By source, not by an `in` list of app ids: SQLite refuses statements of more than 999
    // parameters, and a first sync writes thousands of apps.
    const idsOf = async () =>
      new Map(
        (await tx.catalogApp.findMany({ where: { sourceId }, select: { id: true, appId: true } })).map((row) => [
          row.appId,
          row.id,
        ]),
      );
    const existing = await idsOf();
    const created = upserts.filter((row) => !existing.has(row.appId));
    for (const row of upserts) {
      const id = existing.get(row.appId);
      if (id === undefined) continue;
      await tx.catalogApp.update({ where: { id }, data: catalogueColumns(sourceId, row) });
      await tx.catalogAppCategory.deleteMany({ where: { catalogAppId: id } });
    }
    if (created.length) await tx.catalogApp.createMany({ data: created.map((row) => catalogueColumns(sourceId, row)) });
    const ids = created.length === 0 ? existing : await idsOf();
    const categories = upserts.flatMap((row) =>
      row.categories.map((category) => ({ catalogAppId: ids.get(row.appId) as number, category })),
    );
    if (categories.length) await tx.catalogAppCategory.createMany({ data: categories });
    await tx.marketSource.update({ where: { sourceId }, data: status });
  }, WRITE_TRANSACTION);
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
