import { spawn } from 'node:child_process';
import pg from 'pg';
import { afterEach, describe, expect, test } from 'vitest';
import { availableDatabases, createTestDatabase, POSTGRES_URL, type TestDatabase } from './support/databases.js';
import { startTestServer, type TestServer, waitFor } from './support/server.js';
import { rawRequest } from './support/untyped.js';

/**
 * A database that is there but refuses the server: dropped, its role's login taken away, or (on
 * SQLite) a file that cannot grow. Each is the database away, as a cut network is: requests
 * answer UNAVAILABLE (HTTP 503, retry later), not an unexpected error logged as a crash.
 */

const databases = await availableDatabases();
const APPS = '{ apps(first: 5) { totalCount } }';
const INSTALL = `mutation { installApp(input: { sourceId: "market.olares", appName: "n8n", version: "1.70.1" }) {
  __typename ... on Error { code message } } }`;

/** A write (local development mode: every request is the admin). */
const addSource = (i: number) => `mutation { addMarketSource(input: { sourceId: "filler-${i}",
  title: "${'Filler '.repeat(10)}${i}", baseUrl: "https://filler.example/${'x'.repeat(500)}" }) { __typename } }`;

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

async function serverOn(database: TestDatabase, env: Record<string, string> = {}): Promise<TestServer> {
  const server = await startTestServer(database.kind, { database, env: { DEMO_DATA: '0', ...env } });
  disposers.push(() => server.stop());
  return server;
}

/**
 * The error lines a request logged: an unexpected error in its operation, or a failed request.
 * Only these: the task engine and the periodic jobs log at error level while the database is
 * away, as they should, at any moment, a request's included.
 */
const REQUEST_ERRORS = /"msg":"(unexpected error in a GraphQL operation|request failed)"/;
const requestErrorsLogged = (server: TestServer, since: number) =>
  server.logs.slice(since).filter((line) => line.includes('"level":50') && REQUEST_ERRORS.test(line));

