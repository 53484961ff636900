import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { HttpChartRepo } from '../src/adapters/chart-repo/http.js';
import type { ChartRepoStatus } from '../src/adapters/chart-repo/port.js';
import type { ChartRepoTypedStatus } from '../src/adapters/chart-repo/status-types.js';
import { createLogger } from '../src/platform/logger.js';
import {
  type ChartRepoBehaviour,
  chartRepoStatusFixture,
  chartRepoStatusFor,
  type FakeChartRepo,
  startFakeChartRepo,
} from './support/fake-chart-repo.js';

let fake: FakeChartRepo;
const logs: Record<string, unknown>[] = [];

function createSource(options: { baseUrl?: string; timeoutMs?: number } = {}) {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line));
      done();
    },
  });
  return new HttpChartRepo({
    baseUrl: options.baseUrl ?? fake.url,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    logger: createLogger('debug', sink),
  });
}

const ALICE = { userId: 'alice', sourceId: 'market.olares' };
const BOB = { userId: 'bob', sourceId: 'upload' };
const FIRST_TICK = new Date('2026-05-15T10:00:05Z');
const SECOND_TICK = new Date('2026-05-15T10:00:10Z');

// Answers shaped like a real chart repo's status endpoint, for two (user, source) pairs, as a chart repo mid-way through its work sends them.

const jellyfinApp = {
  app_id: 'a1b2c3',
  app_name: 'jellyfin',
  user_id: 'alice',
  source_id: 'market.olares',
  state: 'processing',
  current_step: {
    name: 'ImageAnalysisStep',
    index: 3,
    total: 5,
    status: 'running',
    started_at: '2026-05-15T09:59:58.123456789Z',
    updated_at: '2026-05-15T12:00:00+02:00',
    retry_count: 0,
  },
  processing: { task_id: 'hyd-17', duration: 1_500_000_000 },
  timestamps: { created_at: '2026-05-15T09:00:00Z', last_updated_at: '2026-05-15T10:00:00.5Z' },
  last_update: '2026-05-15T10:00:01Z',
};

const jellyfinImage = {
  image_name: 'docker.io/jellyfin/jellyfin:10.9.6',
  app_id: 'a1b2c3',
  app_name: 'jellyfin',
  status: 'downloading',
  architecture: 'amd64',
  total_size: 412_000_000,
  downloaded_size: 103_000_000,
  download_progress: 25,
  layer_count: 8,
  downloaded_layers: 2,
  analysis_status: 'pending',
  analyzed_at: '0001-01-01T00:00:00Z',
  nodes: [
    {
      node_name: 'olares-1',
      architecture: 'amd64',
      os: 'linux',
      total_size: 412_000_000,
      downloaded_size: 103_000_000,
      layer_count: 8,
      downloaded_layers: 2,
      progress: 25,
    },
  ],
  last_update: '2026-05-15T10:00:02Z',
};

const jellyfinTask = {
  task_id: 'hyd-17',
  user_id: 'alice',
  source_id: 'market.olares',
  app_id: 'a1b2c3',
  app_name: 'jellyfin',
  status: 'running',
  step_name: 'ImageAnalysisStep',
  total_steps: 5,
  retry_count: 0,
  created_at: '2026-05-15T09:59:50Z',
  updated_at: '2026-05-15T10:00:00Z',
};

const immichFailure = {
  ...jellyfinTask,
  task_id: 'hyd-9',
  app_id: 'd4e5f6',
  app_name: 'immich',
  status: 'failed',
  step_name: 'RenderedChartStep',
  retry_count: 3,
  last_error: 'values.yaml: unknown field "gpu"',
};

const aliceStatus = {
  system: {
    uptime: 86_400,
    version: '0.4.2',
    hostname: 'chart-repo-7d9f',
    components: { redis: { healthy: true, last_check: '2026-05-15T09:59:00+00:00' } },
    resource_usage: { memory_mb: 212, goroutines: 48 },
  },
  apps: [jellyfinApp],
  images: [jellyfinImage],
  tasks: {
    hydrator: {
      queue_length: 3,
      active_tasks: 1,
      completed_tasks: 40,
      failed_tasks: 2,
      worker_count: 4,
      tasks: [jellyfinTask],
      recent_failed: [immichFailure],
    },
    image_analyzer: {
      is_running: true,
      health_status: 'healthy',
      last_check: '2026-05-15T10:00:00Z',
      queue_length: 1,
      active_workers: 1,
      cached_images: 12,
      analyzing_count: 1,
      queued_tasks: [],
      processing_tasks: [
        {
          task_id: 'ana-3',
          app_name: 'jellyfin',
          app_dir: '/charts/jellyfin',
          status: 'running',
          created_at: '2026-05-15T09:59:59Z',
          started_at: '2026-05-15T10:00:00Z',
          worker_id: 1,
          images_count: 1,
        },
      ],
      recent_completed: [],
      recent_failed: [],
      total_analyzed: 30,
      successful_analyzed: 29,
      failed_analyzed: 1,
      average_analysis_time: '1.5s',
    },
  },
  last_update: '2026-05-15T10:00:03Z',
};

const giteaApp = {
  app_id: '0a1b2c',
  app_name: 'gitea',
  user_id: 'bob',
  source_id: 'upload',
  state: 'failed',
  error: { message: 'chart render failed', step: 'RenderedChartStep' },
  timestamps: { created_at: '2026-05-15T08:00:00Z', last_updated_at: '2026-05-15T08:05:00Z' },
  last_update: '2026-05-15T08:05:00Z',
};

const ollamaApp = {
  app_id: '3d4e5f',
  app_name: 'ollama',
  user_id: 'bob',
  source_id: 'upload',
  state: 'completed',
  last_update: '2026-05-15T07:00:00-05:00',
};

