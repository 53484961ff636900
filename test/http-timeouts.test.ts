import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { describe, expect, test } from 'vitest';
import { serversOfThisFile, type TestServer } from './support/server.js';

/**
 * Clients that trickle a request in (slowloris), over raw sockets: how long they hold a connection.
 * Node's defaults let them hold it 60 s for headers, 300 s for a body, checked every 30 s.
 */

const serverWith = serversOfThisFile();

interface Trickle {
  socket: Socket;
  /** Everything the server sent, once it closed the connection. */
  closed: Promise<string>;
}

/** Connects, sends `head`, then one byte of `drip` every 200 ms until the server closes the connection. */
async function trickle(server: TestServer, head: string, drip: string): Promise<Trickle> {
  const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  let received = '';
  socket.on('data', (chunk) => {
    received += String(chunk);
  });
  socket.write(head);
  let sent = 0;
  const timer = setInterval(() => socket.write(drip[sent++ % drip.length] ?? 'x'), 200);
  const closed = new Promise<string>((resolve) =>
    socket.once('close', () => {
      clearInterval(timer);
      resolve(received);
    }),
  );
  return { socket, closed };
}

describe('requests trickled in', () => {
  test('headers arriving a byte every 200 ms are cut at HTTP_REQUEST_TIMEOUT_MS with a 408', async () => {
    const server = await serverWith({ HTTP_REQUEST_TIMEOUT_MS: '1500' });
    const began = Date.now();
    const { closed } = await trickle(server, 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'x-slow: aaaaaaaaaaaaaaaa');
    const received = await closed;
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    // The setting, plus at most the one-second check interval and some slack; Node's defaults took 60-90 s.
    expect(Date.now() - began).toBeLessThan(3500);
    // No request reached the app, so no request line: its trace is this one, and the counter.
    const line = server.logs
      .map((text) => JSON.parse(text))
      .find((logged) => logged.reason === 'ERR_HTTP_REQUEST_TIMEOUT');
    expect(line).toMatchObject({ msg: 'request refused before it reached the app', status: 408 });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain('market_http_client_errors_total{reason="ERR_HTTP_REQUEST_TIMEOUT"} 1');
  }, 20_000);

  test('a body of 100 MB trickling to a route that does not read it: answered, then the connection closed', async () => {
    const server = await serverWith();
    const began = Date.now();
    const head = `POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: ${100 * 1024 * 1024}\r\n\r\n`;
    const { closed } = await trickle(server, head, 'a');
    const received = await closed;
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    // Well before HTTP_REQUEST_TIMEOUT_MS (60 s): the close follows the answer.
    expect(Date.now() - began).toBeLessThan(3000);
  }, 20_000);
});
