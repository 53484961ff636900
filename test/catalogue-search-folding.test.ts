import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { replaceSearchText, searchTextsAfter } from '../src/db/search-refold-sql.js';
import { catalogueSearchText } from '../src/domain/catalogue-entry.js';
import { isSearchFolded, searchFold } from '../src/domain/search-fold.js';
import { availableDatabases, createTestDatabase, type DatabaseKind, type TestDatabase } from './support/databases.js';
import { type FakeMarketSource, fakeEntry, startFakeMarketSource } from './support/fake-market-source.js';
import { CatalogQuery } from './support/operations.js';
import { dataOf, execute, startTestServer, type TestServer, waitFor } from './support/server.js';

/**
 * Catalogue search as users type it: composed or decomposed accents, no accents, full-width
 * letters, Turkish and Greek letter forms, invisible characters pasted in. The apps come in
 * through a real sync (the fake market source) or, for the background refold, as rows a release
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

  test('a folded text is a fixed point however tricky the input, so the refold can tell old rows from new', () => {
    const tricky = [
      '\u00a8 \u00b4 \u02dc', // spacing accents: NFKD gives a space and a mark
      '\ufdfa \u33ff \ufb01', // one character, several words or letters
      '\u01c5 \u1e9e \u00df \u2126 \u212b \u0130 \u03a3\u0301 \u0390 \u1e9b\u0323',
      '\uff71\uff9e \u3000x\u00a0y\u2028z \u0345 \u13a0 \uab70',
      '\ud83d\ude00 \ud800 a\u200b \u00ad b \ufeff',
      `  ${'Crème brûlée '.repeat(3)}\t\n`,
    ];
    for (const text of tricky) expect(isSearchFolded(searchFold(text))).toBe(true);
    // Clipped at 3,000 units where a space falls: still a fixed point.
    expect(isSearchFolded(catalogueSearchText('x', 'Title', 'a '.repeat(2000)))).toBe(true);
    expect(isSearchFolded('bistro café bistro espresso')).toBe(false);
    expect(isSearchFolded('plain ascii text')).toBe(true);
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

/** An app as a release before the folding stored it: searchText only lower-cased. */
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
  // ASCII: the same text either way, left alone.
  { name: 'plain', title: 'Plain Notes', description: 'Nothing to fold' },
];

const clip = (text: string) => text.slice(0, 1000);

/** The rows as an older release wrote them (its sync's columns, searchText only lower-cased). */
function oldRowData({ name, title, description }: OldRow) {
  return {
    sourceId: 'upload',
    appId: name,
    name,
    version: '1.0.0',
    versions: ['1.0.0'],
    title,
    description: clip(description),
    searchText: `${name} ${title} ${description}`.toLowerCase(),
    entry: { name, version: '1.0.0', title: { 'en-US': title }, description: { 'en-US': description } },
  };
}

async function withDb<T>(database: TestDatabase, work: (db: Db) => Promise<T>): Promise<T> {
  const db = createPrismaClient(database.url);
  try {
    return await work(db);
  } finally {
    await db.$disconnect();
  }
}

const writeOldRows = (database: TestDatabase, rows: OldRow[]) =>
  withDb(database, (db) => db.catalogApp.createMany({ data: rows.map(oldRowData) }));

/** The rows' search text, by name. */
async function storedSearch(db: Db): Promise<Record<string, string>> {
  const rows = await db.catalogApp.findMany({ select: { name: true, searchText: true }, orderBy: { name: 'asc' } });
  return Object.fromEntries(rows.map((row) => [row.name, row.searchText]));
}

const refolded = (rows: OldRow[]) =>
  Object.fromEntries(
    rows
      .map((row) => [row.name, catalogueSearchText(row.name, row.title, row.description)])
      .sort(([a], [b]) => ((a ?? '') < (b ?? '') ? -1 : 1)),
  );

const env = { DEMO_DATA: '0', BUNDLED_CATALOGUE_FILE: 'off' };