/** The request is refused as UNAVAILABLE with 503, and no error is logged for it. */
async function expectUnavailable(server: TestServer, query: string) {
  const logged = server.logs.length;
  const response = await rawRequest(server, { query });
  expect(response.status, response.text).toBe(503);
  expect(response.body?.errors?.map((error) => error.extensions?.code)).toEqual(['UNAVAILABLE']);
  expect(requestErrorsLogged(server, logged)).toEqual([]);
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

describe.runIf(databases.includes('postgresql'))('PostgreSQL that refuses the server', () => {
  test('a dropped database: queries and mutations answer UNAVAILABLE', async () => {
    const database = await createTestDatabase('postgresql');
    disposers.push(() => database.drop());
    const server = await serverOn(database, { SIMULATED_STEP_MS: '10' });
    expect((await rawRequest(server, { query: APPS })).status).toBe(200);
    const installed = await rawRequest(server, { query: INSTALL });
    expect(installed.body?.data, installed.text).toEqual({ installApp: { __typename: 'InstallAppSuccess' } });
    // Installed, so whether an upgrade is offered needs the catalogue.
    await waitFor(async () => {
      const answer = await rawRequest(server, { query: '{ runtimeSnapshot { apps { installedVersion } } }' });
      const data = answer.body?.data as
        | { runtimeSnapshot: { apps: { installedVersion: string | null }[] } }
        | undefined;
      return data?.runtimeSnapshot.apps[0]?.installedVersion ?? undefined;
    }, 'n8n installed');
    await admin((client) => client.query(`DROP DATABASE ${new URL(database.url).pathname.slice(1)} WITH (FORCE)`));
    await expectUnavailable(server, APPS);
    await expectUnavailable(server, INSTALL);
    // Data beside the failed field (the viewer needs no database): a partial answer, 200.
    const partial = await rawRequest(server, { query: '{ viewer { userId } task(taskId: "t-1") { taskId } }' });
    expect(partial.status, partial.text).toBe(200);
    expect(partial.body?.data).toEqual({ viewer: { userId: 'admin' }, task: null });
    expect(partial.body?.errors?.map((error) => [error.path, error.extensions?.code])).toEqual([
      [['task'], 'UNAVAILABLE'],
    ]);
    // The same field alone: its null is no answer, the error is the whole of it (503, retry).
    await expectUnavailable(server, '{ task(taskId: "t-1") { taskId } }');
    // One root field, served from memory, with fields deep inside it that needed the database.
    const snapshot = await rawRequest(server, {
      query: '{ runtimeSnapshot { apps { appName catalogApp { name } upgradeAvailable sourceRemoved } } }',
    });
    expect(snapshot.status, snapshot.text).toBe(200);
    expect(snapshot.body?.data).toEqual({
      runtimeSnapshot: { apps: [{ appName: 'n8n', catalogApp: null, upgradeAvailable: null, sourceRemoved: null }] },
    });
    expect(snapshot.body?.errors?.map((error) => error.extensions?.code)).toEqual([
      'UNAVAILABLE',
      'UNAVAILABLE',
      'UNAVAILABLE',
    ]);
  });

  test('a role whose login was taken away: UNAVAILABLE, and answers again once it is given back', async () => {
    const role = `market_refused_${Date.now().toString(36)}`;
    await admin((client) => client.query(`CREATE ROLE ${role} LOGIN`));
    // Dropped after the database, which holds the grants that depend on the role.
    disposers.push(async () => {
      await admin((client) => client.query(`DROP ROLE ${role}`));
    });
    const database = await createTestDatabase('postgresql');
    disposers.push(() => database.drop());
    // The tables the migration created (as postgres) are the role's to use.
    const owner = new pg.Client({ connectionString: database.url });
    await owner.connect();
    await owner.query(`GRANT ALL ON ALL TABLES IN SCHEMA public TO ${role}`);
    await owner.query(`GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
    await owner.end();
    const url = new URL(database.url);
    url.username = role;
    const server = await serverOn({ ...database, url: url.toString() });
    expect((await rawRequest(server, { query: APPS })).status).toBe(200);

    await admin(async (client) => {
      await client.query(`ALTER ROLE ${role} NOLOGIN`);
      await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
    });
    await expectUnavailable(server, APPS);
    await admin((client) => client.query(`ALTER ROLE ${role} LOGIN`));
    const back = await rawRequest(server, { query: APPS });
    expect(back.status, back.text).toBe(200);
  });
});

describe('SQLite whose file cannot grow (a disk full)', () => {
  test('a write it refuses answers UNAVAILABLE, and writes work again once there is room', async () => {
    const database = await createTestDatabase('sqlite');
    disposers.push(() => database.drop());
    const server = await serverOn(database, { SIMULATED_STEP_MS: '10' });
    const db = server.app.db;
    // SQLite's own limit on the file's pages, set to what it holds: the next page a write needs fails (SQLITE_FULL).
    const [counted] = await db.$queryRawUnsafe<{ page_count: bigint }[]>('PRAGMA page_count');
    await db.$queryRawUnsafe(`PRAGMA max_page_count = ${counted?.page_count}`);
    const logged = server.logs.length;
    // A few small writes may fit in the pages' free room: write until the first refusal.
    let refused = await rawRequest(server, { query: addSource(0) });
    for (let i = 1; refused.status === 200 && i < 200; i++) refused = await rawRequest(server, { query: addSource(i) });
    expect(refused.status, refused.text).toBe(503);
    expect(refused.body?.errors?.map((error) => error.extensions?.code)).toEqual(['UNAVAILABLE']);
    expect(requestErrorsLogged(server, logged)).toEqual([]);

    await db.$queryRawUnsafe('PRAGMA max_page_count = 1073741823');
    const again = await rawRequest(server, { query: addSource(1000) });
    expect(again.body?.data, again.text).toEqual({ addMarketSource: { __typename: 'AddMarketSourceSuccess' } });
  });
});

/**
 * Another process (an operator's sqlite3, a backup) holding the SQLite file's write lock: a child
 * process with better-sqlite3 in `BEGIN EXCLUSIVE` until told to commit.
 */
async function holdWriteLock(file: string): Promise<{ release(): Promise<void> }> {
  const holder = spawn(
    process.execPath,
    [
      '-e',
      `const db = require('better-sqlite3')(${JSON.stringify(file)});
       db.exec('BEGIN EXCLUSIVE');
       console.log('locked');
       process.stdin.once('data', () => { db.exec('COMMIT'); process.exit(0); });`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = new Promise((resolve) => holder.once('exit', resolve));
  disposers.push(async () => {
    holder.kill();
    await exited;
  });
  await new Promise((resolve) => holder.stdout.once('data', resolve));
  return {
    async release() {
      holder.stdin.write('commit\n');
      await exited;
    },
  };
}

/** Milliseconds `work` took, with its result. */
async function timed<T>(work: () => Promise<T>): Promise<[number, T]> {
  const started = performance.now();
  const result = await work();
  return [performance.now() - started, result];
}

describe('SQLite whose write lock another process holds', () => {
  test('the server stays responsive, writes answer UNAVAILABLE at once, and succeed once the lock goes', async () => {
    const database = await createTestDatabase('sqlite');
    disposers.push(() => database.drop());
    const server = await serverOn(database);
    const lock = await holdWriteLock(database.url.slice('file:'.length));
    const logged = server.logs.length;

    // /health, polled all through the lock (3 s, the background writers meeting it meanwhile).
    const healthTimes: number[] = [];
    const polling = (async () => {
      const until = performance.now() + 3000;
      while (performance.now() < until) {
        const [ms, response] = await timed(() => fetch(`${server.url}/health`));
        expect(response.status).toBe(200);
        healthTimes.push(ms);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const [writeMs] = await timed(() => expectUnavailable(server, addSource(1)));
    expect(writeMs).toBeLessThan(2000);
    // Reads go on from the WAL, and readiness answers in time (the database answers SELECT 1).
    expect((await rawRequest(server, { query: APPS })).status).toBe(200);
    const [readinessMs, readiness] = await timed(() => fetch(`${server.url}/readiness`));
    expect(readiness.status).toBe(200);
    expect(readinessMs).toBeLessThan(500);
    await polling;
    expect(Math.max(...healthTimes)).toBeLessThan(500);
    // The background writers that met the lock said so once each, not at every run.
    const warned = server.logs
      .slice(logged)
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .filter(({ level }) => level >= 40)
      .map(({ msg }) => msg);
    expect(warned.length, warned.join('\n')).toBe(new Set(warned).size);

    await lock.release();
    const again = await rawRequest(server, { query: addSource(1) });
    expect(again.body?.data, again.text).toEqual({ addMarketSource: { __typename: 'AddMarketSourceSuccess' } });
  });
});
