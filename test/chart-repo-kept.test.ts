import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { chartRepoStatusFixture, type FakeChartRepo, startFakeChartRepo } from './support/fake-chart-repo.js';
import {
  killLeftovers,
  listeningUrl,
  SERVER_COMMAND,
  type ServerProcess,
  serverEnv,
  startProcess,
} from './support/process.js';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './support/redis.js';
import { startTestServer, waitFor } from './support/server.js';
import { componentOf, rawRequest } from './support/untyped.js';

/**
 * The chart repo's last good data is kept through failed polls, as the dashboard shows it: across
 * a leader change (the new leader had none of its own and published an empty status over what
 * every instance held), when an answer of the wrong shape comes (read as empty and healthy), and
 * when no answer comes within CHART_REPO_TIMEOUT_MS.
 */

const redisUp = await redisAvailable();
const databases = await availableDatabases();

interface ChartRepoView {
  reachable: boolean;
  lastError: string | null;
  lastUpdate: string | null;
  apps: unknown[];
  appStates: { appName: string }[];
  systemStatus: { hostname: string | null; version: string | null } | null;
}

const CHART_REPO_QUERY =
  '{ chartRepo { reachable lastError lastUpdate apps appStates { appName } systemStatus { hostname version } } }';

async function chartRepoOf(server: { graphqlUrl: string }): Promise<ChartRepoView | null> {
  const response = await rawRequest(server, { query: CHART_REPO_QUERY });
  return (response.body?.data?.chartRepo ?? null) as ChartRepoView | null;
}

let fake: FakeChartRepo;
beforeAll(async () => {
  fake = await startFakeChartRepo();
});
afterAll(async () => {
  await fake?.stop();
});

const FIXTURE = chartRepoStatusFixture();
const FIXTURE_APPS = (FIXTURE.apps as unknown[]).length;
const SYSTEM = { hostname: 'olares-node-1', version: 'v0.9.3' };

describe.runIf(redisUp && databases.includes('postgresql'))('the chart repo data across a leader change', () => {
  const prefix = uniquePrefix();
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase('postgresql');
  }, 60_000);
  afterAll(async () => {
    fake.reset();
    await killLeftovers();
    await database?.drop();
    await deleteKeys(prefix);
  }, 60_000);

  test('a leader SIGKILLed while the chart repo fails leaves the last good data shown, unreachable, under the new leader', async () => {
    fake.setStatus('*', FIXTURE);
    const env = (instance: string) =>
      serverEnv(database.url, {
        REDIS_URL,
        REDIS_PREFIX: prefix,
        INSTANCE_NAME: instance,
        LEADER_LEASE_MS: '1500',
        COLLECT_INTERVAL_MS: '200',
        CHART_REPO_URL: fake.url,
      });
    const servers: Record<string, ServerProcess> = { a: startProcess(SERVER_COMMAND, env('a')) };
    const urls: Record<string, { graphqlUrl: string }> = { a: { graphqlUrl: String(await listeningUrl(servers.a!)) } };
    servers.b = startProcess(SERVER_COMMAND, env('b'));
    urls.b = { graphqlUrl: String(await listeningUrl(servers.b)) };

    const leader = await waitFor(async () => {
      const cluster = await componentOf(urls.b!, 'cluster');
      return typeof cluster?.metrics.leader === 'string' ? cluster.metrics.leader : undefined;
    }, 'the cluster to name its leader');
    const follower = leader === 'a' ? 'b' : 'a';
    for (const url of Object.values(urls)) {
      await waitFor(async () => ((await chartRepoOf(url))?.reachable ? true : undefined), 'the chart repo data');
    }
    const good = (await chartRepoOf(urls[follower]!)) as ChartRepoView;
    expect(good).toMatchObject({ reachable: true, lastError: null, systemStatus: SYSTEM });
    expect(good.apps).toHaveLength(FIXTURE_APPS);

    // The chart repo fails: every instance keeps the data, unreachable, with why.
    fake.setBehaviour('*', { respond: 'http-error', status: 500 });
    const failing = await waitFor(async () => {
      const seen = await chartRepoOf(urls[follower]!);
      return seen?.reachable === false ? seen : undefined;
    }, 'the follower to show the chart repo unreachable');
    expect(failing.apps).toHaveLength(FIXTURE_APPS);
    const lastUpdate = failing.lastUpdate;
    expect(lastUpdate).not.toBeNull();

    servers[leader]!.child.kill('SIGKILL');
    await servers[leader]!.exited;
    const tookOver = await servers[follower]!.waitForLog(
      (line) => line.msg === 'leading the cluster',
      'the follower to take over',
    );
    // The new leader has polled the chart repo itself (its component checked since it took over).
    await waitFor(async () => {
      const response = await rawRequest(urls[follower]!, { query: '{ components { name lastCheck } }' });
      const components = (response.body?.data?.components ?? []) as { name: string; lastCheck: string }[];
      const chartRepo = components.find((component) => component.name === 'chart_repo');
      return chartRepo && Date.parse(chartRepo.lastCheck) > (tookOver.time as number) ? true : undefined;
    }, 'the new leader to poll the chart repo');

    const kept = (await chartRepoOf(urls[follower]!)) as ChartRepoView;
    expect(kept).toMatchObject({
      reachable: false,
      lastError: '1 of 1 chart repo status call failed: all users: HTTP 500',
      lastUpdate,
      systemStatus: SYSTEM,
    });
    expect(kept.apps).toHaveLength(FIXTURE_APPS);
    expect(kept.appStates.map(({ appName }) => appName)).toEqual(good.appStates.map(({ appName }) => appName));
    expect(await componentOf(urls[follower]!, 'chart_repo')).toMatchObject({
      state: 'ERROR',
      metrics: { apps: FIXTURE_APPS, lastUpdate },
    });
  }, 180_000);
});

