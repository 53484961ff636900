import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { readBody } from '../src/http/body.js';

/**
 * readBody on a real node:http server: the cases the routes meet only when a client misbehaves at
 * the wrong moment (test/request-edge.test.ts and test/edge-security.test.ts cover the rest
 * through the routes).
 */
describe('reading a request body', () => {
  let server: Server | null = null;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    server = null;
  });

  /** A server that hands each request to `handle`; its port. */
  async function serve(handle: (req: IncomingMessage) => void): Promise<number> {
    server = createServer((req) => handle(req));
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  test('a client gone before the body is read (the caller awaited first) rejects as gone, never hangs', async () => {
    let outcome: Promise<string | undefined> | undefined;
    let readAfterClose: () => void = () => {};
    const read = new Promise<void>((resolve) => {
      readAfterClose = resolve;
    });
    const port = await serve((req) => {
      // The caller awaits something that outlasts the client (an authenticator's I/O, say).
      req.once('close', () => {
        outcome = readBody(req, 64 * 1024).then(
          () => 'resolved',
          (error: { code?: string }) => error.code,
        );
        readAfterClose();
      });
    });
    const socket = connect(port, '127.0.0.1');
    const head =
      'POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n';
    socket.write(`${head}{"query"`, () => socket.destroy());
    await read;
    expect(['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE']).toContain(await outcome);
  });
});
