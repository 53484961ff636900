import pg from 'pg';
import { afterEach, describe, expect, test } from 'vitest';
import { availableDatabases, createTestDatabase } from './support/databases.js';
import { metricValue, readinessOf } from './support/metrics.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { proxyDatabase, type TcpProxy } from './support/tcp-proxy.js';

/**
 * The PostgreSQL pool as an operator sizes and reads it: DATABASE_POOL_SIZE connections, a query
 * that finds them all in use for its whole wait answered "database busy" (not "unavailable"), and
 * /readiness still ready while the pool is busy, not while the database is cut off. The pool is
 * held busy for real: the test locks the table the queries read, so the server's connections
 * wait inside PostgreSQL; the server reaches its database through a proxy the test cuts.
 */

const databases = await availableDatabases();
const POOL_SIZE = 2;
const TASKS = JSON.stringify({ query: '{ tasks(first: 1) { totalCount } }' });

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

async function startPooledServer(): Promise<{ server: TestServer; proxy: TcpProxy; direct: string }> {
  const database = await createTestDatabase('postgresql');
  disposers.push(() => database.drop());
  const { proxy, url } = await proxyDatabase(database.url);
  disposers.push(() => proxy.close());
  const server = await startTestServer('postgresql', {
    database: { ...database, url },
    // Places enough for every query of the test: the pool, not the per-user limit, is what is full.
    env: {
      ...AUTH_ENV,
      DEMO_DATA: '0',
      DATABASE_POOL_SIZE: String(POOL_SIZE),
      MAX_OPERATIONS_IN_FLIGHT_PER_USER: '20',
    },
  });
  disposers.push(async () => {
    proxy.restore();
    await server.stop();
  });
  return { server, proxy, direct: database.url };
}

/** Holds an exclusive lock on "Task" until the returned function is called: every read of tasks waits. */
async function lockTasks(url: string): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE "Task" IN ACCESS EXCLUSIVE MODE');
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await client.query('ROLLBACK');
    await client.end();
  };
  disposers.push(release);
  return release;
}

/** The server's statements waiting for the lock, as PostgreSQL sees them. */
async function waitingOnLock(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    return rows[0]?.n ?? 0;
  } finally {
    await client.end();
  }
}

const askTasks = (server: TestServer) =>
  fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.alice}` },
    body: TASKS,
  });

describe.runIf(databases.includes('postgresql'))('the PostgreSQL pool', () => {
  test('holds DATABASE_POOL_SIZE connections; a query that waited for one in vain is told the database is busy, and readiness stays ready', async () => {
    const { server, direct } = await startPooledServer();
    const release = await lockTasks(direct);
    const asked = Array.from({ length: POOL_SIZE + 2 }, () => askTasks(server));
    // The pool's two connections wait inside PostgreSQL; the two other queries wait for a connection.
    await waitFor(async () => ((await waitingOnLock(direct)) === POOL_SIZE ? true : undefined), 'the pool busy');
    await waitFor(
      async () => ((await metricValue(server, 'market_database_pool_waiting')) === 2 ? true : undefined),
      'two queries waiting for a connection',
    );
    expect(await metricValue(server, 'market_database_pool_connections{state="in_use"}')).toBe(POOL_SIZE);
    expect(await metricValue(server, 'market_database_pool_connections{state="size"}')).toBe(POOL_SIZE);
    // Busy is not unready: the database answers, on the probe's own connection.
    expect(await readinessOf(server)).toEqual({ status: 200, body: { status: 'ready' } });

    // 5 s into their wait, the two queries without a connection are answered: busy, retry in a second.
    const busy = await Promise.race(
      asked.map((answer) =>
        answer.then((response) => (response.status === 503 ? response : new Promise<never>(() => {}))),
      ),
    );
    expect(busy.headers.get('retry-after')).toBe('1');
    expect(await busy.json()).toEqual({
      data: null,
      errors: [
        {
          message: 'The database is busy (every connection of this server was in use); retry shortly.',
          path: ['tasks'],
          extensions: { code: 'UNAVAILABLE' },
        },
      ],
    });
    expect(await waitingOnLock(direct)).toBe(POOL_SIZE);
    await release();
    const statuses = (await Promise.all(asked)).map((response) => response.status).sort();
    expect(statuses).toEqual([200, 200, 503, 503]);
    expect(await metricValue(server, 'market_database_pool_busy_timeouts_total')).toBe(2);
    const logged = server.logs.filter((line) => line.includes('"status":503') && line.includes('database is busy'));
    expect(logged).toHaveLength(2);
  }, 60_000);

  test('a database cut off is unavailable, not busy, and the instance is not ready', async () => {
    const { server, proxy } = await startPooledServer();
    expect(await readinessOf(server)).toEqual({ status: 200, body: { status: 'ready' } });
    proxy.cut('hold');
    expect(await readinessOf(server)).toEqual({
      status: 503,
      body: { status: 'not ready', error: 'database did not answer in time' },
    });
    // More queries than connections: those queued behind connections still being established are not "busy".
    const answers = await Promise.all(Array.from({ length: POOL_SIZE + 2 }, () => askTasks(server)));
    const messages = await Promise.all(
      answers.map(
        async (response) => ((await response.json()) as { errors: { message: string }[] }).errors[0]?.message,
      ),
    );
    expect(answers.map((response) => response.status)).toEqual([503, 503, 503, 503]);
    expect(new Set(messages)).toEqual(new Set(['The database is unavailable; retry shortly.']));
    expect(await metricValue(server, 'market_database_pool_busy_timeouts_total')).toBe(0);
    proxy.restore();
    await waitFor(async () => ((await readinessOf(server)).status === 200 ? true : undefined), 'ready again');
  }, 60_000);
});
