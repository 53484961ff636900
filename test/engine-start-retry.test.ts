import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { graphql } from './gql/index.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { type FakeAppService, sendEvent, startFakeAppService } from './support/fake-app-service.js';
import { APP_SERVICE_SECRET as SECRET, SOURCE, taskOf } from './support/http-app-service-world.js';
import { metricValue } from './support/metrics.js';
import { CancelTaskMutation } from './support/operations.js';
import { seed } from './support/seed.js';
import {
  AUTH_ENV,
  dataOf,
  execute,
  installThroughApi,
  startTestServer,
  type TestServer,
  TOKENS,
  waitFor,
} from './support/server.js';
import { subscribe } from './support/subscriptions.js';
import { startUnacceptingPort } from './support/unaccepting-port.js';

/**
 * A task whose start the app service did not take (HTTP 429 or 503: busy, restarting) waits
 * PENDING, saying so, and is sent again later (src/engine/start-retry.ts), up to
 * TASK_START_ATTEMPTS sends; one it may have taken (HTTP 500) fails at once. Against a real app
 * service over HTTP (the fake), on both databases.
 */

const databases = await availableDatabases();

/** The runtime feed the dashboard follows: its snapshot and its events, of one app's tasks. */
const WaitingTaskSnapshot = graphql(`
  query WaitingTaskSnapshot($filter: SnapshotFilter) {
    runtimeSnapshot(filter: $filter) { tasks { taskId status message } }
  }
`);
const WaitingTaskEvents = graphql(`
  subscription WaitingTaskEvents($filter: SnapshotFilter) {
    runtimeEvents(filter: $filter) { kind task { taskId status message } }
  }
`);

const BUSY = { code: 429, message: 'slow down', data: null };
const WAITING = 'the app service did not take a task; sending it again later';

/** The settings of these tests: three sends, waits of 50 ms doubling, a `Retry-After` of up to 1.5 s taken. */
const RETRY_ENV = { TASK_START_ATTEMPTS: '3', TASK_START_RETRY_FIRST_MS: '50', TASK_START_RETRY_MAX_MS: '1500' };

function serverOn(
  kind: (typeof databases)[number],
  fake: Pick<FakeAppService, 'url'>,
  database?: TestDatabase,
  retryEnv: Record<string, string> = RETRY_ENV,
) {
  return startTestServer(kind, {
    env: {
      ...AUTH_ENV,
      ...retryEnv,
      DEMO_DATA: '0',
      APP_SERVICE_URL: fake.url,
      APP_SERVICE_EVENT_SECRET: SECRET,
      APP_SERVICE_TIMEOUT_MS: '2000',
      RECONCILE_INTERVAL_MS: '3600000',
    },
    ...(database ? { database } : {}),
  });
}

