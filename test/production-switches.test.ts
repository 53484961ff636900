import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { print } from 'graphql';
import { type Client, createClient, type FormattedExecutionResult, type SubscribePayload } from 'graphql-ws';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { buildApp } from '../src/app/build-app.js';
import { TokenBuckets } from '../src/http/rate-limit.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logger.js';
import { availableDatabases } from './support/databases.js';
import {
  CancelTaskMutation,
  HistoryAddedSubscription,
  InstallAppMutation,
  PaymentUpdatedSubscription,
  PurchaseAppMutation,
  ViewerQuery,
} from './support/operations.js';
import {
  AUTH_ENV,
  announceHistory,
  dataOf,
  documentIdOf,
  errorCodes,
  execute,
  type GraphQLResponse,
  startTestServer,
  type TestServer,
  TOKENS,
} from './support/server.js';

const databases = await availableDatabases();

/** What graphql-ws clients receive. */
type Result = FormattedExecutionResult<Record<string, unknown>, unknown>;

/** The example manifest `npm run codegen` writes from the tests' (and the dashboard's) documents. */
const MANIFEST = new URL('./gql/persisted-documents.json', import.meta.url).pathname;
const manifest = JSON.parse(readFileSync(MANIFEST, 'utf8')) as Record<string, string>;

const INTROSPECTION = '{ __schema { queryType { name } } }';
const TYPE_INTROSPECTION = '{ __type(name: "App") { name } }';
const INTROSPECTION_OFF = /introspection has been disabled/;
/** A valid document of this API that is in no manifest. */
const ARBITRARY = '{ viewer { userId } }';

/** POSTs raw GraphQL parameters to /graphql. */
async function post(server: TestServer, body: unknown, token?: string): Promise<GraphQLResponse<unknown>> {
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, ...((await response.json()) as object) };
}

/** One operation over SSE (graphql-sse's distinct connections): the `next` payloads, or the refusal. */
async function overSse(server: TestServer, body: unknown, token: string) {
  const response = await fetch(`${server.url}/graphql/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const text = await response.text(); // a query's stream ends after its result
  if (!response.headers.get('content-type')?.startsWith('text/event-stream')) {
    return { status: response.status, nexts: [], refusal: JSON.parse(text) as GraphQLResponse<unknown> };
  }
  const nexts = [...text.matchAll(/event: next\ndata: (.*)\n\n/g)].map((m) => JSON.parse(m[1] as string));
  return { status: response.status, nexts: nexts as Result[], refusal: null };
}

/** A real graphql-ws client; `run` sends one operation and resolves with its results or its error. */
function wsClient(server: TestServer, token: string) {
  const client: Client = createClient({
    url: `${server.url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    // One socket for the client's life, as the dashboard keeps: a lazy client closes it (1000) when
    // its last operation ends, and completes, unanswered, a subscription sent in that moment.
    lazy: false,
    connectionParams: { authorization: `Bearer ${token}` },
  });
  return {
    client,
    run(payload: SubscribePayload & { documentId?: string }) {
      return new Promise<{ results: Result[]; error?: unknown }>((resolve) => {
        const results: Result[] = [];
        client.subscribe(payload, {
          next: (result) => results.push(result),
          error: (error) => resolve({ results, error }),
          complete: () => resolve({ results }),
        });
      });
    },
    dispose: () => client.dispose(),
  };
}

/** APQ's way of naming a document: the bare sha256 hex in `extensions.persistedQuery`. */
function apq(id: string) {
  return { persistedQuery: { version: 1, sha256Hash: id.replace(/^sha256:/, '') } };
}

/**
 * The server's own process (`src/index.ts`) started with `env`: its exit code and stderr. A
 * server that starts when it should not is killed after a minute (and the test fails).
 */
function runServer(env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  const tsx = new URL('../node_modules/.bin/tsx', import.meta.url).pathname;
  const entry = new URL('../src/index.ts', import.meta.url).pathname;
  const options = { env: { PATH: process.env.PATH ?? '', PORT: '0', ...env }, timeout: 60_000 };
  return promisify(execFile)(tsx, [entry], options).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => error,
  );
}

const scratch = mkdtempSync(path.join(tmpdir(), 'market-manifest-'));
/**
 * The server process with a manifest that is not there. Started before everything else: loading
 * the app under tsx takes seconds, which then overlap the other tests.
 */
let missingManifest: ReturnType<typeof runServer>;
beforeAll(() => {
  missingManifest = runServer({
    DATABASE_URL: `file:${path.join(scratch, 'process.db')}`,
    PERSISTED_DOCUMENTS: path.join(scratch, 'nowhere.json'),
    LOG_LEVEL: 'silent',
  });
});
afterAll(async () => {
  await missingManifest;
  rmSync(scratch, { recursive: true, force: true });
});

