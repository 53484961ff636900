import { print } from 'graphql';
import pg from 'pg';
import { describe, expect, test, vi } from 'vitest';
import { type Turn, UserPlaces, WAITING_PER_USER } from '../src/http/operations-in-flight.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { metricValue } from './support/metrics.js';
import { InstallAppMutation } from './support/operations.js';
import { UNINSTALLED_APPS } from './support/rows.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { subscribe } from './support/subscriptions.js';
import { proxyDatabase, type TcpProxy } from './support/tcp-proxy.js';

/**
 * One user's queries and mutations executing at once (MAX_OPERATIONS_IN_FLIGHT_PER_USER): without
 * a bound, one user's reads held every connection of the PostgreSQL pool and the others waited or
 * got 503. The database's answers are held by a TCP proxy, so that operations stay in flight.
 */

const databases = await availableDatabases();
const TASKS = JSON.stringify({ query: '{ tasks(first: 1) { totalCount } }' });

describe('UserPlaces', () => {
  test('a place that frees goes to the first operation waiting, and the user leaves once none runs or waits', async () => {
    const places = new UserPlaces(1, () => false, 2);
    expect(places.take('alice')).toBe(true);
    const order: string[] = [];
    const second = places.take('alice') as Promise<Turn>;
    const third = places.take('alice') as Promise<Turn>;
    void second.then(() => order.push('second'));
    void third.then(() => order.push('third'));
    expect(places.take('alice')).toBe('user');
    expect(places.take('bob')).toBe(true);
    places.release('alice');
    expect(await second).toBe('given');
    places.release('alice');
    expect(await third).toBe('given');
    expect(order).toEqual(['second', 'third']);
    places.release('alice');
    places.release('bob');
    expect(places.size).toBe(0);
  });

  test('a place that frees passes over the operations whose client left, which are told so and never hold it', async () => {
    const left = new Set<string>();
    const places = new UserPlaces<string>(1, (waiter) => left.has(waiter), 5);
    expect(places.take('alice', 'first')).toBe(true);
    const gone = places.take('alice', 'gone') as Promise<Turn>;
    const present = places.take('alice', 'present') as Promise<Turn>;
    expect(places.waitingCount).toBe(2);
    left.add('gone');
    places.release('alice');
    expect([await gone, await present]).toEqual(['gone', 'given']);
    expect(places.waitingCount).toBe(0);
    places.release('alice');
    expect(places.size).toBe(0);
  });

  test('an operation whose request would take the waiting bytes past their bound is refused; the bytes come back as the waiting ones run', async () => {
    const places = new UserPlaces(1, () => false, 10, 1000, 100);
    expect(places.take('alice', undefined, 1000)).toBe(true); // one running holds no waiting bytes
    const first = places.take('alice', undefined, 60) as Promise<Turn>;
    expect(places.take('bob', undefined, 1000)).toBe(true);
    expect(places.take('bob', undefined, 50)).toBe('instance');
    const second = places.take('bob', undefined, 40) as Promise<Turn>;
    expect(places.waitingBytes).toBe(100);
    places.release('alice');
    expect(await first).toBe('given');
    expect(places.waitingBytes).toBe(40);
    expect(places.take('alice', undefined, 60)).toBeInstanceOf(Promise);
    places.release('bob');
    expect(await second).toBe('given');
    expect(places.waitingBytes).toBe(60);
  });

  test('an operation that waited longer than its limit is told so, and leaves the queue', async () => {
    vi.useFakeTimers();
    try {
      const places = new UserPlaces(1, () => false, 2, 1000);
      expect(places.take('alice')).toBe(true);
      const waiting = places.take('alice') as Promise<Turn>;
      vi.advanceTimersByTime(1000);
      expect(await waiting).toBe('late');
      // The place it no longer waits for is not handed to it: the user leaves once it comes back.
      places.release('alice');
      expect(places.size).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe.runIf(databases.includes('postgresql'))('operations in flight per user, on a server', () => {
  test('past its places and the operations waiting, a user gets 429; the waiting ones run once places free; other users are not refused', async () => {
    await onHeldDatabase(2, async ({ server, proxy }) => {
      const ask = (token: string) =>
        fetch(server.graphqlUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: TASKS,
        });
      proxy.holdAnswers();
      // Two run (their statements held), a thousand wait: whichever arrives last of these is refused.
      const alices = Array.from({ length: 2 + WAITING_PER_USER + 1 }, () => ask(TOKENS.alice));
      const refused = await Promise.race(
        alices.map((answer) =>
          answer.then((response) => (response.status === 429 ? response : new Promise<never>(() => {}))),
        ),
      );
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(await refused.json()).toMatchObject({
        errors: [
          {
            message: expect.stringContaining('at once on this instance (MAX_OPERATIONS_IN_FLIGHT_PER_USER'),
            extensions: { code: 'LIMIT_EXCEEDED' },
          },
        ],
      });
      // Another user's places are his own: a read needing no database is answered while alice's wait.
      const viewer = await fetch(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.bob}` },
        body: JSON.stringify({ query: '{ viewer { userId } }' }),
      });
      expect(await viewer.json()).toEqual({ data: { viewer: { userId: 'bob' } } });
      const bobs = ask(TOKENS.bob);
      proxy.releaseAnswers();
      const statuses = (await Promise.all(alices)).map((response) => response.status);
      expect(statuses.filter((status) => status === 200)).toHaveLength(2 + WAITING_PER_USER);
      expect(statuses.filter((status) => status === 429)).toHaveLength(1);
      expect((await bobs).status).toBe(200);
      // Every place came back: a burst as large as the places and the waiting ones is answered in full.
      const again = await Promise.all(Array.from({ length: 2 + WAITING_PER_USER }, () => ask(TOKENS.alice)));
      expect(again.map((response) => response.status).filter((status) => status !== 200)).toEqual([]);
    });
  }, 60_000);

  test('past MAX_WAITING_BYTES of requests waiting on the instance, large requests are refused 429 instead of waiting; those within it run', async () => {
    // A query padded to ~300 KB (whitespace, which graphql-js skips): each waiting one holds its body.
    const body = JSON.stringify({ query: `{ tasks(first: 1) { totalCount } }${' '.repeat(300_000)}` });
    const room = 6;
    const env = { MAX_WAITING_BYTES: String(room * body.length + body.length / 2) };
    await onHeldDatabase(
      1,
      async ({ server, proxy }) => {
        const ask = () =>
          fetch(server.graphqlUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.alice}` },
            body,
          });
        proxy.holdAnswers();
        // One runs (its statement held), six wait (the bytes allow no more), the other 33 are refused at once.
        const answers = Array.from({ length: 40 }, ask);
        const refusals: Response[] = [];
        for (const answer of answers)
          void answer.then((response) => response.status === 429 && refusals.push(response));
        await waitFor(async () => (refusals.length === 40 - 1 - room ? true : undefined), 'the refusals');
        expect(await metricValue(server, 'market_operations_waiting')).toBe(room);
        for (const refused of refusals) {
          expect(refused.headers.get('retry-after')).toBe('1');
          expect(await refused.json()).toMatchObject({
            errors: [{ message: expect.stringContaining('MAX_WAITING_BYTES'), extensions: { code: 'LIMIT_EXCEEDED' } }],
          });
        }
        proxy.releaseAnswers();
        const statuses = (await Promise.all(answers)).map((response) => response.status);
        expect(statuses.filter((status) => status === 200)).toHaveLength(1 + room);
        expect(statuses.filter((status) => status === 429)).toHaveLength(40 - 1 - room);
        expect(await waitForMetric(server, 'market_operations_waiting', 0)).toBe(0);
      },
      env,
    );
  }, 60_000);

  test('an operation whose client left while it waited for a place never runs: a mutation over HTTP or a WebSocket changes nothing', async () => {
    await onHeldDatabase(1, async ({ server, proxy, database }) => {
      const [overHttp, overWebSocket] = UNINSTALLED_APPS;
      const install = (appName: string, version: string) => ({
        query: print(InstallAppMutation),
        variables: { input: { sourceId: 'market.olares', appName, version } },
      });
      const ask = (body: object, signal?: AbortSignal) =>
        fetch(server.graphqlUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.alice}` },
          body: JSON.stringify(body),
          ...(signal ? { signal } : {}),
        });
      proxy.holdAnswers();
      // alice's one place, held by one of two reads (the proxy holds their answers); the other waits first.
      const reads = [ask(JSON.parse(TASKS)), ask(JSON.parse(TASKS))];
      await waitForMetric(server, 'market_operations_waiting', 1);
      const leaving = new AbortController();
      const abandoned = ask(install(overHttp.appName, overHttp.version), leaving.signal).catch(() => 'aborted');
      await waitForMetric(server, 'market_operations_waiting', 2);
      const { variables } = install(overWebSocket.appName, overWebSocket.version);
      const socket = await subscribe(server, InstallAppMutation, variables, { token: TOKENS.alice });
      await waitForMetric(server, 'market_operations_waiting', 3);
      leaving.abort();
      await socket.close();
      // The server has seen both clients go: the request's log line, the WebSocket's.
      await waitFor(
        async () => (server.logs.some((line) => /"cutBy":"client"/.test(line)) ? true : undefined),
        'the request cut',
      );
      await waitFor(
        async () => (server.logs.some((line) => line.includes('websocket closed')) ? true : undefined),
        'the socket closed',
      );
      // Behind them, a client that stays.
      const last = ask(JSON.parse(TASKS));
      await waitForMetric(server, 'market_operations_waiting', 4);
      proxy.releaseAnswers();
      expect((await Promise.all([...reads, last])).map((response) => response.status)).toEqual([200, 200, 200]);
      expect(await abandoned).toBe('aborted');
      // Neither install happened (the last read ran after their turns): alice has no task for either app.
      const direct = new pg.Client({ connectionString: database.url });
      await direct.connect();
      const { rows } = await direct.query('SELECT "appName" FROM "Task" WHERE "userId" = $1 AND "appName" = ANY($2)', [
        'alice',
        [overHttp.appName, overWebSocket.appName],
      ]);
      await direct.end();
      expect(rows).toEqual([]);
      expect(await waitForMetric(server, 'market_operations_waiting', 0)).toBe(0);
      expect(await metricValue(server, 'market_graphql_errors_total{code="CLIENT_GONE"}')).toBe(2);
    });
  }, 60_000);
});

/** Polls /metrics until `series` is `value` (the scrape reads figures in memory, never the held database). */
function waitForMetric(server: TestServer, series: string, value: number): Promise<number> {
  return waitFor(async () => ((await metricValue(server, series)) === value ? value : undefined), `${series} ${value}`);
}

/**
 * A PostgreSQL server whose database answers pass through a proxy the test can hold, with
 * `places` operations in flight per user; everything stops once `run` has ended.
 */
async function onHeldDatabase(
  places: number,
  run: (parts: { server: TestServer; proxy: TcpProxy; database: TestDatabase }) => Promise<void>,
  env: Record<string, string> = {},
): Promise<void> {
  const database = await createTestDatabase('postgresql');
  const { proxy, url } = await proxyDatabase(database.url);
  const server = await startTestServer('postgresql', {
    database: { ...database, url },
    env: { ...AUTH_ENV, MAX_OPERATIONS_IN_FLIGHT_PER_USER: String(places), ...env },
  });
  try {
    await run({ server, proxy, database });
  } finally {
    proxy.releaseAnswers();
    await server.stop();
    await proxy.close();
    await database.drop();
  }
}
