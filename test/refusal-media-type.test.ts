import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS } from './support/server.js';

/** The Accept Apollo Client's HttpLink sends. */
const APOLLO_ACCEPT = 'application/graphql-response+json,application/json;q=0.9';
const QUERY = JSON.stringify({ query: '{ viewer { userId } }' });

describe('refusals written before Yoga negotiate their JSON type as Yoga does', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: AUTH_ENV });
  });
  afterAll(() => server?.stop());

  const post = (path: string, accept: string, token: string, body = QUERY) =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { accept, 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body,
    });

  test('a 401 from the headers is application/graphql-response+json when the client asked for it', async () => {
    const answers = [
      ['POST /graphql', await post('/graphql', APOLLO_ACCEPT, 'not-a-token')],
      ['POST /graphql/stream', await post('/graphql/stream', APOLLO_ACCEPT, 'not-a-token')],
      [
        'GET /graphql (Yoga)',
        await fetch(`${server.graphqlUrl}?query=${encodeURIComponent('{ viewer { userId } }')}`, {
          headers: { accept: APOLLO_ACCEPT, authorization: 'Bearer not-a-token' },
        }),
      ],
    ] as const;
    for (const [what, response] of answers) {
      expect([what, response.status, response.headers.get('content-type')]).toEqual([
        what,
        401,
        'application/graphql-response+json; charset=utf-8',
      ]);
      expect(await response.json()).toMatchObject({ errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] });
    }
  });

  test('so is a 413, and a client asking for application/json or an event stream alone gets application/json', async () => {
    const tooLarge = await post(
      '/graphql',
      APOLLO_ACCEPT,
      TOKENS.alice,
      JSON.stringify({ query: 'x'.repeat(1_100_000) }),
    );
    expect([tooLarge.status, tooLarge.headers.get('content-type')]).toEqual([
      413,
      'application/graphql-response+json; charset=utf-8',
    ]);
    await tooLarge.text();
    for (const [path, accept] of [
      ['/graphql', 'application/json'],
      ['/graphql/stream', 'text/event-stream'],
    ]) {
      const response = await post(path as string, accept as string, 'not-a-token');
      expect([path, response.status, response.headers.get('content-type')]).toEqual([
        path,
        401,
        'application/json; charset=utf-8',
      ]);
      await response.text();
    }
  });
});