describe.each(databases)('search text stored before the folding, on %s', (kind: DatabaseKind) => {
  test('two instances starting at once both refold in the background, and searches find every old row the new way', async () => {
    const database = await createTestDatabase(kind);
    const servers: TestServer[] = [];
    try {
      await writeOldRows(database, OLD_ROWS);
      servers.push(...(await Promise.all([1, 2].map(() => startTestServer(kind, { database, env })))));
      const [first, second] = servers as [TestServer, TestServer];
      const expected = refolded(OLD_ROWS);
      const stored = () => storedSearch(first.app.db);
      await waitFor(
        async () => (JSON.stringify(await stored()) === JSON.stringify(expected) ? true : undefined),
        'the refold',
      );
      expect(await stored()).toEqual(expected);
      expect(await found(first, 'cafe')).toEqual(['bistro']);
      expect(await found(second, 'uber')).toEqual(['maps']);
      expect(await found(first, 'istanbul')).toEqual(['guide']);
      expect(await found(second, 'kirmizi')).toEqual(['guide']);
      expect(await found(first, 'zurich')).toEqual(['longread']);
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
      await database.drop();
    }
  });

  test('a row written between the refold read and its write keeps what the other writer wrote', async () => {
    const database = await createTestDatabase(kind);
    try {
      await writeOldRows(database, OLD_ROWS.slice(0, 1));
      await withDb(database, async (db) => {
        const [read] = await searchTextsAfter(db, 0, 10);
        if (!read) throw new Error('no row');
        await db.catalogApp.update({ where: { id: read.id }, data: { searchText: 'written meanwhile' } });
        expect(await replaceSearchText(db, read.id, read.searchText, 'refolded')).toBe(false);
        expect((await storedSearch(db)).bistro).toBe('written meanwhile');
        expect(await replaceSearchText(db, read.id, 'written meanwhile', 'refolded')).toBe(true);
        expect((await storedSearch(db)).bistro).toBe('refolded');
      });
    } finally {
      await database.drop();
    }
  });

  test('an app an older instance rewrote after the start is refolded when its catalogue change is announced', async () => {
    const database = await createTestDatabase(kind);
    const [bistro, maps] = OLD_ROWS as [OldRow, OldRow];
    let server: TestServer | null = null;
    try {
      await writeOldRows(database, [bistro]);
      server = await startTestServer(kind, { database, env });
      const running = server;
      // The start scan is over once it has logged the row it folded.
      await waitFor(
        async () => (running.logs.some((line) => line.includes('"run":"scan"')) ? true : undefined),
        'the scan',
      );
      await writeOldRows(database, [maps]);
      expect(await found(running, 'uber')).toEqual([]);
      running.app.services.bus.publish('catalogue:changed', {
        sourceId: 'upload',
        added: [],
        updated: ['maps'],
        removed: [],
      });
      await waitFor(
        async () => ((await found(running, 'uber')).length > 0 ? true : undefined),
        'the refold of the change',
      );
      expect(await found(running, 'uber')).toEqual(['maps']);
    } finally {
      await server?.stop();
      await database.drop();
    }
  });

  test('a server stopped during a long refold stops between rows, leaving the rest to the next start', async () => {
    const database = await createTestDatabase(kind);
    const many = Array.from({ length: 5000 }, (_, index) => ({
      name: `app${index}`,
      title: `Crème ${index}`,
      description: 'Brûlée',
    }));
    const unfolded = (db: Db) => db.catalogApp.count({ where: { searchText: { contains: 'crème' } } });
    let next: TestServer | null = null;
    try {
      await writeOldRows(database, many);
      // Stopped as soon as it has started: the scan has just begun, and the stop does not wait for its end.
      const server = await startTestServer(kind, { database, env });
      await server.stop();
      expect(await withDb(database, unfolded)).toBeGreaterThan(0);
      next = await startTestServer(kind, { database, env });
      const running = next;
      await waitFor(async () => ((await unfolded(running.app.db)) === 0 ? true : undefined), 'the next refold');
    } finally {
      await next?.stop();
      await database.drop();
    }
  });
});
