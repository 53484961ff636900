import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { type FakeMarketSource, fakeEntry, startFakeMarketSource } from './support/fake-market-source.js';
import { FakeReceiver } from './support/fake-receiver.js';
import { type ForwardProxy, startForwardProxy } from './support/forward-proxy.js';
import { listeningUrl, SERVER_COMMAND, type ServerProcess, serverEnv, startProcess } from './support/process.js';
import { installThroughApi, waitFor } from './support/server.js';
import { startTlsFront } from './support/tls-front.js';
import { rawRequest } from './support/untyped.js';

/**
 * Outbound HTTP where the only way out is a forward proxy: the market source and the webhook
 * receiver are reached by names only the proxy resolves (`*.proxy.test`), so a call that
 * succeeds went through it. The server is a process of its own: the proxy variables are read from
 * its environment when its connection pools are made, and set in this process they would reach
 * every other test's server.
 */

const CATALOG = `query ($sourceId: String) { catalog(sourceId: $sourceId, first: 100) { edges { node { name } } } }`;

describe('outbound calls through HTTP_PROXY', () => {
  let proxy: ForwardProxy;
  let tlsProxy: ForwardProxy;
  let secure: FakeMarketSource;
  let front: Awaited<ReturnType<typeof startTlsFront>>;
  const directory = mkdtempSync(path.join(tmpdir(), 'market-proxy-'));
  let source: FakeMarketSource;
  let direct: FakeMarketSource;
  let receiver: FakeReceiver;
  let database: TestDatabase;
  let server: ServerProcess;
  let graphqlUrl: string;
  const port = (url: string) => new URL(url).port;

  beforeAll(async () => {
    source = await startFakeMarketSource({ entries: [fakeEntry('notes'), fakeEntry('photos')] });
    direct = await startFakeMarketSource({ entries: [fakeEntry('gamma')] });
    receiver = await FakeReceiver.start();
    secure = await startFakeMarketSource({ entries: [fakeEntry('vault')] });
    front = await startTlsFront('secure.proxy.test', secure.url, directory);
    proxy = await startForwardProxy({ 'appstore.proxy.test': '127.0.0.1', 'hooks.proxy.test': '127.0.0.1' });
    tlsProxy = await startForwardProxy({ 'secure.proxy.test': '127.0.0.1' });
    database = await createTestDatabase('sqlite');
    const env = serverEnv(database.url, {
      MARKET_SOURCE_URL: `http://appstore.proxy.test:${port(source.url)}`,
      HTTP_PROXY: proxy.url,
      HTTPS_PROXY: tlsProxy.url,
      NODE_EXTRA_CA_CERTS: front.certificate,
      NO_PROXY: '127.0.0.1',
      SYNC_INTERVAL_MS: '3600000',
      SIMULATED_STEP_MS: '0',
      OUTBOX_POLL_INTERVAL_MS: '100',
    });
    // The lower-case names win over the upper-case ones: whatever the machine sets must not.
    for (const name of ['http_proxy', 'https_proxy', 'no_proxy']) delete env[name];
    server = startProcess(SERVER_COMMAND, env);
    graphqlUrl = (await listeningUrl(server)).toString();
  });
  afterAll(async () => {
    if (server?.child.exitCode === null) server.child.kill('SIGKILL');
    await server?.exited;
    await Promise.all([proxy?.close(), tlsProxy?.close(), source?.close(), direct?.close(), receiver?.close()]);
    await Promise.all([secure?.close(), new Promise((resolve) => front?.server.close(resolve) ?? resolve(null))]);
    await database?.drop();
    rmSync(directory, { recursive: true, force: true });
  });

  const catalog = async (sourceId: string) => {
    const response = await rawRequest({ graphqlUrl }, { query: CATALOG, variables: { sourceId } });
    const connection = response.body?.data?.catalog as { edges: { node: { name: string } }[] } | undefined;
    return connection?.edges.map((edge) => edge.node.name).sort() ?? [];
  };

  test('the market source is synced through the proxy, by a name only the proxy resolves', async () => {
    await waitFor(async () => ((await catalog('market.olares')).length === 2 ? true : undefined), 'the first sync');
    expect(await catalog('market.olares')).toEqual(['notes', 'photos']);
    const host = `appstore.proxy.test:${port(source.url)}`;
    expect(proxy.seen).toContain(`GET ${host}`);
    expect(proxy.seen.filter((seen) => seen.endsWith(host)).length).toBe(source.requests.length);
  });

  test('an https source is reached through a CONNECT tunnel of HTTPS_PROXY, TLS ending at the source', async () => {
    const baseUrl = `https://secure.proxy.test:${front.port}`;
    const add = await rawRequest(
      { graphqlUrl },
      {
        query: `mutation { addMarketSource(input: { sourceId: "secure.market", title: "Secure", baseUrl: "${baseUrl}" }) { __typename } }`,
      },
    );
    expect(add.body?.data?.addMarketSource).toEqual({ __typename: 'AddMarketSourceSuccess' });
    const sync = await rawRequest(
      { graphqlUrl },
      { query: 'mutation { syncMarketSource(input: { sourceId: "secure.market" }) { __typename } }' },
    );
    expect(sync.body?.data?.syncMarketSource).toEqual({ __typename: 'SyncMarketSourceSuccess' });
    expect(await catalog('secure.market')).toEqual(['vault']);
    expect(tlsProxy.seen).toContain(`CONNECT secure.proxy.test:${front.port}`);
    expect(proxy.seen.filter((seen) => seen.includes('secure.proxy.test'))).toEqual([]);
  });

  test('a host listed in NO_PROXY is called directly', async () => {
    const add = await rawRequest(
      { graphqlUrl },
      {
        query: `mutation { addMarketSource(input: { sourceId: "direct.market", title: "Direct", baseUrl: "${direct.url}" }) { __typename } }`,
      },
    );
    expect(add.body?.data?.addMarketSource).toEqual({ __typename: 'AddMarketSourceSuccess' });
    const sync = await rawRequest(
      { graphqlUrl },
      { query: 'mutation { syncMarketSource(input: { sourceId: "direct.market" }) { __typename } }' },
    );
    expect(sync.body?.data?.syncMarketSource).toEqual({ __typename: 'SyncMarketSourceSuccess' });
    expect(await catalog('direct.market')).toEqual(['gamma']);
    expect(direct.requests.length).toBeGreaterThan(0);
    expect(proxy.seen.filter((seen) => seen.endsWith(`:${port(direct.url)}`))).toEqual([]);
  });

  test('a webhook delivery goes through the proxy', async () => {
    const hook = `http://hooks.proxy.test:${port(receiver.url())}/hook`;
    const add = await rawRequest(
      { graphqlUrl },
      { query: `mutation { addWebhook(input: { url: "${hook}", events: [TASK_FINISHED] }) { __typename } }` },
    );
    expect(add.body?.data?.addWebhook).toEqual({ __typename: 'AddWebhookSuccess' });
    await installThroughApi({ graphqlUrl }, { appName: 'notes', version: '1.0.0' });
    const delivery = await receiver.waitFor((each) => each.topic === 'task.finished', 'the webhook delivery');
    expect(delivery.path).toBe('/hook');
    expect(proxy.seen).toContain(`POST hooks.proxy.test:${port(receiver.url())}`);
  });
});
