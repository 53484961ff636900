import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SyncSuccess } from '../src/db/catalogue-sql.js';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { isUniqueViolation } from '../src/db/hot-path-sql.js';
import { conditionsSql, pageRows } from '../src/db/list-sql.js';
import { readCatalogueEntry } from '../src/domain/catalogue-entry.js';
import {
  type CatalogueUpsert,
  catalogueColumns,
  SourceGone,
  storedUpsert,
  writeCatalogue,
} from '../src/services/catalogue-writes.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { fakeAppId, fakeEntry, fakePrice } from './support/fake-market-source.js';
import { planOf, SORTS } from './support/query-plans.js';

/**
 * The contract of writeCatalogue's hand-written statements (src/db/catalogue-sql.ts, run on the
 * driver): the rows they write read back through Prisma exactly as the rows Prisma's query API
 * writes; changed rows keep their ids; names swap; removals take their categories; and the whole
 * sync is one transaction, on both providers.
 */

const databases = await availableDatabases();
const T0 = new Date('2026-11-22T18:14:09.003Z');
const later = (ms: number) => new Date(T0.getTime() + ms);

type Upsert = CatalogueUpsert;

/** Rows as the Syncer hands them to the write (storedUpsert, as soon as each is read). */
const asStored = (rows: Upsert[]) => rows.map((row) => storedUpsert(row, row.summaryHash));

function row(name: string, overrides: Record<string, unknown> = {}): Upsert {
  const reading = readCatalogueEntry(fakeAppId(name), fakeEntry(name, overrides));
  if (!reading.ok) throw new Error(reading.reason);
  return { ...reading.row, summaryHash: `hash-${name}-${String(overrides.version ?? '1')}` };
}

/** Each write a later sync's: its ticket above every one before (the ticket orders syncs, not `at`). */
let tickets = 0;

function status(at: Date): SyncSuccess {
  tickets += 1;
  return {
    catalogHash: `catalog-${at.getTime()}`,
    at,
    error: null,
    durationMs: 7,
    nextSyncAt: later(3_600_000),
    ticket: tickets,
  };
}