const ollamaImage = {
  image_name: 'docker.io/ollama/ollama:0.6.8',
  app_name: 'ollama',
  status: 'completed',
  total_size: 1_900_000_000,
  downloaded_size: 1_900_000_000,
  download_progress: 100,
  analysis_status: 'completed',
  analyzed_at: '2026-05-15T11:58:00+02:00',
  last_update: '2026-05-15T09:58:00Z',
};

const giteaTask = {
  ...jellyfinTask,
  task_id: 'hyd-21',
  user_id: 'bob',
  source_id: 'upload',
  app_id: '0a1b2c',
  app_name: 'gitea',
  status: 'pending',
  step_name: 'SourceChartStep',
  created_at: '2026-05-15T10:00:01Z',
  updated_at: '2026-05-15T10:00:01Z',
};

const giteaFailure = { ...giteaTask, task_id: 'hyd-20', status: 'failed', last_error: 'chart render failed' };

const bobStatus = {
  system: { uptime: 86_401, version: '0.4.2', hostname: 'chart-repo-second-answer' },
  apps: [giteaApp, ollamaApp],
  images: [ollamaImage],
  tasks: {
    hydrator: {
      queue_length: 0,
      active_tasks: 2,
      completed_tasks: 7,
      failed_tasks: 1,
      worker_count: 4,
      tasks: [giteaTask],
      recent_failed: [giteaFailure],
    },
    image_analyzer: {
      is_running: true,
      health_status: 'degraded',
      last_check: '2026-05-15T10:00:04.25Z',
      queue_length: 0,
      active_workers: 0,
      cached_images: 13,
      analyzing_count: 0,
      total_analyzed: 31,
      successful_analyzed: 29,
      failed_analyzed: 2,
      average_analysis_time: '1m30s',
      error_message: 'registry rate limit',
    },
  },
  last_update: '2026-05-15T10:00:04Z',
};

/** aliceStatus then bobStatus, aggregated and with every timestamp as ISO. */
const aggregated: Omit<ChartRepoStatus, 'reachable' | 'lastError' | 'lastUpdate'> = {
  system: { ...aliceStatus.system, components: { redis: { healthy: true, last_check: '2026-05-15T09:59:00.000Z' } } },
  apps: [
    {
      ...jellyfinApp,
      current_step: {
        ...jellyfinApp.current_step,
        started_at: '2026-05-15T09:59:58.123Z',
        updated_at: '2026-05-15T10:00:00.000Z',
      },
      timestamps: { created_at: '2026-05-15T09:00:00.000Z', last_updated_at: '2026-05-15T10:00:00.500Z' },
      last_update: '2026-05-15T10:00:01.000Z',
    },
    {
      ...giteaApp,
      timestamps: { created_at: '2026-05-15T08:00:00.000Z', last_updated_at: '2026-05-15T08:05:00.000Z' },
      last_update: '2026-05-15T08:05:00.000Z',
    },
    { ...ollamaApp, last_update: '2026-05-15T12:00:00.000Z' },
  ],
  images: [
    { ...jellyfinImage, analyzed_at: null, last_update: '2026-05-15T10:00:02.000Z' },
    { ...ollamaImage, analyzed_at: '2026-05-15T09:58:00.000Z', last_update: '2026-05-15T09:58:00.000Z' },
  ],
  tasks: {
    hydrator: {
      queue_length: 3,
      active_tasks: 3,
      completed_tasks: 47,
      failed_tasks: 3,
      worker_count: 4,
      tasks: [
        { ...jellyfinTask, created_at: '2026-05-15T09:59:50.000Z', updated_at: '2026-05-15T10:00:00.000Z' },
        { ...giteaTask, created_at: '2026-05-15T10:00:01.000Z', updated_at: '2026-05-15T10:00:01.000Z' },
      ],
      recent_failed: [
        { ...immichFailure, created_at: '2026-05-15T09:59:50.000Z', updated_at: '2026-05-15T10:00:00.000Z' },
        { ...giteaFailure, created_at: '2026-05-15T10:00:01.000Z', updated_at: '2026-05-15T10:00:01.000Z' },
      ],
    },
    imageAnalyzer: {
      ...bobStatus.tasks.image_analyzer,
      last_check: '2026-05-15T10:00:04.250Z',
      average_analysis_time: 90_000,
    },
  },
};

const at = (iso: string) => new Date(iso);

const typedJellyfinTask = {
  taskId: 'hyd-17',
  userId: 'alice',
  sourceId: 'market.olares',
  appId: 'a1b2c3',
  appName: 'jellyfin',
  status: 'running',
  stepName: 'ImageAnalysisStep',
  totalSteps: 5,
  retryCount: 0,
  lastError: null,
  createdAt: at('2026-05-15T09:59:50Z'),
  updatedAt: at('2026-05-15T10:00:00Z'),
};
const typedGiteaTask = {
  ...typedJellyfinTask,
  taskId: 'hyd-21',
  userId: 'bob',
  sourceId: 'upload',
  appId: '0a1b2c',
  appName: 'gitea',
  status: 'pending',
  stepName: 'SourceChartStep',
  createdAt: at('2026-05-15T10:00:01Z'),
  updatedAt: at('2026-05-15T10:00:01Z'),
};

