import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { describe, expect, test } from 'vitest';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * HTTP/1.1 pipelining over raw sockets, the way a misbehaving or hostile client does it: many
 * requests in one write, on one connection. Node answers them in order, so all but the first wait
 * behind it; when the client leaves, Node never emits 'close' on the ones still waiting.
 */

interface Line {
  msg: string;
  requestId?: string;
  path?: string;
  status?: number;
  aborted?: boolean;
  cutBy?: string;
  requestsWaitedFor?: number;
  requestsCut?: number;
}

const linesOf = (server: TestServer) => server.logs.map((line) => JSON.parse(line) as Line);

async function rawConnection(server: TestServer): Promise<Socket> {
  const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

/** A GET of /health, the cheapest request there is, tagged for its log line. */
const healthRequest = (requestId: string) =>
  `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nx-request-id: ${requestId}\r\n\r\n`;

/** An SSE subscription: its answer never ends, so whatever is pipelined behind it waits. */
const endlessRequest =
  `GET /graphql?query=${encodeURIComponent('subscription { historyAdded { type } }')} HTTP/1.1\r\n` +
  `Host: 127.0.0.1\r\naccept: text/event-stream\r\nauthorization: Bearer ${TOKENS.alice}\r\n` +
  'x-request-id: pipe-stream\r\n\r\n';

describe('pipelined requests whose client leaves', () => {
  test('are each logged as cut by the client, and a stop does not wait for them', async () => {
    // A stop that waited for them would take the whole SHUTDOWN_TIMEOUT_MS.
    const server = await startTestServer('sqlite', { env: { ...AUTH_ENV, SHUTDOWN_TIMEOUT_MS: '30000' } });
    const count = 10;
    const ids = Array.from({ length: count }, (_, index) => `pipe-left-${index}`);
    const socket = await rawConnection(server);
    const streamStarted = once(socket, 'data');
    socket.write(endlessRequest + ids.map(healthRequest).join(''));
    await streamStarted;
    socket.destroy();
    const lines = await waitFor(async () => {
      const found = linesOf(server).filter((line) => line.msg === 'request' && ids.includes(line.requestId ?? ''));
      return found.length === count ? found : undefined;
    }, `the request lines of all ${count} pipelined requests`);
    for (const line of lines)
      expect(line).toMatchObject({ path: '/health', status: 0, aborted: true, cutBy: 'client' });

    const stopStarted = Date.now();
    await server.stop();
    expect(Date.now() - stopStarted).toBeLessThan(10_000);
    expect(linesOf(server).find((line) => line.msg === 'stopped')).toMatchObject({
      requestsWaitedFor: 0,
      requestsCut: 0,
    });
  }, 60_000);
});

describe('a connection pipelining more than 16 requests', () => {
  test('runs at most 16 of them and is closed, however many it sent without reading', async () => {
    const server = await startTestServer('sqlite', { env: AUTH_ENV });
    try {
      const ids = Array.from({ length: 1000 }, (_, index) => `pipe-flood-${index}`);
      const socket = await rawConnection(server);
      socket.pause();
      // The server resets it (unread data was waiting): 'error' then 'close'.
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.write(endlessRequest + ids.map(healthRequest).join(''));
      await closed;
      // Every request that ran has a line once its connection is gone (status 0: its answer was never read).
      await waitFor(
        async () => linesOf(server).find((line) => line.msg === 'request' && line.requestId === 'pipe-stream'),
        'the request line of the stream',
      );
      const ran = linesOf(server).filter((line) => line.msg === 'request' && ids.includes(line.requestId ?? ''));
      expect(ran.length).toBeLessThanOrEqual(15);
      expect(ran.length).toBeGreaterThan(0);
    } finally {
      await server.stop();
    }
  }, 60_000);

  test('a client pipelining 16 requests and reading gets every answer', async () => {
    const server = await startTestServer('sqlite', { env: AUTH_ENV });
    try {
      const socket = await rawConnection(server);
      let received = '';
      const statuses = new Promise<string[]>((resolve) => {
        socket.on('data', (chunk) => {
          received += String(chunk);
          const found = received.match(/^HTTP\/1\.1 \d+/gm) ?? [];
          if (found.length >= 16) resolve(found);
        });
        socket.once('close', () => resolve(received.match(/^HTTP\/1\.1 \d+/gm) ?? []));
      });
      socket.write(Array.from({ length: 16 }, (_, index) => healthRequest(`pipe-ok-${index}`)).join(''));
      expect(await statuses).toEqual(Array(16).fill('HTTP/1.1 200'));
      socket.destroy();
    } finally {
      await server.stop();
    }
  }, 60_000);
});
