import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Db } from '../src/db/client.js';
import { availableDatabases } from './support/databases.js';
import { type FakeAppService, sendEvent, startFakeAppService } from './support/fake-app-service.js';
import { AppsQuery, TaskDetailQuery, UninstallAppMutation, UpgradeAppMutation } from './support/operations.js';
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
 * A task that fails with no report of the app service's (it answered HTTP 500) shows the failure
 * on its app at the time of the app service's last report. The app service's list, at that same
 * time, still shows the state the app never left: the next status correction puts it back, with
 * its `system` record, and the failed task and its reason stay. Kept, the made-up failure
 * outranked the list through every run (stopApp refused a running app).
 *
 * The version too: an upgrade answered HTTP 500 that the app service carried out all the same runs
 * the new chart. State events carry no version; status correction takes the listed one for an app
 * at rest with no task of ours, from a list later than the row's state (or at the time of a
 * failure of its own). Before, the app showed RUNNING on the old version for good.
 */

const databases = await availableDatabases();
const SECRET = 'app-service-event-secret-0031';
const SOURCE = 'market.olares';

/** An app as Olares's app service lists it: an Application resource, with its chart's version. */
function application(owner: string, name: string, state: string, statusTime: Date, version: string) {
  return {
    metadata: { name: `${name}-${owner}`, namespace: `${name}-${owner}` },
    spec: { name, owner, appid: name, isSysApp: false, settings: { market_source: SOURCE, version, title: name } },
    status: { state, statusTime: statusTime.toISOString(), updateTime: statusTime.toISOString() },
  };
}