/** The same answers as typed objects: camelCase, Dates, Go durations in milliseconds. */
const typedAggregated: ChartRepoTypedStatus = {
  systemStatus: {
    hostname: 'chart-repo-7d9f',
    version: '0.4.2',
    uptimeSeconds: 86_400,
    components: aliceStatus.system.components,
    resourceUsage: aliceStatus.system.resource_usage,
  },
  appStates: [
    {
      appId: 'a1b2c3',
      appName: 'jellyfin',
      userId: 'alice',
      sourceId: 'market.olares',
      state: 'processing',
      currentStep: {
        name: 'ImageAnalysisStep',
        index: 3,
        total: 5,
        status: 'running',
        startedAt: at('2026-05-15T09:59:58.123Z'),
        updatedAt: at('2026-05-15T10:00:00Z'),
        retryCount: 0,
      },
      processing: { taskId: 'hyd-17', durationMs: 1500 },
      createdAt: at('2026-05-15T09:00:00Z'),
      lastUpdatedAt: at('2026-05-15T10:00:00.5Z'),
      error: null,
      lastUpdate: at('2026-05-15T10:00:01Z'),
    },
    {
      appId: '0a1b2c',
      appName: 'gitea',
      userId: 'bob',
      sourceId: 'upload',
      state: 'failed',
      currentStep: null,
      processing: null,
      createdAt: at('2026-05-15T08:00:00Z'),
      lastUpdatedAt: at('2026-05-15T08:05:00Z'),
      error: { message: 'chart render failed', step: 'RenderedChartStep' },
      lastUpdate: at('2026-05-15T08:05:00Z'),
    },
    {
      appId: '3d4e5f',
      appName: 'ollama',
      userId: 'bob',
      sourceId: 'upload',
      state: 'completed',
      currentStep: null,
      processing: null,
      createdAt: null,
      lastUpdatedAt: null,
      error: null,
      lastUpdate: at('2026-05-15T12:00:00Z'),
    },
  ],
  imageStates: [
    {
      imageName: 'docker.io/jellyfin/jellyfin:10.9.6',
      appId: 'a1b2c3',
      appName: 'jellyfin',
      status: 'downloading',
      architecture: 'amd64',
      totalSize: 412_000_000,
      downloadedSize: 103_000_000,
      downloadProgress: 25,
      layerCount: 8,
      downloadedLayers: 2,
      analysisStatus: 'pending',
      analyzedAt: null,
      errorMessage: null,
      nodes: [
        {
          nodeName: 'olares-1',
          architecture: 'amd64',
          os: 'linux',
          totalSize: 412_000_000,
          downloadedSize: 103_000_000,
          layerCount: 8,
          downloadedLayers: 2,
          progress: 25,
        },
      ],
      lastUpdate: at('2026-05-15T10:00:02Z'),
    },
    {
      imageName: 'docker.io/ollama/ollama:0.6.8',
      appId: null,
      appName: 'ollama',
      status: 'completed',
      architecture: null,
      totalSize: 1_900_000_000,
      downloadedSize: 1_900_000_000,
      downloadProgress: 100,
      layerCount: null,
      downloadedLayers: null,
      analysisStatus: 'completed',
      analyzedAt: at('2026-05-15T09:58:00Z'),
      errorMessage: null,
      nodes: [],
      lastUpdate: at('2026-05-15T09:58:00Z'),
    },
  ],
  queues: {
    hydrator: {
      queueLength: 3,
      activeTasks: 3,
      completedTasks: 47,
      failedTasks: 3,
      workerCount: 4,
      tasks: [typedJellyfinTask, typedGiteaTask],
      recentFailed: [
        {
          ...typedJellyfinTask,
          taskId: 'hyd-9',
          appId: 'd4e5f6',
          appName: 'immich',
          status: 'failed',
          stepName: 'RenderedChartStep',
          retryCount: 3,
          lastError: 'values.yaml: unknown field "gpu"',
        },
        { ...typedGiteaTask, taskId: 'hyd-20', status: 'failed', lastError: 'chart render failed' },
      ],
    },
    // The last answer's, like the raw block.
    imageAnalyzer: {
      isRunning: true,
      healthStatus: 'degraded',
      lastCheck: at('2026-05-15T10:00:04.25Z'),
      queueLength: 0,
      activeWorkers: 0,
      cachedImages: 13,
      analyzingCount: 0,
      queuedTasks: [],
      processingTasks: [],
      recentCompleted: [],
      recentFailed: [],
      totalAnalyzed: 31,
      successfulAnalyzed: 29,
      failedAnalyzed: 2,
      averageAnalysisTimeMs: 90_000,
      errorMessage: 'registry rate limit',
    },
  },
  droppedItems: 0,
};

const EMPTY_TYPED: ChartRepoTypedStatus = {
  systemStatus: null,
  appStates: [],
  imageStates: [],
  queues: null,
  droppedItems: 0,
};

/** A port nothing listens on: bound by us, then released. */
function closedPort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Only the fields a test of one block cares about, so each case can send a small status. */
function withAnalyzer(image_analyzer: Record<string, unknown>) {
  return { apps: [], images: [], tasks: { image_analyzer } };
}

beforeAll(async () => {
  fake = await startFakeChartRepo();
});
afterAll(() => fake?.stop());
beforeEach(() => {
  fake.reset();
  logs.length = 0;
});

