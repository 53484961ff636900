import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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

/**
 * A proxy that refuses every absolute-form request, as one does when it takes the server's
 * credentials for wrong ones: 407 for `refused.proxy.test`, otherwise 403 quoting the
 * `user:password` it was given (JSON with a `message`, which a market source's refusal shows,
 * and the text of a refusing receiver's answer).
 */
async function startRefusingProxy(): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const given = Buffer.from((req.headers['proxy-authorization'] ?? '').replace(/^Basic /, ''), 'base64').toString();
    if (URL.parse(req.url ?? '')?.hostname === 'refused.proxy.test') {
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="proxy"' }).end(`bad credentials ${given}`);
      return;
    }
    res.writeHead(403, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ message: `proxy access denied for ${given}` }));
  });
  server.on('connect', (_req, socket) => socket.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A port nothing listens on (one just given up by a server of the test's own). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('the credentials of HTTP_PROXY and HTTPS_PROXY', () => {
  const HTTP_PASSWORD = 'http-proxy-pw-K3q9';
  const TLS_PASSWORD = 'tls-proxy-pw-Z7m2';
  let proxy: Awaited<ReturnType<typeof startRefusingProxy>>;
  let source: FakeMarketSource;
  let database: TestDatabase;
  let server: ServerProcess;
  let graphqlUrl: string;

  beforeAll(async () => {
    proxy = await startRefusingProxy();
    source = await startFakeMarketSource({ entries: [fakeEntry('notes')] });
    database = await createTestDatabase('sqlite');
    const env = serverEnv(database.url, {
      // The catalogue comes directly (NO_PROXY), so that an app can be installed for a webhook.
      MARKET_SOURCE_URL: source.url,
      NO_PROXY: '127.0.0.1',
      HTTP_PROXY: `http://market:${HTTP_PASSWORD}@127.0.0.1:${proxy.port}`,
      // Nothing listens there: every https:// call fails to connect.
      HTTPS_PROXY: `http://market:${TLS_PASSWORD}@127.0.0.1:${await closedPort()}`,
      SYNC_INTERVAL_MS: '3600000',
      SIMULATED_STEP_MS: '0',
      OUTBOX_POLL_INTERVAL_MS: '100',
    });
    for (const name of ['http_proxy', 'https_proxy', 'no_proxy']) delete env[name];
    server = startProcess(SERVER_COMMAND, env);
    graphqlUrl = (await listeningUrl(server)).toString();
  });
  afterAll(async () => {
    if (server?.child.exitCode === null) server.child.kill('SIGKILL');
    await server?.exited;
    await Promise.all([proxy?.close(), source?.close()]);
    await database?.drop();
  });

  test('a proxy that refuses, answers 407 or cannot be reached never gets its password into an answer or a log line', async () => {
    const answers: string[] = [];
    const ask = async (query: string) => {
      const response = await rawRequest({ graphqlUrl }, { query });
      answers.push(response.text);
      return response.body?.data;
    };
    const sources = {
      'echo.market': 'http://appstore.proxy.test:8080',
      'refused.market': 'http://refused.proxy.test:8080',
    };
    for (const [sourceId, baseUrl] of [...Object.entries(sources), ['tls.market', 'https://secure.proxy.test:8443']]) {
      await ask(
        `mutation { addMarketSource(input: { sourceId: "${sourceId}", title: "T", baseUrl: "${baseUrl}" }) { __typename } }`,
      );
      await ask(`mutation { syncMarketSource(input: { sourceId: "${sourceId}" }) { __typename } }`);
    }
    await ask(
      'mutation { addWebhook(input: { url: "http://hooks.proxy.test:8080/hook", events: [TASK_FINISHED] }) { __typename } }',
    );
    await waitFor(async () => ((await catalogOf(graphqlUrl)).includes('notes') ? true : undefined), 'the first sync');
    await installThroughApi({ graphqlUrl }, { appName: 'notes', version: '1.0.0' });
    const delivery = await waitFor(async () => {
      const data = await ask('{ webhooks { deliveries { status lastStatusCode lastError } } }');
      const [first] = ((data?.webhooks ?? []) as { deliveries: { lastError: string | null }[] }[])[0]?.deliveries ?? [];
      return first?.lastError ? first : undefined;
    }, 'a refused webhook delivery');
    const data = await ask(
      '{ marketSources(includeInactive: true) { sourceId sync { lastError } } components { name message } }',
    );
    const errors = Object.fromEntries(
      ((data?.marketSources ?? []) as { sourceId: string; sync: { lastError: string | null } }[]).map((each) => [
        each.sourceId,
        each.sync.lastError,
      ]),
    );

    // Each failure is told, with the proxy's words where it had some, but not the password in them.
    expect(errors['echo.market']).toMatch(/HTTP 403 .*proxy access denied for /);
    expect(errors['refused.market']).toMatch(/UND_ERR/);
    expect(errors['tls.market']).toMatch(/ECONNREFUSED/);
    expect(delivery).toMatchObject({ status: 'PENDING', lastStatusCode: 403 });
    expect(delivery.lastError).toMatch(/proxy access denied for /);
    const seen = [...answers, ...server.output].join('\n');
    for (const secret of [HTTP_PASSWORD, TLS_PASSWORD, Buffer.from(`market:${HTTP_PASSWORD}`).toString('base64')]) {
      expect(seen).not.toContain(secret);
    }
  });
});

async function catalogOf(graphqlUrl: string): Promise<string[]> {
  const response = await rawRequest({ graphqlUrl }, { query: CATALOG, variables: { sourceId: 'market.olares' } });
  const connection = response.body?.data?.catalog as { edges: { node: { name: string } }[] } | undefined;
  return connection?.edges.map((edge) => edge.node.name) ?? [];
}
