import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * A page of the server's own origin behind a proxy that rewrites Host (nginx's default: the
 * upstream's address): its Origin no longer matches the Host the server sees. The refusal names
 * both and the proxy, not only CORS_ORIGINS, and the WebSocket refusal's log line carries both.
 * The proxy is played by the client: the server sees exactly the headers nginx would send.
 */

/** The page's origin as the browser saw it: the proxy's port, not the server's. */
const PAGE = 'http://127.0.0.1:4752';

describe('a refused Origin behind a proxy that rewrites Host', () => {
  let server: TestServer;
  let host: string;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: AUTH_ENV });
    host = new URL(server.url).host;
  });
  afterAll(() => server?.stop());

  async function post(origin: string): Promise<{ status: number; message: string; code: string }> {
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { origin, authorization: `Bearer ${TOKENS.alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ viewer { userId } }' }),
    });
    const body = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] };
    const [error] = body.errors;
    return { status: response.status, message: error?.message ?? '', code: error?.extensions.code ?? '' };
  }

  test('a POST is refused with a message naming the Origin, the Host and the proxy', async () => {
    const { status, message, code } = await post(PAGE);
    expect(status).toBe(403);
    expect(code).toBe('FORBIDDEN');
    expect(message).toContain(`Origin ${PAGE} does not match the Host the server was reached under (${host})`);
    expect(message).toContain('a proxy in front must pass the Host header unchanged');
    expect(message).toContain('CORS_ORIGINS');
  });

  test('the Origin in the message is bounded and cut down to the characters of an origin', async () => {
    const { status, message } = await post(`http://evil.example/<img src=x onerror=alert(1)>${'a'.repeat(500)}`);
    expect(status).toBe(403);
    expect(message).not.toMatch(/[<>]/);
    expect(message).toContain('Origin http://evil.example/?img?src?x?onerror?alert?1??');
    expect(message.length).toBeLessThan(600);
  });

  test('a WebSocket upgrade is refused with the same message, and its log line carries Origin and Host', async () => {
    const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws', {
      headers: { origin: PAGE, 'x-request-id': 'ws-proxy-host' },
    });
    socket.on('error', () => {});
    const [, response] = (await once(socket, 'unexpected-response')) as [unknown, IncomingMessage];
    expect(response.statusCode).toBe(403);
    let body = '';
    for await (const chunk of response) body += String(chunk);
    expect(body).toContain(`Origin ${PAGE} does not match the Host the server was reached under (${host})`);
    const line = await waitFor(
      async () =>
        server.logs
          .map((each) => JSON.parse(each) as Record<string, unknown>)
          .find((each) => each.msg === 'websocket refused' && each.requestId === 'ws-proxy-host'),
      'the websocket refused line',
    );
    expect(line).toMatchObject({ status: 403, origin: PAGE, host });
    expect(String(line.reason)).toContain('a proxy in front must pass the Host header unchanged');
  });
});
