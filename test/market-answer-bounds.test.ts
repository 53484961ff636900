import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_MAX_JSON_VALUES } from '../src/platform/outbound-http.js';
import { availableDatabases } from './support/databases.js';
import {
  type FakeMarketSource,
  fakeEntry,
  type MarketFault,
  startFakeMarketSource,
} from './support/fake-market-source.js';
import { startTestServer, type TestServer, waitFor } from './support/server.js';
import { rawRequest } from './support/untyped.js';

/**
 * A market source answering with text that is cheap to send and costly to parse (`[{},{},…]`),
 * within SYNC_MAX_RESPONSE_BYTES' default: the answer is refused before JSON.parse runs, the
 * operator reads why on the syncer component, the catalogue stays, and the server keeps answering
 * meanwhile. Before, the hash poll alone (32 MiB of such text) held the event loop for minutes.
 */

const SYNC = `mutation {
  syncMarketSource(input: { sourceId: "market.olares" }) {
    __typename ... on SyncMarketSourceSuccess { marketSource { sync { lastError consecutiveFailures appCount } } }
  }
}`;
const COMPONENTS = '{ runtimeSnapshot { components { name state healthy message } } }';
const CATALOG = '{ catalog(sourceId: "market.olares", first: 100) { edges { node { name version } } } }';

interface SyncStatus {
  lastError: string | null;
  consecutiveFailures: number;
  appCount: number;
}

const [kind = 'sqlite'] = await availableDatabases();

describe(`a market source answering with more JSON values than a catalogue holds (${kind})`, () => {
  let fake: FakeMarketSource;
  let server: TestServer;

  beforeAll(async () => {
    fake = await startFakeMarketSource({ entries: [fakeEntry('notes'), fakeEntry('photos', { version: '2.1.0' })] });
    server = await startTestServer(kind, {
      // SYNC_MAX_RESPONSE_BYTES at its default (32 MiB): the bound in question is the values'.
      env: {
        DEMO_DATA: '0',
        MARKET_SOURCE_URL: fake.url,
        SYNC_INTERVAL_MS: '3600000',
        SYNC_TIMEOUT_MS: '20000',
        COLLECT_INTERVAL_MS: '200',
      },
    });
    await waitFor(async () => ((await catalog()).length === 2 ? true : undefined), 'the first sync');
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    await fake?.close();
  });
  afterEach(async () => {
    for (const endpoint of ['hash', 'info', 'details'] as const) fake.fault(endpoint, null);
    await syncNow();
    await waitFor(async () => ((await syncer())?.state === 'RUNNING' ? true : undefined), 'recovery');
  });

  async function catalog(): Promise<{ name: string; version: string }[]> {
    const response = await rawRequest(server, { query: CATALOG });
    const connection = response.body?.data?.catalog as { edges: { node: { name: string; version: string } }[] };
    return connection.edges.map((edge) => edge.node);
  }
  async function syncNow(): Promise<SyncStatus> {
    const response = await rawRequest(server, { query: SYNC });
    const result = response.body?.data?.syncMarketSource as { __typename: string; marketSource: { sync: SyncStatus } };
    expect(result?.__typename, response.text).toBe('SyncMarketSourceSuccess');
    return result.marketSource.sync;
  }
  async function syncer() {
    const response = await rawRequest(server, { query: COMPONENTS });
    const snapshot = response.body?.data?.runtimeSnapshot as {
      components: { name: string; state: string; healthy: boolean; message: string | null }[];
    };
    return snapshot.components.find((component) => component.name === 'syncer');
  }

  /**
   * A sync while `endpoint` answers with `fault`: /health is asked once the source has sent the
   * whole answer, and must answer while the sync is still the server's to finish.
   */
  async function syncAgainst(endpoint: 'hash' | 'info' | 'details', fault: MarketFault) {
    const good = await catalog();
    fake.change('photos', { version: `2.${Date.now() % 100_000}.0` });
    fake.resetCounters();
    fake.fault(endpoint, fault);
    const sync = syncNow();
    await waitFor(
      async () => (fake.requests.some((request) => request.endpoint === endpoint && request.status) ? true : undefined),
      `the source to have sent its ${endpoint} answer`,
    );
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    const status = await sync;
    expect(status.consecutiveFailures).toBe(1);
    expect(await catalog()).toEqual(good);
    const component = await waitFor(async () => {
      const found = await syncer();
      return found?.state === 'ERROR' ? found : undefined;
    }, 'the syncer component to show the failure');
    expect(component.healthy).toBe(false);
    expect(component.message).toContain(status.lastError);
    return status.lastError;
  }

  test('an index answer of more JSON values than the bound is refused unparsed, naming the bound', async () => {
    const values = DEFAULT_MAX_JSON_VALUES + 1;
    const lastError = await syncAgainst('info', { kind: 'many-values', values });
    expect(lastError).toBe(`info: the answer has more than ${DEFAULT_MAX_JSON_VALUES} JSON values`);
  }, 60_000);

  test('a details answer of as many values, gzip-compressed to a few kB, is refused the same way', async () => {
    const values = DEFAULT_MAX_JSON_VALUES + 1;
    const lastError = await syncAgainst('details', { kind: 'many-values', values, gzip: true });
    expect(lastError).toBe(`details: the answer has more than ${DEFAULT_MAX_JSON_VALUES} JSON values`);
  }, 60_000);

  test('the hash poll is read up to 16 KiB whatever SYNC_MAX_RESPONSE_BYTES allows, compressed or not', async () => {
    // 300,000 values: 0.9 MB plain, 1 kB gzip-compressed; far below the values' bound.
    for (const gzip of [false, true]) {
      const lastError = await syncAgainst('hash', { kind: 'many-values', values: 300_000, gzip });
      expect(lastError).toBe('hash: the answer is larger than 16384 bytes');
      fake.fault('hash', null);
      expect(await syncNow()).toMatchObject({ lastError: null, consecutiveFailures: 0 });
    }
  }, 60_000);
});