describe.each(databases)('starts the app service did not take, on %s', (kind) => {
  let fake: FakeAppService;
  let server: TestServer;
  beforeAll(async () => {
    fake = await startFakeAppService();
    server = await serverOn(kind, fake);
  });
  afterAll(async () => {
    await server?.stop();
    await fake?.stop();
  });

  const task = (taskId: string) => taskOf(server, taskId);
  const installsOf = (appName: string) =>
    fake.requests.filter((request) => request.path.includes(`/${appName}/install`));
  async function install(appName: string) {
    await seed(server.app.db).catalogApp({ name: appName, versions: ['1.0.0'] });
    return installThroughApi(server, { sourceId: SOURCE, appName, version: '1.0.0' }, TOKENS.alice);
  }
  const waiting = (taskId: string, attempt: number) =>
    waitFor(async () => {
      const current = await task(taskId);
      return current?.status === 'PENDING' && current.message?.includes(`attempt ${attempt} of 3`)
        ? current
        : undefined;
    }, `the task to wait for its attempt ${attempt}`);
  const ended = (taskId: string, status: 'FAILED' | 'COMPLETED') =>
    waitFor(async () => {
      const current = await task(taskId);
      return current?.status === status ? current : undefined;
    }, `the task to be ${status}`);

  test('an install refused twice with HTTP 429 and Retry-After waits PENDING saying so, then is sent again and completes', async () => {
    const refusal = { respond: 'http-error', status: 429, body: BUSY, headers: { 'Retry-After': '1' } } as const;
    fake.setBehaviour('install', refusal, 2);
    const taskId = await install('busy-app');

    const second = await waiting(taskId, 2);
    expect(second.message).toMatch(
      /^app service is too busy for install of busy-app: slow down \(HTTP 429\); attempt 2 of 3 at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    );
    expect(second).toMatchObject({ error: null, opId: null, startedAt: null });
    await waiting(taskId, 3);
    const { opId } = await waitFor(async () => {
      const current = await task(taskId);
      return current?.opId ? current : undefined;
    }, 'the third send to be accepted');
    expect(await task(taskId)).toMatchObject({ status: 'RUNNING', message: null, error: null });
    const running = { name: 'busy-app', user: 'alice', marketSource: SOURCE, opID: opId as string, opType: 'install' };
    const event = { ...running, state: 'running', createTime: new Date().toISOString() };
    expect(await sendEvent(`${server.url}/events/app-state`, SECRET, event)).toBe(202);
    expect(await ended(taskId, 'COMPLETED')).toMatchObject({ error: null, message: null });

    const sends = installsOf('busy-app');
    expect(sends).toHaveLength(3);
    // Each sent again no sooner than its Retry-After asked (1 s), the same request each time.
    for (const [before, after] of [sends.slice(0, 2), sends.slice(1, 3)] as const) {
      expect((after?.receivedAt ?? 0) - (before?.receivedAt ?? 0)).toBeGreaterThanOrEqual(990);
      expect(after?.body).toEqual(before?.body);
    }
    const logged = server.logs.filter((line) => line.includes(WAITING) && line.includes(taskId));
    expect(logged).toHaveLength(2);
    expect(logged.join('\n')).not.toContain('service-credential');
    expect(await metricValue(server, 'market_task_start_retries_total')).toBeGreaterThanOrEqual(2);
    // One "started" record, at the first send.
    const started = await server.app.db.historyRecord.count({ where: { message: 'install busy-app started' } });
    expect(started).toBe(1);
  }, 30_000);

  test('a waiting task shows why in the runtime feed: its message in runtimeSnapshot and in a runtimeEvents frame', async () => {
    // A server of its own whose wait is the Retry-After's minute: the snapshot is read while the
    // task waits, however slow a loaded machine is (with the file's 1.5 s cap it could have ended).
    const server = await serverOn(kind, fake, undefined, { ...RETRY_ENV, TASK_START_RETRY_MAX_MS: '60000' });
    const refusal = { respond: 'http-error', status: 429, body: BUSY, headers: { 'Retry-After': '60' } } as const;
    fake.setBehaviour('install', refusal);
    const filter = { appName: 'queued-app' };
    const events = await subscribe(server, WaitingTaskEvents, { filter }, { token: TOKENS.alice });
    try {
      await seed(server.app.db).catalogApp({ name: 'queued-app', versions: ['1.0.0'] });
      const input = { sourceId: SOURCE, appName: 'queued-app', version: '1.0.0' };
      const taskId = await installThroughApi(server, input, TOKENS.alice);
      const framed = await events.until((frame) => Boolean(frame.runtimeEvents.task?.message));
      expect(framed.at(-1)?.runtimeEvents).toEqual({
        kind: 'TASK_CHANGED',
        task: {
          taskId,
          status: 'PENDING',
          message: expect.stringMatching(/: slow down \(HTTP 429\); attempt \d of 3 at /),
        },
      });
      const shown = await waitFor(async () => {
        const { runtimeSnapshot } = dataOf(
          await execute(server, WaitingTaskSnapshot, { filter }, { token: TOKENS.alice }),
        );
        return runtimeSnapshot.tasks.find((task) => task.taskId === taskId && task.message);
      }, 'the snapshot to show the task waiting');
      expect(shown).toEqual({ taskId, status: 'PENDING', message: expect.stringMatching(/^app service is too busy/) });
      const { cancelTask } = dataOf(
        await execute(server, CancelTaskMutation, { input: { taskId } }, { token: TOKENS.alice }),
      );
      expect(cancelTask.__typename).toBe('CancelTaskSuccess');
    } finally {
      await events.close();
      await server.stop();
      fake.setBehaviour('install', { respond: 'accept' });
    }
  });

  test('an install the app service refuses every time fails after TASK_START_ATTEMPTS sends, saying how many and the last answer', async () => {
    fake.setBehaviour('install', { respond: 'http-error', status: 503, body: { code: 503, message: 'restarting' } });
    try {
      const taskId = await install('refused-app');
      const failed = await ended(taskId, 'FAILED');
      expect(failed.error).toBe(
        'app service failed on install of refused-app: restarting (HTTP 503); gave up after 3 attempts',
      );
      expect(failed.message).toBeNull();
      expect(failed.app).toMatchObject({ stage: 'FAILED', state: 'installFailed' });
      expect(installsOf('refused-app')).toHaveLength(3);
    } finally {
      fake.setBehaviour('install', { respond: 'accept' });
    }
  });

  test('an install answered HTTP 500 fails at once, never sent again: the app service may have started it', async () => {
    fake.setBehaviour('install', { respond: 'http-error', status: 500 }, 1);
    const taskId = await install('broken-app');
    const failed = await ended(taskId, 'FAILED');
    expect(failed.error).toBe('app service failed on install of broken-app (HTTP 500)');
    expect(installsOf('broken-app')).toHaveLength(1);
    expect(server.logs.some((line) => line.includes(WAITING) && line.includes(taskId))).toBe(false);
  });

  test('a task waiting to be sent again is canceled at once, and never sent again', async () => {
    const refusal = { respond: 'http-error', status: 429, body: BUSY, headers: { 'Retry-After': '1' } } as const;
    fake.setBehaviour('install', refusal);
    try {
      const taskId = await install('canceled-app');
      await waiting(taskId, 2);
      const { cancelTask } = dataOf(
        await execute(server, CancelTaskMutation, { input: { taskId } }, { token: TOKENS.alice }),
      );
      if (cancelTask.__typename !== 'CancelTaskSuccess') throw new Error(JSON.stringify(cancelTask));
      expect(cancelTask.task).toMatchObject({ taskId, status: 'CANCELED', error: 'canceled by alice' });
      const row = await server.app.db.task.findUnique({ where: { taskId } });
      expect(row).toMatchObject({ status: 'CANCELED', activeKey: null, workerId: null, dispatchedAt: null });
      expect(installsOf('canceled-app')).toHaveLength(1);
    } finally {
      fake.setBehaviour('install', { respond: 'accept' });
    }
  });
});

