import { afterEach, describe, expect, test } from 'vitest';
import { availableDatabases, createTestDatabase } from './support/databases.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { proxyDatabase, type TcpProxy } from './support/tcp-proxy.js';

/**
 * A PostgreSQL that stops answering (packets dropped, no reset) while the pool holds open
 * connections: requests sent on them fail within DATABASE_QUERY_TIMEOUT_MS, not after pg's own
 * backstop of a minute. The server reaches a fresh database only through a proxy that freezes.
 */

const databases = await availableDatabases();
const QUERY_TIMEOUT_MS = 3000;
/** The connection timeout (5 s) and the query timeout, plus room for a loaded machine. */
const ANSWER_BOUND_MS = 12_000;

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

async function startProxiedServer(): Promise<{ server: TestServer; proxy: TcpProxy }> {
  const database = await createTestDatabase('postgresql');
  disposers.push(() => database.drop());
  const { proxy, url: proxiedUrl } = await proxyDatabase(database.url);
  disposers.push(() => proxy.close());
  const server = await startTestServer('postgresql', {
    database: { ...database, url: proxiedUrl },
    env: { ...AUTH_ENV, DATABASE_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS) },
  });
  disposers.push(async () => {
    proxy.restore(); // a server stopping during the freeze would wait for its database in vain
    await server.stop();
  });
  return { server, proxy };
}

interface Answer {
  status: number | 'no answer';
  codes: (string | undefined)[];
  ms: number;
}

/** `{ tasks(first: 1) { totalCount } }`, timed; 'no answer' when none comes within 30 s. */
async function countTasks(server: TestServer): Promise<Answer> {
  const started = Date.now();
  try {
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKENS.alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ tasks(first: 1) { totalCount } }' }),
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await response.json()) as { errors?: { extensions?: { code?: string } }[] };
    return {
      status: response.status,
      codes: (body.errors ?? []).map((e) => e.extensions?.code),
      ms: Date.now() - started,
    };
  } catch {
    return { status: 'no answer', codes: [], ms: Date.now() - started };
  }
}

const fourAtOnce = (server: TestServer) => Promise.all([1, 2, 3, 4].map(() => countTasks(server)));

describe.runIf(databases.includes('postgresql'))('a PostgreSQL that stops answering', () => {
  test('requests on pooled connections answer 503 UNAVAILABLE within the query timeout, and succeed again once it answers', async () => {
    const { server, proxy } = await startProxiedServer();
    // Four at once, so the pool holds several open connections when the database goes silent.
    for (const answer of await fourAtOnce(server)) expect(answer.status).toBe(200);

    proxy.freeze();
    const during = await fourAtOnce(server);
    for (const answer of during) {
      expect(answer.status).toBe(503);
      expect(answer.codes).toEqual(['UNAVAILABLE']);
      expect(answer.ms).toBeLessThan(ANSWER_BOUND_MS);
    }

    // A connection cut by the restore may fail one more request before the pool drops it.
    proxy.restore();
    await waitFor(
      async () => ((await countTasks(server)).status === 200 ? true : undefined),
      'a 200 after the restore',
    );
  }, 60_000);
});
