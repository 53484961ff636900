import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startTestServer, type TestServer } from './support/server.js';

/**
 * GraphiQL's page is one answer in three forms, chosen by Accept-Encoding (graphiql-page.ts). A
 * shared cache keys what it stores by the headers Vary names: every form must name
 * Accept-Encoding, the page as is included, or a cache that stored it hands it to browsers that
 * asked for brotli, and the brotli one to clients that cannot read it. A Vary another part of the
 * server set (CORS: Origin) stays.
 */

const ALLOWED = 'https://console.example.com';

describe('the Vary of GraphiQL', () => {
  let server: TestServer;
  beforeAll(async () => {
    // Local development mode serves GraphiQL; CORS_ORIGINS adds its own Vary.
    server = await startTestServer('sqlite', { env: { CORS_ORIGINS: ALLOWED, DEMO_DATA: '0' } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function open(headers: Record<string, string>) {
    const response = await request(server.graphqlUrl, { headers: { accept: 'text/html', ...headers } });
    await response.body.arrayBuffer();
    return response.headers;
  }

  test.each([
    ['no Accept-Encoding', {}, undefined],
    ['identity only', { 'accept-encoding': 'identity' }, undefined],
    ['gzip', { 'accept-encoding': 'gzip' }, 'gzip'],
    ['a browser (br first)', { 'accept-encoding': 'gzip, deflate, br, zstd' }, 'br'],
  ])('%s: the answer names Accept-Encoding in Vary', async (_name, headers, encoding) => {
    const answer = await open(headers);
    expect(answer['content-encoding']).toBe(encoding);
    expect(String(answer.vary).split(/\s*,\s*/)).toContain('Accept-Encoding');
  });

  test.each([
    ['as is', 'identity'],
    ['compressed', 'br'],
  ])('from an allowed origin, %s, it names Origin and Accept-Encoding', async (_name, acceptEncoding) => {
    const answer = await open({ origin: ALLOWED, 'accept-encoding': acceptEncoding });
    expect(answer['access-control-allow-origin']).toBe(ALLOWED);
    const vary = String(answer.vary)
      .split(/\s*,\s*/)
      .map((name) => name.toLowerCase());
    expect(vary).toEqual(expect.arrayContaining(['origin', 'accept-encoding']));
    expect(vary.filter((name) => name === 'accept-encoding')).toHaveLength(1);
  });
});
