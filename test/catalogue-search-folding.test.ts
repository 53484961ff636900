import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import { catalogueSearchText } from '../src/domain/catalogue-entry.js';
import { SEARCH_FOLDING, searchFold } from '../src/domain/search-fold.js';
import { availableDatabases, createTestDatabase, type DatabaseKind, type TestDatabase } from './support/databases.js';
import { type FakeMarketSource, fakeEntry, startFakeMarketSource } from './support/fake-market-source.js';
import { CatalogQuery } from './support/operations.js';
import { dataOf, execute, startTestServer, type TestServer, waitFor } from './support/server.js';

/**
 * Catalogue search as users type it: composed or decomposed accents, no accents, full-width
 * letters, Turkish and Greek letter forms, invisible characters pasted in. The apps come in
 * through a real sync (the fake market source) or, for the refolding at start, as rows a release
 * before it wrote (searchText only lower-cased), and are searched through the API.
 */

const databases = await availableDatabases();

/** The names of the apps a search lists. */
async function found(server: TestServer, search: string): Promise<string[]> {
  const { catalog } = dataOf(await execute(server, CatalogQuery, { search, first: 50 }));
  return catalog.edges.map((edge) => edge.node.name).sort();
}

const texts = (title: string, description: string) => ({
  title: { 'en-US': title },
  description: { 'en-US': description },
});

const ENTRIES = [
  fakeEntry('bistro', texts('Café Bistro', 'Espresso and croissants')),
  fakeEntry('cvbuilder', texts('Re\u0301sume\u0301 Builder', 'Decomposed accents, as macOS file names have them')),
  fakeEntry('maps', texts('Über Maps', 'Offline street maps')),
  fakeEntry('nextcloud', texts('Nextcloud', 'Files and calendars')),
  fakeEntry('guide', texts('İSTANBUL Guide', 'Kırmızı tours')),
  fakeEntry('atlas', texts('ΟΔΟΣ Atlas', 'Greek streets')),
  fakeEntry('sharer', texts('Photo\u00adPrism Share', 'zero\u200bwidth\u200djoined\ufefftext')),
  fakeEntry('percent', texts('Percent', '100% free_software')),
];

/** Each search as typed, and the apps it finds. */
const CASES: [string, string[]][] = [
  ['café', ['bistro']], // composed, stored composed
  ['cafe\u0301', ['bistro']], // decomposed, stored composed
  ['CAFE', ['bistro']],
  ['résumé', ['cvbuilder']], // composed, stored decomposed
  ['resume', ['cvbuilder']],
  ['uber', ['maps']],
  ['ÜBER', ['maps']],
  ['ｎｅｘｔｃｌｏｕｄ', ['nextcloud']], // full-width
  ['next\u200bcloud', ['nextcloud']],
  ['next\ufeffcloud', ['nextcloud']],
  ['next\u200dcloud', ['nextcloud']],
  ['istanbul', ['guide']],
  ['İstanbul', ['guide']],
  ['kirmizi', ['guide']],
  ['KIRMIZI', ['guide']],
  ['οδοσ', ['atlas']], // medial sigma typed, final sigma stored
  ['Οδός', ['atlas']],
  ['photoprism', ['sharer']],
  ['pho\u00adtoprism', ['sharer']],
  ['zerowidthjoinedtext', ['sharer']],
  ['espresso \t and', ['bistro']],
  // `%` and `_` are themselves, typed or folded from their full-width forms.
  ['100%', ['percent']],
  ['%', ['percent']],
  ['_', ['percent']],
  ['free_software', ['percent']],
  ['１００％', ['percent']],
  // What should not match still does not.
  ['cafe au lait', []],
  ['istanbulx', []],
  ['free%software', []],
  ['100_', []],
  ['ubar', []],
];

describe('searchFold', () => {
  test('folds compatibility forms, case, marks, format characters and white space into one plain text', () => {
    expect(searchFold('  ＣＡＦＥ\u0301\u200b  Ｂar\n㎒ ')).toBe('cafe bar mhz');
    expect(searchFold('İSTANBUL ıŞIK ΟΔΟΣ Οδός')).toBe('istanbul isik οδοσ οδοσ');
  });

  test('folding a folded text changes nothing, so stored and typed text fold alike', () => {
    for (const [search] of CASES) expect(searchFold(searchFold(search))).toBe(searchFold(search));
  });
});

