import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { operationStatuses, readListedApp } from '../src/adapters/app-service/app-listing.js';
import type { AppStateEvent } from '../src/adapters/app-service/port.js';
import { listedIdentityProblem } from '../src/adapters/app-service/state-event.js';
import type { Db } from '../src/db/client.js';
import type { AppRow, TaskRow } from '../src/db/models.js';
import { appKeyString } from '../src/domain/app-key.js';
import { planCorrections, withholdMassRemovals } from '../src/engine/correction-rules.js';
import { graphql } from './gql/index.js';
import { availableDatabases } from './support/databases.js';
import { type FakeAppService, sendEvent, startFakeAppService } from './support/fake-app-service.js';
import {
  AppsQuery,
  HistoryQuery,
  RuntimeEventsSubscription,
  RuntimeSnapshotQuery,
  TaskDetailQuery,
} from './support/operations.js';
import { seed, startSeededServer } from './support/seed.js';
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

/**
 * Status correction against a fake app service over HTTP: its list of apps (mutable) is compared
 * with the stored states and active tasks, each correction writes a `system` history record, and
 * the `status_correction` component reports the figures. The periodic run is pushed out of the
 * way (an hour): each test runs one comparison itself, after the one at start.
 */

const databases = await availableDatabases();
const SECRET = 'app-service-event-secret-0003';
const SOURCE = 'market.olares';
const SECOND = 1000;

const ago = (ms: number) => new Date(Date.now() - ms);

/** An app as Olares's app service lists it: an Application resource. */
function application(owner: string, name: string, state: string, statusTime: Date, extra: object = {}) {
  return {
    metadata: { name: `${name}-${owner}`, namespace: `${name}-${owner}` },
    spec: { name, owner, appid: name, isSysApp: false, settings: { market_source: SOURCE }, ...extra },
    status: { state, statusTime: statusTime.toISOString(), updateTime: statusTime.toISOString() },
  };
}

/** A task another (live) instance runs: sent, with a fresh heartbeat, so this instance leaves it be. */
function runningTask(db: Db, userId: string, appName: string, type: string, startedAt: Date, opId = 'op-elsewhere') {
  const key = { userId, sourceId: SOURCE, appName };
  return db.task.create({
    data: {
      ...key,
      taskId: `correction-${appName}-${Math.random().toString(36).slice(2, 8)}`,
      type,
      status: 'RUNNING',
      version: '1.0.0',
      activeKey: appKeyString(key),
      metadata: { cfgType: 'app', envs: [], appId: appName },
      opId,
      workerId: 'another-instance',
      heartbeatAt: new Date(Date.now() + 600 * SECOND),
      dispatchedAt: startedAt,
      createdAt: startedAt,
      startedAt,
    },
  });
}

const StopFoundAppMutation = graphql(`
  mutation StopFoundApp($input: StopAppInput!) {
    stopApp(input: $input) {
      __typename
      ... on Error { code message }
    }
  }
`);

describe('where adopted operations stand, from the list (what status correction does not trust, the lookup does not either)', () => {
  const target = { userId: 'alice', sourceId: SOURCE, appName: 'wiki', type: 'INSTALL' as const, opId: 'op-7' };
  const other = { ...target, appName: 'blog', opId: 'op-8' };
  const listedApp = (appName: string, opId: string): AppStateEvent => ({
    userId: 'alice',
    sourceId: SOURCE,
    appName,
    state: 'installing',
    opId,
    createTime: ago(SECOND),
  });

  test('a list of no apps at all answers nothing: the lookup fails, to be asked again', () => {
    expect(() => operationStatuses({ apps: [], unreadable: [] }, [target])).toThrow(/listed no apps at all/);
    expect(() => operationStatuses({ apps: [], unreadable: [{ userId: null, appName: null }] }, [target])).toThrow();
  });

  test("an app hidden by an item that could not be read cannot be told about; another user's item hides nothing", () => {
    const apps = [listedApp('blog', 'op-8')];
    const [hidden, known] = operationStatuses({ apps, unreadable: [{ userId: 'alice', appName: null }] }, [
      target,
      other,
    ]);
    expect(hidden).toEqual({ known: null, reason: expect.stringMatching(/could not be read may be wiki/) });
    expect(known).toMatchObject({ known: true, report: { appName: 'blog' } });
    const [unlisted] = operationStatuses({ apps, unreadable: [{ userId: 'bob', appName: 'wiki' }] }, [target]);
    expect(unlisted).toMatchObject({ known: false, reason: expect.stringMatching(/lists no app wiki of alice/) });
  });
});

