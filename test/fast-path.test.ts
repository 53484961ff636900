import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS } from './support/server.js';

/**
 * The lean HTTP path (transports/http-fast-path.ts) answers exactly as Yoga does. Two servers with
 * the same demo data, one with GRAPHQL_FAST_PATH on and one with it off, get the same requests in
 * the same order; status, headers and bodies must be equal. The requests cover what the path
 * answers itself and everything it must hand to Yoga.
 */

const ALLOWED_ORIGIN = 'https://dashboard.example';
const ENV = {
  ...AUTH_ENV,
  CORS_ORIGINS: ALLOWED_ORIGIN,
  MUTATION_BURST: '1',
  MUTATION_RATE_PER_S: '0.001',
  MAX_INPUT_LIST_LENGTH: '5',
};

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A POST with exactly these headers (fetch would add an Accept of its own). */
function post(url: string, body: string, headers: Record<string, string>): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'POST', headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    request.on('error', reject);
    request.end(body);
  });
}

/**
 * What must be equal: everything but per-response values (date, request id, the rate limit's
 * remaining wait, which moves between the two requests, and so the body's length). The framing
 * too: `sized` says the answer carried a content-length, the body's own (not chunked).
 */
function comparable({ status, headers, body }: RawResponse) {
  const { date, 'x-request-id': id, connection, 'keep-alive': keepAlive, 'content-length': length, ...rest } = headers;
  void [date, id, connection, keepAlive];
  const sized = length === String(Buffer.byteLength(body));
  const stable = body.replace(/retry in [\d.]+ s/, 'retry in … s').replace(/"retryAfterMs":\d+/, '"retryAfterMs":…');
  return { status, headers: rest, sized, body: stable };
}

const json = { 'content-type': 'application/json' };
const alice = { ...json, authorization: `Bearer ${TOKENS.alice}` };
const ops = { ...json, authorization: `Bearer ${TOKENS.ops}` };
const body = (value: unknown) => JSON.stringify(value);
const TWO_OPERATIONS = 'query Me { viewer { userId } } query Admin { viewer { isAdmin } }';

