import { afterEach, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import { seedDemoData } from '../src/db/demo-data.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { AppsQuery } from './support/operations.js';
import { dataOf, execute, startTestServer, type TestServer, waitFor } from './support/server.js';

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

/** Each demo app as `user/app` with its stage, what the README's quick start promises. */
async function demoStages(server: TestServer) {
  const { apps } = dataOf(await execute(server, AppsQuery, { first: 100 }));
  return Object.fromEntries(
    apps.edges.map(({ node }) => [
      `${node.userId}/${node.appName}`,
      { stage: node.stage, task: node.activeTask?.type ?? null },
    ]),
  );
}

/** The demo apps that are settled at rest, in the stage a new user finds them in. */
const AT_REST = {
  'alice/jellyfin': { stage: 'RUNNING', task: null },
  'alice/immich': { stage: 'RUNNING', task: null },
  'alice/ollama': { stage: 'STOPPED', task: null },
  'alice/nextcloud': { stage: 'FAILED', task: null },
  'bob/gitea': { stage: 'RUNNING', task: null },
  'bob/grafana': { stage: 'RUNNING', task: null },
  'admin/vaultwarden': { stage: 'RUNNING', task: null },
  'admin/syncthing': { stage: 'RUNNING', task: null },
};

describe('what a new user sees of the demo data', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  test('at start two installs are in progress, next to running, stopped and failed apps', async () => {
    // The simulated app service stands still (startTestServer's pace), so the installs stay in progress.
    server = await startTestServer('sqlite');
    expect(await demoStages(server)).toEqual({
      ...AT_REST,
      'bob/code-server': { stage: 'INSTALLING', task: 'INSTALL' },
      'admin/home-assistant': { stage: 'INSTALLING', task: 'INSTALL' },
    });
  });

  test('the engine finishes those installs on its own: then 8 apps run, 1 is stopped, 1 failed with its reason', async () => {
    server = await startTestServer('sqlite', { env: { SIMULATED_STEP_MS: '0' } });
    const settled = await waitFor(async () => {
      const stages = await demoStages(server as TestServer);
      return Object.values(stages).some((app) => app.task) ? undefined : stages;
    }, 'the demo installs to finish');
    expect(settled).toEqual({
      ...AT_REST,
      'bob/code-server': { stage: 'RUNNING', task: null },
      'admin/home-assistant': { stage: 'RUNNING', task: null },
    });
    const { apps } = dataOf(await execute(server, AppsQuery, { first: 100, filter: { stage: ['FAILED'] } }));
    expect(apps.edges.map(({ node }) => node.reason)).toEqual(['missing env value NEXTCLOUD_ADMIN_PASSWORD']);
  });
});
