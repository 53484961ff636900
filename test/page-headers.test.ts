import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { request } from 'undici';
import { beforeAll, describe, expect, test } from 'vitest';
import { serversOfThisFile, type TestServer } from './support/server.js';

/**
 * The headers of the server's HTML pages (the dashboard, its app page and GraphiQL), as a client
 * reads them off a real server: what a browser is told about referrers, sniffing and framing.
 */

const serverWith = serversOfThisFile();

/** A page's status and headers; its body is read to the end (and dropped). */
async function open(url: string, headers: Record<string, string> = {}) {
  const { statusCode, headers: received, body } = await request(url, { headers });
  await body.dump();
  return { status: statusCode, headers: received };
}

/**
 * The headers that describe the answer, as RFC 9110 asks HEAD to repeat them: not those of the
 * connection (undici closes it after a HEAD), the time or the request's id.
 */
function endToEnd(headers: Record<string, unknown>): Record<string, unknown> {
  const apart = new Set(['date', 'connection', 'keep-alive', 'x-request-id']);
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !apart.has(name)));
}

/** Every byte the server sends for one request on a connection of its own, read until it closes. */
async function onTheWire(url: string, method: string): Promise<string> {
  const { hostname, port, pathname } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.end(`${method} ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(socket, 'close');
  return Buffer.concat(chunks).toString('latin1');
}

/** Every dashboard file's path: the pages at /dashboard and /dashboard/app, the others by name. */
const DASHBOARD_PATHS = readdirSync(new URL('../src/dashboard/', import.meta.url)).map(
  (file) => ({ 'dashboard.html': '/dashboard', 'app.html': '/dashboard/app' })[file] ?? `/dashboard/${file}`,
);

/** GraphiQL's page, as sent uncompressed and as browsers get it (brotli). */
const GRAPHIQL_FORMS: Record<string, string>[] = [{}, { 'accept-encoding': 'gzip, deflate, br, zstd' }];

describe('the HTML pages', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await serverWith();
  });

  test('every page says Referrer-Policy: same-origin, GraphiQL in each of its forms', async () => {
    for (const path of ['/dashboard', '/dashboard/app']) {
      const { status, headers } = await open(`${server.url}${path}`);
      expect(status, path).toBe(200);
      expect(headers['referrer-policy'], path).toBe('same-origin');
    }
    for (const encoding of GRAPHIQL_FORMS) {
      const { status, headers } = await open(server.graphqlUrl, { accept: 'text/html', ...encoding });
      expect(status).toBe(200);
      expect(headers['content-type']).toMatch(/^text\/html/);
      expect(headers['referrer-policy'], JSON.stringify(encoding)).toBe('same-origin');
    }
  });

  test('GraphiQL is never read as another type than it is sent as, in each of its forms, as the dashboard', async () => {
    for (const encoding of GRAPHIQL_FORMS) {
      const { status, headers } = await open(server.graphqlUrl, { accept: 'text/html', ...encoding });
      expect(status).toBe(200);
      expect(headers['x-content-type-options'], JSON.stringify(encoding)).toBe('nosniff');
    }
    expect((await open(`${server.url}/dashboard`)).headers['x-content-type-options']).toBe('nosniff');
  });

  test('HEAD answers every dashboard file as GET does, with no body: the same status and headers (uptime checks use it)', async () => {
    expect(DASHBOARD_PATHS).toEqual(
      expect.arrayContaining(['/dashboard', '/dashboard/app', '/dashboard/dashboard.js']),
    );
    for (const path of [...DASHBOARD_PATHS, '/dashboard/', '/dashboard/app/']) {
      const got = await request(`${server.url}${path}?stage=FAILED`);
      const body = Buffer.from(await got.body.arrayBuffer());
      const head = await request(`${server.url}${path}?stage=FAILED`, { method: 'HEAD' });
      expect(await head.body.text(), path).toBe('');
      expect(head.statusCode, path).toBe(got.statusCode);
      expect(got.statusCode, path).toBe(path.endsWith('/') ? 302 : 200);
      expect(endToEnd(head.headers), path).toEqual(endToEnd(got.headers));
      if (got.statusCode === 200) expect(Number(got.headers['content-length']), path).toBe(body.length);
    }
    // As curl -I sees it: the head of the answer, and nothing after it.
    const answer = await onTheWire(`${server.url}/dashboard`, 'HEAD');
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(answer.indexOf('\r\n\r\n')).toBe(answer.length - 4);
  });
});
