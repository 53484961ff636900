import { afterEach, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import { seedDemoData } from '../src/db/demo-data.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';

const databases = await availableDatabases();

// Several instances share a database only on PostgreSQL (one SQLite file serves one process).
describe.runIf(databases.includes('postgresql'))('demo data on postgresql', () => {
  const kind = 'postgresql';
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await database?.drop();
    database = undefined;
  });

  test('two instances seeding one empty database at once: one seeds, the other sees it done, neither fails', async () => {
    database = await createTestDatabase(kind);
    const clients = [createPrismaClient(database.url), createPrismaClient(database.url)];
    try {
      const seeded = await Promise.all(clients.map((client) => seedDemoData(client)));
      expect(seeded.sort()).toEqual([false, true]);
      const [catalogue, apps] = await Promise.all([clients[0]!.catalogApp.count(), clients[0]!.appState.count()]);
      expect(apps).toBeGreaterThan(0);
      // Seeded once: a second seeding would have doubled nothing (unique keys) but failed; the
      // counts are those of one seeding.
      expect(await seedDemoData(clients[1]!)).toBe(false);
      expect(await clients[1]!.catalogApp.count()).toBe(catalogue);
      expect(await clients[1]!.appState.count()).toBe(apps);
    } finally {
      await Promise.all(clients.map((client) => client.$disconnect()));
    }
  });
});

describe.each(databases)('demo data on %s', (kind) => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await database?.drop();
    database = undefined;
  });

  test('every installed demo app has the entrance an "open" needs; apps being installed or failed have none yet', async () => {
    database = await createTestDatabase(kind);
    const client = createPrismaClient(database.url);
    try {
      expect(await seedDemoData(client)).toBe(true);
      const rows = await client.appState.findMany({ orderBy: { id: 'asc' } });
      const installed = rows.filter((row) => row.installedVersion !== null);
      expect(installed.length).toBeGreaterThan(0);
      for (const row of installed) {
        expect(row.entrances, row.appName).toEqual([
          expect.objectContaining({
            name: row.appName,
            url: expect.stringMatching(new RegExp(`^https://[0-9a-f]{8}\\.${row.userId}\\.olares\\.local$`)),
            state: row.state === 'stopped' ? 'stopped' : 'running',
          }),
        ]);
      }
      for (const row of rows.filter((each) => each.installedVersion === null)) expect(row.entrances).toBeNull();
    } finally {
      await client.$disconnect();
    }
  });
});