describe('HttpChartRepo aggregation', () => {
  test('two (user, source) answers are merged (lists concatenated, hydrator counters summed, the first system block) with every timestamp as ISO', async () => {
    fake.setStatus('alice/market.olares', aliceStatus);
    fake.setStatus('bob/upload', bobStatus);
    const source = createSource();

    const status = await source.collect([ALICE, BOB], FIRST_TICK);

    expect(status).toEqual({
      reachable: true,
      lastError: null,
      lastUpdate: FIRST_TICK,
      ...aggregated,
      ...typedAggregated,
    });
    expect(source.current).toBe(status);
  });

  test('asks for apps, images and tasks once per pair, encoding user and source into the query', async () => {
    await createSource().collect([ALICE, BOB, { userId: 'carol', sourceId: 'my source&more=1' }, ALICE]);

    expect(fake.requests.map(({ method, path }) => `${method} ${path}`)).toEqual(
      Array(3).fill('GET /chart-repo/api/v2/status'),
    );
    expect(fake.requests.map((request) => request.search)).toEqual([
      'user=alice&source=market.olares&include=apps,images,tasks',
      'user=bob&source=upload&include=apps,images,tasks',
      'user=carol&source=my%20source%26more%3D1&include=apps,images,tasks',
    ]);
    expect(fake.requests[2]?.query).toEqual({
      user: 'carol',
      source: 'my source&more=1',
      include: 'apps,images,tasks',
    });
  });

  test('without pairs it makes one call for all users, with only the include parameter', async () => {
    fake.setStatus('/', { apps: [jellyfinApp], images: [] });

    const status = await createSource().collect([]);

    expect(fake.requests.map((request) => request.search)).toEqual(['include=apps,images,tasks']);
    expect(status.apps).toEqual([expect.objectContaining({ app_name: 'jellyfin' })]);
    expect(status).toMatchObject({ reachable: true, lastError: null, system: null, images: [], tasks: null });
  });

  test('a trailing slash on the base URL does not double the slash in the path', async () => {
    await createSource({ baseUrl: `${fake.url}/` }).collect([ALICE]);
    expect(fake.requests[0]?.path).toBe('/chart-repo/api/v2/status');
  });

  test('an empty image-analyzer block does not replace the last non-empty one, and a later non-empty one does', async () => {
    fake.setStatus('alice/a', withAnalyzer({ health_status: 'healthy', average_analysis_time: '1s' }));
    fake.setStatus('alice/b', withAnalyzer({}));
    fake.setStatus('alice/c', { apps: [], images: [] });
    const source = createSource();
    const pairs = ['a', 'b', 'c'].map((sourceId) => ({ userId: 'alice', sourceId }));

    const first = await source.collect(pairs);
    expect(first.tasks).toEqual({
      hydrator: null,
      imageAnalyzer: { health_status: 'healthy', average_analysis_time: 1000 },
    });

    fake.setStatus('alice/c', withAnalyzer({ health_status: 'degraded', average_analysis_time: '2s' }));
    const second = await source.collect(pairs);
    expect(second.tasks?.imageAnalyzer).toEqual({ health_status: 'degraded', average_analysis_time: 2000 });
  });

  test('the first answer with a non-empty system block gives the system, even when earlier answers have none', async () => {
    fake.setStatus('alice/a', { apps: [], images: [] });
    fake.setStatus('alice/b', { system: {}, apps: [], images: [] });
    fake.setStatus('alice/c', { system: { version: '0.4.2', hostname: 'first' }, apps: [], images: [] });
    fake.setStatus('alice/d', { system: { version: '0.5.0', hostname: 'second' }, apps: [], images: [] });

    const status = await createSource().collect(
      ['a', 'b', 'c', 'd'].map((sourceId) => ({ userId: 'alice', sourceId })),
    );

    expect(status.system).toEqual({ version: '0.4.2', hostname: 'first' });
    expect(status.tasks).toBeNull();
  });

  test('worker_count is the first non-zero one reported, never a sum, and missing counters and lists count as empty', async () => {
    const taskOfA = { ...jellyfinTask, source_id: 'a' };
    fake.setStatus('alice/a', { tasks: { hydrator: { queue_length: 2, worker_count: 0, tasks: [taskOfA] } } });
    fake.setStatus('alice/b', { tasks: { hydrator: { active_tasks: 1, worker_count: 3, recent_failed: 'none' } } });
    fake.setStatus('alice/c', { tasks: { hydrator: { active_tasks: 1, worker_count: 5, tasks: null } } });

    const status = await createSource().collect(['a', 'b', 'c'].map((sourceId) => ({ userId: 'alice', sourceId })));

    expect(status.tasks).toEqual({
      hydrator: {
        queue_length: 2,
        active_tasks: 2,
        completed_tasks: 0,
        failed_tasks: 0,
        worker_count: 3,
        tasks: [expect.objectContaining({ task_id: 'hyd-17', created_at: '2026-05-15T09:59:50.000Z' })],
        recent_failed: [],
      },
      imageAnalyzer: null,
    });
  });

  test('apps, images and task-list entries that are not objects are dropped, and extra fields pass through', async () => {
    fake.setStatus('alice/market.olares', {
      apps: [jellyfinApp, 'gitea', null, 7],
      images: ['none'],
      future_block: { anything: true },
      tasks: { hydrator: { tasks: [jellyfinTask, 'x'], shard: 'eu-1' } },
    });

    const status = await createSource().collect([ALICE]);

    expect(status.apps).toEqual([expect.objectContaining({ app_name: 'jellyfin' })]);
    expect(status.images).toEqual([]);
    expect(status.tasks?.hydrator).toMatchObject({
      shard: 'eu-1',
      tasks: [expect.objectContaining({ task_id: 'hyd-17' })],
    });
  });
});

describe('HttpChartRepo timestamps and durations', () => {
  test.each([
    ['2026-05-15T10:00:00Z', '2026-05-15T10:00:00.000Z'],
    ['2026-05-15T10:00:00.123456789Z', '2026-05-15T10:00:00.123Z'],
    ['2026-05-15T12:30:00.5+02:30', '2026-05-15T10:00:00.500Z'],
    ['2026-05-15t05:00:00-05:00', '2026-05-15T10:00:00.000Z'],
    ['0001-01-01T00:00:00Z', null],
    ['2026-02-30T10:00:00Z', null],
    ['2026-05-15 10:00:00', null],
    ['yesterday', null],
    ['', null],
    [1_747_303_200, null],
    [null, null],
  ])('the RFC 3339 timestamp %j is output as %j', async (input, expected) => {
    fake.setStatus('alice/market.olares', { apps: [{ app_name: 'jellyfin', last_update: input }], images: [] });

    const status = await createSource().collect([ALICE]);

    expect(status.apps).toEqual([{ app_name: 'jellyfin', last_update: expected }]);
  });

  test('a missing timestamp stays missing rather than turning into null', async () => {
    fake.setStatus('alice/market.olares', { apps: [{ app_name: 'jellyfin' }], images: [] });
    expect((await createSource().collect([ALICE])).apps).toEqual([{ app_name: 'jellyfin' }]);
  });

  test.each([
    ['1.5s', 1500],
    ['250ms', 250],
    ['1m30s', 90_000],
    ['2h45m0.5s', 9_900_500],
    ['1.1s', 1100],
    ['750us', 0.75],
    ['750µs', 0.75],
    ['1500ns', 0.0015],
    ['0', 0],
    // A number is a Go time.Duration as encoding/json writes it: integer nanoseconds.
    [3_875_000_000, 3875],
    [1234, 0.001234],
    [0, 0],
    ['-2s', null],
    [-5, null],
    ['1500', null],
    ['1.5 s', null],
    ['soon', null],
    ['', null],
    [null, null],
    [undefined, null],
  ])('an average_analysis_time of %j (a Go duration) is output as %j milliseconds', async (input, expected) => {
    fake.setStatus('alice/market.olares', withAnalyzer({ is_running: true, average_analysis_time: input }));

    const status = await createSource().collect([ALICE]);

    expect(status.tasks?.imageAnalyzer).toEqual({ is_running: true, average_analysis_time: expected });
  });
});

