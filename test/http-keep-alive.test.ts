import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { describe, expect, test } from 'vitest';
import { serversOfThisFile } from './support/server.js';

/**
 * How long the server keeps an idle keep-alive connection (HTTP_KEEP_ALIVE_TIMEOUT_MS), seen the
 * way a proxy in front sees it: one raw HTTP/1.1 connection, a request, the idle gap, the next
 * request on the same connection. With Node's default of 5 s the server closed connections that
 * nginx (60 s idle) was about to reuse, and nginx answered 502 to the POST it had sent on one.
 */

const serverWith = serversOfThisFile();

interface KeepAliveConnection {
  /** Sends a GraphQL POST on this connection and resolves with the status line once the whole answer arrived. */
  post(): Promise<string>;
  /** Resolves with Date.now() when the server closes the connection. */
  closed: Promise<number>;
  socket: Socket;
}

async function openConnection(url: string): Promise<KeepAliveConnection> {
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  await once(socket, 'connect');
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
  let buffered = '';
  let answered: ((statusLine: string) => void) | null = null;
  socket.on('data', (chunk) => {
    buffered += String(chunk);
    const headEnd = buffered.indexOf('\r\n\r\n');
    if (headEnd < 0 || !answered) return;
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(buffered.slice(0, headEnd))?.[1]);
    if (buffered.length < headEnd + 4 + length) return;
    const statusLine = buffered.slice(0, buffered.indexOf('\r\n'));
    buffered = buffered.slice(headEnd + 4 + length);
    answered(statusLine);
    answered = null;
  });
  const post = () =>
    new Promise<string>((resolve, reject) => {
      answered = resolve;
      void closed.then(() => reject(new Error('the server closed the connection before answering')));
      const body = JSON.stringify({ query: '{ viewer { userId } }' });
      socket.write(
        `POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
  return { post, closed, socket };
}

describe('idle keep-alive connections', () => {
  test('stay open past Node default of 5 s and serve the next request, as a proxy reusing them expects', async () => {
    const server = await serverWith();
    const connection = await openConnection(server.url);
    expect(await connection.post()).toBe('HTTP/1.1 200 OK');
    // Node closes an idle connection about a second after its keepAliveTimeout (6 s at the old
    // default): 7 s of idleness is past that. The window is what is measured, not a wait for something.
    const idleMs = 7_000;
    const windowEnded = new Promise<'still open'>((resolve) => setTimeout(() => resolve('still open'), idleMs));
    const first = await Promise.race([connection.closed.then(() => 'closed' as const), windowEnded]);
    expect(first).toBe('still open');
    expect(connection.socket.destroyed).toBe(false);
    expect(await connection.post()).toBe('HTTP/1.1 200 OK');
    connection.socket.destroy();
  }, 20_000);

  test('are closed by the server once HTTP_KEEP_ALIVE_TIMEOUT_MS has passed', async () => {
    const server = await serverWith({ HTTP_KEEP_ALIVE_TIMEOUT_MS: '1500' });
    const connection = await openConnection(server.url);
    expect(await connection.post()).toBe('HTTP/1.1 200 OK');
    const answeredAt = Date.now();
    const idleMs = (await connection.closed) - answeredAt;
    // Not before the setting, and well before Node's default would have closed it (5 s + 1 s).
    expect(idleMs).toBeGreaterThanOrEqual(1500);
    expect(idleMs).toBeLessThan(5000);
  }, 20_000);
});