/** [what it checks, body, headers]: sent in this order to both servers. */
const CASES: [string, string, Record<string, string>][] = [
  ['a plain query, no Accept', body({ query: '{ viewer { userId isAdmin } }' }), alice],
  ['Accept */*', body({ query: '{ viewer { userId } }' }), { ...alice, accept: '*/*' }],
  ['Accept application/json', body({ query: '{ viewer { userId } }' }), { ...alice, accept: 'application/json' }],
  [
    'Accept application/graphql-response+json',
    body({ query: '{ viewer { userId } }' }),
    { ...alice, accept: 'application/graphql-response+json' },
  ],
  [
    'an Accept list (Yoga negotiates)',
    body({ query: '{ viewer { userId } }' }),
    { ...alice, accept: 'application/json, application/graphql-response+json' },
  ],
  [
    'an Accept list with q-values (Yoga does not read them: the first listed wins)',
    body({ query: '{ viewer { userId } }' }),
    { ...alice, accept: 'application/graphql-response+json, application/json;q=0.9' },
  ],
  [
    'an event stream listed first (the SSE transport takes it)',
    body({ query: '{ viewer { userId } }' }),
    { ...alice, accept: 'text/event-stream, application/json' },
  ],
  ['Accept application/*', body({ query: '{ viewer { userId } }' }), { ...alice, accept: 'application/*' }],
  [
    'a charset other than utf-8 (that entry is ignored)',
    body({ query: '{ viewer { userId } }' }),
    { ...alice, accept: 'application/json;charset=latin1, application/graphql-response+json' },
  ],
  ['an event stream only', body({ query: '{ viewer { userId } }' }), { ...alice, accept: 'text/event-stream' }],
  ['an unacceptable Accept', body({ query: '{ viewer { userId } }' }), { ...alice, accept: 'text/html' }],
  [
    'content type with charset',
    body({ query: '{ viewer { userId } }' }),
    { ...alice, 'content-type': 'application/json; charset=utf-8' },
  ],
  ['the first operation of two by name', body({ query: TWO_OPERATIONS, operationName: 'Me' }), ops],
  ['the second operation of the same document', body({ query: TWO_OPERATIONS, operationName: 'Admin' }), ops],
  ['an unknown operation name', body({ query: TWO_OPERATIONS, operationName: 'Nope' }), ops],
  ['two operations and no name', body({ query: TWO_OPERATIONS }), ops],
  [
    'variables',
    body({
      query: 'query($s: String!, $a: String!) { app(sourceId: $s, appName: $a) { appName stage health } }',
      variables: { s: 'market.olares', a: 'jellyfin' },
    }),
    alice,
  ],
  [
    'a variable of the wrong type',
    body({ query: 'query($n: Int) { tasks(first: $n) { totalCount } }', variables: { n: 'abc' } }),
    alice,
  ],
  [
    'a DateTime variable out of range (the scalar says why)',
    body({
      query: 'query($t: DateTime) { history(filter: { from: $t }) { totalCount } }',
      variables: { t: '0000-12-31T23:59:59Z' },
    }),
    alice,
  ],
  [
    'a list over MAX_INPUT_LIST_LENGTH',
    body({
      query: '{ apps(filter: { stage: [RUNNING, RUNNING, RUNNING, RUNNING, RUNNING, RUNNING] }) { totalCount } }',
    }),
    alice,
  ],
  ['an unknown field (validation), JSON', body({ query: '{ nope }' }), alice],
  [
    'an unknown field (validation), graphql-response+json',
    body({ query: '{ nope }' }),
    { ...alice, accept: 'application/graphql-response+json' },
  ],
  ['a syntax error', body({ query: '{ viewer { ' }), alice],
  ['the same syntax error again (parser cache)', body({ query: '{ viewer { ' }), alice],
  ['introspection (off)', body({ query: '{ __schema { queryType { name } } }' }), alice],
  ['no credentials', body({ query: '{ viewer { userId } }' }), json],
  ['a wrong token', body({ query: '{ viewer { userId } }' }), { ...json, authorization: 'Bearer nope-nope-nope' }],
  ['a body that is not JSON', '{ "query": ', alice],
  ['a batch (array body)', body([{ query: '{ viewer { userId } }' }]), alice],
  ['an unknown key', body({ query: '{ viewer { userId } }', extra: 1 }), alice],
  ['query not a string', body({ query: 42 }), alice],
  ['variables not an object', body({ query: '{ viewer { userId } }', variables: [1] }), alice],
  [
    'an allowed cross-origin caller (CORS headers)',
    body({ query: '{ viewer { userId } }' }),
    { ...alice, origin: ALLOWED_ORIGIN },
  ],
  [
    'a mutation within the burst',
    body({ query: 'mutation { cancelTask(input: { taskId: "no-such-task" }) { __typename } }' }),
    alice,
  ],
  [
    'a mutation over the rate limit (429, Retry-After)',
    body({ query: 'mutation { cancelTask(input: { taskId: "no-such-task" }) { __typename } }' }),
    alice,
  ],
  [
    'a subscription asked for as JSON (Yoga answers 406)',
    body({ query: 'subscription { taskUpdated { taskId } }' }),
    { ...alice, accept: 'application/json' },
  ],
];

describe('the lean HTTP path answers as Yoga does', () => {
  let fast: TestServer;
  let yoga: TestServer;

  beforeAll(async () => {
    [fast, yoga] = await Promise.all([
      startTestServer('sqlite', { env: ENV }),
      startTestServer('sqlite', { env: { ...ENV, GRAPHQL_FAST_PATH: '0' } }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([fast?.stop(), yoga?.stop()]);
  });

  it('the same status, headers and body for every request, in order; the plain ones answered on the lean path', async () => {
    const servedBefore = fast.app.fastPath?.served ?? 0;
    for (const [what, payload, headers] of CASES) {
      const [viaFastPath, viaYoga] = [
        await post(fast.graphqlUrl, payload, headers),
        await post(yoga.graphqlUrl, payload, headers),
      ];
      expect(comparable(viaFastPath), what).toEqual(comparable(viaYoga));
    }
    // Without it answering anything the comparison above would prove nothing. It answers the 16
    // plain ones: the eight Accept forms Yoga answers with JSON (an event stream listed first goes
    // to the SSE transport before either), the content type with charset, both named operations,
    // the three with variables (one good, two refused by coercion) and both mutations.
    const served = (fast.app.fastPath?.served ?? 0) - servedBefore;
    expect(served).toBe(16);
    expect(yoga.app.fastPath).toBeNull();
  });
});