describe.each(databases)('production switches (%s)', (kind) => {
  describe('GraphiQL and introspection', () => {
    let local: TestServer;
    let authenticated: TestServer;
    let localOff: TestServer;
    let authenticatedOn: TestServer;
    beforeAll(async () => {
      // One after the other: four seedings at once can outlast PostgreSQL's transaction timeout.
      local = await startTestServer(kind);
      authenticated = await startTestServer(kind, { env: AUTH_ENV });
      localOff = await startTestServer(kind, { env: { GRAPHIQL: '0', INTROSPECTION: '0' } });
      authenticatedOn = await startTestServer(kind, { env: { ...AUTH_ENV, GRAPHIQL: '1', INTROSPECTION: '1' } });
    });
    afterAll(() => Promise.all([local, authenticated, localOff, authenticatedOn].map((server) => server?.stop())));

    const openGraphiql = (server: TestServer) => fetch(server.graphqlUrl, { headers: { accept: 'text/html' } });

    test('GraphiQL is served by default in local development mode and when GRAPHIQL=1', async () => {
      for (const server of [local, authenticatedOn]) {
        const response = await openGraphiql(server);
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toMatch(/^text\/html/);
        expect(await response.text()).toContain('Market Runtime GraphQL API');
      }
    });

    test("GraphiQL's 9 MB page is sent compressed to clients that accept it (brotli first), as it is to others", async () => {
      const open = (acceptEncoding?: string) =>
        request(local.graphqlUrl, {
          headers: { accept: 'text/html', ...(acceptEncoding ? { 'accept-encoding': acceptEncoding } : {}) },
        });
      const plain = await open();
      expect(plain.headers['content-encoding']).toBeUndefined();
      // Its own script only (by its SHA-256), never framed: the same policy whatever the encoding.
      const policy = plain.headers['content-security-policy'];
      expect(policy).toMatch(/script-src 'sha256-[A-Za-z0-9+/]+={0,2}'; .*frame-ancestors 'none'$/);
      const page = Buffer.from(await plain.body.arrayBuffer());
      expect(page.length).toBeGreaterThan(8_000_000);
      const decoders = { br: brotliDecompressSync, gzip: gunzipSync };
      for (const [acceptEncoding, expected] of [
        ['gzip, deflate, br, zstd', 'br'], // what browsers send
        ['gzip', 'gzip'],
        ['br;q=0.5, gzip', 'gzip'],
        ['identity', undefined],
      ] as const) {
        const response = await open(acceptEncoding);
        const body = Buffer.from(await response.body.arrayBuffer());
        expect(response.headers['content-encoding'], acceptEncoding).toBe(expected);
        expect(response.headers['content-security-policy']).toBe(policy);
        expect(Number(response.headers['content-length'])).toBe(body.length);
        if (expected) expect(body.length).toBeLessThan(page.length / 3);
        expect((expected ? decoders[expected](body) : body).equals(page), acceptEncoding).toBe(true);
      }
    });

    test('GraphiQL is not served by default under authentication, nor when GRAPHIQL=0: Yoga answers as without it', async () => {
      for (const server of [authenticated, localOff]) {
        const response = await openGraphiql(server);
        // A browser's request for a page: no result format it accepts, so Yoga refuses it.
        expect(response.status).toBe(406);
        expect(response.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
        expect(await response.text()).not.toContain('Market Runtime GraphQL API');
      }
    });

    test('introspection works by default in local development mode and when INTROSPECTION=1', async () => {
      expect(dataOf(await post(local, { query: INTROSPECTION }))).toEqual({
        __schema: { queryType: { name: 'Query' } },
      });
      expect(dataOf(await post(authenticatedOn, { query: TYPE_INTROSPECTION }, TOKENS.alice))).toEqual({
        __type: { name: 'App' },
      });
    });

    test('with introspection off (INTROSPECTION=0, or by default under authentication), __schema and __type fail validation over HTTP', async () => {
      for (const [server, token] of [
        [localOff, undefined],
        [authenticated, TOKENS.alice],
      ] as const) {
        for (const query of [INTROSPECTION, TYPE_INTROSPECTION]) {
          const response = await post(server, { query }, token);
          expect(response.status).toBe(400);
          expect(response.data).toBeUndefined();
          expect(response.errors?.[0]?.message).toMatch(INTROSPECTION_OFF);
        }
        // __typename is not introspection of the schema.
        expect(dataOf(await post(server, { query: '{ __typename viewer { __typename } }' }, token))).toEqual({
          __typename: 'Query',
          viewer: { __typename: 'Viewer' },
        });
        // Nor do errors spell out names of the schema to those who may ask (a field, an enum value in
        // a literal, an input field in a variable, coerced at execution); a request without
        // credentials is refused before its document is looked at.
        const misspellings = [
          { query: '{ webhook { id } }', reason: /Cannot query field "webhook" on type "Query"/, hidden: /webhooks/ },
          {
            query: '{ apps(filter: { stage: [RUNNIN] }) { totalCount } }',
            reason: /Value "RUNNIN" does not exist in "AppStage" enum/,
            hidden: /"RUNNING"/,
          },
          {
            query: 'query Misspelt($filter: AppFilter) { apps(filter: $filter) { totalCount } }',
            variables: { filter: { stag: ['RUNNING'] } },
            reason: /Field "stag" is not defined by type "AppFilter"/,
            hidden: /"stage"/,
          },
        ];
        for (const who of token ? [token, undefined] : [undefined]) {
          const signedIn = who !== undefined || server === localOff;
          for (const { reason, hidden, ...body } of misspellings) {
            const misspelt = await post(server, body, who);
            if (!signedIn) {
              expect(misspelt.errors?.map((error) => error.extensions?.code)).toEqual(['UNAUTHENTICATED']);
              continue;
            }
            expect(misspelt.errors?.[0]?.message).toMatch(reason);
            expect(JSON.stringify(misspelt.errors)).not.toMatch(/Did you mean/);
            expect(JSON.stringify(misspelt.errors)).not.toMatch(hidden);
          }
        }
      }
    });

    test('with introspection off, __schema fails validation over graphql-ws and SSE as well', async () => {
      const ws = wsClient(authenticated, TOKENS.alice);
      try {
        const { results, error } = await ws.run({ query: INTROSPECTION });
        expect(results).toEqual([]);
        expect((error as { message: string }[])[0]?.message).toMatch(INTROSPECTION_OFF);
        expect((await ws.run({ query: '{ __typename }' })).results).toEqual([{ data: { __typename: 'Query' } }]);
      } finally {
        await ws.dispose();
      }

      // As graphql-sse's protocol asks of errors before execution: in the stream, as its one `next`.
      const sse = await overSse(authenticated, { query: TYPE_INTROSPECTION }, TOKENS.alice);
      expect(sse.status).toBe(200);
      expect(sse.nexts).toHaveLength(1);
      expect(sse.nexts[0]?.errors?.[0]?.message).toMatch(INTROSPECTION_OFF);
      expect((await overSse(authenticated, { query: '{ __typename }' }, TOKENS.alice)).nexts).toEqual([
        { data: { __typename: 'Query' } },
      ]);
    });
  });

  describe('persisted documents (PERSISTED_DOCUMENTS)', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(kind, { env: { ...AUTH_ENV, PERSISTED_DOCUMENTS: MANIFEST } });
    });
    afterAll(() => server?.stop());

    const viewerId = documentIdOf(ViewerQuery);
    const unknownId = `sha256:${'0'.repeat(64)}`;

    test('over HTTP, a known documentId runs (POST and GET), as does APQ’s sha256Hash', async () => {
      const alice = { viewer: { userId: 'alice', isAdmin: false } };
      expect(dataOf(await execute(server, ViewerQuery, {}, { token: TOKENS.alice, persisted: true }))).toEqual(alice);

      const get = await fetch(`${server.graphqlUrl}?documentId=${encodeURIComponent(viewerId)}`, {
        headers: { authorization: `Bearer ${TOKENS.alice}`, accept: 'application/graphql-response+json' },
      });
      expect(await get.json()).toEqual({ data: alice });

      expect(dataOf(await post(server, { extensions: apq(viewerId) }, TOKENS.alice))).toEqual(alice);
    });

    test('over HTTP, a mutation by its documentId runs', async () => {
      const response = await execute(
        server,
        CancelTaskMutation,
        { input: { taskId: 'no-such-task' } },
        { token: TOKENS.alice, persisted: true },
      );
      expect(dataOf(response).cancelTask).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    });

    test('over HTTP, a document sent as text runs only when it is the manifest’s own text (whitespace aside)', async () => {
      const text = manifest[viewerId] as string;
      const spaced = text.replaceAll(' ', '\n  ');
      expect(dataOf(await post(server, { query: spaced }, TOKENS.alice))).toEqual({
        viewer: { userId: 'alice', isAdmin: false },
      });
      // The same operation as the frontend wrote it (fields unsorted) is not the manifest's text.
      const asWritten = await post(server, { query: print(ViewerQuery) }, TOKENS.alice);
      expect(asWritten.status).toBe(400);
      expect(asWritten.errors?.[0]?.extensions?.code).toBe('PERSISTED_DOCUMENT_REQUIRED');
    });

    test('over HTTP, an unknown id and an arbitrary document are refused with their codes', async () => {
      const unknown = await post(server, { documentId: unknownId }, TOKENS.alice);
      expect(unknown.status).toBe(400);
      expect(unknown.errors).toEqual([
        expect.objectContaining({
          message: expect.stringContaining('No persisted document has the id'),
          extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' },
        }),
      ]);
      const unknownApq = await post(server, { extensions: apq(unknownId) }, TOKENS.alice);
      expect(unknownApq.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');

      for (const query of [
        ARBITRARY,
        INTROSPECTION,
        'mutation { cancelTask(input: { taskId: "x" }) { __typename } }',
      ]) {
        const refused = await post(server, { query }, TOKENS.alice);
        expect(refused.status).toBe(400);
        expect(refused.errors).toEqual([
          expect.objectContaining({
            message: expect.stringContaining('runs only persisted documents'),
            extensions: { code: 'PERSISTED_DOCUMENT_REQUIRED' },
          }),
        ]);
      }
    });

    test('an APQ client’s flow: an unknown hash gets PERSISTED_QUERY_NOT_FOUND; its retry with the text runs only a manifest text', async () => {
      const first = await post(server, { extensions: apq(unknownId) }, TOKENS.alice);
      expect(first.status).toBe(400);
      expect(first.errors).toEqual([
        {
          message: `No persisted document has the id "${'0'.repeat(64)}": this server runs only the documents of its manifest.`,
          extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' },
        },
      ]);
      const text = manifest[viewerId] as string;
      const retry = await post(server, { query: text, extensions: apq(unknownId) }, TOKENS.alice);
      expect(dataOf(retry)).toEqual({ viewer: { userId: 'alice', isAdmin: false } });
      const arbitrary = await post(server, { query: ARBITRARY, extensions: apq(unknownId) }, TOKENS.alice);
      expect(arbitrary.status).toBe(400);
      expect(errorCodes(arbitrary)).toEqual(['PERSISTED_DOCUMENT_REQUIRED']);
    });

    test('over graphql-ws, a known id runs a query and a subscription; unknown ids and arbitrary documents are refused', async () => {
      const ws = wsClient(server, TOKENS.alice);
      try {
        // graphql-ws requires a `query` string: a persisted client sends an empty one.
        expect(await ws.run({ query: '', extensions: apq(viewerId) })).toEqual({
          results: [{ data: { viewer: { userId: 'alice', isAdmin: false } } }],
        });
        expect(await ws.run({ query: '', documentId: viewerId })).toEqual({
          results: [{ data: { viewer: { userId: 'alice', isAdmin: false } } }],
        });

        const unknown = await ws.run({ query: '', documentId: unknownId });
        expect(unknown.error).toEqual([
          expect.objectContaining({ extensions: expect.objectContaining({ code: 'PERSISTED_QUERY_NOT_FOUND' }) }),
        ]);
        for (const query of [ARBITRARY, print(ViewerQuery), INTROSPECTION]) {
          const refused = await ws.run({ query });
          expect(refused.error).toEqual([
            expect.objectContaining({ extensions: expect.objectContaining({ code: 'PERSISTED_DOCUMENT_REQUIRED' }) }),
          ]);
        }
      } finally {
        await ws.dispose();
      }
    });

    test('over graphql-ws, subscriptions named only by their ids get their own documents’ events', async () => {
      const ws = wsClient(server, TOKENS.alice);
      const history: Result[] = [];
      const payments: Result[] = [];
      let historyArrived!: () => void;
      const historyDelivered = new Promise<void>((resolve) => {
        historyArrived = resolve;
      });
      let paymentArrived!: () => void;
      const paymentDelivered = new Promise<void>((resolve) => {
        paymentArrived = resolve;
      });
      try {
        // Same (empty) text and variables, different ids: if the two shared one execution, the
        // payment subscription would get the history event first.
        const sink = (into: Result[], arrived: () => void) => ({
          next: (result: Result) => {
            into.push(result);
            arrived();
          },
          error: (error: unknown) => {
            into.push({ errors: error as never });
            arrived();
          },
          complete: () => {},
        });
        const connected = new Promise<void>((resolve) => ws.client.on('connected', () => resolve()));
        ws.client.subscribe(
          { query: '', extensions: apq(documentIdOf(HistoryAddedSubscription)), variables: {} },
          sink(history, historyArrived),
        );
        ws.client.subscribe(
          { query: '', extensions: apq(documentIdOf(PaymentUpdatedSubscription)), variables: {} },
          sink(payments, paymentArrived),
        );
        await connected;
        // The subscriptions are in place once a later operation on the socket has answered.
        await ws.run({ query: '', documentId: viewerId });
        await announceHistory(server);
        await historyDelivered;
        const purchase = await execute(
          server,
          PurchaseAppMutation,
          { input: { sourceId: 'market.olares', appId: 'rocketchat' } },
          { token: TOKENS.alice, persisted: true },
        );
        dataOf(purchase);
        await paymentDelivered;
        expect(history[0]).toMatchObject({ data: { historyAdded: { userId: 'alice' } } });
        expect(payments[0]).toMatchObject({ data: { paymentUpdated: { userId: 'alice', appId: 'rocketchat' } } });
      } finally {
        await ws.dispose();
      }
    });

    test('over SSE, a known id runs; an unknown id and an arbitrary document are refused', async () => {
      expect((await overSse(server, { documentId: viewerId }, TOKENS.alice)).nexts).toEqual([
        { data: { viewer: { userId: 'alice', isAdmin: false } } },
      ]);
      expect((await overSse(server, { extensions: apq(viewerId) }, TOKENS.alice)).nexts).toHaveLength(1);

      // Refused before they run: the errors are the one `next` of the stream (graphql-sse's protocol).
      const unknown = await overSse(server, { documentId: unknownId }, TOKENS.alice);
      expect(unknown.status).toBe(200);
      expect(unknown.nexts.map((next) => next.errors?.[0]?.extensions?.code)).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
      const arbitrary = await overSse(server, { query: ARBITRARY }, TOKENS.alice);
      expect(arbitrary.status).toBe(200);
      expect(arbitrary.nexts.map((next) => next.errors?.[0]?.extensions?.code)).toEqual([
        'PERSISTED_DOCUMENT_REQUIRED',
      ]);
    });

    test('the dashboard’s documents, as dashboard.js sends them, are in the manifest and run over graphql-ws', async () => {
      const source = readFileSync(new URL('../src/dashboard/dashboard.js', import.meta.url), 'utf8');
      const documents = [...source.matchAll(/\/\* GraphQL \*\/ `([^`]*)`/g)].map((m) => m[1] as string);
      expect(documents).toHaveLength(2);
      const texts = new Set(Object.values(manifest));
      for (const document of documents) expect(texts).toContain(document.replace(/\s+/g, ' ').trim());

      const ws = wsClient(server, TOKENS.ops);
      try {
        const [snapshot, events] = documents as [string, string];
        const first = (query: string, variables?: Record<string, unknown>) =>
          new Promise<Result>((resolve, reject) => {
            const dispose = ws.client.subscribe(
              { query, variables },
              {
                next: (result) => {
                  dispose();
                  resolve(result);
                },
                error: reject,
                complete: () => {},
              },
            );
          });
        const initial = await first(snapshot);
        expect(initial.errors).toBeUndefined();
        const { sequence } = (initial.data as { runtimeSnapshot: { sequence: number } }).runtimeSnapshot;
        const event = first(events, { since: sequence });
        // The subscription is in place once a later operation on the socket has answered.
        await ws.run({ query: '', documentId: viewerId });
        const install = await execute(
          server,
          InstallAppMutation,
          { input: { sourceId: 'market.olares', appName: 'excalidraw', version: '0.17.6' } },
          { token: TOKENS.ops, persisted: true },
        );
        expect(dataOf(install).installApp.__typename).toBe('InstallAppSuccess');
        expect(await event).toMatchObject({ data: { runtimeEvents: { sequence: expect.any(Number) } } });
      } finally {
        await ws.dispose();
      }
    });
  });

  describe('persisted document ids without PERSISTED_DOCUMENTS', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(kind, { env: AUTH_ENV });
    });
    afterAll(() => server?.stop());

    const viewerId = documentIdOf(ViewerQuery);
    const notSupported = (id: string) =>
      expect.objectContaining({
        message: `This server runs no persisted documents (PERSISTED_DOCUMENTS is not set), so the id ${JSON.stringify(id)} names nothing: send the document's text as \`query\`.`,
        extensions: { code: 'PERSISTED_QUERY_NOT_SUPPORTED' },
      });
    const apqHash = viewerId.replace(/^sha256:/, '');

    test('over HTTP, an id without a document (documentId or APQ, POST or GET) gets PERSISTED_QUERY_NOT_SUPPORTED, 400', async () => {
      for (const accept of ['application/graphql-response+json', 'application/json']) {
        const requests: [string, RequestInit, string][] = [
          [server.graphqlUrl, { method: 'POST', body: JSON.stringify({ documentId: viewerId }) }, viewerId],
          [server.graphqlUrl, { method: 'POST', body: JSON.stringify({ extensions: apq(viewerId) }) }, apqHash],
          [`${server.graphqlUrl}?documentId=${encodeURIComponent(viewerId)}`, { method: 'GET' }, viewerId],
          [
            `${server.graphqlUrl}?extensions=${encodeURIComponent(JSON.stringify(apq(viewerId)))}`,
            { method: 'GET' },
            apqHash,
          ],
        ];
        for (const [url, init, id] of requests) {
          const response = await fetch(url, {
            ...init,
            headers: { authorization: `Bearer ${TOKENS.alice}`, 'content-type': 'application/json', accept },
          });
          expect(response.status, `${accept} ${init.method} ${url}`).toBe(400);
          expect(response.headers.get('content-type')).toBe(`${accept}; charset=utf-8`);
          expect(await response.json()).toEqual({ errors: [notSupported(id)] });
        }
      }
    });

    test('over HTTP, an id beside its document is ignored: the text runs (an APQ client’s retry), on the lean path and through Yoga', async () => {
      const alice = { viewer: { userId: 'alice', isAdmin: false } };
      const query = print(ViewerQuery);
      expect(dataOf(await post(server, { query, extensions: apq(viewerId) }, TOKENS.alice))).toEqual(alice);
      expect(dataOf(await post(server, { query, documentId: viewerId }, TOKENS.alice))).toEqual(alice);
      // A document that does not validate is Yoga's to answer: its own error, not the id's.
      const invalid = await post(server, { query: '{ viewer { nope } }', documentId: viewerId }, TOKENS.alice);
      expect(invalid.status).toBe(400);
      expect(errorCodes(invalid)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    });

    test('over graphql-ws and SSE, an id without a document gets PERSISTED_QUERY_NOT_SUPPORTED', async () => {
      const ws = wsClient(server, TOKENS.alice);
      try {
        expect((await ws.run({ query: '', documentId: viewerId })).error).toEqual([notSupported(viewerId)]);
        expect((await ws.run({ query: '', extensions: apq(viewerId) })).error).toEqual([notSupported(apqHash)]);
      } finally {
        await ws.dispose();
      }
      const overStream = await overSse(server, { documentId: viewerId }, TOKENS.alice);
      expect(overStream.status).toBe(200);
      expect(overStream.nexts).toEqual([{ errors: [notSupported(viewerId)] }]);
    });
  });

  describe('mutation rate limit (MUTATION_RATE_PER_S, MUTATION_BURST)', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(kind, { env: { ...AUTH_ENV, MUTATION_RATE_PER_S: '1', MUTATION_BURST: '3' } });
    });
    afterAll(() => server?.stop());

    const cancel = (token: string) =>
      execute(server, CancelTaskMutation, { input: { taskId: 'no-such-task' } }, { token });

    test('over HTTP: a burst, then RATE_LIMITED with 429 and Retry-After; other users and queries go on; after the advertised wait it works again', async () => {
      let accepted = 0;
      let limited: GraphQLResponse<unknown> | undefined;
      // The bucket refills at 1/s while we send, so allow for a token or two more than the burst.
      while (!limited && accepted < 10) {
        const response = await cancel(TOKENS.alice);
        if (response.errors) limited = response;
        else accepted += 1;
      }
      expect(accepted).toBeGreaterThanOrEqual(3);
      expect(limited?.status).toBe(429);
      const error = limited?.errors?.[0];
      expect(error?.extensions?.code).toBe('RATE_LIMITED');
      const retryAfterMs = error?.extensions?.retryAfterMs as number;
      expect(retryAfterMs).toBeGreaterThan(0);
      expect(retryAfterMs).toBeLessThanOrEqual(1000);
      expect(limited?.headers.get('retry-after')).toBe(String(Math.ceil(retryAfterMs / 1000)));
      // The message's wait, rounded up to a tenth of a second, is never shorter (before: 45 ms read "0.0 s").
      const said = Number(/retry in (\d+\.\d) s/.exec(error?.message ?? '')?.[1]) * 1000;
      expect(said).toBeGreaterThanOrEqual(retryAfterMs);
      expect(said).toBeLessThan(retryAfterMs + 100);
      expect(limited?.data ?? null).toBeNull();

      // Per user: bob has his own bucket; and queries take no tokens.
      expect(dataOf(await cancel(TOKENS.bob)).cancelTask).toMatchObject({ code: 'NOT_FOUND' });
      expect(dataOf(await execute(server, ViewerQuery, {}, { token: TOKENS.alice })).viewer.userId).toBe('alice');

      // The behaviour under test is time: the advertised wait is what it takes.
      await sleep(retryAfterMs);
      expect(dataOf(await cancel(TOKENS.alice)).cancelTask).toMatchObject({ code: 'NOT_FOUND' });
    });

    test('over graphql-ws: the same bucket and error, without an HTTP status', async () => {
      const ws = wsClient(server, TOKENS.ops);
      try {
        let accepted = 0;
        let limited: Result | undefined;
        const mutation = { query: print(CancelTaskMutation), variables: { input: { taskId: 'no-such-task' } } };
        while (!limited && accepted < 10) {
          const { results } = await ws.run(mutation);
          if (results[0]?.errors) limited = results[0];
          else accepted += 1;
        }
        expect(accepted).toBeGreaterThanOrEqual(3);
        const error = limited?.errors?.[0] as { message: string; extensions: Record<string, unknown> } | undefined;
        expect(error?.extensions.code).toBe('RATE_LIMITED');
        expect(error?.extensions.retryAfterMs).toEqual(expect.any(Number));
        expect(error?.message).toMatch(/per second, on this instance\): retry in/);
        // Queries over the same socket are not limited.
        expect((await ws.run({ query: print(ViewerQuery) })).results[0]?.data).toMatchObject({
          viewer: { userId: 'ops' },
        });
      } finally {
        await ws.dispose();
      }
    });

    test('every mutation of an operation takes a token: aliases cannot multiply the burst', async () => {
      // A server of its own whose bucket does not refill during the test (one token in 1,000 s).
      const slow = await startTestServer(kind, {
        env: { ...AUTH_ENV, MUTATION_RATE_PER_S: '0.001', MUTATION_BURST: '3' },
      });
      const aliased = async (count: number) => {
        const fields = Array.from(
          { length: count },
          (_, i) => `c${i}: cancelTask(input: { taskId: "no-such-task" }) { __typename }`,
        );
        const response = await fetch(slow.graphqlUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.bob}` },
          body: JSON.stringify({ query: `mutation { ${fields.join(' ')} }` }),
        });
        const body = (await response.json()) as {
          data?: unknown;
          errors?: { message: string; extensions: Record<string, unknown> }[];
        };
        return { status: response.status, ...body };
      };
      try {
        // More than the burst in one operation never fits: not a 429 (clients retry those), no data.
        const tooMany = await aliased(4);
        expect(tooMany.status).toBe(400);
        expect(tooMany.data ?? null).toBeNull();
        expect(tooMany.errors?.[0]?.message).toMatch(/4, at most 3 \(MUTATION_BURST\)/);
        expect(tooMany.errors?.[0]?.extensions).toEqual({ code: 'LIMIT_EXCEEDED' });
        // Of bob's 3 tokens (the refused operation took none), two fit, and two more do not.
        expect((await aliased(2)).data).toEqual({
          c0: { __typename: 'NotFoundError' },
          c1: { __typename: 'NotFoundError' },
        });
        const second = await aliased(2);
        expect(second.status).toBe(429);
        expect(second.errors?.[0]?.extensions.code).toBe('RATE_LIMITED');
        // The one token left still runs one mutation.
        expect((await aliased(1)).data).toEqual({ c0: { __typename: 'NotFoundError' } });
      } finally {
        await slow.stop();
      }
    });

    test('a mutation refused before it runs (input bounds, query cost, variable types) takes no token', async () => {
      const slow = await startTestServer(kind, {
        env: { ...AUTH_ENV, MUTATION_RATE_PER_S: '0.001', MUTATION_BURST: '2', MAX_QUERY_COST: '5' },
      });
      const cancel = async (query: string, variables: Record<string, unknown>) => {
        const response = await fetch(slow.graphqlUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.bob}` },
          body: JSON.stringify({ query, variables }),
        });
        return { status: response.status, ...((await response.json()) as { data?: unknown; errors?: unknown[] }) };
      };
      const one = 'mutation ($id: String!) { cancelTask(input: { taskId: $id }) { __typename } }';
      const costly =
        'mutation ($id: String!) { cancelTask(input: { taskId: $id }) { __typename ... on CancelTaskSuccess { task { taskId type status userId appName } } } }';
      try {
        for (let i = 0; i < 3; i += 1) {
          expect((await cancel(one, { id: 'x'.repeat(20_000) })).status).toBe(400); // MAX_INPUT_STRING_LENGTH
          expect((await cancel(one, { id: 5 })).errors).toBeDefined(); // not a String
          expect((await cancel(costly, { id: 'no-such-task' })).status).toBe(400); // MAX_QUERY_COST
        }
        // The burst of 2 is whole.
        for (let i = 0; i < 2; i += 1) {
          expect((await cancel(one, { id: 'no-such-task' })).data).toEqual({
            cancelTask: { __typename: 'NotFoundError' },
          });
        }
        expect((await cancel(one, { id: 'no-such-task' })).status).toBe(429);
      } finally {
        await slow.stop();
      }
    });
  });
});

