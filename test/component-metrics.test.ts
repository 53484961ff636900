import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { deleteKeys, REDIS_URL, redisAvailable } from './support/redis.js';
import { startTestServer, type TestServer, waitFor } from './support/server.js';
import { proxyDatabase, type TcpProxy } from './support/tcp-proxy.js';
import { rawRequest } from './support/untyped.js';

/**
 * The components on /metrics say what the API says of them: DISABLED (not configured, on purpose)
 * is healthy, a cleanly stopped instance's components are not unhealthy (no `== 0` alert for an
 * hour after every rolling update), and a database that does not answer has no ping time.
 */

const databases = await availableDatabases();
const postgres = databases.includes('postgresql');
const clustered = postgres && (await redisAvailable());

/** The exposition's samples of `name`, as `labels → value` (labels rendered as in the text). */
async function samples(server: Pick<TestServer, 'url'>, name: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^(\w+)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (match?.[1] === name) found.set(match[2] ?? '', Number(match[3]));
  }
  return found;
}

type Component = { name: string; state: string; healthy: boolean };

async function components(server: TestServer): Promise<Component[]> {
  const { body } = await rawRequest(server, { query: '{ components { name state healthy } }' });
  return (body?.data?.components ?? []) as Component[];
}

describe('component health on /metrics', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer('sqlite');
  });
  afterAll(async () => {
    await server?.stop();
  });

  test('chart_repo without CHART_REPO_URL is DISABLED and healthy in the API, and healthy on /metrics', async () => {
    const chartRepo = await waitFor(
      async () => (await components(server)).find((c) => c.name === 'chart_repo'),
      'the chart_repo component',
    );
    expect(chartRepo).toEqual({ name: 'chart_repo', state: 'DISABLED', healthy: true });
    expect((await samples(server, 'market_component_healthy')).get('{component="chart_repo"}')).toBe(1);
    const states = await samples(server, 'market_component_state');
    expect(states.get('{component="chart_repo",state="DISABLED"}')).toBe(1);
    expect(states.get('{component="chart_repo",state="RUNNING"}')).toBe(0);
    expect(states.get('{component="database",state="RUNNING"}')).toBe(1);
  });
});

describe.runIf(clustered)('a cleanly stopped instance on the other instance’s /metrics', () => {
  const prefix = `obsfix:${randomBytes(4).toString('hex')}:`;
  let a: TestServer;
  let b: TestServer | undefined;

  beforeAll(async () => {
    const env = { REDIS_URL, REDIS_PREFIX: prefix, COLLECT_INTERVAL_MS: '200', DEMO_DATA: '0' };
    a = await startTestServer('postgresql', { env: { ...env, INSTANCE_NAME: 'a' } });
    b = await startTestServer('postgresql', { database: a.database, env: { ...env, INSTANCE_NAME: 'b' } });
  }, 90_000);
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await deleteKeys(prefix);
  }, 60_000);

  test('its components are STOPPED in the API and in market_component_state, and not unhealthy', async () => {
    const ofB = (list: Component[]) => list.filter((c) => c.name.endsWith('@b'));
    await waitFor(async () => (ofB(await components(a)).some((c) => c.state === 'RUNNING') ? true : undefined), 'B');
    await b?.stop();
    b = undefined;
    const stopped = await waitFor(async () => {
      const list = ofB(await components(a));
      return list.length >= 4 && list.every((c) => c.state === 'STOPPED') ? list : undefined;
    }, 'B’s components STOPPED on A');
    const healthy = await samples(a, 'market_component_healthy');
    const states = await samples(a, 'market_component_state');
    for (const { name } of stopped) {
      expect(healthy.has(`{component="${name}"}`), name).toBe(false);
      expect(states.get(`{component="${name}",state="STOPPED"}`), name).toBe(1);
    }
    expect(healthy.get('{component="database@a"}')).toBe(1);
    expect([...healthy.values()].filter((value) => value === 0)).toEqual([]);
  });
});

describe.runIf(postgres)('market_database_ping_seconds during a database outage', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let server: TestServer;

  beforeAll(async () => {
    database = await createTestDatabase('postgresql');
    let proxiedUrl: string;
    ({ proxy, url: proxiedUrl } = await proxyDatabase(database.url));
    server = await startTestServer('postgresql', {
      database: { ...database, url: proxiedUrl },
      env: { COLLECT_INTERVAL_MS: '200', DEMO_DATA: '0' },
    });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    await proxy?.close();
    await database?.drop();
  }, 60_000);

  test('has no sample while the ping fails, and the round trip again once it answers', async () => {
    const ping = async () => (await samples(server, 'market_database_ping_seconds')).get('');
    expect(await waitFor(ping, 'a first ping')).toBeGreaterThan(0);
    proxy.cut('refuse');
    const database = () => server.app.services.store.component('database');
    await waitFor(async () => (database()?.state === 'ERROR' ? true : undefined), 'the database component in ERROR');
    expect(database()?.metrics).toEqual({});
    expect(await ping()).toBeUndefined();
    proxy.restore();
    await waitFor(async () => (database()?.state === 'RUNNING' ? true : undefined), 'the database component back');
    expect(await waitFor(ping, 'a ping again')).toBeGreaterThan(0);
  });
});
