import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chartRepoStatusFixture, type FakeChartRepo, startFakeChartRepo } from './support/fake-chart-repo.js';
import { startTestServer, waitFor } from './support/server.js';
import { componentOf, rawRequest } from './support/untyped.js';

/**
 * The chart repo's last good data is kept through failed polls, as the dashboard shows it: when an
 * answer of the wrong shape comes (read as empty and healthy).
 */

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
        lastUpdate: good.lastUpdate,
        systemStatus: SYSTEM,
      });
      expect(seen.apps).toHaveLength(FIXTURE_APPS);
      expect(await componentOf(server, 'chart_repo')).toMatchObject({ state: 'ERROR', healthy: false });
    } finally {
      await server.stop();
      fake.reset();
    }
  }, 60_000);
});