describe.each(databases)('status correction over HTTP on %s', (kind) => {
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
        COLLECT_INTERVAL_MS: '100',
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
  const rowOf = (userId: string, appName: string) => db.appState.findFirst({ where: { userId, appName } });
  const systemRecords = (userId: string, app: string) =>
    db.historyRecord.findMany({ where: { type: 'system', userId, app }, orderBy: { id: 'asc' } });

  test('an app the app service lists without a state row appears, with its entrances and a system record', async () => {
    const before = correction().status().corrections.appeared;
    fake.apps.push(
      application('alice', 'notes', 'running', ago(60 * SECOND), {
        entrances: [{ name: 'notes', title: 'Notes', url: 'n0t35.alice.olares.com', authLevel: 'private' }],
        sharedEntrances: [{ name: 'notes-api', url: 'api.notes.olares.com', authLevel: 'public' }],
      }),
    );
    (fake.apps.at(-1) as { status: object }).status = {
      ...(fake.apps.at(-1) as { status: object }).status,
      entranceStatuses: [{ name: 'notes', state: 'running', statusTime: ago(60 * SECOND).toISOString() }],
    };
    await correction().run();

    expect(await rowOf('alice', 'notes')).toMatchObject({
      sourceId: SOURCE,
      state: 'running',
      entrances: [
        expect.objectContaining({ name: 'notes', url: 'n0t35.alice.olares.com', state: 'running', shared: false }),
        expect.objectContaining({ name: 'notes-api', url: 'api.notes.olares.com', shared: true }),
      ],
    });
    const [record] = await systemRecords('alice', 'notes');
    expect(record?.message).toBe('notes appeared on the app service (running)');
    expect(record?.extended).toMatchObject({ correction: 'appeared', sourceId: SOURCE });
    expect(correction().status().corrections.appeared).toBe(before + 1);
  });

  test('a vanished app is removed with an APP_REMOVED event and a system record; a system app and an app with a running task stay', async () => {
    const alice = seed(db).user('alice');
    // Reported once, an hour ago, so that the runtime state holds it too.
    const report = { name: 'old-wiki', user: 'alice', state: 'running', createTime: ago(3600 * SECOND).toISOString() };
    expect(await sendEvent(`${server.url}/events/app-state`, SECRET, report)).toBe(202);
    await waitFor(async () => {
      const filter = { appName: 'old-wiki' };
      const { runtimeSnapshot } = dataOf(
        await execute(server, RuntimeSnapshotQuery, { filter }, { token: TOKENS.ops }),
      );
      return runtimeSnapshot.apps.length === 1 ? true : undefined;
    }, 'old-wiki in the runtime state');
    await alice.app({ appName: 'files', state: 'running' });
    await alice.app({ appName: 'busy-app', state: 'installing' });
    await runningTask(db, 'alice', 'busy-app', 'INSTALL', ago(5 * SECOND));
    // The app service lists `files` as one of its own system apps (for another user).
    fake.apps.push({
      ...application('bob', 'files', 'running', ago(SECOND)),
      spec: { name: 'files', owner: 'bob', isSysApp: true },
    });
    const events = await subscribe(
      server,
      RuntimeEventsSubscription,
      { filter: { userId: 'alice' } },
      { token: TOKENS.ops },
    );
    try {
      // The global id the app had (App.id), which a client cache keyed it by.
      const held = await rowOf('alice', 'old-wiki');
      const id = Buffer.from(`App:${held?.id}`).toString('base64');
      await correction().run();
      const removal = await events.until((event) => event.runtimeEvents.kind === 'APP_REMOVED');
      expect(removal.at(-1)?.runtimeEvents.removedApp).toEqual({ id, userId: 'alice', appName: 'old-wiki' });
    } finally {
      await events.close();
    }
    expect(await rowOf('alice', 'old-wiki')).toBeNull();
    expect(await rowOf('alice', 'files')).not.toBeNull();
    expect(await rowOf('alice', 'busy-app')).not.toBeNull();
    expect(await rowOf('bob', 'files')).toBeNull(); // a system app gets no row either
    const [record] = await systemRecords('alice', 'old-wiki');
    expect(record?.message).toBe('old-wiki is gone from the app service: removed (last state running)');
    // What the webhook catch-up reads to announce a removal nobody heard of (webhook-catch-up.ts).
    expect(record?.extended).toMatchObject({ correction: 'removed', sourceId: expect.any(String) });
  });

  test('a state listed later than the stored one corrects the row; an older list never overwrites a newer event', async () => {
    await seed(db).user('alice').app({ appName: 'photos', state: 'stopped' });
    fake.apps.push(application('alice', 'photos', 'running', ago(10 * SECOND)));
    await correction().run();
    expect(await rowOf('alice', 'photos')).toMatchObject({ state: 'running' });
    expect((await systemRecords('alice', 'photos')).map((r) => r.message)).toEqual([
      "photos corrected from the app service's list: stopped → running",
    ]);

    // A newer event (stopped now) and the same, older list: the event stands.
    const intake = `${server.url}/events/app-state`;
    const event = {
      name: 'photos',
      user: 'alice',
      marketSource: SOURCE,
      state: 'stopped',
      createTime: new Date().toISOString(),
    };
    expect(await sendEvent(intake, SECRET, event)).toBe(202);
    await correction().run();
    expect(await rowOf('alice', 'photos')).toMatchObject({ state: 'stopped' });
    expect(await systemRecords('alice', 'photos')).toHaveLength(1);

    // An app whose state is newer than the moment the list was asked for is not removed.
    const future = {
      name: 'fresh-app',
      user: 'alice',
      state: 'running',
      createTime: new Date(Date.now() + 60 * SECOND).toISOString(),
    };
    expect(await sendEvent(intake, SECRET, future)).toBe(202);
    await correction().run();
    expect(await rowOf('alice', 'fresh-app')).not.toBeNull();
  });

  test('a RUNNING install the app service lists as running completes, once it ran 30 s or the list is later than its start', async () => {
    const alice = seed(db).user('alice');
    await alice.app({ appName: 'gitea', state: 'installing' });
    const stuck = await runningTask(db, 'alice', 'gitea', 'INSTALL', ago(60 * SECOND));
    await alice.app({ appName: 'young-app', state: 'installing' });
    const young = await runningTask(db, 'alice', 'young-app', 'INSTALL', ago(5 * SECOND));
    await alice.app({ appName: 'quick-app', state: 'installing' });
    const quick = await runningTask(db, 'alice', 'quick-app', 'INSTALL', ago(5 * SECOND));
    await alice.app({ appName: 'leaving-app', state: 'uninstalling' });
    const leaving = await runningTask(db, 'alice', 'leaving-app', 'UNINSTALL', ago(60 * SECOND));
    const before = correction().status().corrections.tasksCompleted;
    fake.apps.push(
      // Listed before the tasks started: only the one that ran 30 s completes.
      application('alice', 'gitea', 'running', ago(90 * SECOND)),
      application('alice', 'young-app', 'running', ago(90 * SECOND)),
      // Listed after its start: it completes at once.
      application('alice', 'quick-app', 'running', ago(SECOND)),
    );
    await correction().run();

    const statusOf = async (taskId: string) =>
      dataOf(await execute(server, TaskDetailQuery, { taskId }, { token: TOKENS.ops })).task;
    expect(await statusOf(stuck.taskId)).toMatchObject({ status: 'COMPLETED', progress: 100 });
    expect(await statusOf(young.taskId)).toMatchObject({ status: 'RUNNING' });
    expect(await statusOf(quick.taskId)).toMatchObject({ status: 'COMPLETED', app: { state: 'running' } });
    expect(await statusOf(leaving.taskId)).toMatchObject({ status: 'COMPLETED' });
    expect(await rowOf('alice', 'leaving-app')).toBeNull();
    expect(correction().status().corrections.tasksCompleted).toBe(before + 3);
    expect((await systemRecords('alice', 'gitea')).map((r) => r.message)).toContain(
      'install of gitea completed by status correction: the app service reports it running',
    );
    expect((await systemRecords('alice', 'leaving-app')).map((r) => r.message)).toContain(
      'uninstall of leaving-app completed by status correction: the app service no longer lists it',
    );
  });

  test('a running upgrade is not completed by a list from before its start, nor by one older than its own report', async () => {
    const bob = seed(db).user('bob');
    const intake = `${server.url}/events/app-state`;
    // The app service reported the upgrade under way (upgrading, its op id) after the list's time.
    await bob.app({ appName: 'grafana', state: 'running' });
    const reported = await runningTask(db, 'bob', 'grafana', 'UPGRADE', ago(60 * SECOND), 'op-5');
    const event = { name: 'grafana', user: 'bob', marketSource: SOURCE, state: 'upgrading', opID: 'op-5' };
    expect(await sendEvent(intake, SECRET, { ...event, createTime: ago(50 * SECOND).toISOString() })).toBe(202);
    // No report at all, and a list from before the start: the app was running its old version.
    await bob.app({ appName: 'loki', state: 'running' });
    const silent = await runningTask(db, 'bob', 'loki', 'UPGRADE', ago(60 * SECOND), 'op-6');
    // Listed running after the start: that is the upgrade's end.
    await bob.app({ appName: 'tempo', state: 'running' });
    const ended = await runningTask(db, 'bob', 'tempo', 'UPGRADE', ago(60 * SECOND), 'op-7');
    // Listed under the upgrade's own op id, by an app service whose clock is behind: its end.
    await bob.app({ appName: 'mimir', state: 'running' });
    const named = await runningTask(db, 'bob', 'mimir', 'UPGRADE', ago(60 * SECOND), 'op-8');
    const mimir = application('bob', 'mimir', 'running', ago(90 * SECOND));
    fake.apps.push(
      application('bob', 'grafana', 'running', ago(90 * SECOND)),
      application('bob', 'loki', 'running', ago(90 * SECOND)),
      application('bob', 'tempo', 'running', ago(10 * SECOND)),
      { ...mimir, status: { ...mimir.status, opID: 'op-8' } },
    );
    await correction().run();

    const statusOf = async (taskId: string) =>
      dataOf(await execute(server, TaskDetailQuery, { taskId }, { token: TOKENS.ops })).task;
    expect(await statusOf(reported.taskId)).toMatchObject({ status: 'RUNNING', app: { state: 'upgrading' } });
    expect(await statusOf(silent.taskId)).toMatchObject({ status: 'RUNNING' });
    expect(await statusOf(ended.taskId)).toMatchObject({ status: 'COMPLETED', app: { state: 'running' } });
    expect(await statusOf(named.taskId)).toMatchObject({ status: 'COMPLETED' });
    // The upgrade's own end, reported later, completes it as it should.
    expect(await sendEvent(intake, SECRET, { ...event, state: 'running', createTime: new Date().toISOString() })).toBe(
      202,
    );
    await waitFor(
      async () => ((await statusOf(reported.taskId))?.status === 'COMPLETED' ? true : undefined),
      'the upgrade to complete on its own report',
    );
  });

  test('a stored middleware stays while the middleware list shows it or cannot be read, and goes once it is not listed', async () => {
    const row = await db.appState.create({
      data: {
        userId: 'alice',
        sourceId: SOURCE,
        appName: 'postgres',
        cfgType: 'middleware',
        state: 'running',
        eventTime: ago(3600 * SECOND),
      },
    });
    fake.middlewares = [
      {
        user: 'alice',
        resourceStatus: 'running',
        updateTime: ago(SECOND).toISOString(),
        metadata: { name: 'postgres' },
      },
    ];
    await correction().run();
    expect(await rowOf('alice', 'postgres')).not.toBeNull();
    fake.middlewares = null;
    await correction().run();
    expect(correction().status().middlewares).toBe('unavailable');
    expect(await rowOf('alice', 'postgres')).not.toBeNull();
    fake.middlewares = [];
    await correction().run();
    expect(await db.appState.findUnique({ where: { id: row.id } })).toBeNull();
  });

  test('an app whose list entry cannot be read is kept, and a list that comes back empty removes nothing and says so', async () => {
    const alice = seed(db).user('alice');
    await alice.app({ appName: 'unreadable-app', state: 'running' });
    await alice.app({ appName: 'kept-app', state: 'running' });
    await db.appState.updateMany({
      where: { appName: { in: ['unreadable-app', 'kept-app'] } },
      data: { eventTime: ago(3600 * SECOND) },
    });
    fake.apps.push(application('alice', 'kept-app', 'running', ago(3600 * SECOND)));
    // Listed without a state: skipped, and its app is not taken for gone.
    fake.apps.push({ ...application('alice', 'unreadable-app', 'running', ago(SECOND)), status: {} });
    await correction().run();
    expect(await rowOf('alice', 'unreadable-app')).not.toBeNull();
    expect(correction().status()).toMatchObject({ lastError: null, removalsWithheld: 0 });

    // A transient empty list (HTTP 200 []) while apps are stored: nothing is removed.
    const listed = fake.apps.splice(0);
    try {
      await correction().run();
      expect(await rowOf('alice', 'kept-app')).not.toBeNull();
      const status = correction().status();
      expect(status.removalsWithheld).toBeGreaterThan(0);
      expect(status.lastError).toMatch(
        /^status correction withheld \d+ removals: the app service listed no apps while \d+ are stored$/,
      );
      // A real list always holds the system apps (files, settings): with those only, it is as empty.
      fake.apps.push(application('alice', 'files', 'running', ago(SECOND), { isSysApp: true }));
      await correction().run();
      expect(await rowOf('alice', 'kept-app')).not.toBeNull();
      expect(correction().status().removalsWithheld).toBeGreaterThan(0);
      fake.apps.splice(0);
    } finally {
      fake.apps.push(...listed);
    }
    await correction().run();
    expect(correction().status()).toMatchObject({ lastError: null, removalsWithheld: 0 });
  });

  test('a list older than an uninstall that just ended does not bring the app back, nor does a list showing it uninstalling', async () => {
    const before = correction().status().corrections.appeared;
    // The uninstall of `gone-app` ended after this list was asked for (its end is in the future here).
    const key = { userId: 'alice', sourceId: SOURCE, appName: 'gone-app' };
    await db.task.create({
      data: {
        ...key,
        taskId: `correction-gone-app-${Math.random().toString(36).slice(2, 8)}`,
        type: 'UNINSTALL',
        status: 'COMPLETED',
        version: '1.0.0',
        metadata: { cfgType: 'app', envs: [], appId: 'gone-app' },
        createdAt: ago(10 * SECOND),
        completedAt: new Date(Date.now() + 60 * SECOND),
      },
    });
    fake.apps.push(
      application('alice', 'gone-app', 'running', ago(30 * SECOND)),
      application('alice', 'leaving-now', 'uninstalling', ago(SECOND)),
      application('alice', 'arriving-now', 'downloading', ago(SECOND)),
    );
    await correction().run();
    expect(await rowOf('alice', 'gone-app')).toBeNull();
    expect(await rowOf('alice', 'leaving-now')).toBeNull();
    expect(await rowOf('alice', 'arriving-now')).toBeNull();
    expect(correction().status().corrections.appeared).toBe(before);
  });

  test('a task completed by status correction keeps its result envelope, marked as corrected', async () => {
    const alice = seed(db).user('alice');
    const envelope = (appName: string) => ({
      operation: 'install',
      app_name: appName,
      user: 'alice',
      source: SOURCE,
      opID: 'op-elsewhere',
      status: 'success',
      backend_response: { code: 200, message: 'success', data: { opID: 'op-elsewhere' } },
    });
    // One whose row already shows the end (the task alone is completed), one whose row the list corrects.
    await alice.app({ appName: 'enveloped', state: 'running' });
    await alice.app({ appName: 'enveloped-too', state: 'installing' });
    const tasks = [];
    for (const appName of ['enveloped', 'enveloped-too']) {
      const task = await runningTask(db, 'alice', appName, 'INSTALL', ago(60 * SECOND));
      await db.task.update({ where: { taskId: task.taskId }, data: { result: envelope(appName) } });
      await db.appState.updateMany({ where: { userId: 'alice', appName }, data: { eventTime: ago(60 * SECOND) } });
      fake.apps.push(application('alice', appName, 'running', ago(SECOND)));
      tasks.push({ appName, taskId: task.taskId });
    }
    await correction().run();
    for (const { appName, taskId } of tasks) {
      const ended = await db.task.findUnique({ where: { taskId } });
      expect(ended?.status).toBe('COMPLETED');
      expect(ended?.result).toEqual({ ...envelope(appName), correctedBy: 'status correction' });
    }
  });

  test('an app that appeared is stored with its listed version and title, so that it can be stopped through the API', async () => {
    fake.apps.push(
      application('alice', 'found-app', 'running', ago(60 * SECOND), {
        settings: { market_source: SOURCE, version: '2.4.1', title: 'Found App' },
      }),
    );
    await correction().run();
    expect(await rowOf('alice', 'found-app')).toMatchObject({ installedVersion: '2.4.1', title: 'Found App' });
    const stopped = dataOf(
      await execute(
        server,
        StopFoundAppMutation,
        { input: { sourceId: SOURCE, appName: 'found-app' } },
        { token: TOKENS.alice },
      ),
    ).stopApp;
    expect(stopped.__typename).toBe('StopAppSuccess');
  });

  test('an app known only from its events (no installed version) gets the listed version, so that it can be stopped through the API', async () => {
    // Its install failed here (a timeout, an answer without op id) while the app service went on,
    // or it was installed outside the market: the events made its row, without a version.
    const intake = `${server.url}/events/app-state`;
    const event = {
      name: 'events-only-app',
      user: 'alice',
      marketSource: SOURCE,
      state: 'running',
      opID: 'op-unknown-here',
    };
    expect(await sendEvent(intake, SECRET, { ...event, createTime: new Date().toISOString() })).toBe(202);
    expect(await rowOf('alice', 'events-only-app')).toMatchObject({ state: 'running', installedVersion: null });
    // the list is older than the event: the state stands, the version is taken
    fake.apps.push(
      application('alice', 'events-only-app', 'running', ago(60 * SECOND), {
        settings: { market_source: SOURCE, version: '3.1.0', title: 'Events Only App' },
      }),
    );
    await correction().run();
    expect(await rowOf('alice', 'events-only-app')).toMatchObject({ state: 'running', installedVersion: '3.1.0' });
    expect((await systemRecords('alice', 'events-only-app')).map((r) => r.message)).toEqual([
      "events-only-app corrected from the app service's list: installed version 3.1.0",
    ]);
    const stopped = dataOf(
      await execute(
        server,
        StopFoundAppMutation,
        { input: { sourceId: SOURCE, appName: 'events-only-app' } },
        { token: TOKENS.alice },
      ),
    ).stopApp;
    expect(stopped.__typename).toBe('StopAppSuccess');
  });

  test('a first install still on its way takes no version from the list (canceled, it stayed behind as a failed app)', async () => {
    // The app service's clock ahead, or the first event lost: the list shows the install pending,
    // later than the row's state, while our task runs it.
    const alice = seed(db).user('alice');
    await alice.app({ appName: 'arriving-app', state: 'downloading' });
    await runningTask(db, 'alice', 'arriving-app', 'INSTALL', ago(5 * SECOND));
    await db.appState.updateMany({ where: { appName: 'arriving-app' }, data: { eventTime: ago(10 * SECOND) } });
    const arriving = application('alice', 'arriving-app', 'pending', ago(SECOND), {
      settings: { market_source: SOURCE, version: '9.9.9', title: 'Arriving' },
    });
    fake.apps.push(arriving);
    try {
      await correction().run();
      expect(await rowOf('alice', 'arriving-app')).toMatchObject({ state: 'pending', installedVersion: null });
    } finally {
      fake.apps.splice(fake.apps.indexOf(arriving), 1);
      await db.task.deleteMany({ where: { userId: 'alice', appName: 'arriving-app' } });
      await db.appState.deleteMany({ where: { userId: 'alice', appName: 'arriving-app' } });
    }
  });

  /**
   * One run of status correction whose list the app service holds until `meanwhile` has committed;
   * the list then answers with the apps as they are then (`meanwhile` may add some).
   */
  async function runWhileListHeld(meanwhile: () => Promise<void>) {
    const lists = () => fake.requests.filter((request) => request.path === '/app-service/v1/all/apps').length;
    const asked = lists();
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    fake.setBehaviour('listApps', { respond: 'accept-when', released });
    const run = correction().run();
    try {
      await waitFor(async () => (lists() > asked ? true : undefined), 'the list to be asked for');
      await meanwhile();
    } finally {
      release();
      fake.setBehaviour('listApps', { respond: 'accept' });
    }
    await run;
  }

  /**
   * A first install of alice's that another instance runs (its row still `installing`), and one
   * run of status correction whose list the app service holds until `end` has committed (the
   * install's end, written the way that instance writes it, completed at `completedAt`, else as it
   * commits); the list then answers with `listed` added, as it stood when it was asked for.
   * Returns the install's task id.
   */
  async function runWhileInstallEnds(appName: string, end: { completedAt?: Date; reported: Date }, listed: unknown[]) {
    await seed(db).user('alice').app({ appName, state: 'installing' });
    await db.appState.updateMany({ where: { userId: 'alice', appName }, data: { eventTime: ago(10 * SECOND) } });
    const { taskId } = await runningTask(db, 'alice', appName, 'INSTALL', ago(5 * SECOND));
    await runWhileListHeld(async () => {
      // The running report, then the task's end (its version on the row), committed after the list was asked for.
      const data = { state: 'running', eventTime: end.reported, installedVersion: '1.0.0' };
      await db.appState.updateMany({ where: { userId: 'alice', appName }, data });
      await db.task.update({
        where: { taskId },
        data: { status: 'COMPLETED', activeKey: null, progress: 100, completedAt: end.completedAt ?? new Date() },
      });
      fake.apps.push(...listed);
    });
    return taskId;
  }

  test('an install that ends while the list is asked for, in a list from before its end, is not removed', async () => {
    const removed = correction().status().corrections.removed;
    // Its completion time stamped before the run began, and committed after the list was asked for
    // (on another instance, whose transaction waited), so that run finds no task of the app ended since.
    const end = { completedAt: ago(SECOND), reported: ago(2 * SECOND) };
    // Another app listed: a list with no app at all would remove nothing anyway (withholdMassRemovals).
    await runWhileInstallEnds('photoprism', end, [application('alice', 'bystander', 'running', ago(60 * SECOND))]);

    const filter = { appName: 'photoprism' };
    const { apps } = dataOf(await execute(server, AppsQuery, { filter, first: 5 }, { token: TOKENS.alice }));
    expect(apps.edges.map((edge) => edge.node)).toMatchObject([{ stage: 'RUNNING', installedVersion: '1.0.0' }]);
    expect(await systemRecords('alice', 'photoprism')).toEqual([]);
    expect(correction().status().corrections.removed).toBe(removed);
  });

  test('an install that ends on its own report while the list is asked for is not said to be completed by status correction', async () => {
    const completed = correction().status().corrections.tasksCompleted;
    // The list shows the app running as its report did, after the task's start: the install's end.
    const end = { reported: ago(SECOND) };
    const listed = application('alice', 'self-ended', 'running', end.reported);
    const taskId = await runWhileInstallEnds('self-ended', end, [listed]);

    const task = await db.task.findUnique({ where: { taskId } });
    expect(task).toMatchObject({ status: 'COMPLETED', result: null });
    expect(await systemRecords('alice', 'self-ended')).toEqual([]);
    expect(correction().status().corrections.tasksCompleted).toBe(completed);
  });

  test('an app whose failed first install is retried while the list is asked for is not corrected from that list', async () => {
    const appName = 'retried-app';
    await seed(db).catalogApp({ name: appName, versions: ['2.0.0'] });
    await seed(db).user('alice').app({ appName, state: 'installFailed' });
    await db.appState.updateMany({ where: { userId: 'alice', appName }, data: { eventTime: ago(10 * SECOND) } });
    // Listed running, later than the failure and before the retry: read without a task, the row
    // would take that state and version, under the install now running.
    const listed = application('alice', appName, 'running', ago(SECOND), {
      settings: { market_source: SOURCE, version: '1.0.0', title: 'Retried' },
    });
    fake.setBehaviour('install', { respond: 'accept', opId: 'op-retried' }, 1);
    let taskId = '';
    try {
      await runWhileListHeld(async () => {
        taskId = await installThroughApi(server, { appName, version: '2.0.0' }, TOKENS.alice);
        fake.apps.push(listed);
      });
      const filter = { appName };
      const { apps } = dataOf(await execute(server, AppsQuery, { filter, first: 5 }, { token: TOKENS.alice }));
      expect(apps.edges.map((edge) => edge.node)).toMatchObject([{ state: 'installFailed', installedVersion: null }]);
      expect(await systemRecords('alice', appName)).toEqual([]);
      const task = await db.task.findUnique({ where: { taskId } });
      expect(task?.status).toMatch(/^(PENDING|RUNNING)$/);
      expect(task?.result).not.toMatchObject({ correctedBy: expect.anything() });

      // The retry ends on its own report, at its own version.
      await waitFor(async () => ((await db.task.findUnique({ where: { taskId } }))?.opId ? true : undefined), 'op id');
      const event = { name: appName, user: 'alice', marketSource: SOURCE, state: 'running', opID: 'op-retried' };
      expect(
        await sendEvent(`${server.url}/events/app-state`, SECRET, { ...event, createTime: new Date().toISOString() }),
      ).toBe(202);
      expect(await db.task.findUnique({ where: { taskId } })).toMatchObject({ status: 'COMPLETED' });
      expect(await rowOf('alice', appName)).toMatchObject({ state: 'running', installedVersion: '2.0.0' });
    } finally {
      if (fake.apps.includes(listed)) fake.apps.splice(fake.apps.indexOf(listed), 1);
      await db.task.deleteMany({ where: { userId: 'alice', appName } });
      await db.appState.deleteMany({ where: { userId: 'alice', appName } });
    }
  });

  test('requests are answered while a run makes many corrections', async () => {
    const crowd = Array.from({ length: 400 }, (_, i) => application('carol', `crowd-${i}`, 'running', ago(SECOND)));
    fake.apps.push(...crowd);
    let ended = false;
    const run = correction()
      .run()
      .finally(() => {
        ended = true;
      });
    try {
      await waitFor(async () => ((await rowOf('carol', 'crowd-0')) ? true : undefined), 'the first app to appear');
      // On SQLite every statement completes at once: a run that never let requests in answered
      // this one only after its last correction (2,000 apps: /health took 40 s).
      const health = await fetch(`${server.url}/health`);
      expect(health.status).toBe(200);
      expect(ended).toBe(false);
    } finally {
      await run;
      fake.apps.splice(fake.apps.indexOf(crowd[0] as (typeof crowd)[number]), crowd.length);
      await db.appState.deleteMany({ where: { userId: 'carol', appName: { startsWith: 'crowd-' } } });
    }
  });

  test('an installed app the app service reports uninstalled, with no task of ours, is removed with a system record', async () => {
    await seed(db).user('alice').app({ appName: 'gone-by-event', state: 'running', sourceId: SOURCE });
    const intake = `${server.url}/events/app-state`;
    const event = {
      name: 'gone-by-event',
      user: 'alice',
      marketSource: SOURCE,
      state: 'uninstalled',
      opID: 'op-elsewhere',
    };
    expect(await sendEvent(intake, SECRET, { ...event, createTime: new Date().toISOString() })).toBe(202);
    expect(await rowOf('alice', 'gone-by-event')).toBeNull();
    expect((await systemRecords('alice', 'gone-by-event')).map((r) => r.message)).toEqual([
      'gone-by-event was uninstalled on the app service',
    ]);
    // A report of before the removal, late or sent again (after a 503), does not bring the app back…
    const running = (at: number) => ({ ...event, state: 'running', createTime: new Date(at).toISOString() });
    expect(await sendEvent(intake, SECRET, running(Date.now() - 60_000))).toBe(202);
    expect(await rowOf('alice', 'gone-by-event')).toBeNull();
    // …nor after a status correction's removal; one of after it (installed again there) does.
    await seed(db).user('alice').app({ appName: 'gone-by-list', state: 'running', sourceId: SOURCE });
    // A list with an app in it: an empty one removes nothing (withholdMassRemovals).
    const listed = application('erin', 'still-listed', 'running', new Date());
    fake.apps.push(listed);
    try {
      await correction().run();
    } finally {
      fake.apps.splice(fake.apps.indexOf(listed), 1);
    }
    expect(await rowOf('alice', 'gone-by-list')).toBeNull();
    const late = { ...event, name: 'gone-by-list', state: 'running' };
    expect(await sendEvent(intake, SECRET, { ...late, createTime: new Date(Date.now() - 60_000).toISOString() })).toBe(
      202,
    );
    expect(await rowOf('alice', 'gone-by-list')).toBeNull();
    expect(await sendEvent(intake, SECRET, running(Date.now() + 1_000))).toBe(202);
    expect(await rowOf('alice', 'gone-by-event')).toMatchObject({ state: 'running' });
  });

  test('list items the event intake would refuse are skipped and logged, and the rest of the list is still corrected', async () => {
    const now = new Date();
    const refused = [
      application('carol', 'bad\u0000app', 'running', now), // PostgreSQL cannot store it
      application('carol', 'n'.repeat(3_000), 'running', now),
      application('system', 'owned-by-system', 'running', now), // the server's own user id
      application('carol', 'long-state', 's'.repeat(3_000), now),
    ];
    await correction().run();
    const before = correction().status().unreadableApps; // items earlier tests left in the list
    fake.apps.push(...refused, application('dave', 'later-app', 'running', now));
    try {
      await correction().run();
      await correction().run(); // and again: a bad item never stops a run
      expect(await rowOf('dave', 'later-app')).toMatchObject({ state: 'running' });
      expect(await db.appState.count({ where: { userId: { in: ['carol', 'system'] } } })).toBe(0);
      expect(correction().status()).toMatchObject({
        unreadableApps: before + 4,
        failedCorrections: 0,
        lastError: null,
      });
      const skipped = server.logs.filter((line) => line.includes('skipping an app the app service listed'));
      expect(skipped.some((line) => line.includes('must not contain U+0000'))).toBe(true);
      expect(skipped.some((line) => line.includes('reserves'))).toBe(true);
    } finally {
      fake.apps.splice(0, fake.apps.length, ...fake.apps.filter((app) => !(refused as unknown[]).includes(app)));
    }
  });

  test.skipIf(kind !== 'postgresql')(
    'a correction its database refuses is logged and counted, and the others of the run are made',
    async () => {
      // A real refusal by the database, for one app only: a trigger (PostgreSQL; dropped after).
      await db.$executeRawUnsafe(`CREATE FUNCTION refuse_poisoned() RETURNS trigger AS $$
        BEGIN IF NEW."appName" = 'poisoned' THEN RAISE EXCEPTION 'refused by the test trigger'; END IF; RETURN NEW; END
        $$ LANGUAGE plpgsql`);
      await db.$executeRawUnsafe(
        'CREATE TRIGGER refuse_poisoned BEFORE INSERT OR UPDATE ON "AppState" FOR EACH ROW EXECUTE FUNCTION refuse_poisoned()',
      );
      const now = new Date();
      const poisoned = application('frank', 'poisoned', 'running', now);
      fake.apps.push(poisoned, application('frank', 'neighbour', 'running', now));
      try {
        await correction().run();
        expect(await rowOf('frank', 'neighbour')).toMatchObject({ state: 'running' });
        expect(await rowOf('frank', 'poisoned')).toBeNull();
        const { failedCorrections, lastError } = correction().status();
        expect(failedCorrections).toBe(1);
        expect(lastError).toMatch(/^1 of \d+ corrections failed, the first: appeared of poisoned \(frank\): /);
        expect(server.logs.some((line) => line.includes('a correction failed'))).toBe(true);
      } finally {
        await db.$executeRawUnsafe('DROP TRIGGER refuse_poisoned ON "AppState"');
        await db.$executeRawUnsafe('DROP FUNCTION refuse_poisoned');
        fake.apps.splice(fake.apps.indexOf(poisoned), 1);
      }
      await correction().run();
      expect(correction().status()).toMatchObject({ failedCorrections: 0, lastError: null });
    },
  );

  test("a time from the future is taken as the time of receipt: the app's later reports still count", async () => {
    const intake = `${server.url}/events/app-state`;
    // A listed state from a clock in 2999, then a report of now.
    fake.apps.push(application('erin', 'jellyfin', 'stopped', new Date('2999-01-01T00:00:00Z')));
    await correction().run();
    expect((await rowOf('erin', 'jellyfin'))?.eventTime.getTime()).toBeLessThanOrEqual(Date.now());
    const running = { name: 'jellyfin', user: 'erin', marketSource: SOURCE, state: 'running' };
    expect(await sendEvent(intake, SECRET, { ...running, createTime: new Date().toISOString() })).toBe(202);
    expect(await rowOf('erin', 'jellyfin')).toMatchObject({ state: 'running' });
    // The same through the intake: a report from 9999, then one of now.
    const future = { name: 'immich', user: 'erin', marketSource: SOURCE, state: 'stopped' };
    expect(await sendEvent(intake, SECRET, { ...future, createTime: '9999-12-31T23:59:59Z' })).toBe(202);
    expect(await sendEvent(intake, SECRET, { ...future, state: 'running', createTime: new Date().toISOString() })).toBe(
      202,
    );
    expect(await rowOf('erin', 'immich')).toMatchObject({ state: 'running' });
    // A clock a little ahead (within a minute) keeps its times: reports of one app stay in their order.
    const ahead = new Date(Date.now() + 30 * SECOND);
    expect(await sendEvent(intake, SECRET, { ...future, state: 'stopping', createTime: ahead.toISOString() })).toBe(
      202,
    );
    expect((await rowOf('erin', 'immich'))?.eventTime.getTime()).toBe(ahead.getTime());
  });

  test('a list of which no item can be read is a failure of status correction, not a quiet run', async () => {
    await correction().run();
    const before = correction().status().unreadableApps; // items earlier tests left in the list
    const listing = fake.apps.splice(0, fake.apps.length, 1, null, 'x', { spec: 'not an app' });
    try {
      await correction().run();
      expect(correction().status()).toMatchObject({
        listedApps: 0,
        unreadableApps: 4,
        lastError: 'none of the 4 apps the app service listed could be read',
      });
    } finally {
      fake.apps.splice(0, fake.apps.length, ...listing);
    }
    await correction().run();
    expect(correction().status()).toMatchObject({ unreadableApps: before, lastError: null });
  });

  test('the status_correction component shows its checks and corrections, and an app service that fails', async () => {
    const componentOf = async () => {
      const { runtimeSnapshot } = dataOf(await execute(server, RuntimeSnapshotQuery, {}, { token: TOKENS.ops }));
      return runtimeSnapshot.components.find((component) => component.name === 'status_correction');
    };
    const checks = correction().status().checks;
    const healthy = await waitFor(async () => {
      const component = await componentOf();
      return (component?.metrics as { checks?: number } | undefined)?.checks === checks ? component : undefined;
    }, 'the component with the latest figures');
    expect(healthy).toMatchObject({ state: 'RUNNING', healthy: true });
    expect(healthy.metrics).toMatchObject({
      intervalMs: 3_600_000,
      lastError: null,
      middlewares: 'listed',
      corrections: { appeared: expect.any(Number), removed: expect.any(Number), corrected: expect.any(Number) },
    });
    expect((healthy.metrics as { corrections: { removed: number } }).corrections.removed).toBeGreaterThan(0);

    fake.setBehaviour('listApps', { respond: 'http-error', status: 503 });
    try {
      await expect(correction().run()).rejects.toThrow(/503/);
      const failing = await waitFor(async () => {
        const component = await componentOf();
        return component?.state === 'ERROR' ? component : undefined;
      }, 'the component to show the failure');
      expect(failing.message).toMatch(/app service failed on listing of all apps/);
      expect((failing.metrics as { checks: number }).checks).toBe(checks + 1);
    } finally {
      fake.setBehaviour('listApps', { respond: 'accept' });
    }
  });
});

