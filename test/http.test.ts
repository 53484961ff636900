import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { parse, validate } from 'graphql';
import { serverAudits } from 'graphql-http';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { sqliteFilePath } from '../src/db/client.js';
import { repeatedSelection } from '../src/http/repeated-fields.js';
import { schema } from '../src/schema/index.js';
import { availableDatabases, POSTGRES_URL } from './support/databases.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { componentOf, rawRequest } from './support/untyped.js';

const databases = await availableDatabases();

describe('GraphQL over HTTP', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { MAX_BODY_BYTES: '4096' } });
  });
  afterAll(() => server?.stop());

  describe('graphql-http compliance audits', () => {
    const audits = serverAudits({ url: () => server.graphqlUrl });
    test.each(audits.filter((audit) => audit.name.startsWith('MUST')).map((audit) => [audit.name, audit] as const))(
      '%s',
      async (_name, audit) => {
        const result = await audit.fn();
        expect(result.status, 'reason' in result ? result.reason : '').toBe('ok');
      },
    );
  });

  const post = (body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    fetch(server.graphqlUrl, { method: 'POST', headers, body });

  test('a malformed JSON body is a 400 with a clear error', async () => {
    const response = await post('{"query": "{ viewer { userId } ');
    expect(response.status).toBe(400);
    const body = (await response.json()) as { errors: { message: string }[] };
    expect(body.errors[0]?.message).toMatch(/JSON/i);
  });

  test('a query that is not a string is a 400 saying so, whatever the Accept', async () => {
    for (const query of [{ a: 1 }, 5, ['{ viewer { userId } }']]) {
      for (const accept of ['application/json', 'application/graphql-response+json', '*/*']) {
        const response = await post(JSON.stringify({ query }), { 'content-type': 'application/json', accept });
        expect(response.status, `${JSON.stringify(query)} ${accept}`).toBe(400);
        const body = (await response.json()) as { errors: { message: string; extensions?: { code?: string } }[] };
        expect(body.errors[0]).toMatchObject({
          message: expect.stringMatching(/"query" param to be a string/),
          extensions: { code: 'BAD_REQUEST' },
        });
      }
    }
  });

  test('an unsupported content type is refused (415) with an error saying what to send', async () => {
    // The answers' media type is no request body type (Yoga answered it with an empty 415).
    for (const contentType of ['text/xml', 'application/graphql-response+json']) {
      const response = await post(JSON.stringify({ query: '{ viewer { userId } }' }), { 'content-type': contentType });
      expect(response.status).toBe(415);
      const body = (await response.json()) as { errors: { message: string; extensions?: { code?: string } }[] };
      expect(body.errors[0]).toMatchObject({
        message: expect.stringMatching(/^POST bodies must be application\/json/),
        extensions: { code: 'VALIDATION' },
      });
    }
  });

  test('a body over MAX_BODY_BYTES is refused with 413 before it is parsed', async () => {
    const response = await post(JSON.stringify({ query: `{ viewer { userId } } # ${'x'.repeat(5000)}` }));
    expect(response.status).toBe(413);
    const body = (await response.json()) as { errors: { message: string }[] };
    expect(body.errors[0]?.message).toContain('4096 bytes');
  });

  test('a client expecting 100 Continue is told to send its body only when the body is within the limit', async () => {
    const over = await expectingContinue(server.graphqlUrl, 5000, null);
    // Refused from its headers: the client never sends the 5,000 bytes (node:http said 100 at once).
    expect(over).toMatch(/^HTTP\/1.1 413 /);
    expect(over).not.toContain('100 Continue');
    const body = JSON.stringify({ query: '{ viewer { userId } }' });
    const within = await expectingContinue(server.graphqlUrl, Buffer.byteLength(body), body);
    expect(within).toMatch(/^HTTP\/1.1 100 Continue\r\n\r\nHTTP\/1.1 200 OK\r\n/);
    expect(within).toContain('"userId"');
  });

  test('a query nested deeper than MAX_QUERY_DEPTH is rejected', async () => {
    const hops = 6; // apps.edges.node + 6 × activeTask.app = depth 15 > 12
    const deep = `{ apps { edges { node { ${'activeTask { app { '.repeat(hops)}appName${' } }'.repeat(hops)} } } } }`;
    const response = await post(JSON.stringify({ query: deep }));
    const body = (await response.json()) as { errors: { message: string; extensions?: { code?: string } }[] };
    // The document parsed: a limit it exceeds is not called a syntax error.
    expect(body.errors[0]).toMatchObject({
      message: expect.stringMatching(/^Query depth limit of 12 exceeded/),
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
    });
  });

  test('fragments add no depth of their own: nested fragments pass, a deep query split into fragments is refused', async () => {
    type Answer = { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] };
    const ask = async (query: string) => (await (await post(JSON.stringify({ query }))).json()) as Answer;
    // A Relay-style client: 6 fragments each spreading the next, a real depth of 2.
    const chain = Array.from({ length: 6 }, (_, i) =>
      i < 5 ? `fragment F${i} on Viewer { ...F${i + 1} }` : `fragment F${i} on Viewer { userId }`,
    ).join(' ');
    const nested = await ask(`{ viewer { ...F0 } } ${chain}`);
    expect(nested.errors).toBeUndefined();
    expect(nested.data).toEqual({ viewer: { userId: expect.any(String) } });
    // Inline fragments at every level, too: the depth of the fields alone is 4.
    const inline = await ask(
      '{ apps { edges { ... on AppEdge { node { ... on App { ... on App { appName } } } } } } }',
    );
    expect(inline.errors).toBeUndefined();
    // The deep query of the test above, one hop per fragment: refused as it is without fragments.
    const hops = Array.from({ length: 7 }, (_, i) =>
      i < 6 ? `fragment H${i} on App { activeTask { app { ...H${i + 1} } } }` : `fragment H${i} on App { appName }`,
    ).join(' ');
    const plain = `{ apps { edges { node { ${'activeTask { app { '.repeat(6)}appName${' } }'.repeat(6)} } } } }`;
    const refusal = (await ask(plain)).errors?.[0];
    expect(refusal?.message).toMatch(/^Query depth limit of 12 exceeded/);
    expect((await ask(`{ apps { edges { node { ...H0 } } } } ${hops}`)).errors).toEqual([refusal]);
  });

  test('a query of more aliases than allowed is rejected, not as a syntax error', async () => {
    const aliased = Array.from({ length: 16 }, (_, i) => `a${i}: viewer { userId }`).join(' ');
    const response = await post(JSON.stringify({ query: `{ ${aliased} }` }));
    const body = (await response.json()) as { errors: { message: string }[] };
    expect(body.errors[0]?.message).toMatch(/^Aliases limit of 15 exceeded/);
  });

  test('one field selected more than 50 times in one selection set (fragments included) is refused before graphql-js compares them', async () => {
    type Answer = { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] };
    const ask = async (query: string) => (await (await post(JSON.stringify({ query }))).json()) as Answer;
    const repeated = (times: number, selection: string) => Array.from({ length: times }, () => selection).join(' ');
    // Every pair of them is compared (their cost grows with the square): 249 copies took 42 ms.
    expect(await ask(`{ ${repeated(51, 'viewer { userId }')} }`)).toEqual({
      errors: [
        {
          message:
            '"viewer" is selected 51 times in one selection set (its fragments included, each once); at most 50 are allowed: select it once.',
          locations: [{ line: 1, column: 1 }],
          extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
        },
      ],
    });
    expect(await ask(`{ ${repeated(50, 'viewer { userId }')} }`)).toEqual({ data: { viewer: { userId: 'admin' } } });
    const spreads = (count: number) =>
      `{ ${Array.from({ length: count }, (_, i) => `...F${i}`).join(' ')} } ${Array.from({ length: count }, (_, i) => `fragment F${i} on Query { viewer { userId } }`).join(' ')}`;
    expect((await ask(spreads(51))).errors?.[0]?.message).toMatch(/^"viewer" is selected 51 times/);
    // What generated documents hold: __typename in every selection set, and one fragment shared by
    // many components (graphql-js compares a fragment once, however often it is spread).
    const typenames = `{ ${Array.from({ length: 60 }, (_, i) => `...T${i}`).join(' ')} } ${Array.from({ length: 60 }, (_, i) => `fragment T${i} on Query { __typename viewer { __typename } }`).join(' ')}`;
    expect((await ask(typenames)).errors?.[0]?.message).toMatch(/^"viewer" is selected 60 times/);
    const shared = `{ ${Array.from({ length: 60 }, (_, i) => `...C${i}`).join(' ')} } ${Array.from({ length: 60 }, (_, i) => `fragment C${i} on Query { ...Shared __typename }`).join(' ')} fragment Shared on Query { viewer { userId } }`;
    expect(await ask(shared)).toEqual({ data: { __typename: 'Query', viewer: { userId: 'admin' } } });
    // __typename has a bound of its own, far above what generated documents hold: past ~700 copies
    // graphql-js spent its comparison budget and said only "Validation aborted." (read here without
    // HTTP: this server takes bodies of 4 KiB).
    const typenameCopies = (times: number) => parse(`{ viewer { ${repeated(times, '__typename')} userId } }`);
    expect(repeatedSelection(typenameCopies(500))).toBeNull();
    expect(validate(schema, typenameCopies(500))).toEqual([]);
    expect(repeatedSelection(typenameCopies(900))?.message).toBe(
      '"__typename" is selected 900 times in one selection set (its fragments included, each once); at most 500 are allowed: select it once.',
    );
  });

  test('unexpected errors are masked: no stack trace or internals reach the client', async () => {
    const response = await post(JSON.stringify({ query: '{ viewer { userId } }', variables: 'not an object' }));
    const text = await response.text();
    expect(text).not.toMatch(/at .*\.ts:\d+/);
    expect(text).not.toContain('prisma');
  });

  test('every response carries a request id; a sane caller id is echoed, a weird one replaced', async () => {
    const mine = await post(JSON.stringify({ query: '{ viewer { userId } }' }), {
      'content-type': 'application/json',
      'x-request-id': 'trace-123',
    });
    expect(mine.headers.get('x-request-id')).toBe('trace-123');
    const weird = await post(JSON.stringify({ query: '{ viewer { userId } }' }), {
      'content-type': 'application/json',
      'x-request-id': 'bad id\twith spaces',
    });
    expect(weird.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(server.logs.some((line) => line.includes('"requestId":"trace-123"'))).toBe(true);
  });

  test('GET /health is alive and GET /readiness checks the database', async () => {
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const readiness = await fetch(`${server.url}/readiness`);
    expect(readiness.status).toBe(200);
    expect(await readiness.json()).toEqual({ status: 'ready' });
  });
});

