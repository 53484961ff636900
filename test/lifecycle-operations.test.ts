import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { graphql } from './gql/index.js';
import { availableDatabases } from './support/databases.js';
import {
  CancelTaskMutation,
  HistoryQuery,
  InstallAppMutation,
  UninstallAppMutation,
  UpgradeAppMutation,
} from './support/operations.js';
import { REMOTE_SOURCE, type Seeder, startSeededServer } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, type TestServer, TOKENS, waitFor } from './support/server.js';

const databases = await availableDatabases();
const SOURCE = REMOTE_SOURCE;

const StopAppMutation = graphql(`
  mutation StopApp($input: StopAppInput!) {
    stopApp(input: $input) {
      __typename
      ... on StopAppSuccess { task { taskId type status version app { stage state } } }
      ... on Error { code message }
    }
  }
`);

const ResumeAppMutation = graphql(`
  mutation ResumeApp($input: ResumeAppInput!) {
    resumeApp(input: $input) {
      __typename
      ... on ResumeAppSuccess { task { taskId type status version app { stage state } } }
      ... on Error { code message }
    }
  }
`);

const ResumeAppTwiceReadMutation = graphql(`
  mutation ResumeAppTwiceRead($input: ResumeAppInput!) {
    resumeApp(input: $input) {
      __typename
      ... on ResumeAppSuccess {
        task { id status startedAt app { stage activeTask { id status startedAt } } }
      }
      ... on Error { code message }
    }
  }
`);

const LifecycleTaskQuery = graphql(`
  query LifecycleTask($taskId: String!) {
    task(taskId: $taskId) {
      taskId type status progress error opId result
      app { appName stage health state installedVersion }
    }
  }
`);

const RetryLifecycleTaskMutation = graphql(`
  mutation RetryLifecycleTask($input: RetryTaskInput!) {
    retryTask(input: $input) {
      __typename
      ... on RetryTaskSuccess { task { taskId type status retryOfTaskId } }
      ... on Error { code message }
    }
  }
`);

