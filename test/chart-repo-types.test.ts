import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { graphql } from './gql/index.js';
import { availableDatabases } from './support/databases.js';
import { chartRepoStatusFixture, type FakeChartRepo, startFakeChartRepo } from './support/fake-chart-repo.js';
import {
  AUTH_ENV,
  dataOf,
  errorCodes,
  execute,
  startTestServer,
  type TestServer,
  TOKENS,
  waitFor,
} from './support/server.js';

const databases = await availableDatabases();

/** The fixture is admin's and alice's; here all of it is alice's, so that bob's data is the only other. */
const ALICE_STATUS = JSON.parse(JSON.stringify(chartRepoStatusFixture()).replaceAll(/\badmin\b/g, 'alice'));

/** Bob's answer: one good app, and items a broken chart repo could send. Every datum of his says "bob". */
const BOB_STATUS = {
  apps: [
    {
      app_id: 'b0b1',
      app_name: 'gitea-of-bob',
      user_id: 'bob',
      source_id: 'market.olares',
      state: 'failed',
      // An upstream error quoting a credential, as chart renderers do.
      error: { message: 'bob: chart render failed: Bearer bob-render-token-0123456789', step: 42 },
      processing: { task_id: 'hyd-bob-1', duration: 'forever' },
      last_update: 'not a time',
    },
    { app_name: 'no-id-of-bob', user_id: 'bob', source_id: 'market.olares', state: 'running' },
  ],
  images: [
    { image_name: 'registry/bob/gitea:1.22', status: 17 },
    { image_name: 'registry/bob/redis:7', status: 'downloading', download_progress: 'half', nodes: 'bob-node' },
  ],
  tasks: { hydrator: { queue_length: 2 ** 40, worker_count: 4, tasks: [{ task_id: 'hyd-bob-1', user_id: 'bob' }] } },
};

const ChartRepoTypedQuery = graphql(`
  query ChartRepoTyped($appName: String, $userId: String) {
    chartRepo {
      reachable
      lastError
      droppedItems
      apps
      systemStatus { hostname version uptimeSeconds components resourceUsage }
      appStates(appName: $appName, userId: $userId) {
        appId appName userId sourceId state createdAt lastUpdatedAt lastUpdate
        currentStep { name index total status startedAt updatedAt retryCount }
        processing { taskId durationMs }
        error { message step }
      }
      imageStates(appName: $appName) {
        imageName appName status downloadProgress analysisStatus analyzedAt errorMessage
        nodes { nodeName progress downloadedLayers }
      }
      queues {
        hydrator { queueLength workerCount tasks { taskId userId appName stepName } recentFailed { appName lastError } }
        imageAnalyzer {
          isRunning averageAnalysisTimeMs totalAnalyzed
          queuedTasks { taskId startedAt imagesCount images }
          processingTasks { taskId workerId durationMs }
          recentCompleted { taskId durationMs completedAt }
          recentFailed { taskId error errorStep }
        }
      }
    }
    runtimeSnapshot {
      chartRepo {
        droppedItems
        appStates { appName userId currentStep { name index total } }
        queues { hydrator { queueLength } }
      }
    }
  }
`);

const ChartRepoSourceFilterQuery = graphql(`
  query ChartRepoSourceFilter($sourceId: String) {
    chartRepo { appStates(sourceId: $sourceId) { appName } }
  }
`);

let server: TestServer;
const readTyped = async (token: string, variables: { appName?: string; userId?: string } = {}) =>
  dataOf(await execute(server, ChartRepoTypedQuery, variables, { token }));
const names = (view: { appStates: { appName: string }[] } | null | undefined) =>
  view?.appStates.map((app) => app.appName).sort();