describe('an answer of the wrong shape', () => {
  test('is a failed poll with its reason: the last good data stays, unreachable, and the component says ERROR', async () => {
    fake.reset();
    fake.setStatus('*', FIXTURE);
    const server = await startTestServer('sqlite', {
      env: { DEMO_DATA: '0', CHART_REPO_URL: fake.url, COLLECT_INTERVAL_MS: '200' },
    });
    try {
      const good = await waitFor(async () => {
        const seen = await chartRepoOf(server);
        return seen?.reachable ? seen : undefined;
      }, 'the chart repo data');
      expect(good.apps).toHaveLength(FIXTURE_APPS);

      const wrong = { apps: 'nope', images: 5, tasks: [1, 2], system: 'x' };
      const switchedAt = Date.now();
      fake.setBehaviour('*', { respond: 'json', body: { success: true, data: wrong } });
      const polled = fake.requests.length;
      // Two polls after the change: the first to get the answer, the second to be sure it was applied.
      await waitFor(async () => (fake.requests.length >= polled + 2 ? true : undefined), 'two more polls');
      const seen = (await chartRepoOf(server)) as ChartRepoView;

      expect(seen).toMatchObject({
        reachable: false,
        lastError:
          '1 of 1 chart repo status call failed: all users: the status is not shaped as one: ' +
          'data.apps is not a list, data.images is not a list, data.system is not an object, data.tasks is not an object',
        systemStatus: SYSTEM,
      });
      // The last good answer's time: polls may have come between the first read and the switch.
      expect(Date.parse(String(seen.lastUpdate))).toBeGreaterThanOrEqual(Date.parse(String(good.lastUpdate)));
      expect(Date.parse(String(seen.lastUpdate))).toBeLessThanOrEqual(switchedAt);
      expect(seen.apps).toHaveLength(FIXTURE_APPS);
      expect(await componentOf(server, 'chart_repo')).toMatchObject({ state: 'ERROR', healthy: false });
    } finally {
      await server.stop();
      fake.reset();
    }
  }, 60_000);
});

describe('with CHART_REPO_TIMEOUT_MS', () => {
  test('a chart repo that accepts the call and never answers shows unreachable after that timeout, not a fixed 5 s', async () => {
    fake.reset();
    fake.setStatus('*', FIXTURE);
    const server = await startTestServer('sqlite', {
      env: { DEMO_DATA: '0', CHART_REPO_URL: fake.url, COLLECT_INTERVAL_MS: '200', CHART_REPO_TIMEOUT_MS: '300' },
    });
    try {
      await waitFor(async () => ((await chartRepoOf(server))?.reachable ? true : undefined), 'the chart repo data');

      fake.setBehaviour('*', { respond: 'hang' });
      // The next poll's call is held (300 ms) and fails; at the old fixed 5 s it would still be waiting.
      const timedOut = await waitFor(
        async () => {
          const seen = await chartRepoOf(server);
          return seen?.reachable === false ? seen : undefined;
        },
        'the chart repo to show the call timed out',
        3_000,
      );

      expect(timedOut).toMatchObject({
        reachable: false,
        lastError: '1 of 1 chart repo status call failed: all users: no answer within 300 ms',
        systemStatus: SYSTEM,
      });
      expect(timedOut.apps).toHaveLength(FIXTURE_APPS);
      expect(await componentOf(server, 'chart_repo')).toMatchObject({ state: 'ERROR', healthy: false });
    } finally {
      await server.stop();
      fake.reset();
    }
  }, 60_000);

  test('a chart repo slower than the collector waits for a check, but within the setting, shows RUNNING steadily: no ERROR, no failed check logged', async () => {
    fake.reset();
    fake.setStatus('*', FIXTURE);
    fake.setBehaviour('*', { respond: 'slow', delayMs: 700 });
    // The collector waits Math.min(COLLECT_INTERVAL_MS, 10 s) = 200 ms for a check: each answer
    // takes three and a half of those (as 7 s do against 5 s), yet well within CHART_REPO_TIMEOUT_MS.
    const server = await startTestServer('sqlite', {
      env: { DEMO_DATA: '0', CHART_REPO_URL: fake.url, COLLECT_INTERVAL_MS: '200', CHART_REPO_TIMEOUT_MS: '3000' },
    });
    try {
      await waitFor(async () => ((await chartRepoOf(server))?.reachable ? true : undefined), 'the chart repo data');
      const answered = fake.requests.length;
      const states = new Set<string>();
      // Read the component between and across four more slow calls (about 3 s, 15 cycles).
      await waitFor(
        async () => {
          states.add((await componentOf(server, 'chart_repo'))?.state ?? 'missing');
          return fake.requests.length >= answered + 4 ? true : undefined;
        },
        'four more slow calls',
        15_000,
      );
      expect([...states]).toEqual(['RUNNING']);
      expect(await chartRepoOf(server)).toMatchObject({ reachable: true, lastError: null });
      const failedChecks = server.logs.filter((line) => line.includes('"source":"chart_repo"'));
      expect(failedChecks).toEqual([]);
    } finally {
      await server.stop();
      fake.reset();
    }
  }, 60_000);
});