describe.each(databases)('status correction the server runs by itself on %s', (kind) => {
  /** A server over the fake app service, its state rows seeded before it starts; no run() by hand here. */
  const start = (fake: FakeAppService, env: Record<string, string>, preseedApps: string[] = []) =>
    startSeededServer(kind, {
      env: {
        ...AUTH_ENV,
        APP_SERVICE_URL: fake.url,
        APP_SERVICE_EVENT_SECRET: SECRET,
        APP_SERVICE_TIMEOUT_MS: '2000',
        TASK_LEASE_MS: '600000',
        COLLECT_INTERVAL_MS: '100',
        ...env,
      },
      preseed: async (seeder) => {
        await seeder.remoteSource();
        for (const appName of preseedApps) await seeder.user('alice').app({ appName, state: 'running' });
      },
    });

  /** alice's apps and her `system` history records, as she reads them. */
  const seenByAlice = async (server: TestServer) => {
    const { apps } = dataOf(await execute(server, AppsQuery, { first: 50 }, { token: TOKENS.alice }));
    const { history } = dataOf(
      await execute(server, HistoryQuery, { filter: { type: ['system'] }, first: 50 }, { token: TOKENS.alice }),
    );
    return { apps: apps.edges.map((edge) => edge.node), records: history.edges.map((edge) => edge.node) };
  };
  /** Waits until alice's apps are exactly `appNames` and she has `records` system records. */
  const untilSeen = (server: TestServer, appNames: string[], records: number, what: string) =>
    waitFor(async () => {
      const seen = await seenByAlice(server);
      const names = seen.apps.map((app) => app.appName).sort();
      return JSON.stringify(names) === JSON.stringify(appNames) && seen.records.length === records ? seen : undefined;
    }, what);

  test('at start, before anyone asks, a stored app the app service no longer lists is removed and a listed one without a row appears, each with its system record', async () => {
    const fake = await startFakeAppService({
      apps: [application('alice', 'arrived-app', 'running', ago(60 * SECOND))],
    });
    let server: TestServer | undefined;
    try {
      // The periodic run is an hour away (startTestServer's default pace): only the run at start can repair.
      ({ server } = await start(fake, {}, ['vanished-app']));
      const seen = await untilSeen(server, ['arrived-app'], 2, 'the repair of the correction at start');
      expect(seen.apps).toEqual([
        expect.objectContaining({ userId: 'alice', sourceId: SOURCE, appName: 'arrived-app', state: 'running' }),
      ]);
      expect(seen.records.map((record) => [record.app, record.message, record.userId]).sort()).toEqual([
        ['arrived-app', 'arrived-app appeared on the app service (running)', 'alice'],
        ['vanished-app', 'vanished-app is gone from the app service: removed (last state running)', 'alice'],
      ]);
      expect(seen.records.map((record) => (record.extended as { correction?: string }).correction).sort()).toEqual([
        'appeared',
        'removed',
      ]);
    } finally {
      await server?.stop();
      await fake.stop();
    }
  });

  test('every STATUS_CORRECTION_INTERVAL_MS the server compares again: a list changed after start is corrected without being asked', async () => {
    const fake = await startFakeAppService({ apps: [application('alice', 'first-app', 'running', ago(60 * SECOND))] });
    let server: TestServer | undefined;
    try {
      ({ server } = await start(fake, { STATUS_CORRECTION_INTERVAL_MS: '200' }));
      await untilSeen(server, ['first-app'], 1, 'the first list applied');
      // The app service's list changes after start: first-app went away, second-app came.
      fake.apps.splice(0, fake.apps.length, application('alice', 'second-app', 'stopped', ago(SECOND)));
      const seen = await untilSeen(server, ['second-app'], 3, 'the changed list applied by a later run');
      expect(seen.apps).toEqual([expect.objectContaining({ appName: 'second-app', state: 'stopped' })]);
      expect(seen.records.map((record) => record.message).sort()).toEqual([
        'first-app appeared on the app service (running)',
        'first-app is gone from the app service: removed (last state running)',
        'second-app appeared on the app service (stopped)',
      ]);
      // The status_correction component reports the pace and the runs (its figures are sampled: waited for).
      const running = server;
      const metrics = await waitFor(async () => {
        const { runtimeSnapshot } = dataOf(await execute(running, RuntimeSnapshotQuery, {}, { token: TOKENS.ops }));
        const component = runtimeSnapshot.components.find((c) => c.name === 'status_correction');
        const figures = component?.metrics as { checks?: number } | undefined;
        return (figures?.checks ?? 0) >= 2 ? figures : undefined;
      }, 'the component reporting more than the run at start');
      expect(metrics).toMatchObject({ intervalMs: 200, lastError: null });
    } finally {
      await server?.stop();
      await fake.stop();
    }
  });
});

