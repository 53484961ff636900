import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openRawSocket, type RawSocket } from './support/raw-ws.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * WebSockets that never authenticate cannot hold what real users need: a connection closed for
 * not sending `connection_init` gives its MAX_CONNECTIONS slot back at once, not after ws's 30 s
 * wait for an answer to the close its client never gives.
 */

/** The server's time for `connection_init` (live.ts), in which an anonymous socket holds its slot. */
const INIT_WAIT_MS = 3000;
const MAX_CONNECTIONS = 50;
/** Up to which bob's connections fill MAX_CONNECTIONS, so that anonymous ones within their tenth fill the rest. */
const BOBS = 45;

describe('anonymous WebSockets', () => {
  let server: TestServer;
  const sockets: RawSocket[] = [];

  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { ...AUTH_ENV, MAX_CONNECTIONS: String(MAX_CONNECTIONS) } });
  });
  afterAll(async () => {
    for (const each of sockets) each.socket.terminate();
    await server?.stop();
  });

  test('sockets that never init and never answer the close give their slots back within the init wait and 1 s', async () => {
    for (let i = 0; i < BOBS; i++) {
      const socket = await openRawSocket(server.url);
      sockets.push(socket);
      socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${TOKENS.bob}` } });
      await socket.nextOfType('connection_ack');
    }
    const opened = Date.now();
    const anonymous: RawSocket[] = [];
    for (let i = BOBS; i < MAX_CONNECTIONS; i++) {
      const socket = await openRawSocket(server.url);
      // Reads nothing: never sees the close frame, so never answers it (as a flood's sockets do).
      socket.socket.pause();
      anonymous.push(socket);
      sockets.push(socket);
    }
    expect(await aliceConnects(server)).toBe('1013');

    await waitFor(async () => ((await aliceConnects(server)) === 'ack' ? true : undefined), 'alice accepted', 8000);
    expect(Date.now() - opened).toBeLessThan(INIT_WAIT_MS + 2000);

    // The close frame went out before the cut: a client that reads again learns why.
    const [first] = anonymous;
    first?.socket.resume();
    expect(await first?.closed).toMatchObject({ code: 4408, reason: 'Connection initialisation timeout' });
  });
});

/** alice's graphql-ws connection: 'ack', or the code it was closed with. */
async function aliceConnects(server: TestServer): Promise<string> {
  const socket = await openRawSocket(server.url);
  socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${TOKENS.alice}` } });
  const outcome = await Promise.race([
    socket.nextOfType('connection_ack').then(() => 'ack'),
    socket.closed.then(({ code }) => String(code)),
  ]);
  socket.socket.terminate();
  return outcome;
}

describe('messages before connection_ack', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: AUTH_ENV });
  });
  afterAll(async () => {
    await server?.stop();
  });

  test('a 1 MiB ping before connection_init is not echoed: the socket is closed with 1009', async () => {
    const socket = await openRawSocket(server.url);
    socket.send({ type: 'ping', payload: { padding: 'x'.repeat(1_000_000) } });
    expect(await socket.closed).toEqual({ code: 1009, reason: 'More than 16384 bytes before connection_ack' });
    expect(socket.messages).toEqual([]);
  });

  test('a small ping before connection_init gets its pong, as the protocol requires, and the connection is acknowledged', async () => {
    const socket = await openRawSocket(server.url);
    socket.send({ type: 'ping', payload: { sentAt: 1 } });
    expect(await socket.nextOfType('pong')).toEqual({ type: 'pong', payload: { sentAt: 1 } });
    socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${TOKENS.alice}` } });
    await socket.nextOfType('connection_ack');
    // Once acknowledged, the budget no longer applies (MAX_BODY_BYTES per frame does).
    socket.send({ type: 'ping', payload: { padding: 'x'.repeat(100_000) } });
    expect(await socket.nextOfType('pong')).toMatchObject({ type: 'pong' });
    socket.socket.close();
  });
});

describe('a flood of sockets that never authenticate', () => {
  const LIMIT = 20;
  let server: TestServer;
  const flood: RawSocket[] = [];

  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { ...AUTH_ENV, MAX_CONNECTIONS: String(LIMIT) } });
  });
  afterAll(async () => {
    for (const each of flood) each.socket.terminate();
    await server?.stop();
  });

  test('holds at most a tenth of MAX_CONNECTIONS: a user connecting meanwhile is acknowledged, the oldest closed 1013', async () => {
    for (let i = 0; i < LIMIT; i++) {
      const socket = await openRawSocket(server.url);
      // Reads nothing, so never answers a close.
      socket.socket.pause();
      flood.push(socket);
    }
    expect(await aliceConnects(server)).toBe('ack');
    flood[0]?.socket.resume();
    expect(await flood[0]?.closed).toEqual({ code: 1013, reason: 'Too many connections not yet authenticated' });
    // The newest tenth (2) is still open and may still authenticate.
    const newest = flood[LIMIT - 1] as RawSocket;
    newest.socket.resume();
    newest.send({ type: 'connection_init', payload: { authorization: `Bearer ${TOKENS.bob}` } });
    await newest.nextOfType('connection_ack');
  });
});
