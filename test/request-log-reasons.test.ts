import { connect, type Socket } from 'node:net';
import { print } from 'graphql';
import { createClient as createSseClient } from 'graphql-sse';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { HistoryAddedSubscription } from './support/operations.js';
import { openRawSocket } from './support/raw-ws.js';
import {
  AUTH_ENV,
  announceHistory,
  installThroughApi,
  startTestServer,
  type TestServer,
  TOKENS,
  waitFor,
} from './support/server.js';

/**
 * Why a request failed is in its log line: the code and reason of a refusal, the user who sent
 * it, the operation's name as /metrics counts it; a task's failure with its reason; an unexpected
 * error with the request it failed. And /metrics counts a refused request under its name.
 */

type Line = Record<string, unknown> & { msg?: string };

const linesOf = (server: TestServer) => server.logs.map((line) => JSON.parse(line) as Line);
const requestLine = (server: TestServer, requestId: string, msg = 'request') =>
  waitFor(
    async () => linesOf(server).find((line) => line.msg === msg && line.requestId === requestId),
    `the ${msg} line of ${requestId}`,
  );

function post(server: TestServer, requestId: string, body: string, token?: string) {
  return fetch(server.graphqlUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      'x-request-id': requestId,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body,
  });
}

/** The value of `market_graphql_requests_total` with exactly these labels (0 when absent). */
async function requests(server: TestServer, operation: string, type: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((each) => each.startsWith(`market_graphql_requests_total{operation="${operation}",type="${type}"} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

describe('request log lines and operation labels', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      env: { ...AUTH_ENV, SIMULATED_STEP_MS: '10', SIMULATED_FAIL_APPS: 'photoprism', MAX_BODY_BYTES: '4096' },
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  test('a 401, a 400 and a 413 carry their code and reason, and the user when one was authenticated', async () => {
    const query = JSON.stringify({ query: '{ viewer { userId } }' });
    expect((await post(server, 'log-401', query, 'no-such-token-OBSFIX')).status).toBe(401);
    expect(await requestLine(server, 'log-401')).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
    expect((await requestLine(server, 'log-401')).reason).toEqual(expect.any(String));

    const invalid = JSON.stringify({ query: 'query LogInvalid { nope }' });
    expect((await post(server, 'log-400', invalid, TOKENS.alice)).status).toBe(400);
    const badRequest = await requestLine(server, 'log-400');
    expect(badRequest).toMatchObject({
      status: 400,
      code: 'GRAPHQL_VALIDATION_FAILED',
      userId: 'alice',
      operation: 'LogInvalid',
    });
    expect(badRequest.reason).toContain('nope');

    const large = JSON.stringify({ query: `{ viewer { userId } } #${'x'.repeat(5000)}` });
    expect((await post(server, 'log-413', large, TOKENS.bob)).status).toBe(413);
    const tooLarge = await requestLine(server, 'log-413');
    expect(tooLarge).toMatchObject({ status: 413, code: 'VALIDATION', userId: 'bob' });
    expect(tooLarge.reason).toContain('MAX_BODY_BYTES');

    // Through Yoga (a GET): refused at validation, after the authentication.
    const get = await fetch(`${server.graphqlUrl}?query=${encodeURIComponent('query LogGet { nope }')}`, {
      headers: {
        authorization: `Bearer ${TOKENS.bob}`,
        'x-request-id': 'log-get-400',
        accept: 'application/graphql-response+json',
      },
    });
    expect(get.status).toBe(400);
    expect(await requestLine(server, 'log-get-400')).toMatchObject({
      code: 'GRAPHQL_VALIDATION_FAILED',
      userId: 'bob',
      operation: 'LogGet',
    });
    expect(server.logs.join('\n')).not.toContain('no-such-token-OBSFIX');
  });

  test('a refusal answered 200 (to a client that accepts only application/json) still carries its code and reason', async () => {
    const refused = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        'x-request-id': 'log-200-refusal',
        authorization: `Bearer ${TOKENS.alice}`,
      },
      body: JSON.stringify({ query: '{ viewer { noSuchField } }' }),
    });
    expect(refused.status).toBe(200);
    expect(await requestLine(server, 'log-200-refusal')).toMatchObject({
      status: 200,
      code: 'GRAPHQL_VALIDATION_FAILED',
      reason: expect.stringContaining('noSuchField'),
    });
    // An answer with data carries none.
    expect(
      (await post(server, 'log-200-ok', JSON.stringify({ query: '{ viewer { userId } }' }), TOKENS.alice)).status,
    ).toBe(200);
    expect(await requestLine(server, 'log-200-ok')).not.toHaveProperty('code');
  });

  test('a refused input value is not in the log line, whose reason still says where and why', async () => {
    // A secret env value sent in the wrong shape: graphql-js quotes it in its message, twice.
    const secret = 'ENVSECRET-as-list; hunter2';
    const mutation = 'mutation LogBadEnv($input: InstallAppInput!) { installApp(input: $input) { __typename } }';
    const input = {
      sourceId: 'market.olares',
      appName: 'calibre-web',
      version: '1.0.0',
      envs: [{ name: 'ADMIN_PASSWORD', value: [secret] }],
    };
    const asVariable = await post(
      server,
      'log-bad-env',
      JSON.stringify({ query: mutation, variables: { input } }),
      TOKENS.alice,
    );
    expect(asVariable.status).toBe(400);
    // The client is shown its own value back.
    expect(await asVariable.text()).toContain(secret);
    expect(await requestLine(server, 'log-bad-env')).toMatchObject({
      status: 400,
      userId: 'alice',
      reason:
        'Variable "$input" got invalid value at "input.envs[0].value"; String cannot represent a non string value',
    });

    const inline = `mutation LogBadEnvLiteral { installApp(input: { sourceId: "market.olares", appName: "x", version: "1.0.0", envs: [{ name: "ADMIN_PASSWORD", value: [${JSON.stringify(secret)}] }] }) { __typename } }`;
    expect((await post(server, 'log-bad-env-literal', JSON.stringify({ query: inline }), TOKENS.alice)).status).toBe(
      400,
    );
    expect(await requestLine(server, 'log-bad-env-literal')).toMatchObject({
      reason: 'String cannot represent a non string value',
    });
    expect(server.logs.join('\n')).not.toContain('hunter2');
  });

  test('the operation is the name in the document when the client sends no operationName, on every path', async () => {
    const body = JSON.stringify({ query: 'query LogDocumentName { viewer { userId } }' });
    expect((await post(server, 'log-name-lean', body, TOKENS.alice)).status).toBe(200);
    expect(await requestLine(server, 'log-name-lean')).toMatchObject({ operation: 'LogDocumentName', status: 200 });
    const query = encodeURIComponent('query LogDocumentNameGet { viewer { userId } }');
    const get = await fetch(`${server.graphqlUrl}?query=${query}`, {
      headers: { authorization: `Bearer ${TOKENS.alice}`, 'x-request-id': 'log-name-get' },
    });
    expect(get.status).toBe(200);
    expect(await requestLine(server, 'log-name-get')).toMatchObject({ operation: 'LogDocumentNameGet' });
    expect(await requests(server, 'LogDocumentName', 'query')).toBe(1);
    expect(await requests(server, 'LogDocumentNameGet', 'query')).toBe(1);

    // An SSE stream: its line at its end, named by its document too.
    const sse = createSseClient({
      url: `${server.url}/graphql/stream`,
      headers: { authorization: `Bearer ${TOKENS.alice}`, 'x-request-id': 'log-name-sse' },
      retryAttempts: 0,
    });
    const events: unknown[] = [];
    const stop = sse.subscribe(
      { query: print(HistoryAddedSubscription), variables: {} },
      { next: (event) => events.push(event), error: () => {}, complete: () => {} },
    );
    await waitFor(async () => (server.app.subscriptionStats().streams === 1 ? true : undefined), 'the stream');
    await announceHistory(server);
    await waitFor(async () => (events.length > 0 ? true : undefined), 'an event');
    stop();
    sse.dispose();
    expect(await requestLine(server, 'log-name-sse')).toMatchObject({
      operation: 'HistoryAdded',
      userId: 'alice',
      status: 200,
    });
  });

  test('a refused request is counted under the name it has a label for', async () => {
    const known = JSON.stringify({ query: 'query LogKnownName { viewer { userId } }' });
    expect((await post(server, 'log-known', known, TOKENS.alice)).status).toBe(200);
    const before = await requests(server, 'LogKnownName', 'unknown');
    const refused = JSON.stringify({ query: 'query LogKnownName { nope }' });
    expect((await post(server, 'log-known-refused', refused, TOKENS.alice)).status).toBe(400);
    expect(await requests(server, 'LogKnownName', 'unknown')).toBe(before + 1);
    // Refused by Yoga's authentication (a GET; a POST is refused by the router before it is read).
    const search = new URLSearchParams({ query: 'query LogKnownName { nope }', operationName: 'LogKnownName' });
    const unauthenticated = await fetch(`${server.graphqlUrl}?${search}`, {
      headers: { authorization: 'Bearer not-a-token-at-all', accept: 'application/graphql-response+json' },
    });
    expect(unauthenticated.status).toBe(401);
    expect(await requests(server, 'LogKnownName', 'unknown')).toBe(before + 2);
  });

  test('one user inventing operation names does not take the labels other users’ operations get', async () => {
    for (let index = 0; index < 250; index += 25) {
      await Promise.all(
        Array.from({ length: 25 }, (_, offset) =>
          post(
            server,
            `flood-${index + offset}`,
            JSON.stringify({ query: `query Invented${index + offset} { viewer { userId } }` }),
            TOKENS.ops,
          ).then((response) => response.text()),
        ),
      );
    }
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const invented = new Set(text.match(/operation="Invented\d+"/g));
    expect(invented.size).toBeLessThanOrEqual(20);
    const real = JSON.stringify({ query: 'query BobsRealOperation { viewer { userId } }' });
    expect((await post(server, 'log-real', real, TOKENS.bob)).status).toBe(200);
    expect(await requests(server, 'BobsRealOperation', 'query')).toBe(1);
  });

  test('a failed task’s line says why it failed, as Task.error does', async () => {
    const taskId = await installThroughApi(server, { appName: 'photoprism', version: '240915' }, TOKENS.alice);
    const line = await waitFor(
      async () => linesOf(server).find((each) => each.msg === 'task ended' && each.taskId === taskId),
      'the task ended line',
    );
    const task = await server.app.db.task.findUniqueOrThrow({ where: { taskId } });
    expect(task.status).toBe('FAILED');
    expect(task.error).toContain('simulated failure of photoprism');
    expect(line).toMatchObject({ status: 'FAILED', err: task.error });
  });
});