describe.each(databases)('status correction after a failure nobody reported, on %s', (kind) => {
  let fake: FakeAppService;
  let server: TestServer;
  let db: Db;
  beforeAll(async () => {
    fake = await startFakeAppService();
    server = await startTestServer(kind, {
      env: {
        ...AUTH_ENV,
        APP_SERVICE_URL: fake.url,
        APP_SERVICE_EVENT_SECRET: SECRET,
        APP_SERVICE_TIMEOUT_MS: '2000',
        DEMO_DATA: '0',
        STATUS_CORRECTION_INTERVAL_MS: '3600000',
        TASK_LEASE_MS: '600000',
      },
    });
    db = server.app.db;
    // The run at start (nothing to correct yet) is over before a test runs its own.
    await waitFor(async () => (correction().status().checks >= 1 ? true : undefined), 'the correction at start');
  });
  afterAll(async () => {
    await server?.stop();
    await fake?.stop();
  });

  const correction = () => server.app.services.statusCorrection;
  const intake = () => `${server.url}/events/app-state`;
  const rowOf = (appName: string) => db.appState.findFirst({ where: { userId: 'alice', appName } });
  /** The app's `system` records of status correction (its task's failure has one too, for an uninstall). */
  const corrections = async (app: string) => {
    const records = await db.historyRecord.findMany({
      where: { type: 'system', userId: 'alice', app },
      orderBy: { id: 'asc' },
    });
    return records.filter((record) => JSON.stringify(record.extended).includes('"correction"')).map((r) => r.message);
  };
  const failedTask = (taskId: string) =>
    waitFor(async () => {
      const { task } = dataOf(await execute(server, TaskDetailQuery, { taskId }, { token: TOKENS.ops }));
      return task?.status === 'FAILED' ? task : undefined;
    }, 'the task to fail');
  const stageOf = async (appName: string) => {
    const { apps } = dataOf(
      await execute(server, AppsQuery, { filter: { appName }, first: 5 }, { token: TOKENS.alice }),
    );
    return apps.edges.map((edge) => edge.node.stage);
  };
  const reportRunning = async (appName: string, at: Date) => {
    const event = { name: appName, user: 'alice', marketSource: SOURCE, state: 'running', opID: `op-${appName}` };
    expect(await sendEvent(intake(), SECRET, { ...event, createTime: at.toISOString() })).toBe(202);
  };
  const internalError = { code: 500, message: 'internal error', data: null };

  /** Asks for the operation as alice; the task's id. */
  const upgrade = async (appName: string) => {
    const input = { sourceId: SOURCE, appName, version: '2.0.0' };
    const { upgradeApp } = dataOf(await execute(server, UpgradeAppMutation, { input }, { token: TOKENS.alice }));
    if (upgradeApp.__typename !== 'UpgradeAppSuccess') throw new Error(JSON.stringify(upgradeApp));
    return upgradeApp.task.taskId;
  };
  const uninstall = async (appName: string) => {
    const input = { sourceId: SOURCE, appName };
    const { uninstallApp } = dataOf(await execute(server, UninstallAppMutation, { input }, { token: TOKENS.alice }));
    if (uninstallApp.__typename !== 'UninstallAppSuccess') throw new Error(JSON.stringify(uninstallApp));
    return uninstallApp.task.taskId;
  };

  test.each([
    ['upgrade', upgrade],
    ['uninstall', uninstall],
  ] as const)(
    'a running app whose %s the app service answered HTTP 500 without starting is running again at the next run, its task still failed',
    async (op, request) => {
      const appName = `refused-${op}`;
      await seed(db).catalogApp({ name: appName, versions: ['1.0.0', '2.0.0'] });
      await seed(db).user('alice').app({ appName, state: 'running', version: '1.0.0' });
      const reported = new Date(Date.now() - 5_000);
      await reportRunning(appName, reported);
      const listed = application('alice', appName, 'running', reported, '1.0.0');
      fake.apps.push(listed);
      try {
        fake.setBehaviour(op, { respond: 'http-error', status: 500, body: internalError }, 1);
        const taskId = await request(appName);
        const failed = await failedTask(taskId);
        expect(failed.error).toMatch(/HTTP 500/);
        expect(await rowOf(appName)).toMatchObject({ state: `${op}Failed`, eventTime: reported });

        await correction().run();
        expect(await rowOf(appName)).toMatchObject({
          state: 'running',
          installedVersion: '1.0.0',
          reason: failed.error,
        });
        expect(await stageOf(appName)).toEqual(['RUNNING']);
        expect(await corrections(appName)).toEqual([
          `${appName} corrected from the app service's list: ${op}Failed → running`,
        ]);
        const task = await db.task.findUnique({ where: { taskId } });
        expect(task).toMatchObject({ status: 'FAILED', error: failed.error });

        // Corrected once: the next run finds the row as listed.
        await correction().run();
        expect(await corrections(appName)).toHaveLength(1);
      } finally {
        fake.apps.splice(fake.apps.indexOf(listed), 1);
        await db.task.deleteMany({ where: { userId: 'alice', appName } });
        await db.appState.deleteMany({ where: { userId: 'alice', appName } });
      }
    },
  );

  test('a first install the app service started and reported running, then answered HTTP 500, is running at the next run with the listed version', async () => {
    const appName = 'late-refused-install';
    await seed(db).catalogApp({ name: appName, versions: ['1.0.0'] });
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    fake.setBehaviour('install', { respond: 'http-error', status: 500, body: internalError, released }, 1);
    const listed = application('alice', appName, 'running', new Date(), '1.0.0');
    try {
      const taskId = await installThroughApi(server, { sourceId: SOURCE, appName, version: '1.0.0' }, TOKENS.alice);
      const sent = () => fake.requests.some((request) => request.path.endsWith(`/${appName}/install`));
      await waitFor(async () => (sent() ? true : undefined), 'the install to reach the app service');
      const reported = new Date();
      await reportRunning(appName, reported);
      expect(await rowOf(appName)).toMatchObject({ state: 'running', installedVersion: null });
      release();
      const failed = await failedTask(taskId);
      expect(await rowOf(appName)).toMatchObject({ state: 'installFailed', eventTime: reported });

      listed.status = { ...listed.status, statusTime: reported.toISOString(), updateTime: reported.toISOString() };
      fake.apps.push(listed);
      await correction().run();
      expect(await rowOf(appName)).toMatchObject({ state: 'running', installedVersion: '1.0.0', reason: failed.error });
      expect(await corrections(appName)).toEqual([
        `${appName} corrected from the app service's list: installFailed → running, installed version 1.0.0`,
      ]);
      expect(await db.task.findUnique({ where: { taskId } })).toMatchObject({ status: 'FAILED' });
    } finally {
      release();
      if (fake.apps.includes(listed)) fake.apps.splice(fake.apps.indexOf(listed), 1);
      await db.task.deleteMany({ where: { userId: 'alice', appName } });
      await db.appState.deleteMany({ where: { userId: 'alice', appName } });
    }
  });

  // The version: state events carry none (market-domain.md §6.5), only the list says which chart
  // runs; an upgrade that failed here but ran there shows the new version once the list says so.
  const shown = async (appName: string) => {
    const { apps } = dataOf(
      await execute(server, AppsQuery, { filter: { appName }, first: 5 }, { token: TOKENS.alice }),
    );
    return apps.edges.map((edge) => ({ stage: edge.node.stage, installedVersion: edge.node.installedVersion }));
  };

  /**
   * A running app at 1.0.0, last reported `reported`, whose upgrade to 2.0.0 the app service
   * answers HTTP 500; the task's id once it has FAILED (the app then shows `upgradeFailed`).
   */
  async function upgradeAnswered500(appName: string, reported: Date): Promise<string> {
    await seed(db).catalogApp({ name: appName, versions: ['2.0.0', '1.0.0'] });
    await seed(db).user('alice').app({ appName, state: 'running', version: '1.0.0' });
    await reportRunning(appName, reported);
    fake.setBehaviour(
      'upgrade',
      { respond: 'http-error', status: 500, body: { code: 500, message: 'internal error' } },
      1,
    );
    const input = { sourceId: SOURCE, appName, version: '2.0.0' };
    const { upgradeApp } = dataOf(await execute(server, UpgradeAppMutation, { input }, { token: TOKENS.alice }));
    if (upgradeApp.__typename !== 'UpgradeAppSuccess') throw new Error(JSON.stringify(upgradeApp));
    const { taskId } = upgradeApp.task;
    await waitFor(async () => {
      const { task } = dataOf(await execute(server, TaskDetailQuery, { taskId }, { token: TOKENS.ops }));
      return task?.status === 'FAILED' ? task : undefined;
    }, 'the upgrade to fail');
    expect(await rowOf(appName)).toMatchObject({ state: 'upgradeFailed', installedVersion: '1.0.0' });
    return taskId;
  }

  async function cleanUp(appName: string, listed: unknown) {
    if (fake.apps.includes(listed)) fake.apps.splice(fake.apps.indexOf(listed), 1);
    await db.task.deleteMany({ where: { userId: 'alice', appName } });
    await db.appState.deleteMany({ where: { userId: 'alice', appName } });
  }

  test('an upgrade answered HTTP 500 that the app service carried out is running at the listed version after one run, its task still failed', async () => {
    const appName = 'upgraded-anyway';
    const listed = application('alice', appName, 'running', new Date(Date.now() - 5_000), '1.0.0');
    try {
      const taskId = await upgradeAnswered500(appName, new Date(Date.now() - 5_000));
      // The app service went on with the upgrade and finished it: it lists 2.0.0, running, later.
      Object.assign(listed, application('alice', appName, 'running', new Date(), '2.0.0'));
      fake.apps.push(listed);

      await correction().run();
      expect(await rowOf(appName)).toMatchObject({ state: 'running', installedVersion: '2.0.0' });
      expect(await shown(appName)).toEqual([{ stage: 'RUNNING', installedVersion: '2.0.0' }]);
      expect(await corrections(appName)).toEqual([
        `${appName} corrected from the app service's list: upgradeFailed → running, installed version 2.0.0`,
      ]);
      expect(await db.task.findUnique({ where: { taskId } })).toMatchObject({ status: 'FAILED' });

      await correction().run();
      expect(await corrections(appName)).toHaveLength(1);
    } finally {
      await cleanUp(appName, listed);
    }
  });

  test('a running event after the failed upgrade leaves the old version (events carry none), the list at its time too; a later list gives the new one', async () => {
    const appName = 'upgraded-then-reported';
    const listed = application('alice', appName, 'running', new Date(), '2.0.0');
    try {
      const taskId = await upgradeAnswered500(appName, new Date(Date.now() - 5_000));
      const finished = new Date();
      await reportRunning(appName, finished);
      expect(await rowOf(appName)).toMatchObject({ state: 'running', installedVersion: '1.0.0', eventTime: finished });

      // At the time of the state the row holds, the listed version may lag the state: not taken.
      Object.assign(listed, application('alice', appName, 'running', finished, '2.0.0'));
      fake.apps.push(listed);
      await correction().run();
      expect(await rowOf(appName)).toMatchObject({ state: 'running', installedVersion: '1.0.0', eventTime: finished });
      expect(await corrections(appName)).toEqual([]);

      const later = new Date(finished.getTime() + 1_000);
      Object.assign(listed, application('alice', appName, 'running', later, '2.0.0'));
      await correction().run();
      expect(await rowOf(appName)).toMatchObject({ state: 'running', installedVersion: '2.0.0' });
      expect(await corrections(appName)).toEqual([
        `${appName} corrected from the app service's list: installed version 2.0.0`,
      ]);
      expect(await db.task.findUnique({ where: { taskId } })).toMatchObject({ status: 'FAILED' });

      await correction().run();
      expect(await corrections(appName)).toHaveLength(1);
    } finally {
      await cleanUp(appName, listed);
    }
  });

  test('a list older than the stored state does not change the installed version', async () => {
    const appName = 'older-list';
    const reported = new Date(Date.now() - 5_000);
    const listed = application('alice', appName, 'running', new Date(reported.getTime() - 60_000), '2.0.0');
    try {
      await seed(db).catalogApp({ name: appName, versions: ['2.0.0', '1.0.0'] });
      await seed(db).user('alice').app({ appName, state: 'running', version: '1.0.0' });
      await reportRunning(appName, reported);
      fake.apps.push(listed);
      await correction().run();
      expect(await rowOf(appName)).toMatchObject({ state: 'running', installedVersion: '1.0.0' });
      expect(await corrections(appName)).toEqual([]);
    } finally {
      await cleanUp(appName, listed);
    }
  });
});
