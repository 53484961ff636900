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
});