/**
 * A raw POST with `Expect: 100-continue` (what curl sends for large bodies): the body goes only
 * after the server's `100 Continue`. Returns everything the server wrote until it closed.
 */
function expectingContinue(url: string, length: number, body: string | null): Promise<string> {
  const { hostname, port, pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
      if (body !== null && answer.includes('100 Continue\r\n\r\n')) {
        socket.write(body);
        body = null;
      }
    });
    socket.on('error', reject).on('close', () => resolve(answer));
    socket.write(
      `POST ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
    );
  });
}

describe('readiness when the SQLite file goes away', () => {
  test('a file deleted while the server runs: SELECT 1 still answers, yet /readiness is 503 and the database component says why', async () => {
    const server = await startTestServer('sqlite', { env: { COLLECT_INTERVAL_MS: '100', ...AUTH_ENV } });
    const component = (token: string) => componentOf(server, 'database', token);
    try {
      expect(await (await fetch(`${server.url}/readiness`)).json()).toEqual({ status: 'ready' });
      const file = sqliteFilePath(server.database.url);
      const seen = await waitFor(() => component(TOKENS.ops), 'the database component');
      expect(seen.metrics).toMatchObject({ file, freeBytes: expect.any(Number) });
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
      const readiness = await fetch(`${server.url}/readiness`);
      expect(readiness.status).toBe(503);
      const gone =
        'the database file was deleted while the server ran: writes are refused until it restarts, which starts on an empty database';
      expect(await readiness.json()).toEqual({
        status: 'not ready',
        error: 'the database file is not the one opened (see the database component)',
      });
      const reported = await waitFor(async () => {
        const found = await component(TOKENS.ops);
        return found?.state === 'ERROR' ? found : undefined;
      }, 'the database component to report the file gone');
      expect(reported.message).toBe(gone);
      // Admins see where the file lies and the room left; a user only what is wrong.
      expect(reported.metrics).toMatchObject({ file, freeBytes: expect.any(Number) });
      const users = await component(TOKENS.alice);
      expect(users?.message).toBe(gone);
      expect(Object.keys(users?.metrics ?? {}).sort()).toEqual(['latencyMs', 'otherProcesses', 'provider']);
      const snapshot = await rawRequest(
        server,
        { query: '{ runtimeSnapshot { components { name message metrics } } }' },
        { token: TOKENS.alice },
      );
      expect(snapshot.text).toContain(gone);
      expect(snapshot.text).not.toContain(file);
      expect(snapshot.text).not.toContain('freeBytes');
    } finally {
      await server.stop();
    }
  });
});

describe.skipIf(!databases.includes('postgresql'))('readiness when the database goes away', () => {
  test('GET /readiness turns 503 while /health stays 200', async () => {
    const server = await startTestServer('postgresql');
    try {
      expect((await fetch(`${server.url}/readiness`)).status).toBe(200);
      const name = new URL(server.database.url).pathname.slice(1);
      const admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
      await admin.end();
      const readiness = await fetch(`${server.url}/readiness`);
      expect(readiness.status).toBe(503);
      expect(await readiness.json()).toEqual({ status: 'not ready', error: 'database unreachable' });
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
    } finally {
      await server.stop();
    }
  });
});