describe.each(databases)('stopping and resuming apps on %s (simulated app service)', (kind) => {
  let server: TestServer;
  let seed: Seeder;
  beforeAll(async () => {
    ({ server, seed } = await startSeededServer(kind, {
      // A step of a second: each stop and resume is seen in its transitional stage before it ends.
      env: { ...AUTH_ENV, SIMULATED_STEP_MS: '1000', SIMULATED_FAIL_APPS: 'brittle-*' },
      preseed: async (seed) => {
        await seed.remoteSource();
        // Stored before the server starts: the simulated cluster adopts it.
        await seed.catalogApp({ name: 'kavita', versions: ['0.8.4'] });
        await seed.user('bob').app({ appName: 'kavita', state: 'running', version: '0.8.4' });
      },
    }));
  });
  afterAll(() => server?.stop());

  const taskOf = async (taskId: string) =>
    dataOf(await execute(server, LifecycleTaskQuery, { taskId }, { token: TOKENS.ops })).task;

  /** Waits until the task satisfies `done` and returns it. */
  const waitForTask = (
    taskId: string,
    what: string,
    done: (task: NonNullable<Awaited<ReturnType<typeof taskOf>>>) => boolean,
  ) =>
    waitFor(async () => {
      const task = await taskOf(taskId);
      return task && done(task) ? task : undefined;
    }, `task ${taskId}: ${what}`);

  const stop = async (appName: string, token: string = TOKENS.alice) =>
    dataOf(await execute(server, StopAppMutation, { input: { sourceId: SOURCE, appName } }, { token })).stopApp;
  const resume = async (appName: string, token: string = TOKENS.alice) =>
    dataOf(await execute(server, ResumeAppMutation, { input: { sourceId: SOURCE, appName } }, { token })).resumeApp;

  test('stopApp stops a running app: STOPPING while its task runs, then COMPLETED and STOPPED; resumeApp brings it back through RESUMING to RUNNING', async () => {
    await seed.catalogApp({ name: 'vaultwarden', versions: ['1.32.5'] });
    await seed.user('alice').app({ appName: 'vaultwarden', state: 'running', version: '1.32.5' });

    const stopped = await stop('vaultwarden');
    if (stopped.__typename !== 'StopAppSuccess') throw new Error(`stop refused: ${JSON.stringify(stopped)}`);
    // PENDING, or RUNNING if the engine started it before the answer read it again (loaders.showTask).
    expect(stopped.task).toMatchObject({
      type: 'STOP',
      status: expect.stringMatching(/^(PENDING|RUNNING)$/),
      version: '1.32.5',
    });
    expect(stopped.task.app?.stage).toBe('STOPPING');

    // The task and its app are read one after the other: wait until both show the first step.
    const stopping = await waitForTask(
      stopped.task.taskId,
      'running, app stopping',
      // The op id is written once the app service accepted the stop; its first report may come sooner.
      (t) => t.status === 'RUNNING' && t.progress === 50 && t.app?.state === 'stopping' && t.opId !== null,
    );
    expect(stopping.app?.stage).toBe('STOPPING');
    expect(stopping.opId).toMatch(/^sim-/);

    const stopDone = await waitForTask(stopped.task.taskId, 'completed', (t) => t.status === 'COMPLETED');
    expect(stopDone).toMatchObject({
      progress: 100,
      error: null,
      app: { stage: 'STOPPED', state: 'stopped', installedVersion: '1.32.5' },
    });
    expect(stopDone.result).toMatchObject({
      operation: 'stop',
      app_name: 'vaultwarden',
      user: 'alice',
      source: SOURCE,
      opID: stopDone.opId,
      status: 'success',
      backend_response: { code: 200, message: 'success', data: { opID: stopDone.opId } },
    });

    const resumed = await resume('vaultwarden');
    if (resumed.__typename !== 'ResumeAppSuccess') throw new Error(`resume refused: ${JSON.stringify(resumed)}`);
    expect(resumed.task).toMatchObject({
      type: 'RESUME',
      status: expect.stringMatching(/^(PENDING|RUNNING)$/),
      app: { stage: 'RESUMING' },
    });
    const resuming = await waitForTask(
      resumed.task.taskId,
      'running, app resuming',
      (t) => t.status === 'RUNNING' && t.progress === 50 && t.app?.state === 'resuming',
    );
    expect(resuming.app?.stage).toBe('RESUMING');
    const resumeDone = await waitForTask(resumed.task.taskId, 'completed', (t) => t.status === 'COMPLETED');
    expect(resumeDone).toMatchObject({ app: { stage: 'RUNNING', health: 'HEALTHY', state: 'running' } });
    expect(resumeDone.result).toMatchObject({ operation: 'resume', status: 'success', opID: resumeDone.opId });

    // Each operation is in the history: asked for, then ended, with its task.
    const { history } = dataOf(
      await execute(server, HistoryQuery, { filter: { app: 'vaultwarden' }, first: 20 }, { token: TOKENS.alice }),
    );
    const records = history.edges.map(({ node }) => ({
      type: node.type,
      message: node.message,
      taskId: (node.extended as { taskId?: string } | null)?.taskId,
    }));
    expect(records).toEqual(
      expect.arrayContaining([
        { type: 'action', message: 'stop vaultwarden', taskId: stopped.task.taskId },
        { type: 'system', message: 'stop vaultwarden completed', taskId: stopped.task.taskId },
        { type: 'action', message: 'resume vaultwarden', taskId: resumed.task.taskId },
        { type: 'system', message: 'resume vaultwarden completed', taskId: resumed.task.taskId },
      ]),
    );
  });

  test('a resume answers with one state of its task: the payload and the app active task under it are the same row', async () => {
    // The engine starts each task while its response is written; the payload read before that, and
    // the active task after, showed it PENDING and RUNNING in one response (and a normalized client
    // cache, which writes the response last, went back to PENDING).
    const names = ['resume-a', 'resume-b', 'resume-c', 'resume-d', 'resume-e', 'resume-f'];
    for (const name of names) {
      await seed.catalogApp({ name, versions: ['1.0.0'] });
      await seed.user('alice').app({ appName: name, state: 'stopped', version: '1.0.0' });
    }
    const answers = await Promise.all(
      names.map(async (appName) => {
        const input = { sourceId: SOURCE, appName };
        return dataOf(await execute(server, ResumeAppTwiceReadMutation, { input }, { token: TOKENS.alice })).resumeApp;
      }),
    );
    for (const answer of answers) {
      if (answer.__typename !== 'ResumeAppSuccess') throw new Error(`resume refused: ${JSON.stringify(answer)}`);
      const { app, ...task } = answer.task;
      expect(app?.activeTask).toEqual(task);
      expect(app?.stage).toBe('RESUMING');
    }
  });

  test('stopping a stopped app and resuming a running one are refused with INVALID_STATE, changing nothing', async () => {
    await seed.catalogApp({ name: 'linkding', versions: ['1.36.0'] });
    await seed.catalogApp({ name: 'miniflux', versions: ['2.2.3'] });
    const alice = seed.user('alice');
    await alice.app({ appName: 'linkding', state: 'stopped', version: '1.36.0' });
    await alice.app({ appName: 'miniflux', state: 'running', version: '2.2.3' });
    const tasksBefore = await server.app.db.task.count();

    expect(await stop('linkding')).toEqual({
      __typename: 'InvalidStateError',
      code: 'INVALID_STATE',
      message: 'linkding is STOPPED, so it cannot stop: only a running app can be stopped',
    });
    expect(await resume('miniflux')).toEqual({
      __typename: 'InvalidStateError',
      code: 'INVALID_STATE',
      message: 'miniflux is RUNNING, so it cannot resume: only a stopped app can be resumed',
    });
    expect(await server.app.db.task.count()).toBe(tasksBefore);
  });

  test('stopping an app that is not installed is refused with INVALID_STATE, and someone else’s app is not installed for you', async () => {
    await seed.catalogApp({ name: 'freshrss', versions: ['1.24.3'] });
    await seed.user('bob').app({ appName: 'freshrss', state: 'running', version: '1.24.3' });

    expect(await stop('freshrss')).toEqual({
      __typename: 'InvalidStateError',
      code: 'INVALID_STATE',
      message: `freshrss is not installed from ${SOURCE}, so it cannot stop`,
    });
    expect(await resume('never-installed')).toMatchObject({ code: 'INVALID_STATE' });
  });

  test('an app whose first install failed is refused stop, resume and uninstall with what happened and what to do', async () => {
    await seed.catalogApp({ name: 'lidarr', versions: ['0.8.4'] });
    await seed.user('alice').app({ appName: 'lidarr', state: 'installFailed', version: '0.8.4' });
    const why = (operation: string) =>
      `lidarr from ${SOURCE} has no installed version (its install ended installFailed), so it cannot ${operation}: install it again`;

    expect(await stop('lidarr')).toMatchObject({ code: 'INVALID_STATE', message: why('stop') });
    expect(await resume('lidarr')).toMatchObject({ code: 'INVALID_STATE', message: why('resume') });
    const uninstalled = dataOf(
      await execute(
        server,
        UninstallAppMutation,
        { input: { sourceId: SOURCE, appName: 'lidarr' } },
        { token: TOKENS.alice },
      ),
    ).uninstallApp;
    expect(uninstalled).toMatchObject({ code: 'INVALID_STATE', message: why('uninstall') });
  });

  test('stopping while another task of the app is active is a CONFLICT naming that task', async () => {
    await seed.catalogApp({ name: 'paperless', versions: ['2.13.5'] });
    const app = await seed.user('alice').app({ appName: 'paperless', state: 'running', version: '2.13.5' });
    // An upgrade in progress (pending or running, whichever the engine has made of it by now).
    const pending = await app.task({ status: 'PENDING', type: 'UPGRADE' });

    const refused = await stop('paperless');
    expect(refused).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT' });
    expect(refused.__typename === 'ConflictError' && refused.message).toContain(pending.taskId);
  });

  test('stopping an app during its first install is a CONFLICT naming the install, not a refusal as not installed', async () => {
    await seed.catalogApp({ name: 'docmost', versions: ['0.8.1'] });
    const app = await seed.user('alice').app({ appName: 'docmost', state: 'installing', version: '0.8.1' });
    const installing = await app.task({ status: 'RUNNING', type: 'INSTALL' });

    const refused = await stop('docmost');
    expect(refused).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT' });
    expect(refused.__typename === 'ConflictError' && refused.message).toContain(installing.taskId);
  });

  test('uninstalling an app during its first install is a CONFLICT naming the install, as stopping it is', async () => {
    await seed.catalogApp({ name: 'outline', versions: ['0.81.1'] });
    const app = await seed.user('alice').app({ appName: 'outline', state: 'installing', version: '0.81.1' });
    const installing = await app.task({ status: 'RUNNING', type: 'INSTALL' });
    const uninstall = async (version?: string) =>
      dataOf(
        await execute(
          server,
          UninstallAppMutation,
          { input: { sourceId: SOURCE, appName: 'outline', ...(version ? { version } : {}) } },
          { token: TOKENS.alice },
        ),
      ).uninstallApp;

    // With or without the version being installed: the install has none yet, and it is what is in the way.
    for (const refused of [await uninstall(), await uninstall('0.81.1')]) {
      expect(refused).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT' });
      expect(refused.__typename === 'ConflictError' && refused.message).toContain(installing.taskId);
    }
    expect(await taskOf(installing.taskId)).toMatchObject({ type: 'INSTALL', status: 'RUNNING' });
  });

  test('upgrading an app during its first install is a CONFLICT naming the install, as uninstalling it is', async () => {
    await seed.catalogApp({ name: 'memos', versions: ['0.22.0', '0.23.0'] });
    const app = await seed.user('alice').app({ appName: 'memos', state: 'installing', version: '0.22.0' });
    const installing = await app.task({ status: 'RUNNING', type: 'INSTALL' });
    const refused = dataOf(
      await execute(
        server,
        UpgradeAppMutation,
        { input: { sourceId: SOURCE, appName: 'memos', version: '0.23.0' } },
        { token: TOKENS.alice },
      ),
    ).upgradeApp;
    expect(refused).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT' });
    expect(refused.__typename === 'ConflictError' && refused.message).toContain(installing.taskId);
    expect(await taskOf(installing.taskId)).toMatchObject({ type: 'INSTALL', status: 'RUNNING' });
  });

  test('two stops of one app at once: one task, the other request a CONFLICT', async () => {
    await seed.catalogApp({ name: 'wallabag', versions: ['2.6.10'] });
    await seed.user('alice').app({ appName: 'wallabag', state: 'running', version: '2.6.10' });

    const answers = await Promise.all([stop('wallabag'), stop('wallabag')]);
    expect(answers.map((answer) => answer.__typename).sort()).toEqual(['ConflictError', 'StopAppSuccess']);
    const winner = answers.find((answer) => answer.__typename === 'StopAppSuccess');
    if (winner?.__typename !== 'StopAppSuccess') throw new Error('no stop won');
    await waitForTask(winner.task.taskId, 'completed', (t) => t.status === 'COMPLETED');
  });

  test('a stop the app service fails ends FAILED with its reason, the result says so, and the app can be stopped again by a retry', async () => {
    await seed.catalogApp({ name: 'brittle-notes', versions: ['0.9.0'] });
    await seed.user('alice').app({ appName: 'brittle-notes', state: 'running', version: '0.9.0' });

    const stopped = await stop('brittle-notes');
    if (stopped.__typename !== 'StopAppSuccess') throw new Error(`stop refused: ${JSON.stringify(stopped)}`);
    const failed = await waitForTask(stopped.task.taskId, 'failed', (t) => t.status === 'FAILED');
    expect(failed.error).toBe(
      'stop of brittle-notes failed on the app service (stopFailed): simulated failure of brittle-notes (SIMULATED_FAIL_APPS)',
    );
    expect(failed.app).toMatchObject({ state: 'stopFailed', stage: 'FAILED' });
    // Accepted first, so the result is the envelope, now saying it failed.
    expect(failed.result).toMatchObject({ operation: 'stop', status: 'failed', opID: failed.opId });

    // The app service reported stopFailed: the app shows it, and a stop may be tried again.
    const retried = dataOf(
      await execute(
        server,
        RetryLifecycleTaskMutation,
        { input: { taskId: stopped.task.taskId } },
        { token: TOKENS.alice },
      ),
    ).retryTask;
    if (retried.__typename !== 'RetryTaskSuccess') throw new Error(`retry refused: ${JSON.stringify(retried)}`);
    await waitForTask(retried.task.taskId, 'failed again', (t) => t.status === 'FAILED');
  });

  test('a canceled stop leaves the app running: it shows RUNNING and can be stopped again', async () => {
    await seed.catalogApp({ name: 'calibre', versions: ['7.0.0'] });
    await seed.user('alice').app({ appName: 'calibre', state: 'running', version: '7.0.0' });
    const stopped = await stop('calibre');
    if (stopped.__typename !== 'StopAppSuccess') throw new Error(`stop refused: ${JSON.stringify(stopped)}`);
    const { taskId } = stopped.task;
    await waitForTask(taskId, 'sent', (t) => t.status === 'RUNNING' && t.opId !== null);
    const canceled = dataOf(
      await execute(server, CancelTaskMutation, { input: { taskId } }, { token: TOKENS.alice }),
    ).cancelTask;
    expect(canceled.__typename).toBe('CancelTaskSuccess');
    const ended = await waitForTask(taskId, 'canceled', (t) => t.status === 'CANCELED');
    expect(ended.app).toMatchObject({ stage: 'RUNNING', installedVersion: '7.0.0' });
    // The request, then the end it brought (the simulated app service ends the task within the call).
    const { history } = dataOf(
      await execute(server, HistoryQuery, { filter: { app: 'calibre' }, first: 20 }, { token: TOKENS.alice }),
    );
    expect(history.edges.map((edge) => edge.node.message).reverse()).toEqual([
      'stop calibre',
      'stop calibre started',
      'cancel stop calibre requested',
      'stop calibre canceled',
    ]);
    const again = await stop('calibre');
    expect(again.__typename).toBe('StopAppSuccess');
  });

  test('a stopped app is kept by the simulated cluster, an uninstalled one leaves it, and the apps stored at start are in it', async () => {
    const listed = async () =>
      (await server.app.services.appService.listApps()).map(({ userId, appName, state, entrances }) => ({
        userId,
        appName,
        state,
        entrances,
      }));

    const before = await listed();
    expect(before).toContainEqual(
      expect.objectContaining({
        userId: 'bob',
        appName: 'kavita',
        state: 'running',
        entrances: [expect.objectContaining({ name: 'kavita', state: 'running', authLevel: 'private' })],
      }),
    );

    await seed.catalogApp({ name: 'navidrome', versions: ['0.53.3'] });
    const installed = dataOf(
      await execute(
        server,
        InstallAppMutation,
        { input: { sourceId: SOURCE, appName: 'navidrome', version: '0.53.3' } },
        { token: TOKENS.alice },
      ),
    ).installApp;
    if (installed.__typename !== 'InstallAppSuccess') throw new Error(`install refused: ${JSON.stringify(installed)}`);
    await waitForTask(installed.task.taskId, 'completed', (t) => t.status === 'COMPLETED');
    const stopped = await stop('navidrome');
    if (stopped.__typename !== 'StopAppSuccess') throw new Error(`stop refused: ${JSON.stringify(stopped)}`);
    await waitForTask(stopped.task.taskId, 'completed', (t) => t.status === 'COMPLETED');

    const navidrome = (await listed()).find((app) => app.userId === 'alice' && app.appName === 'navidrome');
    expect(navidrome?.state).toBe('stopped');
    expect(navidrome?.entrances?.[0]).toMatchObject({
      name: 'navidrome',
      title: 'navidrome',
      state: 'stopped',
      url: expect.stringMatching(/^https:\/\/[0-9a-f]{8}\.alice\.olares\.local$/),
    });

    const uninstalled = dataOf(
      await execute(
        server,
        UninstallAppMutation,
        { input: { sourceId: SOURCE, appName: 'navidrome' } },
        { token: TOKENS.alice },
      ),
    ).uninstallApp;
    if (uninstalled.__typename !== 'UninstallAppSuccess') throw new Error(`refused: ${JSON.stringify(uninstalled)}`);
    await waitForTask(uninstalled.task.taskId, 'completed', (t) => t.status === 'COMPLETED');
    const after = await listed();
    expect(after.some((app) => app.userId === 'alice' && app.appName === 'navidrome')).toBe(false);
    expect(after).toContainEqual(expect.objectContaining({ userId: 'bob', appName: 'kavita', state: 'running' }));
  });
});
