import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { CatalogService, LOOKUP_CACHE_MS } from '../src/services/catalog-service.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';

/**
 * The catalogue lookup cache of the mutations: entries are reused for LOOKUP_CACHE_MS, and the
 * cache stays bounded when every request names another app (expired entries go as new ones come
 * in; a size cap beyond that). The cache logic is the same on both providers, so SQLite only.
 */

const SOURCE = 'market.olares';
const NAMES = ['a', 'b', 'c', 'd', 'e', 'f'];

describe('catalogue lookup cache', () => {
  let database: TestDatabase;
  let db: Db;
  let clock: number;
  const now = () => clock;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    db = createPrismaClient(database.url);
    await db.catalogApp.createMany({
      data: NAMES.map((name) => ({
        sourceId: SOURCE,
        appId: name,
        name,
        version: '1.0.0',
        versions: ['1.0.0'],
        title: 'old',
        searchText: name,
        entry: {},
      })),
    });
  });
  afterAll(async () => {
    await db?.$disconnect();
    await database?.drop();
  });
  beforeEach(async () => {
    clock = 1_000_000;
    await db.catalogApp.updateMany({ data: { title: 'old' } });
  });

  /** The title each lookup returns: 'old' from the cache, 'new' when read again after retitle(). */
  const titles = async (catalog: CatalogService, names: string[]) => {
    const titles = [];
    for (const name of names) titles.push((await catalog.findApp(SOURCE, name))?.title);
    return titles;
  };
  const retitle = () => db.catalogApp.updateMany({ data: { title: 'new' } });

  test('a lookup is reused for LOOKUP_CACHE_MS, then read again', async () => {
    const catalog = new CatalogService(db, 100, { now });
    expect(await titles(catalog, ['a'])).toEqual(['old']);
    await retitle();
    clock += LOOKUP_CACHE_MS - 1;
    expect(await titles(catalog, ['a'])).toEqual(['old']);
    clock += 1;
    expect(await titles(catalog, ['a'])).toEqual(['new']);
  });

  test('expired entries are dropped when a new one comes in', async () => {
    const catalog = new CatalogService(db, 100, { now });
    await titles(catalog, ['a', 'b', 'c', 'd']);
    clock += LOOKUP_CACHE_MS / 2;
    await titles(catalog, ['e']);
    expect(catalog.lookupCacheSize).toBe(5);

    clock += LOOKUP_CACHE_MS / 2; // a–d expire now, e only later
    await titles(catalog, ['f']);
    expect(catalog.lookupCacheSize).toBe(2);
    await retitle();
    expect(await titles(catalog, ['e', 'f', 'a'])).toEqual(['old', 'old', 'new']);
  });

  test('the cache never holds more than maxEntries: the oldest entries make room', async () => {
    const catalog = new CatalogService(db, 100, { now, maxEntries: 3 });
    for (const name of ['a', 'b', 'c', 'd']) {
      await titles(catalog, [name]);
      clock += 1;
    }
    expect(catalog.lookupCacheSize).toBe(3);
    await retitle();
    // b, c and d are still cached; a (the oldest) was dropped, so it is read again.
    expect(await titles(catalog, ['d', 'c', 'b', 'a'])).toEqual(['old', 'old', 'old', 'new']);
    expect(catalog.lookupCacheSize).toBe(3);
  });
});