describe.each(databases)('an app service that never accepts the connection, on %s', (kind) => {
  test('a start whose time is up before a connection is made waits to be sent again, not failed: nothing was sent', async () => {
    // Its 2 s timeout ends the call while it still connects (undici's own connect timeout is 10 s);
    // a wait of 30 s or more, so the task is read while it waits, however loaded the machine.
    const unaccepting = await startUnacceptingPort();
    const waitAMinute = { ...RETRY_ENV, TASK_START_RETRY_FIRST_MS: '60000', TASK_START_RETRY_MAX_MS: '60000' };
    const server = await serverOn(kind, { url: `http://127.0.0.1:${unaccepting.port}` }, undefined, waitAMinute);
    try {
      await seed(server.app.db).catalogApp({ name: 'unaccepted-app', versions: ['1.0.0'] });
      const input = { sourceId: SOURCE, appName: 'unaccepted-app', version: '1.0.0' };
      const taskId = await installThroughApi(server, input, TOKENS.alice);
      const first = await waitFor(async () => {
        const current = await taskOf(server, taskId);
        return current?.message || current?.status === 'FAILED' ? current : undefined;
      }, 'the first send to end');
      expect(first).toMatchObject({
        status: 'PENDING',
        error: null,
        message: expect.stringMatching(
          /^app service is unreachable for install of unaccepted-app: UND_ERR_CONNECT_TIMEOUT; attempt 2 of 3 at /,
        ),
      });
      const { cancelTask } = dataOf(
        await execute(server, CancelTaskMutation, { input: { taskId } }, { token: TOKENS.alice }),
      );
      expect(cancelTask.__typename).toBe('CancelTaskSuccess');
    } finally {
      await server.stop();
      await unaccepting.close();
    }
  });
});

describe.each(databases)('a stop while a task waits to be sent again, on %s', (kind) => {
  let fake: FakeAppService;
  let database: TestDatabase;
  const servers: TestServer[] = [];
  beforeAll(async () => {
    fake = await startFakeAppService();
    database = await createTestDatabase(kind);
  });
  afterAll(async () => {
    for (const server of servers) await server.stop();
    await fake?.stop();
    await database?.drop();
  });

  test('leaves it PENDING with its time on its row, and the next instance sends it then', async () => {
    const first = await serverOn(kind, fake, database);
    servers.push(first);
    await seed(first.app.db).catalogApp({ name: 'handed-app', versions: ['1.0.0'] });
    fake.setBehaviour('install', { respond: 'http-error', status: 503, headers: { 'Retry-After': '1' } }, 1);
    const taskId = await installThroughApi(
      first,
      { sourceId: SOURCE, appName: 'handed-app', version: '1.0.0' },
      TOKENS.alice,
    );
    await waitFor(async () => {
      const row = await first.app.db.task.findUnique({ where: { taskId } });
      return row?.status === 'PENDING' && row.startAttempts === 1 ? row : undefined;
    }, 'the task to wait');
    await first.stop();
    servers.splice(servers.indexOf(first), 1);

    const next = await serverOn(kind, fake, database);
    servers.push(next);
    const row = await next.app.db.task.findUnique({ where: { taskId } });
    const accepted = await waitFor(async () => {
      const current = await taskOf(next, taskId);
      return current?.opId ? current : undefined;
    }, 'the next instance to send it');
    expect(accepted.status).toBe('RUNNING');
    const sends = fake.requests.filter((request) => request.path.includes('/handed-app/install'));
    expect(sends).toHaveLength(2);
    // Not before the time its row held: the first instance's stop lost nothing of its wait.
    expect(row?.notBefore).toBeInstanceOf(Date);
    expect(sends[1]?.receivedAt).toBeGreaterThanOrEqual((row?.notBefore?.getTime() ?? 0) - 50);
    expect((sends[1]?.receivedAt ?? 0) - (sends[0]?.receivedAt ?? 0)).toBeGreaterThanOrEqual(990);
  }, 30_000);
});
