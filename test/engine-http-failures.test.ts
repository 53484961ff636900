import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import { type FakeAppService, sendEvent, startFakeAppService } from './support/fake-app-service.js';
import {
  at,
  httpAppServiceWorld,
  installOwnApp,
  APP_SERVICE_SECRET as SECRET,
  SOURCE,
  taskOf,
} from './support/http-app-service-world.js';
import { RetryTaskMutation } from './support/operations.js';
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

/**
 * The task engine against a real app service over HTTP (the fake, APP_SERVICE_URL) when things go
 * wrong: the app service's business errors and unavailability, the reason an app keeps, the event
 * intake's refusals, and a task that times out (TASK_TIMEOUT_MS). How operations are sent and
 * followed is in engine-http.test.ts.
 */

const [kind] = await availableDatabases();

describe('task engine failures against a real app service over HTTP (APP_SERVICE_URL)', () => {
  const world = httpAppServiceWorld();
  let fake: FakeAppService;
  let server: TestServer;
  let intake: string;
  beforeAll(() => {
    ({ fake, server, intake } = world);
  });
  const task = (taskId: string) => taskOf(server, taskId);
  const install = (appName: string, version: string) => installOwnApp(server, appName, version);

  test('a business error from the app service (422 missing env values) fails the task with its message and data', async () => {
    fake.setBehaviour('install', {
      respond: 'business-error',
      code: 422,
      message: 'missing env values',
      data: { type: 'appenv', missingValues: [{ envName: 'DB_PASSWORD' }] },
    });
    try {
      const taskId = await install('env-hungry-app', '2.13.5');
      const failed = await waitFor(async () => {
        const current = await task(taskId);
        return current?.status === 'FAILED' ? current : undefined;
      }, 'the task to fail');
      expect(failed.error).toMatch(/missing env values/);
      expect(failed.app).toMatchObject({ stage: 'FAILED', state: 'installFailed' });
      const row = await server.app.db.task.findUnique({ where: { taskId } });
      expect(JSON.stringify(row?.result)).toContain('DB_PASSWORD');
      expect(JSON.stringify(row)).not.toContain('service-credential-0001');
    } finally {
      fake.setBehaviour('install', { respond: 'accept' });
    }
  });

  // A 503 is sent again (engine-start-retry.test.ts); a 500 may have started the install, so it fails.
  test('an app service failing on the install fails the task saying so', async () => {
    fake.setBehaviour('install', { respond: 'http-error', status: 500 });
    try {
      const taskId = await install('unreachable-app', '1.28.1');
      const failed = await waitFor(async () => {
        const current = await task(taskId);
        return current?.status === 'FAILED' ? current : undefined;
      }, 'the task to fail');
      expect(failed.error).toMatch(/app service failed on install of unreachable-app \(HTTP 500\)/);
    } finally {
      fake.setBehaviour('install', { respond: 'accept' });
    }
  });

  test("an app's reason is its last failure's, not the first one's", async () => {
    const failedInstall = async (version?: string) => {
      const taskId = version
        ? await install('twice-failed-app', version)
        : await installThroughApi(
            server,
            { sourceId: SOURCE, appName: 'twice-failed-app', version: '1.0.0' },
            TOKENS.alice,
          );
      return waitFor(async () => {
        const current = await task(taskId);
        return current?.status === 'FAILED' ? current : undefined;
      }, 'the install to fail');
    };
    const reason = async () =>
      (await server.app.db.appState.findFirst({ where: { userId: 'alice', appName: 'twice-failed-app' } }))?.reason;
    try {
      fake.setBehaviour('install', { respond: 'business-error', code: 422, message: 'missing env values' });
      await failedInstall('1.0.0');
      expect(await reason()).toMatch(/missing env values/);
      fake.setBehaviour('install', { respond: 'http-error', status: 500 });
      const second = await failedInstall();
      expect(await reason()).toBe(second.error);
      expect(await reason()).not.toMatch(/missing env values/);
    } finally {
      fake.setBehaviour('install', { respond: 'accept' });
    }
  });

  test('the event intake refuses a wrong secret (401) and a malformed event (400), changing nothing', async () => {
    const before = await server.app.db.appState.findMany();
    expect(
      await sendEvent(intake, 'not-the-secret-at-all', {
        name: 'gitea',
        user: 'alice',
        state: 'running',
        createTime: at(0),
      }),
    ).toBe(401);
    const bad = await fetch(intake, {
      method: 'POST',
      headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
      body: '{"name":"gitea"}',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/user|state|createTime/);
    expect(await server.app.db.appState.findMany()).toEqual(before);
  });
});

describe('with TASK_TIMEOUT_MS, against a real app service over HTTP', () => {
  let fake: FakeAppService;
  let server: TestServer;
  beforeAll(async () => {
    fake = await startFakeAppService();
    server = await startTestServer(kind ?? 'sqlite', {
      env: {
        ...AUTH_ENV,
        APP_SERVICE_URL: fake.url,
        APP_SERVICE_EVENT_SECRET: SECRET,
        TASK_TIMEOUT_MS: '3000',
        RECONCILE_INTERVAL_MS: '3600000',
      },
    });
  });
  afterAll(async () => {
    await server?.stop();
    await fake?.stop();
  });

  const task = (taskId: string) => taskOf(server, taskId);
  const ended = (taskId: string) =>
    waitFor(async () => {
      const current = await task(taskId);
      return current?.status === 'FAILED' ? current : undefined;
    }, 'the task to fail');

  test('a retry that times out shows its own reason on the app, not the failure the app service reported before', async () => {
    await seed(server.app.db).catalogApp({ name: 'retried-app', versions: ['1.0.0'] });
    const taskId = await installThroughApi(
      server,
      { sourceId: SOURCE, appName: 'retried-app', version: '1.0.0' },
      TOKENS.alice,
    );
    const { opId } = await waitFor(async () => {
      const current = await task(taskId);
      return current?.opId ? current : undefined;
    }, 'the install to be accepted');
    const failure = {
      name: 'retried-app',
      user: 'alice',
      marketSource: SOURCE,
      opID: opId as string,
      opType: 'install',
      state: 'installFailed',
      reason: 'ImagePullBackOff',
      createTime: new Date().toISOString(),
    };
    expect(await sendEvent(`${server.url}/events/app-state`, SECRET, failure)).toBe(202);
    expect((await ended(taskId)).app?.reason).toBe('ImagePullBackOff');

    const { retryTask } = dataOf(
      await execute(server, RetryTaskMutation, { input: { taskId } }, { token: TOKENS.alice }),
    );
    if (retryTask.__typename !== 'RetryTaskSuccess') throw new Error(JSON.stringify(retryTask));
    // Accepted by the app service, which then never reports.
    const retried = await ended(retryTask.task.taskId);
    expect(retried.opId).not.toBe(opId);
    expect(retried.error).toMatch(/timed out/);
    expect(retried.app).toMatchObject({ stage: 'FAILED', reason: retried.error?.slice(0, 200) });
  }, 30_000);
});