describe('a manifest without the dashboard pages documents', () => {
  const warning = (server: TestServer) =>
    server.logs.find((line) => line.includes("the dashboard pages' 13 operations"));

  test('is named at start, with what is missing; the full manifest starts without it', async () => {
    // A frontend's manifest: codegen run over its own code, not over src/dashboard.
    const frontends = Object.fromEntries(
      Object.entries(manifest).filter(
        ([, document]) => !/(query|mutation|subscription) (Dashboard|AppFlow)/.test(document),
      ),
    );
    const partial = path.join(scratch, 'frontends-only.json');
    writeFileSync(partial, JSON.stringify(frontends));
    const alone = await startTestServer('sqlite', { env: { ...AUTH_ENV, PERSISTED_DOCUMENTS: partial } });
    const full = await startTestServer('sqlite', { env: { ...AUTH_ENV, PERSISTED_DOCUMENTS: MANIFEST } });
    try {
      const line = JSON.parse(warning(alone) ?? '{}') as { level?: number; msg?: string; missing?: string[] };
      expect(line.level).toBe(40);
      expect(line.msg).toContain('lacks 13 of');
      expect(line.msg).toContain('codegen.yml');
      expect(line.missing).toEqual(expect.arrayContaining(['DashboardSnapshot', 'DashboardViewer', 'AppFlow']));
      expect(line.missing).toHaveLength(13);
      // What the warning foretells: the page's first request is refused.
      const page = await fetch(`${alone.url}/dashboard/documents.js`).then((response) => response.text());
      const viewer = /`(query DashboardViewer[^`]*)`/.exec(page)?.[1] ?? '';
      const refused = await fetch(alone.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.ops}` },
        body: JSON.stringify({ query: viewer }),
      }).then((response) => response.json());
      expect(refused.errors[0].extensions.code).toBe('PERSISTED_DOCUMENT_REQUIRED');
      expect(warning(full)).toBeUndefined();
    } finally {
      await alone.stop();
      await full.stop();
    }
  });
});

