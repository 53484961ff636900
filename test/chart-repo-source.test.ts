import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { HttpChartRepo } from '../src/adapters/chart-repo/http.js';
import type { ChartRepoStatus } from '../src/adapters/chart-repo/port.js';
import { createLogger } from '../src/platform/logger.js';
import { type ChartRepoBehaviour, type FakeChartRepo, startFakeChartRepo } from './support/fake-chart-repo.js';

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

    expect(status).toEqual({ reachable: true, lastError: null, lastUpdate: FIRST_TICK, ...aggregated });
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
    fake.setStatus('alice/a', { tasks: { hydrator: { queue_length: 2, worker_count: 0, tasks: [jellyfinTask] } } });
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
      images: 'none',
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
    ['-2s', -2000],
    ['0', 0],
    [1234, 1234],
    [0.5, 0.5],
    ['1500', null],
    ['1.5 s', null],
    ['soon', null],
    ['', null],
    [null, null],
    [undefined, null],
  ])('an average_analysis_time of %j is output as %j milliseconds', async (input, expected) => {
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