describe('status correction with the simulated app service', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(databases[0] ?? 'sqlite', { env: { ...AUTH_ENV } });
  });
  afterAll(() => server?.stop());

  test('the correction at start leaves the demo apps alone', async () => {
    const correction = server.app.services.statusCorrection;
    const before = await server.app.db.appState.findMany({ orderBy: { id: 'asc' } });
    await waitFor(async () => (correction.status().checks >= 1 ? true : undefined), 'the correction at start');
    await correction.run();
    expect(correction.status()).toMatchObject({ lastError: null, corrections: { appeared: 0, removed: 0 } });
    const after = await server.app.db.appState.findMany({ orderBy: { id: 'asc' } });
    expect(after.map((row) => [row.userId, row.appName, row.state])).toEqual(
      before.map((row) => [row.userId, row.appName, row.state]),
    );
    expect(before.length).toBeGreaterThan(0);
  });
});

describe('what a comparison corrects (correction-rules.ts)', () => {
  const T = new Date('2026-11-22T10:00:00Z');
  const at = (seconds: number) => new Date(T.getTime() + seconds * SECOND);
  const row = (appName: string, state: string, eventTime: Date, extra: Partial<AppRow> = {}): AppRow => ({
    id: Math.floor(Math.random() * 1e9),
    userId: 'alice',
    sourceId: SOURCE,
    appName,
    rawAppName: null,
    title: null,
    cfgType: 'app',
    installedVersion: '1.0.0',
    targetVersion: null,
    state,
    reason: null,
    message: null,
    progress: null,
    opType: null,
    opId: null,
    eventTime,
    entrances: null,
    createdAt: eventTime,
    updatedAt: eventTime,
    ...extra,
  });
  const listedApp = (appName: string, state: string, createTime: Date, extra: Partial<AppStateEvent> = {}) => ({
    userId: 'alice',
    sourceId: SOURCE,
    appName,
    state,
    createTime,
    ...extra,
  });
  const task = (appName: string, extra: Partial<TaskRow> = {}): TaskRow =>
    ({
      taskId: `t-${appName}`,
      type: 'INSTALL',
      status: 'RUNNING',
      userId: 'alice',
      sourceId: SOURCE,
      appName,
      activeKey: appKeyString({ userId: 'alice', sourceId: SOURCE, appName }),
      opId: 'op-1',
      startedAt: at(0),
      dispatchedAt: at(0),
      ...extra,
    }) as TaskRow;
  /** planCorrections with nothing listed, stored or active, at 600 s, unless `input` says otherwise. */
  const planFor = (input: Partial<Parameters<typeof planCorrections>[0]>) =>
    planCorrections({
      listed: [],
      middlewares: [],
      rows: [],
      active: [],
      requestedAt: at(600),
      systemNames: new Set(),
      minTaskAgeMs: 30_000,
      ...input,
    });
  const plan = (input: Partial<Parameters<typeof planCorrections>[0]>) =>
    planFor(input).map(
      (c) => `${c.kind}:${'row' in c ? c.row.sourceId : 'task' in c ? c.task.appName : c.listed.appName}`,
    );

  test('of two rows of one app in two sources, only the listed source is corrected and neither is removed', () => {
    expect(
      plan({
        listed: [listedApp('wiki', 'running', at(10), { sourceId: 'upload' })],
        rows: [row('wiki', 'stopped', at(0)), row('wiki', 'stopped', at(0), { sourceId: 'upload' })],
      }),
    ).toEqual(['corrected:upload']);
  });

  test('the same state and entrances listed later change nothing; other entrances do', () => {
    const entrance = {
      name: 'web',
      title: null,
      url: 'w.alice.olares.com',
      state: 'running',
      authLevel: null,
      icon: null,
      openMethod: null,
      invisible: false,
      shared: false,
    };
    const stored = row('wiki', 'running', at(0), { entrances: [entrance] });
    expect(plan({ listed: [listedApp('wiki', 'running', at(10), { entrances: [entrance] })], rows: [stored] })).toEqual(
      [],
    );
    const moved = { ...entrance, url: 'elsewhere.alice.olares.com' };
    expect(plan({ listed: [listedApp('wiki', 'running', at(10), { entrances: [moved] })], rows: [stored] })).toEqual([
      'corrected:market.olares',
    ]);
  });

  test('at the time of the stored state, only a failure this server wrote gives way to another listed state at rest', () => {
    const failed = row('wiki', 'upgradeFailed', at(0));
    const corrections = (listed: AppStateEvent, rows = [failed], active: TaskRow[] = []) =>
      planFor({ listed: [listed], rows, active });
    expect(corrections(listedApp('wiki', 'running', at(0), { listedVersion: '1.0.0' }))).toEqual([
      expect.objectContaining({ kind: 'corrected', ownState: 'upgradeFailed', takesVersion: false }),
    ]);
    expect(corrections(listedApp('wiki', 'running', at(0), { listedVersion: '2.0.0' }))).toEqual([
      expect.objectContaining({ kind: 'corrected', ownState: 'upgradeFailed', takesVersion: true }),
    ]);
    // Older lists never win; a step under way proves nothing; nor while a task of the app is active.
    expect(corrections(listedApp('wiki', 'running', at(-1)))).toEqual([]);
    expect(corrections(listedApp('wiki', 'stopping', at(0)))).toEqual([]);
    expect(
      corrections(
        listedApp('wiki', 'running', at(0)),
        [failed],
        [task('wiki', { type: 'UPGRADE', startedAt: at(1), dispatchedAt: at(1) })],
      ),
    ).toEqual([]);
    // A state at its time that is not a failure stays as it is: the list is no later than it.
    expect(corrections(listedApp('wiki', 'running', at(0)), [row('wiki', 'stopped', at(0))])).toEqual([]);
  });

  test('another listed version at rest, later than the stored state or over its own failure, with no task active, is taken', () => {
    const running = row('wiki', 'running', at(0));
    const corrections = (listed: AppStateEvent, rows = [running], active: TaskRow[] = []) =>
      planFor({ listed: [listed], rows, active });
    const v2 = { listedVersion: '2.0.0' };
    const taken = [expect.objectContaining({ kind: 'corrected', takesVersion: true, ownState: null })];
    // Later, or at the time of a failure of its own; not at the time of the state the row holds,
    // whose version may lag its state (a completed upgrade would go back to the old version).
    expect(corrections(listedApp('wiki', 'running', at(5), v2))).toEqual(taken);
    expect(corrections(listedApp('wiki', 'running', at(0), v2))).toEqual([]);
    expect(corrections(listedApp('wiki', 'running', at(5), v2), [row('wiki', 'upgradeFailed', at(0))])).toEqual(taken);
    expect(corrections(listedApp('wiki', 'running', at(0), v2), [row('wiki', 'upgradeFailed', at(0))])).toEqual([
      expect.objectContaining({ kind: 'corrected', takesVersion: true, ownState: 'upgradeFailed' }),
    ]);
    // The same version is nothing to correct; an older list never wins; a step under way proves
    // nothing; another state at the same time is no later report; an active task decides.
    expect(corrections(listedApp('wiki', 'running', at(5), { listedVersion: '1.0.0' }))).toEqual([]);
    expect(corrections(listedApp('wiki', 'running', at(-1), v2))).toEqual([]);
    expect(corrections(listedApp('wiki', 'upgrading', at(0), v2))).toEqual([]);
    expect(corrections(listedApp('wiki', 'running', at(0), v2), [row('wiki', 'stopped', at(0))])).toEqual([]);
    const upgrade = task('wiki', { type: 'UPGRADE', startedAt: at(10), dispatchedAt: at(10) });
    expect(corrections(listedApp('wiki', 'running', at(5), v2), [running], [upgrade])).toEqual([]);
  });

  test('a task is not completed for another operation, nor before it was sent', () => {
    const rows = [row('wiki', 'installing', at(0))];
    const listed = [listedApp('wiki', 'running', at(100), { opId: 'op-2' })];
    expect(plan({ listed, rows, active: [task('wiki')] })).toEqual(['corrected:market.olares']);
    const unsent = task('wiki', { dispatchedAt: null, opId: null });
    expect(plan({ listed: [listedApp('wiki', 'running', at(100))], rows, active: [unsent] })).toEqual([
      'corrected:market.olares',
    ]);
  });

  test('an unreadable list item keeps the apps it may be; a list that would remove most apps removes none', () => {
    const rows = [row('wiki', 'running', at(0)), row('blog', 'running', at(0))];
    expect(plan({ rows, unreadable: [{ userId: 'alice', appName: 'wiki' }] })).toEqual(['removed:market.olares']);
    expect(plan({ rows, unreadable: [{ userId: 'alice', appName: null }] })).toEqual([]);
    expect(plan({ rows, unreadable: [{ userId: 'bob', appName: null }] })).toHaveLength(2);

    const stored = Array.from({ length: 12 }, (_, i) => row(`app-${i}`, 'running', at(0)));
    const listed = stored.slice(0, 5).map((r) => listedApp(r.appName, 'running', at(0)));
    const planned = planFor({ listed, rows: stored });
    const counts = { all: listed.length, market: listed.length };
    expect(withholdMassRemovals(planned, counts, stored.length)).toMatchObject({
      corrections: [],
      withheld: 7,
      why: 'the list would remove 7 of the 12 stored apps',
    });
    // Half of them, or only a handful, are removed as listed.
    expect(withholdMassRemovals(planned.slice(0, 6), counts, stored.length).withheld).toBe(0);
    expect(withholdMassRemovals(planned.slice(0, 5), { all: 1, market: 1 }, 6).withheld).toBe(0);
    // A list of system apps only is as empty, but for one app gone (the last, uninstalled outside).
    expect(withholdMassRemovals(planned.slice(0, 2), { all: 3, market: 0 }, 2).why).toBe(
      'the app service listed only system apps while 2 are stored',
    );
    expect(withholdMassRemovals(planned.slice(0, 1), { all: 3, market: 0 }, 1).withheld).toBe(0);
  });

  test('no app appears from a transitional state, nor when its task ended after the list was asked for', () => {
    for (const state of ['pending', 'downloading', 'installing', 'uninstalling', 'stopping', 'installingCanceling'])
      expect(plan({ listed: [listedApp('wiki', state, at(10))] })).toEqual([]);
    expect(plan({ listed: [listedApp('wiki', 'running', at(10))] })).toEqual(['appeared:wiki']);
    expect(plan({ listed: [listedApp('wiki', 'stopped', at(10))] })).toEqual(['appeared:wiki']);
    const ended = new Set([appKeyString({ userId: 'alice', sourceId: SOURCE, appName: 'wiki' })]);
    expect(plan({ listed: [listedApp('wiki', 'running', at(10))], endedSinceRequest: ended })).toEqual([]);
  });

  test('an Application resource is read with its system flag and its declared entrances in their listed state', () => {
    const read = readListedApp({
      spec: {
        name: 'desktop',
        owner: 'alice',
        settings: { system_service: 'true' },
        entrances: [{ name: 'desktop', url: 'desktop.alice.olares.com', openMethod: 'default' }],
      },
      status: {
        state: 'running',
        statusTime: '2026-11-22T10:00:00Z',
        entranceStatuses: [{ name: 'desktop', state: 'running' }],
      },
    });
    expect(read).toMatchObject({
      appName: 'desktop',
      userId: 'alice',
      system: true,
      entrances: [
        { name: 'desktop', url: 'desktop.alice.olares.com', state: 'running', openMethod: 'default', shared: false },
      ],
    });
  });
});

describe('the bounds of a listed app, as a state event has them', () => {
  const fine = { name: 'n', user: 'u', state: 'running', marketSource: 'm', rawAppName: 'r', opID: 'o', opType: 't' };
  test.each([
    ['name', 128],
    ['user', 128],
    ['state', 64],
    ['marketSource', 128],
    ['rawAppName', 128],
    ['opID', 128],
    ['opType', 64],
  ] as const)('%s: at %i characters it is read, one more, with U+0000, or missing when required, not', (field, max) => {
    expect(listedIdentityProblem({ ...fine, [field]: 'x'.repeat(max) })).toBeNull();
    expect(listedIdentityProblem({ ...fine, [field]: 'x'.repeat(max + 1) })).toBe(
      `${field} must be at most ${max} characters`,
    );
    expect(listedIdentityProblem({ ...fine, [field]: 'a\u0000b' })).toBe(`${field} must not contain U+0000`);
    const required = field === 'name' || field === 'user' || field === 'state';
    expect(listedIdentityProblem({ ...fine, [field]: null }) === null).toBe(!required);
  });

  test('the user the server writes its own records under is no app service user', () => {
    expect(listedIdentityProblem({ ...fine, user: 'system' })).toBe('user names a user id the server reserves');
  });
});
