import { beforeAll, describe, expect, test } from 'vitest';
import { type FakeAppService, sendEvent } from './support/fake-app-service.js';
import {
  at,
  httpAppServiceWorld,
  installOwnApp,
  APP_SERVICE_SECRET as SECRET,
  SOURCE,
  taskOf,
} from './support/http-app-service-world.js';
import { AppQuery, CancelTaskMutation, UninstallAppMutation } from './support/operations.js';
import { dataOf, execute, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * The task engine against a real app service over HTTP (the fake, APP_SERVICE_URL): how an
 * operation is sent, followed by its state events (cancels, clocks that differ, late events) and
 * reconciled. Its failures (the app service's errors, the intake's refusals, timeouts) are in
 * engine-http-failures.test.ts.
 */

describe('task engine against a real app service over HTTP (APP_SERVICE_URL)', () => {
  const world = httpAppServiceWorld({
    // What the app service lists for reconciliation: an app that bob installed outside the market.
    apps: [
      {
        name: 'uptime-kuma',
        owner: 'bob',
        state: 'running',
        marketSource: SOURCE,
        statusTime: '2026-11-01T10:00:00Z',
      },
    ],
  });
  let fake: FakeAppService;
  let server: TestServer;
  let intake: string;
  beforeAll(() => {
    ({ fake, server, intake } = world);
  });
  const task = (taskId: string) => taskOf(server, taskId);
  const install = (appName: string, version: string) => installOwnApp(server, appName, version);

  test('an install is sent as documented, then follows the state events to COMPLETED with monotonic progress', async () => {
    const taskId = await install('followed-app', '0.53.3');
    const running = await waitFor(async () => {
      const current = await task(taskId);
      return current?.status === 'RUNNING' && current.opId ? current : undefined;
    }, 'the task to be accepted by the app service');
    const request = fake.requests.find((r) => r.path === '/app-service/v1/apps/followed-app/install');
    expect(request?.method).toBe('POST');
    expect(request?.headers['x-bfl-user']).toBe('alice');
    expect(request?.headers['x-authorization']).toBe('service-credential-0001');
    expect(request?.body).toMatchObject({
      source: 'market',
      x_market_user: 'alice',
      x_market_source: SOURCE,
      envs: [],
    });
    const opID = running.opId as string;

    const event = (state: string, createTime: string, progress?: string) =>
      sendEvent(intake, SECRET, {
        name: 'followed-app',
        user: 'alice',
        marketSource: SOURCE,
        opID,
        opType: 'install',
        state,
        createTime,
        ...(progress ? { progress } : {}),
      });

    expect(await event('downloading', at(1000), '50')).toBe(202);
    expect((await task(taskId))?.progress).toBe(35);
    expect(await event('installing', at(2000))).toBe(202);
    expect((await task(taskId))?.progress).toBe(70);
    // An older event arrives late: the app keeps its newer state and progress does not go back.
    expect(await event('downloading', at(1500), '10')).toBe(202);
    const afterLate = await task(taskId);
    expect(afterLate).toMatchObject({ progress: 70, app: { state: 'installing' } });
    expect(await event('running', at(3000))).toBe(202);
    expect(await task(taskId)).toMatchObject({
      status: 'COMPLETED',
      progress: 100,
      app: { state: 'running', stage: 'RUNNING', installedVersion: '0.53.3' },
    });
  });

  /** The task once the app service accepted it (it has an op id), and the events of its operation. */
  async function accepted(taskId: string, appName: string) {
    const { opId } = await waitFor(async () => {
      const current = await task(taskId);
      return current?.status === 'RUNNING' && current.opId ? current : undefined;
    }, 'the install to be accepted');
    const event = (state: string, createTime: string, reason?: string) =>
      sendEvent(intake, SECRET, {
        name: appName,
        user: 'alice',
        marketSource: SOURCE,
        opID: opId as string,
        opType: 'install',
        state,
        createTime,
        ...(reason ? { reason } : {}),
      });
    return { event };
  }

  test('what a cancel that came too late left (installingCancelFailed) fails the install and can be uninstalled', async () => {
    const taskId = await install('cancel-too-late', '2.0.0');
    const { event } = await accepted(taskId, 'cancel-too-late');
    const { cancelTask } = dataOf(
      await execute(server, CancelTaskMutation, { input: { taskId } }, { token: TOKENS.alice }),
    );
    expect(cancelTask.__typename).toBe('CancelTaskSuccess');
    expect(fake.requests.some((r) => r.path === '/app-service/v1/apps/cancel-too-late/cancel')).toBe(true);

    // The app service's cancel state machine owns the app from here: the install does not go on.
    expect(await event('installingCancelFailed', at(1000), 'too late to cancel')).toBe(202);
    expect(await task(taskId)).toMatchObject({
      status: 'FAILED',
      error: expect.stringMatching(/\(installingCancelFailed\): too late to cancel$/),
      app: { stage: 'FAILED', installedVersion: null, reason: 'too late to cancel' },
    });
    const variables = { input: { sourceId: SOURCE, appName: 'cancel-too-late' } };
    const { uninstallApp } = dataOf(await execute(server, UninstallAppMutation, variables, { token: TOKENS.alice }));
    if (uninstallApp.__typename !== 'UninstallAppSuccess') throw new Error(JSON.stringify(uninstallApp));
    const uninstall = await waitFor(async () => {
      const current = await task(uninstallApp.task.taskId);
      return current?.opId ? current : undefined;
    }, 'the uninstall to be accepted');
    expect(fake.requests.some((r) => r.path === '/app-service/v1/apps/cancel-too-late/uninstall')).toBe(true);
    const uninstalled = {
      name: 'cancel-too-late',
      user: 'alice',
      marketSource: SOURCE,
      opID: uninstall.opId as string,
      opType: 'uninstall',
      state: 'uninstalled',
      createTime: at(2000),
    };
    expect(await sendEvent(intake, SECRET, uninstalled)).toBe(202);
    expect(await task(uninstall.taskId)).toMatchObject({ status: 'COMPLETED', app: null });
  });

  test('a cancel while the app service has not answered the send yet is refused, and nothing is sent for it', async () => {
    fake.setBehaviour('install', { respond: 'hang' });
    try {
      const taskId = await install('unanswered-app', '1.0.0');
      await waitFor(
        async () => fake.requests.some((r) => r.path === '/app-service/v1/apps/unanswered-app/install') || undefined,
        'the install to be sent',
      );
      const { cancelTask } = dataOf(
        await execute(server, CancelTaskMutation, { input: { taskId } }, { token: TOKENS.alice }),
      );
      expect(cancelTask).toMatchObject({
        code: 'INVALID_STATE',
        message: `Task ${taskId} is being sent to the app service, which has not accepted its install of unanswered-app yet: cancel it again once it has (the task then has its result)`,
      });
      // Sent now, the cancel would reach the app service before the install it is meant for.
      expect(fake.requests.some((r) => r.path === '/app-service/v1/apps/unanswered-app/cancel')).toBe(false);
      expect(await task(taskId)).toMatchObject({ status: 'RUNNING', opId: null });
      const history = await server.app.db.historyRecord.findMany({ where: { app: 'unanswered-app' } });
      expect(history.map((record) => record.type)).not.toContain('ACTION_CANCEL');
    } finally {
      fake.setBehaviour('install', { respond: 'accept' });
    }
  });

  test('a step of an ended operation, sent again with a new time, leaves the app at rest; its end still counts', async () => {
    const taskId = await install('late-step-app', '1.0.0');
    const { event } = await accepted(taskId, 'late-step-app');
    expect(await event('downloading', at(0))).toBe(202);
    expect(await event('running', at(1000))).toBe(202);
    const atRest = { state: 'running', stage: 'RUNNING', installedVersion: '1.0.0' };
    expect(await task(taskId)).toMatchObject({ status: 'COMPLETED', app: atRest });
    // The app service sends a step of that operation again, stamped later than its end.
    expect(await event('downloading', at(2000))).toBe(202);
    expect((await task(taskId))?.app).toMatchObject(atRest);
    expect(await event('installing', at(2500))).toBe(202);
    expect((await task(taskId))?.app).toMatchObject(atRest);
    // An end of that operation still corrects the row, as the app service's word on it.
    expect(await event('installFailed', at(3000), 'ImagePullBackOff')).toBe(202);
    expect((await task(taskId))?.app).toMatchObject({ state: 'installFailed', stage: 'FAILED' });
  });

  test("an app service whose clock runs 10 s behind this server's completes a first install", async () => {
    const taskId = await install('clock-behind-app', '1.0.0');
    const { event } = await accepted(taskId, 'clock-behind-app');
    expect(await event('installing', at(-10_000))).toBe(202);
    expect(await task(taskId)).toMatchObject({ status: 'RUNNING', progress: 70, app: { state: 'installing' } });
    // Of the same operation but older than the one before: still not taken.
    expect(await event('downloading', at(-10_500))).toBe(202);
    expect((await task(taskId))?.app).toMatchObject({ state: 'installing' });
    expect(await event('running', at(-9_000))).toBe(202);
    expect(await task(taskId)).toMatchObject({
      status: 'COMPLETED',
      app: { state: 'running', stage: 'RUNNING', installedVersion: '1.0.0' },
    });
  });

  test('a late event of before an uninstall does not bring the uninstalled app back; a later one (installed outside) does', async () => {
    const taskId = await install('late-app', '1.0.0');
    const { opId } = await waitFor(async () => {
      const current = await task(taskId);
      return current?.status === 'RUNNING' && current.opId ? current : undefined;
    }, 'the install to be accepted');
    const event = (state: string, createTime: string, opID: string, opType: string) =>
      sendEvent(intake, SECRET, {
        name: 'late-app',
        user: 'alice',
        marketSource: SOURCE,
        opID,
        opType,
        state,
        createTime,
      });
    const installedAt = at(10);
    expect(await event('running', installedAt, opId as string, 'install')).toBe(202);
    expect((await task(taskId))?.status).toBe('COMPLETED');
    // The uninstall comes after that event's time (10 ms ahead when sent): on a fast machine the
    // whole uninstall fit in those 10 ms, stamped before the install it removes.
    await waitFor(async () => (Date.now() > Date.parse(installedAt) ? true : undefined), 'the install event time');

    const variables = { input: { sourceId: SOURCE, appName: 'late-app' } };
    const { uninstallApp } = dataOf(await execute(server, UninstallAppMutation, variables, { token: TOKENS.alice }));
    if (uninstallApp.__typename !== 'UninstallAppSuccess') throw new Error(JSON.stringify(uninstallApp));
    const uninstall = await waitFor(async () => {
      const current = await task(uninstallApp.task.taskId);
      return current?.status === 'RUNNING' && current.opId ? current : undefined;
    }, 'the uninstall to be accepted');
    expect(await event('uninstalled', at(0), uninstall.opId as string, 'uninstall')).toBe(202);
    expect(await task(uninstall.taskId)).toMatchObject({ status: 'COMPLETED', app: null });

    // The install's last event again, late (a retry of the app service's): older than the removal.
    expect(await event('running', installedAt, opId as string, 'install')).toBe(202);
    const appNow = async () =>
      dataOf(await execute(server, AppQuery, { sourceId: SOURCE, appName: 'late-app' }, { token: TOKENS.alice })).app;
    expect(await appNow()).toBeNull();
    // Installed again later, outside the market: that one is shown.
    expect(await event('running', at(60_000), 'op-outside', 'install')).toBe(202);
    expect(await appNow()).toMatchObject({ stage: 'RUNNING' });
  });

  test('reconciliation brings in apps the app service reports', async () => {
    const app = await waitFor(async () => {
      const found = dataOf(
        await execute(
          server,
          AppQuery,
          { sourceId: SOURCE, appName: 'uptime-kuma', userId: 'bob' },
          { token: TOKENS.ops },
        ),
      ).app;
      return found ?? undefined;
    }, 'the reconciled app');
    expect(app).toMatchObject({ userId: 'bob', stage: 'RUNNING', health: 'HEALTHY' });
  });
});