describe.each(databases)('the catalogue writes on %s', (kind) => {
  let database: TestDatabase;
  let db: Db;
  let sources = 0;
  /** A remote source of its own for each test. */
  const source = async () => {
    sources += 1;
    const sourceId = `writes-${sources}`;
    const { id } = await db.marketSource.create({ data: { sourceId, title: sourceId, type: 'remote', updatedAt: T0 } });
    return { sourceId, sourceRowId: id };
  };
  const categoriesOf = async (sourceId: string) =>
    (await db.catalogAppCategory.findMany({ where: { app: { sourceId } }, include: { app: true } }))
      .map((category) => `${category.app.appId}:${category.category}`)
      .sort();

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    db = createPrismaClient(database.url);
  });
  afterAll(async () => {
    await db?.$disconnect();
    await database?.drop();
  });

  test('rows read back through Prisma exactly as the rows Prisma’s query API writes (a free app’s price NULL)', async () => {
    const { sourceId, sourceRowId } = await source();
    const paid = row('paidapp', { price: fakePrice(), categories: ['Media', 'Tools'] });
    const free = row('freeapp', { categories: ['Tools'] });
    expect(free.price).toBeNull();
    await writeCatalogue(db, { sourceId, sourceRowId, upserts: asStored([paid, free]), removals: [] }, status(T0));
    const { sourceId: viaPrisma } = await source();
    for (const upsert of [paid, free]) {
      await db.catalogApp.create({ data: { ...catalogueColumns(viaPrisma, upsert), createdAt: T0, updatedAt: T0 } });
    }
    const read = async (id: string) =>
      (await db.catalogApp.findMany({ where: { sourceId: id }, orderBy: { appId: 'asc' } })).map(
        ({ id: _id, sourceId: _sourceId, ...columns }) => columns,
      );
    const written = await read(sourceId);
    expect(written).toEqual(await read(viaPrisma));
    expect(written.map((app) => app.createdAt)).toEqual([T0, T0]);
    // SQL NULL, not JSON null, as catalogueColumns' DbNull writes it.
    const nulls = await db.$queryRaw<{ n: number | bigint }[]>`
      SELECT COUNT(*) AS "n" FROM "CatalogApp" WHERE "sourceId" = ${sourceId} AND "price" IS NULL`;
    expect(Number(nulls[0]?.n)).toBe(1);
    expect(await categoriesOf(sourceId)).toEqual(
      [`${paid.appId}:Media`, `${paid.appId}:Tools`, `${free.appId}:Tools`].sort(),
    );
    const stored = await db.marketSource.findUniqueOrThrow({ where: { sourceId } });
    expect(stored).toMatchObject({ catalogHash: status(T0).catalogHash, syncedAt: T0, syncFailures: 0, updatedAt: T0 });
  });

  // The entry's text is the one readCatalogueEntry produced for its checks (jsonText), not a second
  // JSON.stringify; a row given another entry or price after reading is written with that one.
  test('the JSON written is the entry as read, or as replaced after reading', async () => {
    const { sourceId, sourceRowId } = await source();
    const asRead = row('asread', { price: fakePrice() });
    const original = row('replaced');
    const replaced = { ...original, entry: { ...original.entry, title: 'Replaced' }, price: { products: [] } };
    await writeCatalogue(
      db,
      { sourceId, sourceRowId, upserts: asStored([asRead, replaced]), removals: [] },
      status(T0),
    );
    const stored = new Map((await db.catalogApp.findMany({ where: { sourceId } })).map((app) => [app.appId, app]));
    expect(stored.get(asRead.appId)?.entry).toEqual(asRead.entry);
    expect(stored.get(asRead.appId)?.price).toEqual(asRead.price);
    expect(stored.get(replaced.appId)?.entry).toEqual(replaced.entry);
    expect(stored.get(replaced.appId)?.price).toEqual({ products: [] });
  });

  test('a later sync rewrites changed rows in place, swaps names, replaces categories and removes apps', async () => {
    const { sourceId, sourceRowId } = await source();
    const [left, right, kept, gone] = [row('left'), row('right'), row('kept'), row('gone', { categories: ['Old'] })];
    await writeCatalogue(
      db,
      { sourceId, sourceRowId, upserts: asStored([left, right, kept, gone]), removals: [] },
      status(T0),
    );
    const before = await db.catalogApp.findMany({ where: { sourceId } });
    const idOf = (appId: string) => before.find((app) => app.appId === appId)?.id;

    // Each with its summary changed (the Syncer reads the details of those only).
    const swapped = [
      { ...left, name: 'right', version: '2.0.0', summaryHash: 'hash-left-2' },
      { ...right, name: 'left', summaryHash: 'hash-right-renamed' },
      { ...kept, categories: ['New', 'Other'], price: fakePrice(), summaryHash: 'hash-kept-priced' },
    ];
    const added = row('added');
    const written = await writeCatalogue(
      db,
      { sourceId, sourceRowId, upserts: asStored([...swapped, added]), removals: [gone.appId] },
      status(later(1000)),
    );
    expect(written).toEqual({
      added: [added.appId],
      updated: [left.appId, right.appId, kept.appId],
      removed: [gone.appId],
      durationMs: 7,
    });

    const after = await db.catalogApp.findMany({ where: { sourceId }, orderBy: { appId: 'asc' } });
    expect(after.map((app) => app.appId).sort()).toEqual([left.appId, right.appId, kept.appId, added.appId].sort());
    for (const app of after.filter((stored) => stored.appId !== added.appId)) {
      expect(app.id).toBe(idOf(app.appId));
      expect(app.createdAt).toEqual(T0);
      expect(app.updatedAt).toEqual(later(1000));
    }
    const byAppId = new Map(after.map((app) => [app.appId, app]));
    expect(byAppId.get(left.appId)).toMatchObject({ name: 'right', version: '2.0.0' });
    expect(byAppId.get(right.appId)?.name).toBe('left');
    expect(byAppId.get(kept.appId)?.price).toEqual(fakePrice());
    expect(await categoriesOf(sourceId)).toEqual(
      [
        `${left.appId}:${left.categories[0]}`,
        `${right.appId}:${right.categories[0]}`,
        `${kept.appId}:New`,
        `${kept.appId}:Other`,
        `${added.appId}:${added.categories[0]}`,
      ].sort(),
    );
    expect(await db.catalogAppCategory.count({ where: { catalogAppId: idOf(gone.appId) as number } })).toBe(0);
  });

  test('a write another writer made first (two syncs of one source at once) is no change: nothing rewritten, nothing reported', async () => {
    const { sourceId, sourceRowId } = await source();
    const [one, two] = [row('first-one'), row('first-two')];
    const write = { sourceId, sourceRowId, upserts: asStored([one, two]), removals: [] };
    expect(await writeCatalogue(db, write, status(T0))).toEqual({
      added: [one.appId, two.appId],
      updated: [],
      removed: [],
      durationMs: 7,
    });
    // The same sync's write again, as the second instance's, planned before the first committed.
    expect(await writeCatalogue(db, { ...write, removals: ['never-stored'] }, status(later(1000)))).toEqual({
      added: [],
      updated: [],
      removed: [],
      durationMs: 7,
    });
    const rows = await db.catalogApp.findMany({ where: { sourceId } });
    expect(rows.map((app) => app.updatedAt)).toEqual([T0, T0]);
    expect(await db.catalogAppCategory.count({ where: { app: { sourceId } } })).toBe(2);
  });

  test('more rows than one statement may carry: 700 apps, then 150 changed and 520 removed', async () => {
    const { sourceId, sourceRowId } = await source();
    const names = Array.from({ length: 700 }, (_, index) => `bulk${index}`);
    await writeCatalogue(
      db,
      { sourceId, sourceRowId, upserts: asStored(names.map((name) => row(name))), removals: [] },
      status(T0),
    );
    const changed = names.slice(0, 150).map((name) => ({ ...row(name, { version: '3.0.0' }), name: `${name}x` }));
    const removals = names.slice(180).map(fakeAppId);
    await writeCatalogue(db, { sourceId, sourceRowId, upserts: asStored(changed), removals }, status(later(1000)));
    expect(await db.catalogApp.count({ where: { sourceId } })).toBe(180);
    expect(await db.catalogApp.count({ where: { sourceId, version: '3.0.0', name: { endsWith: 'x' } } })).toBe(150);
    expect(await db.catalogAppCategory.count({ where: { app: { sourceId } } })).toBe(180);
  });

  test('a source removed meanwhile: SourceGone, and nothing is written', async () => {
    await expect(
      writeCatalogue(
        db,
        { sourceId: 'never-there', sourceRowId: -1, upserts: asStored([row('orphan')]), removals: [] },
        status(T0),
      ),
    ).rejects.toBeInstanceOf(SourceGone);
    expect(await db.catalogApp.count({ where: { sourceId: 'never-there' } })).toBe(0);
  });

  test('a statement failing midway rolls the whole sync back, with an error the Syncer recognises', async () => {
    const { sourceId, sourceRowId } = await source();
    await writeCatalogue(db, { sourceId, sourceRowId, upserts: asStored([row('holder')]), removals: [] }, status(T0));
    // A new app taking the name the stored one keeps: the unique name refuses it.
    const clash = { ...row('newcomer'), name: 'holder' };
    const error = await writeCatalogue(
      db,
      { sourceId, sourceRowId, upserts: asStored([row('first'), clash]), removals: [] },
      status(later(1)),
    )
      .then(() => null)
      .catch((caught: unknown) => caught);
    expect(isUniqueViolation(error)).toBe(true);
    expect((await db.catalogApp.findMany({ where: { sourceId } })).map((app) => app.name)).toEqual(['holder']);
    expect((await db.marketSource.findUniqueOrThrow({ where: { sourceId } })).syncedAt).toEqual(T0);
    // The connection is usable again afterwards (the transaction was ended, its lock released).
    await writeCatalogue(
      db,
      { sourceId, sourceRowId, upserts: asStored([row('first')]), removals: [] },
      status(later(2)),
    );
    expect(await db.catalogApp.count({ where: { sourceId } })).toBe(2);
  });

  test('after a sync that changed the catalogue, a page of the visible sources reads in id order, with no sort', async () => {
    // The page `catalog(first: 20)` asks for: the visible sources, which hold nearly every row.
    // Without the table's statistics (refreshed by the write) SQLite read all of them through
    // the (sourceId, name) index and sorted them for each page.
    const { sourceId, sourceRowId } = await source();
    const names = Array.from({ length: 300 }, (_, index) => `wide${index}`);
    await writeCatalogue(
      db,
      { sourceId, sourceRowId, upserts: asStored(names.map((name) => row(name))), removals: [] },
      status(T0),
    );
    const visible = conditionsSql('CatalogApp', [
      { op: 'oneOf', column: 'sourceId', relation: '', value: [sourceId, 'upload', 'studio', 'cli'] },
    ]);
    const plan = await planOf(db, (runner) => pageRows(runner, 'CatalogApp', visible, { fromNewest: true, take: 20 }));
    expect(plan).not.toMatch(SORTS);
  });
});