describe('an unexpected error in an operation', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: AUTH_ENV });
    // A database broken under the server: the table the webhooks are read from is gone.
    await server.app.db.$executeRawUnsafe('ALTER TABLE "Webhook" RENAME TO "WebhookGone"');
  });
  afterAll(async () => {
    await server?.stop();
  });

  const unexpected = () => linesOf(server).filter((line) => line.msg === 'unexpected error in a GraphQL operation');

  test('is logged with the id of the request it failed, over HTTP and over a WebSocket', async () => {
    const body = JSON.stringify({ query: 'query LogBroken { webhooks { webhookId } }' });
    const response = await post(server, 'log-unexpected-http', body, TOKENS.ops);
    expect(((await response.json()) as { errors: { message: string }[] }).errors[0]?.message).toBe('Unexpected error.');
    await waitFor(
      async () => unexpected().find((line) => line.requestId === 'log-unexpected-http'),
      'the HTTP line with its request id',
    );

    const socket = await openRawSocket(server.url, { headers: { 'x-request-id': 'log-unexpected-ws' } });
    socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${TOKENS.ops}` } });
    await socket.nextOfType('connection_ack');
    socket.send({ id: '1', type: 'subscribe', payload: { query: 'query LogBrokenWs { webhooks { webhookId } }' } });
    await socket.nextOfType('next');
    socket.socket.close(1000);
    await waitFor(
      async () => unexpected().find((line) => line.requestId === 'log-unexpected-ws'),
      'the WebSocket line with its connection’s request id',
    );
    expect(unexpected().every((line) => typeof line.requestId === 'string')).toBe(true);
  });
});

/**
 * Opens a POST that asks for `100 Continue` and never sends its body, so it stays without a
 * response; resolves once the server has taken it in (its 100), with the socket to end it.
 */
async function unansweredPost(server: TestServer, requestId: string): Promise<Socket> {
  const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
  socket.on('error', () => {});
  const continued = new Promise<void>((resolve) => socket.once('data', () => resolve()));
  socket.write(
    `POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n` +
      `expect: 100-continue\r\nx-request-id: ${requestId}\r\n\r\n`,
  );
  await continued;
  return socket;
}

describe('request log lines of requests that got no response', () => {
  test('a request its client left, and one cut at the stop, are logged with status 0 and who ended them', async () => {
    const server = await startTestServer('sqlite', { env: { SHUTDOWN_TIMEOUT_MS: '0' } });
    try {
      const left = await unansweredPost(server, 'log-client-left');
      left.destroy();
      expect(await requestLine(server, 'log-client-left')).toMatchObject({ status: 0, aborted: true, cutBy: 'client' });

      await unansweredPost(server, 'log-cut-at-stop');
    } finally {
      await server.stop();
    }
    expect(await requestLine(server, 'log-cut-at-stop')).toMatchObject({ status: 0, aborted: true, cutBy: 'server' });
  });
});