describe.each(databases)('catalogue search on %s', (kind) => {
  let fake: FakeMarketSource;
  let server: TestServer;

  beforeAll(async () => {
    fake = await startFakeMarketSource({ entries: ENTRIES });
    server = await startTestServer(kind, {
      env: { DEMO_DATA: '0', MARKET_SOURCE_URL: fake.url, SYNC_INTERVAL_MS: '3600000' },
    });
    await waitFor(async () => ((await found(server, 'nextcloud')).length > 0 ? true : undefined), 'the first sync');
  });
  afterAll(async () => {
    await server?.stop();
    await fake?.close();
  });

  test.each(CASES)('a search for %j finds %j', async (search, names) => {
    expect(await found(server, search)).toEqual(names);
  });
});

/** An app as a release before the folding stored it: searchText only lower-cased, `searchFolding` left at 0. */
interface OldRow {
  name: string;
  title: string;
  description: string;
}

const OLD_ROWS: OldRow[] = [
  { name: 'bistro', title: 'Café Bistro', description: 'Espresso and croissants' },
  { name: 'maps', title: 'Über Maps', description: 'Offline street maps' },
  { name: 'guide', title: 'İSTANBUL Guide', description: 'Kırmızı tours' },
  // The title and description columns hold 1,000 characters; the search text covers the entry's whole text.
  { name: 'longread', title: 'Long read', description: `${'Long text. '.repeat(100)}Made in Zürich` },
];

const clip = (text: string) => text.slice(0, 1000);

async function writeOldRows(database: TestDatabase): Promise<void> {
  const db = createPrismaClient(database.url);
  try {
    for (const row of OLD_ROWS) {
      const entry = JSON.stringify({
        name: row.name,
        version: '1.0.0',
        title: { 'en-US': row.title },
        description: { 'en-US': row.description },
      });
      const searchText = `${row.name} ${row.title} ${row.description}`.toLowerCase();
      await db.$executeRaw`
        INSERT INTO "CatalogApp" ("sourceId", "appId", "name", "version", "versions", "title", "description",
          "searchText", "entry", "updatedAt")
        VALUES ('upload', ${row.name}, ${row.name}, '1.0.0', '["1.0.0"]', ${row.title}, ${clip(row.description)},
          ${searchText}, ${entry}, ${new Date()})`;
    }
  } finally {
    await db.$disconnect();
  }
}

/** The rows' search text and folding, by name. */
async function storedSearch(server: TestServer) {
  const rows = await server.app.db.catalogApp.findMany({
    select: { name: true, searchText: true, searchFolding: true },
  });
  return Object.fromEntries(rows.map((row) => [row.name, { searchText: row.searchText, folding: row.searchFolding }]));
}

const refoldedIn = (server: TestServer) =>
  server.logs
    .map((line) => JSON.parse(line) as { refolded?: number })
    .reduce((sum, line) => sum + (line.refolded ?? 0), 0);

describe.each(databases)('search text stored before the folding, on %s', (kind: DatabaseKind) => {
  test('two instances starting at once fold every old row exactly once, and searches find them the new way', async () => {
    const database = await createTestDatabase(kind);
    const servers: TestServer[] = [];
    const env = { DEMO_DATA: '0', BUNDLED_CATALOGUE_FILE: 'off' };
    try {
      await writeOldRows(database);
      servers.push(...(await Promise.all([1, 2].map(() => startTestServer(kind, { database, env })))));
      const [first, second] = servers as [TestServer, TestServer];
      expect(await found(first, 'cafe')).toEqual(['bistro']);
      expect(await found(second, 'uber')).toEqual(['maps']);
      expect(await found(first, 'istanbul')).toEqual(['guide']);
      expect(await found(second, 'kirmizi')).toEqual(['guide']);
      expect(await found(first, 'zurich')).toEqual(['longread']);
      // Each row folded by one of the two: the other found it current (or lost the race to it).
      expect(refoldedIn(first) + refoldedIn(second)).toBe(OLD_ROWS.length);
      const stored = await storedSearch(first);
      for (const row of OLD_ROWS) {
        expect(stored[row.name]).toEqual({
          searchText: catalogueSearchText(row.name, row.title, row.description),
          folding: SEARCH_FOLDING,
        });
      }

      // Folded once: a later start reads the rows as current and leaves them as they are.
      await Promise.all(servers.splice(0).map((server) => server.stop()));
      const db = createPrismaClient(database.url);
      await db.catalogApp
        .updateMany({ where: { name: 'maps' }, data: { searchText: 'kept as written' } })
        .finally(() => db.$disconnect());
      const third = await startTestServer(kind, { database, env });
      servers.push(third);
      expect(refoldedIn(third)).toBe(0);
      expect((await storedSearch(third)).maps?.searchText).toBe('kept as written');
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
      await database.drop();
    }
  });
});