describe('HttpChartRepo failures', () => {
  const failures: { case: string; behaviour: ChartRepoBehaviour; problem: string }[] = [
    {
      case: 'a 500 with an envelope whose message carries a Go trace',
      behaviour: {
        respond: 'http-error',
        status: 500,
        body: { success: false, message: 'panic: nil map\n\ngoroutine 7 [running]:\nmain.go:42', data: null },
      },
      problem: 'HTTP 500: panic: nil map',
    },
    { case: 'a 502 without a body', behaviour: { respond: 'http-error', status: 502 }, problem: 'HTTP 502' },
    {
      case: 'a 404 with an HTML page',
      behaviour: { respond: 'http-error', status: 404, body: '<html>not found</html>' },
      problem: 'HTTP 404',
    },
    {
      case: 'a body that is not JSON',
      behaviour: { respond: 'garbage' },
      problem: 'HTTP 200 with a body that is not JSON',
    },
    {
      case: 'success: false',
      behaviour: { respond: 'unsuccessful', message: 'redis: connection pool exhausted' },
      problem: 'the chart repo refused: redis: connection pool exhausted',
    },
    {
      case: 'success: false without a message',
      behaviour: { respond: 'json', body: { success: false } },
      problem: 'the chart repo refused: success is false, without a message',
    },
    {
      case: 'JSON that is not the envelope',
      behaviour: { respond: 'json', body: { apps: [], images: [] } },
      problem: 'the answer is not the {success, message, data} envelope',
    },
    {
      case: 'an envelope whose data is a list',
      behaviour: { respond: 'json', body: { success: true, message: 'ok', data: [] } },
      problem: 'the answer has no status object in data',
    },
    {
      case: 'an envelope whose data is null',
      behaviour: { respond: 'json', body: { success: true, message: 'ok', data: null } },
      problem: 'the answer has no status object in data',
    },
    {
      case: 'a dropped connection',
      behaviour: { respond: 'reset' },
      problem: 'unreachable (UND_ERR_SOCKET)',
    },
  ];

  test.each(failures)(
    '$case on every call keeps the last good data, unreachable, with a readable error',
    async ({ behaviour, problem }) => {
      fake.setStatus('alice/market.olares', aliceStatus);
      fake.setStatus('bob/upload', bobStatus);
      const source = createSource();
      const good = await source.collect([ALICE, BOB], FIRST_TICK);

      fake.setBehaviour('*', behaviour);
      const status = await source.collect([ALICE, BOB], SECOND_TICK);

      expect(status).toEqual({
        ...good,
        reachable: false,
        lastError: `2 of 2 chart repo status calls failed: alice/market.olares: ${problem}; bob/upload: ${problem}`,
        lastUpdate: FIRST_TICK,
      });
      expect(source.current).toBe(status);
    },
  );

  test('a chart repo that does not answer in time fails each call after timeoutMs and keeps the last good data', async () => {
    fake.setStatus('alice/market.olares', aliceStatus);
    const source = createSource({ timeoutMs: 200 });
    const good = await source.collect([ALICE], FIRST_TICK);

    fake.setBehaviour('alice/market.olares', { respond: 'hang' });
    const status = await source.collect([ALICE], SECOND_TICK);

    expect(status).toEqual({
      ...good,
      reachable: false,
      lastError: '1 of 1 chart repo status call failed: alice/market.olares: no answer within 200 ms',
    });
  });

  test('a chart repo that is no longer listening is unreachable, and the last good data is kept', async () => {
    const doomed = await startFakeChartRepo();
    doomed.setStatus('*', aliceStatus);
    const source = createSource({ baseUrl: doomed.url });
    const good = await source.collect([], FIRST_TICK);
    await doomed.stop();

    const status = await source.collect([], SECOND_TICK);

    expect(status).toEqual({
      ...good,
      reachable: false,
      lastError: '1 of 1 chart repo status call failed: all users: unreachable (ECONNREFUSED)',
    });
    expect(status.apps).toHaveLength(1);
  });

  test('a chart repo that has never answered gives an empty unreachable status', async () => {
    const source = createSource({ baseUrl: `http://127.0.0.1:${await closedPort()}` });

    const status = await source.collect([ALICE], FIRST_TICK);

    expect(status).toEqual({
      reachable: false,
      lastError: '1 of 1 chart repo status call failed: alice/market.olares: unreachable (ECONNREFUSED)',
      lastUpdate: null,
      system: null,
      apps: [],
      images: [],
      tasks: null,
      ...EMPTY_TYPED,
    });
    expect(source.current).toBe(status);
  });

  test('when some calls fail the answers of the others are used, reachable, with the failures in lastError', async () => {
    fake.setStatus('alice/market.olares', aliceStatus);
    fake.setStatus('bob/upload', bobStatus);
    fake.setBehaviour('bob/upload', {
      respond: 'http-error',
      status: 503,
      body: { success: false, message: 'hydrator restarting', data: null },
    });
    const source = createSource();

    const status = await source.collect([ALICE, BOB], FIRST_TICK);

    expect(status).toMatchObject({
      reachable: true,
      lastError: '1 of 2 chart repo status calls failed: bob/upload: HTTP 503: hydrator restarting',
      lastUpdate: FIRST_TICK,
      system: aggregated.system,
      apps: [aggregated.apps[0]],
      images: [aggregated.images[0]],
      tasks: {
        hydrator: expect.objectContaining({ queue_length: 3, active_tasks: 1, completed_tasks: 40, failed_tasks: 2 }),
        imageAnalyzer: expect.objectContaining({ health_status: 'healthy', average_analysis_time: 1500 }),
      },
    });
  });

  test('the next successful collect clears lastError and replaces the kept data', async () => {
    fake.setStatus('alice/market.olares', aliceStatus);
    const source = createSource();
    await source.collect([ALICE], FIRST_TICK);
    fake.setBehaviour('*', { respond: 'garbage' });
    await source.collect([ALICE], SECOND_TICK);

    fake.setBehaviour('*', null);
    fake.setStatus('alice/market.olares', { apps: [], images: [] });
    const third = new Date('2026-05-15T10:00:15Z');
    const status = await source.collect([ALICE], third);

    expect(status).toEqual({
      reachable: true,
      lastError: null,
      lastUpdate: third,
      system: null,
      apps: [],
      images: [],
      tasks: null,
      ...EMPTY_TYPED,
    });
  });

  test('lastError lists the first five failed calls and counts the rest', async () => {
    fake.setBehaviour('*', { respond: 'http-error', status: 500 });
    const pairs = Array.from({ length: 7 }, (_, index) => ({ userId: `user${index}`, sourceId: 'market.olares' }));

    const status = await createSource().collect(pairs);

    expect(status.lastError).toBe(
      '7 of 7 chart repo status calls failed: ' +
        [0, 1, 2, 3, 4].map((index) => `user${index}/market.olares: HTTP 500`).join('; ') +
        '; and 2 more',
    );
  });

  test('no lastError carries a stack trace, however the calls fail', async () => {
    const source = createSource({ timeoutMs: 200 });
    const errors: (string | null)[] = [];
    for (const behaviour of [...failures.map((failure) => failure.behaviour), { respond: 'hang' } as const]) {
      fake.setBehaviour('*', behaviour);
      errors.push((await source.collect([ALICE])).lastError);
    }
    errors.push((await createSource({ baseUrl: `http://127.0.0.1:${await closedPort()}` }).collect([ALICE])).lastError);

    expect(errors).toHaveLength(failures.length + 2);
    for (const error of errors) {
      expect(error).toMatch(/^1 of 1 chart repo status call failed: alice\/market\.olares: \S/);
      expect(error).not.toMatch(/\n|\bat \S+ \(|node:internal|goroutine/);
    }
  });

  test('a failure is logged once while it lasts, and the recovery once', async () => {
    const source = createSource();
    fake.setBehaviour('*', { respond: 'http-error', status: 500 });
    await source.collect([ALICE]);
    await source.collect([ALICE]);
    fake.setBehaviour('*', { respond: 'http-error', status: 502 });
    await source.collect([ALICE]);
    fake.setBehaviour('*', null);
    await source.collect([ALICE]);
    await source.collect([ALICE]);

    const notable = logs.filter((entry) => (entry.level as number) >= 30);
    expect(notable.map((entry) => [entry.level, entry.msg, entry.problem])).toEqual([
      [40, 'chart repo status calls failed', '1 of 1 chart repo status call failed: alice/market.olares: HTTP 500'],
      [40, 'chart repo status calls failed', '1 of 1 chart repo status call failed: alice/market.olares: HTTP 502'],
      [30, 'chart repo status calls succeed again', undefined],
    ]);
  });

  test('a collect overtaken by a newer one does not overwrite current when it finishes last', async () => {
    fake.setStatus('bob/upload', bobStatus);
    fake.setBehaviour('alice/market.olares', { respond: 'hang' });
    const source = createSource({ timeoutMs: 300 });

    const older = source.collect([ALICE], FIRST_TICK);
    const newer = await source.collect([BOB], SECOND_TICK);
    const overtaken = await older;

    expect(newer).toMatchObject({ reachable: true, lastUpdate: SECOND_TICK });
    expect(overtaken).toMatchObject({ reachable: false, lastUpdate: SECOND_TICK, apps: newer.apps });
    expect(source.current).toBe(newer);
  });
});

describe('the fake chart repo', () => {
  test('answers a key without a status of its own with the default, then with the one set for every key', async () => {
    const fetchStatus = async (query: string) => {
      const response = await fetch(`${fake.url}/chart-repo/api/v2/status?${query}`);
      return response.json();
    };
    expect(await fetchStatus('user=dave&source=x')).toEqual({
      success: true,
      message: 'ok',
      data: { apps: [], images: [], last_update: '2026-05-15T08:00:00Z' },
    });
    fake.setStatus('*', { apps: [jellyfinApp] });
    expect((await fetchStatus('user=dave&source=x')).data).toEqual({ apps: [jellyfinApp] });
    expect(fake.requests.map((request) => request.key)).toEqual(['dave/x', 'dave/x']);

    const unknown = await fetch(`${fake.url}/chart-repo/api/v1/status`);
    expect(unknown.status).toBe(404);
    await unknown.arrayBuffer();
  });
});

describe('HttpChartRepo typed status', () => {
  test('an item missing a required field or holding one of the wrong type is dropped and counted; the raw blocks keep it', async () => {
    fake.setStatus('alice/market.olares', {
      apps: [
        jellyfinApp,
        { ...jellyfinApp, app_id: undefined },
        { ...jellyfinApp, app_name: 42 },
        { ...jellyfinApp, state: '' },
        'not an object',
      ],
      images: [jellyfinImage, { ...jellyfinImage, image_name: null }, { ...jellyfinImage, status: ['downloading'] }],
      tasks: {
        hydrator: { tasks: [jellyfinTask, { ...jellyfinTask, task_id: 17 }], recent_failed: [{ app_name: 'immich' }] },
        image_analyzer: { is_running: true, processing_tasks: [{ task_id: 'ana-1', status: 'running' }] },
      },
    });

    const source = createSource();
    const status = await source.collect([ALICE]);
    await source.collect([ALICE]);

    expect(status.appStates?.map((app) => app.appName)).toEqual(['jellyfin']);
    expect(status.imageStates?.map((image) => image.imageName)).toEqual(['docker.io/jellyfin/jellyfin:10.9.6']);
    expect(status.queues?.hydrator?.tasks.map((task) => task.taskId)).toEqual(['hyd-17']);
    expect(status.queues?.hydrator?.recentFailed).toEqual([]);
    expect(status.queues?.imageAnalyzer?.processingTasks).toEqual([]);
    // 4 apps, 2 images, 2 hydrator tasks, 1 analysis task.
    expect(status.droppedItems).toBe(9);
    expect(status.apps).toHaveLength(4);
    expect(status).toMatchObject({ reachable: true, lastError: null });
    // Said once while it lasts, not on every collect.
    const warnings = logs.filter((line) => line.msg === 'chart repo status items left out of the typed status');
    expect(warnings).toEqual([expect.objectContaining({ dropped: 9 })]);
  });

  test('optional fields of the wrong type are null, nested blocks without their own required fields are null, and the item stays', async () => {
    fake.setStatus('alice/market.olares', {
      apps: [
        {
          ...jellyfinApp,
          current_step: { name: 'ImageAnalysisStep', index: 'three', total: 5, status: 'running' },
          processing: { duration: 5 },
          error: { step: 'RenderedChartStep' },
          timestamps: 'yesterday',
          last_update: 1_747_303_200,
        },
      ],
      images: [
        {
          ...jellyfinImage,
          app_id: 7,
          total_size: '412 MB',
          downloaded_size: -1,
          download_progress: 250,
          layer_count: Number.POSITIVE_INFINITY,
          nodes: [{ node_name: 'olares-1', progress: -3, os: { name: 'linux' } }, { progress: 50 }],
        },
      ],
    });

    const status = await createSource().collect([ALICE]);

    expect(status.appStates).toEqual([
      expect.objectContaining({
        appName: 'jellyfin',
        currentStep: null,
        processing: null,
        error: null,
        createdAt: null,
        lastUpdatedAt: null,
        lastUpdate: null,
      }),
    ]);
    expect(status.imageStates?.[0]).toMatchObject({
      appId: null,
      totalSize: null,
      downloadedSize: null,
      downloadProgress: 100,
      layerCount: null,
      nodes: [{ nodeName: 'olares-1', progress: 0, os: null }],
    });
    expect(status.droppedItems).toBe(1); // the node without a name
  });

  test('an app state without its own user or source belongs to the pair asked about; in the call for all users it is dropped', async () => {
    const anonymous = { ...jellyfinApp, user_id: undefined, source_id: undefined };
    fake.setStatus('alice/market.olares', { apps: [anonymous] });
    fake.setStatus('/', { apps: [anonymous] });

    const forAlice = await createSource().collect([ALICE]);
    const forAll = await createSource().collect([]);

    expect(forAlice.appStates).toEqual([expect.objectContaining({ userId: 'alice', sourceId: 'market.olares' })]);
    expect(forAll.appStates).toEqual([]);
    expect(forAll.droppedItems).toBe(1);
  });

  test.each([
    [1_500_000_000, 1500],
    [23_864_512_000, 23_864.512],
    [0, 0],
    ['1m30s', 90_000],
    ['250ms', 250],
    [-5, null],
    ['soon', null],
    [Number.MAX_VALUE, Number.MAX_VALUE / 1e6],
    [null, null],
  ])('a Go duration of %j (integer nanoseconds, or a duration string) is %j milliseconds', async (input, expected) => {
    fake.setStatus('alice/market.olares', {
      apps: [{ ...jellyfinApp, processing: { task_id: 'hyd-17', duration: input } }],
      tasks: { image_analyzer: { is_running: true, average_analysis_time: input } },
    });

    const status = await createSource().collect([ALICE]);

    expect(status.appStates?.[0]?.processing?.durationMs).toBe(expected);
    expect(status.queues?.imageAnalyzer?.averageAnalysisTimeMs).toBe(expected);
    // The deprecated raw block reads the same field the same way.
    expect(status.tasks?.imageAnalyzer?.average_analysis_time).toBe(expected);
  });

  test.each([
    [1, '1'],
    [0, '0'],
    ['worker-eu-2', 'worker-eu-2'],
    [1e30, null],
    [2 ** 53, null],
    [-1, null],
    [1.5, null],
    [Number.NaN, null],
    ['', null],
    [null, null],
  ])('an analysis worker_id of %j is the workerId %j', async (input, expected) => {
    const task = { task_id: 'ana-3', app_name: 'jellyfin', status: 'running', worker_id: input };
    fake.setStatus('alice/market.olares', {
      tasks: { image_analyzer: { is_running: true, processing_tasks: [task] } },
    });

    const status = await createSource().collect([ALICE]);

    expect(status.queues?.imageAnalyzer?.processingTasks).toEqual([expect.objectContaining({ workerId: expected })]);
  });

  test('strings, numbers and lists are bounded: long names drop the item, long texts are cut, counters fit a 32-bit Int', async () => {
    const apps = Array.from({ length: 5_003 }, (_, index) => ({ ...jellyfinApp, app_name: `app-${index}` }));
    apps[0] = { ...jellyfinApp, app_name: 'x'.repeat(513) };
    fake.setStatus('alice/market.olares', {
      system: { uptime: 1e12, version: 'v'.repeat(5_000) },
      apps,
      images: [{ ...jellyfinImage, error_message: 'e'.repeat(10_000), layer_count: 3.7 }],
      tasks: { hydrator: { queue_length: 2 ** 40, worker_count: -4 } },
    });

    const status = await createSource().collect([ALICE]);

    expect(status.appStates).toHaveLength(5_000);
    expect(status.appStates?.[0]?.appName).toBe('app-1');
    // The 513-character name, and the two beyond the bound.
    expect(status.droppedItems).toBe(3);
    expect(status.systemStatus).toMatchObject({ uptimeSeconds: 2 ** 31 - 1, version: `${'v'.repeat(2_000)}…` });
    expect(status.imageStates?.[0]).toMatchObject({ errorMessage: `${'e'.repeat(2_000)}…`, layerCount: 3 });
    expect(status.queues?.hydrator).toMatchObject({ queueLength: 2 ** 31 - 1, workerCount: 0 });
  });

  test("a chart repo that ignores user= and answers alice's call with admin's apps shows her none of them, and counts them", async () => {
    // The whole fixture: admin's n8n, ghost and excalidraw (and their hydrator tasks) beside alice's immich.
    fake.setStatus('alice/market.olares', chartRepoStatusFixture());

    const source = createSource();
    const { all, byUser } = await source.collectByUser([ALICE], FIRST_TICK);

    const alice = byUser.get('alice');
    expect(alice).toBeDefined();
    for (const status of [alice as ChartRepoStatus, all]) {
      expect(status.appStates?.map((app) => [app.appName, app.userId])).toEqual([['immich', 'alice']]);
      expect((status.apps as { app_name: string }[]).map((app) => app.app_name)).toEqual(['immich']);
      expect(status.queues?.hydrator?.tasks.map((task) => task.taskId)).toEqual(['hyd-alice-immich-1747295988']);
      expect(status.queues?.hydrator?.recentFailed).toEqual([]);
      const raw = status.tasks?.hydrator as { tasks: { task_id: string }[]; recent_failed: unknown[] };
      expect(raw.tasks.map((task) => task.task_id)).toEqual(['hyd-alice-immich-1747295988']);
      expect(raw.recent_failed).toEqual([]);
      // Three app states and three hydrator tasks (two current, one recently failed) of admin's.
      expect(status.droppedItems).toBe(6);
    }
    expect(JSON.stringify([alice?.apps, alice?.appStates, alice?.queues?.hydrator])).not.toMatch(/admin/);
    expect(logs.filter((line) => line.msg === 'chart repo status items left out of the typed status')).toEqual([
      expect.objectContaining({ dropped: 6 }),
    ]);

    // The same answer, scoped as a chart repo that honours user= sends it, leaves nothing out.
    fake.setStatus('alice/market.olares', chartRepoStatusFor('alice'));
    const honest = await source.collect([ALICE], SECOND_TICK);
    expect(honest.appStates?.map((app) => app.appName)).toEqual(['immich']);
    expect(honest.droppedItems).toBe(0);
  });

  test("an app state or hydrator task of another source, or naming its user with the wrong type, is left out of a per-pair answer; one naming none is the pair's", async () => {
    const ofUpload = { ...jellyfinApp, app_id: 'u1', app_name: 'of-upload', source_id: 'upload' };
    const numericUser = { ...jellyfinApp, app_id: 'n1', app_name: 'numeric-user', user_id: 7 };
    const unnamedTask = { ...jellyfinTask, task_id: 'hyd-unnamed', user_id: '', source_id: undefined };
    fake.setStatus('alice/market.olares', {
      apps: [jellyfinApp, ofUpload, numericUser],
      tasks: { hydrator: { tasks: [unnamedTask, { ...jellyfinTask, task_id: 'hyd-bob', user_id: 'bob' }] } },
    });

    const status = await createSource().collect([ALICE]);

    expect(status.appStates?.map((app) => app.appName)).toEqual(['jellyfin']);
    expect((status.apps as { app_name: string }[]).map((app) => app.app_name)).toEqual(['jellyfin']);
    expect(status.queues?.hydrator?.tasks).toEqual([
      expect.objectContaining({ taskId: 'hyd-unnamed', userId: 'alice', sourceId: 'market.olares' }),
    ]);
    expect(status.droppedItems).toBe(3);
  });

  test("each user's typed status holds only what their own calls answered", async () => {
    fake.setStatus('alice/market.olares', aliceStatus);
    fake.setStatus('bob/upload', bobStatus);

    const { all, byUser } = await createSource().collectByUser([ALICE, BOB], FIRST_TICK);

    expect(all.appStates?.map((app) => app.appName)).toEqual(['jellyfin', 'gitea', 'ollama']);
    expect(byUser.get('alice')?.appStates?.map((app) => app.appName)).toEqual(['jellyfin']);
    expect(byUser.get('alice')?.queues?.hydrator?.queueLength).toBe(3);
    expect(byUser.get('bob')?.imageStates?.map((image) => image.appName)).toEqual(['ollama']);
    expect(byUser.get('bob')?.queues?.hydrator?.tasks.map((task) => task.userId)).toEqual(['bob']);
    // Merging each user's answers did not touch the status of all users, which shares them.
    expect(all.queues?.hydrator?.tasks.map((task) => task.taskId)).toEqual(['hyd-17', 'hyd-21']);
    expect(byUser.get('alice')?.queues?.hydrator?.tasks.map((task) => task.taskId)).toEqual(['hyd-17']);
  });
});
