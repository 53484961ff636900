import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type FakeMarketSource, fakeEntry, startFakeMarketSource } from './support/fake-market-source.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS } from './support/server.js';
import { startTlsFront } from './support/tls-front.js';
import { rawRequest } from './support/untyped.js';

/**
 * A self-hosted source over https with a certificate of its own (a private CA, or none): the
 * handshake refuses it, and the source's sync error says so and what to do, not only undici's
 * code under "unreachable".
 */
describe('a market source whose TLS certificate the server does not trust', () => {
  let server: TestServer;
  let source: FakeMarketSource;
  let front: Awaited<ReturnType<typeof startTlsFront>>;
  const directory = mkdtempSync(path.join(tmpdir(), 'market-tls-'));
  beforeAll(async () => {
    source = await startFakeMarketSource({ entries: [fakeEntry('vault')] });
    front = await startTlsFront('localhost', source.url, directory);
    server = await startTestServer('sqlite', { env: AUTH_ENV });
  });
  afterAll(async () => {
    await server?.stop();
    await Promise.all([source?.close(), new Promise((resolve) => front?.server.close(resolve) ?? resolve(null))]);
    rmSync(directory, { recursive: true, force: true });
  });

  test('its sync fails naming the refused certificate and NODE_EXTRA_CA_CERTS', async () => {
    const baseUrl = `https://localhost:${front.port}`;
    const added = await rawRequest(
      server,
      {
        query: `mutation { addMarketSource(input: { sourceId: "home.tls", title: "Home", baseUrl: "${baseUrl}" }) { __typename } }`,
      },
      { token: TOKENS.ops },
    );
    expect(added.body?.data?.addMarketSource).toEqual({ __typename: 'AddMarketSourceSuccess' });
    const synced = await rawRequest(
      server,
      {
        query: `mutation { syncMarketSource(input: { sourceId: "home.tls" }) {
          ... on SyncMarketSourceSuccess { marketSource { sync { lastError } } } } }`,
      },
      { token: TOKENS.ops },
    );
    expect(synced.body?.data?.syncMarketSource).toEqual({
      marketSource: {
        sync: {
          lastError:
            `hash: ${baseUrl} is unreachable (DEPTH_ZERO_SELF_SIGNED_CERT: its TLS certificate is not signed ` +
            'by a trusted CA (a private CA: NODE_EXTRA_CA_CERTS))',
        },
      },
    });
    expect(source.requests).toEqual([]); // the handshake ended it: nothing reached the source
  });
});