describe('a bad PERSISTED_DOCUMENTS manifest stops start-up', () => {
  const dir = scratch;
  const [viewerId, viewerText] = Object.entries(manifest)[0] as [string, string];
  const manifests: [string, string | null, RegExp][] = [
    ['missing', null, /cannot be read \(ENOENT\)/],
    ['not JSON', '{"sha256:', /is not JSON/],
    ['an array', '[]', /must be a JSON object/],
    ['empty', '{}', /has no documents/],
    ['a document that is not a string', JSON.stringify({ [viewerId]: 1 }), /must be a document/],
    ['a document edited after hashing', JSON.stringify({ [viewerId]: `${viewerText} ` }), /not the one its sha256/],
    ['a document that does not parse', JSON.stringify({ 'my-id': 'query {' }), /does not parse/],
  ];

  test.each(manifests)('%s: building the server fails, naming PERSISTED_DOCUMENTS', (name, content, reason) => {
    const file = path.join(dir, `${name.replaceAll(' ', '-')}.json`);
    if (content !== null) writeFileSync(file, content);
    const config = loadConfig({
      ...AUTH_ENV,
      DATABASE_URL: `file:${path.join(dir, 'unused.db')}`,
      PERSISTED_DOCUMENTS: file,
    });
    const build = () => buildApp(config, { logger: createLogger('silent') });
    expect(build).toThrow(/PERSISTED_DOCUMENTS: /);
    expect(build).toThrow(reason);
  });

  test('the server process exits with status 1 and says why', async () => {
    const exit = await missingManifest;
    expect(exit.code).toBe(1);
    expect(exit.stderr).toContain('PERSISTED_DOCUMENTS: ');
    expect(exit.stderr).toContain('nowhere.json cannot be read (ENOENT)');
  });
});

describe('token buckets', () => {
  test('a bucket gives its burst at once, then one token per 1/rate s; buckets that refilled are dropped', () => {
    let now = 0;
    const buckets = new TokenBuckets(10, 3, () => now);
    expect([buckets.take('a'), buckets.take('a'), buckets.take('a')]).toEqual([0, 0, 0]);
    expect(buckets.take('a')).toBe(100);
    now += 50;
    expect(buckets.take('a')).toBe(50);
    now += 50;
    expect(buckets.take('a')).toBe(0);

    for (let user = 0; user < 1000; user += 1) buckets.take(`user-${user}`);
    expect(buckets.size).toBe(1001);
    // After a full refill period, every idle bucket is full again: the next take drops them.
    now += 300;
    buckets.take('b');
    expect(buckets.size).toBe(1);
  });
});