describe.each(databases)('typed chart repo fields on %s', (kind) => {
  let chartRepo: FakeChartRepo;
  beforeAll(async () => {
    chartRepo = await startFakeChartRepo();
    chartRepo.setStatus('alice/market.olares', ALICE_STATUS);
    chartRepo.setStatus('bob/*', BOB_STATUS);
    server = await startTestServer(kind, {
      env: { ...AUTH_ENV, CHART_REPO_URL: chartRepo.url, COLLECT_INTERVAL_MS: '100', MUTATION_RATE_PER_S: '0' },
    });
    await waitFor(async () => {
      const { chartRepo: all } = await readTyped(TOKENS.ops);
      return all?.appStates.some((app) => app.userId === 'bob') && all.appStates.some((app) => app.userId === 'alice')
        ? true
        : undefined;
    }, "the first collect with both users' data");
  });
  afterAll(async () => {
    await server?.stop();
    await chartRepo?.stop();
  });

  test('an app mid-processing reads as typed fields: its step, its task in milliseconds, its timestamps in ISO', async () => {
    const { chartRepo: view, runtimeSnapshot } = await readTyped(TOKENS.alice, { appName: 'n8n' });

    expect(view?.appStates).toEqual([
      {
        appId: '5a0f6e2b',
        appName: 'n8n',
        userId: 'alice',
        sourceId: 'market.olares',
        state: 'processing',
        createdAt: '2026-05-15T07:59:35.000Z',
        lastUpdatedAt: '2026-05-15T07:59:58.987Z',
        lastUpdate: '2026-05-15T07:59:59.004Z',
        currentStep: {
          name: 'rendering chart',
          index: 3,
          total: 5,
          status: 'running',
          startedAt: '2026-05-15T07:59:41.123Z',
          updatedAt: '2026-05-15T07:59:58.987Z',
          retryCount: 0,
        },
        processing: { taskId: 'hyd-alice-n8n-1747295975', durationMs: 23_864.512 },
        error: null,
      },
    ]);
    expect(view?.imageStates).toEqual([
      {
        imageName: 'docker.n8n.io/n8nio/n8n:1.64.3',
        appName: 'n8n',
        status: 'downloading',
        downloadProgress: 60,
        analysisStatus: 'pending',
        analyzedAt: null, // Go's zero time
        errorMessage: null,
        nodes: [
          { nodeName: 'olares-node-1', progress: 72.5, downloadedLayers: 6 },
          { nodeName: 'olares-node-2', progress: 47.5, downloadedLayers: 4 },
        ],
      },
    ]);
    expect(view?.systemStatus).toMatchObject({ hostname: 'olares-node-1', version: 'v0.9.3', uptimeSeconds: 356_400 });
    // The snapshot serves the same status; without a filter it has all four of alice's apps.
    expect(runtimeSnapshot.chartRepo?.appStates).toContainEqual({
      appName: 'n8n',
      userId: 'alice',
      currentStep: { name: 'rendering chart', index: 3, total: 5 },
    });
    expect(names(runtimeSnapshot.chartRepo)).toEqual(['excalidraw', 'ghost', 'immich', 'n8n']);
  });

  test('the failed app, the hydrator and the image analyzer read with their errors and durations in milliseconds', async () => {
    const { chartRepo: view } = await readTyped(TOKENS.alice);

    expect(view?.appStates.find((app) => app.appName === 'ghost')).toMatchObject({
      state: 'failed',
      error: { message: 'image docker.io/library/ghost:5.82.2-alpine: manifest unknown', step: 'verifying images' },
      currentStep: { index: 4, status: 'failed', retryCount: 3 },
    });
    expect(view?.queues?.hydrator).toMatchObject({
      queueLength: 1,
      workerCount: 4,
      recentFailed: [{ appName: 'ghost', lastError: 'image docker.io/library/ghost:5.82.2-alpine: manifest unknown' }],
    });
    expect(view?.queues?.hydrator?.tasks.map((task) => task.taskId)).toEqual([
      'hyd-alice-n8n-1747295975',
      'hyd-alice-immich-1747295988',
      'hyd-alice-excalidraw-1747295999',
    ]);
    // A pending task has no step yet: the empty step name the chart repo sends reads as null.
    expect(view?.queues?.hydrator?.tasks[2]?.stepName).toBeNull();
    expect(view?.queues?.imageAnalyzer).toEqual({
      isRunning: true,
      averageAnalysisTimeMs: 3875,
      totalAnalyzed: 131,
      queuedTasks: [
        {
          taskId: 'ana-immich-1747295990',
          startedAt: null,
          imagesCount: 3,
          images: [
            'ghcr.io/immich-app/immich-server:v1.118.2',
            'ghcr.io/immich-app/immich-machine-learning:v1.118.2',
            'docker.io/library/redis:6.2-alpine',
          ],
        },
      ],
      processingTasks: [{ taskId: 'ana-n8n-1747295980', workerId: '1', durationMs: 16_250 }],
      recentCompleted: [
        { taskId: 'ana-excalidraw-1747294860', durationMs: 4212.003117, completedAt: '2026-05-15T07:41:02.412Z' },
      ],
      recentFailed: [
        {
          taskId: 'ana-ghost-1747295530',
          error: 'manifest unknown: manifest tagged by "5.82.2-alpine" is not found',
          errorStep: 'fetch_manifest',
        },
      ],
    });
    expect(view?.droppedItems).toBe(0);
  });

  test('malformed items from the chart repo are dropped and counted, bad optional fields are null, and the query still answers', async () => {
    const response = await execute(server, ChartRepoTypedQuery, {}, { token: TOKENS.bob });
    const view = dataOf(response).chartRepo;

    expect(response.errors).toBeUndefined();
    expect(view).toMatchObject({ reachable: true, lastError: null });
    expect(view?.appStates).toEqual([
      expect.objectContaining({
        appName: 'gitea-of-bob',
        lastUpdate: null,
        processing: { taskId: 'hyd-bob-1', durationMs: null },
        error: { message: 'bob: chart render failed: Bearer [redacted]', step: null },
      }),
    ]);
    expect(view?.imageStates).toEqual([
      expect.objectContaining({ imageName: 'registry/bob/redis:7', downloadProgress: null, nodes: [] }),
    ]);
    // The app without an id, the image with a numeric status, the hydrator task without app and status.
    expect(view?.droppedItems).toBe(3);
    expect(view?.queues?.hydrator).toMatchObject({ queueLength: 2 ** 31 - 1, tasks: [] });
    // The deprecated JSON field still serves every app as the chart repo sent it.
    expect(((view?.apps ?? []) as { app_name: string }[]).map((app) => app.app_name)).toEqual([
      'gitea-of-bob',
      'no-id-of-bob',
    ]);
  });

  test("alice's and bob's typed data hold only their own; admins see both and filter by user and app", async () => {
    const alice = await readTyped(TOKENS.alice);
    const bob = await readTyped(TOKENS.bob);
    expect(names(alice.chartRepo)).toEqual(['excalidraw', 'ghost', 'immich', 'n8n']);
    expect(JSON.stringify(alice)).not.toMatch(/bob/);
    expect(names(bob.chartRepo)).toEqual(['gitea-of-bob']);
    expect(JSON.stringify(bob)).not.toMatch(/alice|n8n|ghost/);

    const admin = await readTyped(TOKENS.ops);
    expect(names(admin.chartRepo)).toEqual(['excalidraw', 'ghost', 'gitea-of-bob', 'immich', 'n8n']);
    expect(names((await readTyped(TOKENS.ops, { userId: 'bob' })).chartRepo)).toEqual(['gitea-of-bob']);
    expect(names((await readTyped(TOKENS.ops, { userId: 'alice', appName: 'ghost' })).chartRepo)).toEqual(['ghost']);
    expect(names((await readTyped(TOKENS.ops, { appName: 'nothing-by-that-name' })).chartRepo)).toEqual([]);
    // alice's filter cannot reach bob's data.
    expect(names((await readTyped(TOKENS.alice, { userId: 'bob' })).chartRepo)).toEqual([]);
    const bySource = async (sourceId: string) =>
      dataOf(await execute(server, ChartRepoSourceFilterQuery, { sourceId }, { token: TOKENS.ops })).chartRepo
        ?.appStates.length;
    expect(await bySource('market.olares')).toBe(5);
    expect(await bySource('upload')).toBe(0);
  });

  test('a filter longer than 512 characters is refused with a validation error', async () => {
    const response = await execute(server, ChartRepoTypedQuery, { appName: 'x'.repeat(513) }, { token: TOKENS.ops });

    expect(errorCodes(response)).toContain('VALIDATION');
    expect(response.errors?.[0]?.message).toBe('Argument "appName" must be at most 512 characters');
  });

  test('an empty filter is refused with a validation error, as every argument naming an object is', async () => {
    for (const variables of [{ appName: '' }, { userId: '' }]) {
      const response = await execute(server, ChartRepoTypedQuery, variables, { token: TOKENS.ops });
      expect(errorCodes(response)).toContain('VALIDATION');
      expect(response.errors?.[0]?.message).toBe(`Argument "${Object.keys(variables)[0]}" must not be empty`);
    }
    const bySource = await execute(server, ChartRepoSourceFilterQuery, { sourceId: '' }, { token: TOKENS.ops });
    expect(bySource.errors?.[0]?.message).toBe('Argument "sourceId" must not be empty');
  });
});
