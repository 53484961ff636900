import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { killLeftovers, startProcess } from './support/process.js';
import { openRawSocket } from './support/raw-ws.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * A WebSocket never reaches the router, whose `request` line every HTTP request gets: each
 * connection has one `websocket closed` line at its end (request id, user, operations, close code
 * and reason, duration) and a refused upgrade a `websocket refused` line; never the token.
 */

const JWT_SECRET = 'obsfix-jwt-secret-0123456789abcdef0123456789';
/** Signed with another key: its signature does not verify. */
const FORGED_JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJlLW9mLWFub3RoZXIta2V5LTAxMjM0NTY3';
const WRONG_TOKEN = 'wrong-token-OBSFIX-SECRET';

type Line = Record<string, unknown> & { msg?: string };

describe('the log of WebSocket connections', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      env: { ...AUTH_ENV, AUTH_JWT_SECRET: JWT_SECRET, MAX_CONNECTIONS_PER_USER: '1' },
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const lines = () => server.logs.map((line) => JSON.parse(line) as Line);
  const lineOf = (requestId: string, msg = 'websocket closed') =>
    waitFor(
      async () => lines().find((line) => line.msg === msg && line.requestId === requestId),
      `${msg} ${requestId}`,
    );

  /** A connection that sends `connection_init` with `payload` and is closed by the server. */
  async function refusedConnection(requestId: string, payload: Record<string, unknown>) {
    const socket = await openRawSocket(server.url, { headers: { 'x-request-id': requestId } });
    socket.send({ type: 'connection_init', payload });
    return (await socket.closed).code;
  }

  test('a frame over the size limit: the line says 1009, the code the client got, not the socket close 1006', async () => {
    const socket = await openRawSocket(server.url, { headers: { 'x-request-id': 'ws-too-big' } });
    socket.socket.send(Buffer.alloc(2 * 1024 * 1024, 0x20));
    expect(await socket.closed).toMatchObject({ code: 1009 });
    expect(await lineOf('ws-too-big')).toMatchObject({
      closedBy: 'server',
      code: 1009,
      reason: 'Socket error: Max payload size exceeded',
    });
  });

  test('refused credentials (a wrong token, a forged JWT, none) give one line each, with the code and no token', async () => {
    expect(await refusedConnection('ws-wrong-token', { authorization: `Bearer ${WRONG_TOKEN}` })).toBe(4403);
    expect(await refusedConnection('ws-forged-jwt', { authorization: `Bearer ${FORGED_JWT}` })).toBe(4403);
    expect(await refusedConnection('ws-no-token', {})).toBe(4403);
    for (const requestId of ['ws-wrong-token', 'ws-forged-jwt', 'ws-no-token']) {
      const line = await lineOf(requestId);
      expect(line).toMatchObject({ closedBy: 'server', code: 4403, reason: 'Forbidden', operations: 0 });
      expect(line.userId).toBeUndefined();
      expect(typeof line.ms).toBe('number');
      expect(lines().filter((each) => each.requestId === requestId)).toHaveLength(1);
    }
    const all = server.logs.join('\n');
    expect(all).not.toContain(WRONG_TOKEN);
    expect(all).not.toContain(FORGED_JWT.split('.')[2]);
  });

  test('a connection that ran a subscription and a document that failed validation says who, how many and how it ended', async () => {
    const socket = await openRawSocket(server.url, { headers: { 'x-request-id': 'ws-alice' } });
    socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${TOKENS.alice}` } });
    await socket.nextOfType('connection_ack');
    socket.send({ id: '1', type: 'subscribe', payload: { query: 'subscription S { historyAdded { id } }' } });
    socket.send({ id: '2', type: 'subscribe', payload: { query: 'query Q { nope }' } });
    expect(await socket.nextOfType('error')).toMatchObject({ id: '2' });
    await waitFor(
      async () => (server.app.subscriptionStats().subscriptions === 1 ? true : undefined),
      'the subscription',
    );
    socket.socket.close(1000, 'bye');
    expect(await lineOf('ws-alice')).toMatchObject({
      userId: 'alice',
      operations: 2,
      closedBy: 'client',
      code: 1000,
      reason: 'bye',
    });
    expect(server.logs.join('\n')).not.toContain(TOKENS.alice);
  });

  test('a user over MAX_CONNECTIONS_PER_USER is closed with 1013, and the line names the user', async () => {
    const first = await openRawSocket(server.url, { headers: { 'x-request-id': 'ws-bob-1' } });
    first.send({ type: 'connection_init', payload: { authorization: `Bearer ${TOKENS.bob}` } });
    await first.nextOfType('connection_ack');
    expect(await refusedConnection('ws-bob-2', { authorization: `Bearer ${TOKENS.bob}` })).toBe(1013);
    expect(await lineOf('ws-bob-2')).toMatchObject({
      userId: 'bob',
      closedBy: 'server',
      code: 1013,
      reason: 'Too many connections for this user on this instance (MAX_CONNECTIONS_PER_USER)',
    });
    first.socket.close(1000);
    await lineOf('ws-bob-1');
  });

  test('an upgrade from another site is refused with 403, echoing its request id, and logged', async () => {
    const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws', {
      headers: { origin: 'https://elsewhere.example', 'x-request-id': 'ws-foreign-origin' },
    });
    socket.on('error', () => {});
    const [, response] = (await once(socket, 'unexpected-response')) as [unknown, IncomingMessage];
    expect(response.statusCode).toBe(403);
    expect(response.headers['x-request-id']).toBe('ws-foreign-origin');
    response.destroy();
    expect(await lineOf('ws-foreign-origin', 'websocket refused')).toMatchObject({
      status: 403,
      origin: 'https://elsewhere.example',
      reason: expect.stringContaining('Origin https://elsewhere.example does not match the Host'),
    });
  });

  test('a connection without the graphql-transport-ws subprotocol is closed with 4406, and logged', async () => {
    const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/graphql`, {
      headers: { 'x-request-id': 'ws-no-subprotocol' },
    });
    const [code] = (await once(socket, 'close')) as [number];
    expect(code).toBe(4406);
    expect(await lineOf('ws-no-subprotocol')).toMatchObject({
      closedBy: 'server',
      code: 4406,
      reason: 'Subprotocol not acceptable',
      operations: 0,
    });
  });

  test('an accepted upgrade echoes its request id, or is given one, as the line shows', async () => {
    const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
    const [response] = (await once(socket, 'upgrade')) as [IncomingMessage];
    const requestId = response.headers['x-request-id'] as string;
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    socket.close(1000);
    expect(await lineOf(requestId)).toMatchObject({ closedBy: 'client', code: 1000, operations: 0 });
  });

  test('a close reason with control characters (C1 too, which JSON leaves as they are) is logged with each shown as ?', async () => {
    const socket = await openRawSocket(server.url, { headers: { 'x-request-id': 'ws-log-controls' } });
    // U+009B is CSI to a terminal that takes C1 codes: this would clear the screen and move the cursor.
    socket.socket.close(4000, '\u009b2J\u009bHgone\u0085\u202e!\u0007');
    await socket.closed;
    expect(await lineOf('ws-log-controls')).toMatchObject({ closedBy: 'client', code: 4000, reason: '?2J?Hgone??!?' });
  });
});

describe('a frame over the size limit from a client in another process', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: AUTH_ENV });
  });
  afterAll(async () => {
    await killLeftovers();
    await server?.stop();
  });

  test('a 10 MB frame after connection_ack reaches the client as close 1009 every time, not as a reset (1006)', async () => {
    const rounds = 40;
    const client = startProcess(
      [process.execPath, 'test/support/oversized-frame-client.mjs', server.url, TOKENS.alice, String(rounds)],
      process.env,
    );
    const { codes } = await client.waitForLog((line) => line.msg === 'closed', 'the client saw its closes');
    expect(codes).toEqual(Array.from({ length: rounds }, () => 1009));
    expect(await client.exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});
