import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { graphql } from './gql/index.js';
import { availableDatabases } from './support/databases.js';
import { type FakeAppService, sendEvent, startFakeAppService } from './support/fake-app-service.js';
import { InstallAppMutation, UninstallAppMutation } from './support/operations.js';
import { REMOTE_SOURCE, type Seeder, startSeededServer } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, type TestServer, TOKENS, waitFor } from './support/server.js';

const databases = await availableDatabases();
const SECRET = 'app-service-event-secret-0014';
const SERVICE_TOKEN = 'service-credential-0014';
const SOURCE = REMOTE_SOURCE;

const StopAppHttpMutation = graphql(`
  mutation StopAppHttp($input: StopAppInput!) {
    stopApp(input: $input) {
      __typename
      ... on StopAppSuccess { task { taskId } }
      ... on Error { code message }
    }
  }
`);

const ResumeAppHttpMutation = graphql(`
  mutation ResumeAppHttp($input: ResumeAppInput!) {
    resumeApp(input: $input) {
      __typename
      ... on ResumeAppSuccess { task { taskId } }
      ... on Error { code message }
    }
  }
`);

/** A state event of the app service about one of alice's apps. */
function stateEvent(name: string, opType: string, state: string, createTime: string) {
  return { name, user: 'alice', marketSource: SOURCE, opType, state, createTime };
}

const TaskResultQuery = graphql(`
  query TaskResult($taskId: String!) {
    task(taskId: $taskId) {
      taskId type status progress error opId result
      app { stage state }
    }
  }
`);

describe.each(databases)('the app lifecycle against an app service over HTTP on %s', (kind) => {
  let fake: FakeAppService;
  let server: TestServer;
  let seed: Seeder;
  let intake: string;
  beforeAll(async () => {
    fake = await startFakeAppService();
    ({ server, seed } = await startSeededServer(kind, {
      env: {
        ...AUTH_ENV,
        APP_SERVICE_URL: fake.url,
        APP_SERVICE_EVENT_SECRET: SECRET,
        APP_SERVICE_TOKEN: SERVICE_TOKEN,
        APP_SERVICE_TIMEOUT_MS: '5000',
        RECONCILE_INTERVAL_MS: '3600000',
      },
      preseed: (seed) => seed.remoteSource(),
    }));
    intake = `${server.url}/events/app-state`;
  });
  afterAll(async () => {
    await server?.stop();
    await fake?.stop();
  });

  const taskOf = async (taskId: string) =>
    dataOf(await execute(server, TaskResultQuery, { taskId }, { token: TOKENS.ops })).task;
  const waitForTask = (taskId: string, done: (task: NonNullable<Awaited<ReturnType<typeof taskOf>>>) => boolean) =>
    waitFor(async () => {
      const task = await taskOf(taskId);
      return task && done(task) ? task : undefined;
    }, `task ${taskId}`);
  const accepted = (taskId: string) => waitForTask(taskId, (task) => task.status === 'RUNNING' && task.result !== null);
  const at = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString();
  const requestTo = (path: string) => fake.requests.find((request) => request.path === path);

  test('stopApp is sent as suspend {all: false} and resumeApp as resume, with the user, source and credential headers; state events end them', async () => {
    await seed.catalogApp({ name: 'hoarder', versions: ['0.19.0'] });
    await seed.user('alice').app({ appName: 'hoarder', state: 'running', version: '0.19.0' });
    // The real app service answers suspend with the app's uid and no op id.
    fake.setBehaviour('suspend', { respond: 'accept', opId: null });

    const stopped = dataOf(
      await execute(
        server,
        StopAppHttpMutation,
        { input: { sourceId: SOURCE, appName: 'hoarder' } },
        { token: TOKENS.alice },
      ),
    ).stopApp;
    if (stopped.__typename !== 'StopAppSuccess') throw new Error(`stop refused: ${JSON.stringify(stopped)}`);
    const stopRunning = await accepted(stopped.task.taskId);
    expect(stopRunning.opId).toBeNull();
    const suspend = requestTo('/app-service/v1/apps/hoarder/suspend');
    expect(suspend).toMatchObject({ method: 'POST', body: { all: false } });
    expect(suspend?.headers).toMatchObject({
      'x-bfl-user': 'alice',
      'x-market-user': 'alice',
      'x-market-source': SOURCE,
      'x-authorization': SERVICE_TOKEN,
      'content-type': 'application/json',
    });

    const event = (state: string, offsetMs: number) =>
      sendEvent(intake, SECRET, {
        name: 'hoarder',
        user: 'alice',
        marketSource: SOURCE,
        opType: 'stop',
        state,
        createTime: at(offsetMs),
      });
    expect(await event('stopping', 1000)).toBe(202);
    expect(await taskOf(stopped.task.taskId)).toMatchObject({
      status: 'RUNNING',
      progress: 50,
      app: { stage: 'STOPPING' },
    });
    expect(await event('stopped', 2000)).toBe(202);
    const stopDone = await taskOf(stopped.task.taskId);
    expect(stopDone).toMatchObject({ status: 'COMPLETED', app: { stage: 'STOPPED', state: 'stopped' } });
    expect(stopDone?.result).toEqual({
      operation: 'stop',
      app_name: 'hoarder',
      user: 'alice',
      source: SOURCE,
      cfgType: 'app',
      all: false,
      opID: null,
      status: 'success',
      backend_response: { code: 200, message: 'success', data: {} },
    });

    const resumed = dataOf(
      await execute(
        server,
        ResumeAppHttpMutation,
        { input: { sourceId: SOURCE, appName: 'hoarder' } },
        { token: TOKENS.alice },
      ),
    ).resumeApp;
    if (resumed.__typename !== 'ResumeAppSuccess') throw new Error(`resume refused: ${JSON.stringify(resumed)}`);
    const resumeRunning = await accepted(resumed.task.taskId);
    expect(requestTo('/app-service/v1/apps/hoarder/resume')).toMatchObject({ method: 'POST', body: {} });
    expect(await event('resuming', 3000)).toBe(202);
    expect(await event('running', 4000)).toBe(202);
    const resumeDone = await taskOf(resumed.task.taskId);
    expect(resumeDone).toMatchObject({ status: 'COMPLETED', app: { stage: 'RUNNING', state: 'running' } });
    expect(resumeDone?.result).toMatchObject({ operation: 'resume', opID: resumeRunning.opId, status: 'success' });
  });

  test('an app service whose clock runs behind: a stop it accepted without op id ends with its own reports, which carry one', async () => {
    await seed.catalogApp({ name: 'linkding', versions: ['1.36.0'] });
    await seed.user('alice').app({ appName: 'linkding', state: 'running', version: '1.36.0' });
    // The row's last state came from the app service too: by its clock, a minute ago.
    await server.app.db.appState.updateMany({
      where: { appName: 'linkding' },
      data: { eventTime: new Date(at(-60_000)) },
    });
    fake.setBehaviour('suspend', { respond: 'accept', opId: null });
    const stopped = dataOf(
      await execute(
        server,
        StopAppHttpMutation,
        { input: { sourceId: SOURCE, appName: 'linkding' } },
        { token: TOKENS.alice },
      ),
    ).stopApp;
    if (stopped.__typename !== 'StopAppSuccess') throw new Error(`stop refused: ${JSON.stringify(stopped)}`);
    await accepted(stopped.task.taskId);
    // Its reports: 10 s before the task started by this server's clock, with the op id it gave the stop.
    const report = (state: string, offsetMs: number) =>
      sendEvent(intake, SECRET, {
        name: 'linkding',
        user: 'alice',
        marketSource: SOURCE,
        opType: 'stop',
        opID: 'op-stop-behind',
        state,
        createTime: at(offsetMs),
      });
    expect(await report('stopping', -10_000)).toBe(202);
    expect(await taskOf(stopped.task.taskId)).toMatchObject({ status: 'RUNNING', progress: 50 });
    expect(await report('stopped', -9_000)).toBe(202);
    expect(await taskOf(stopped.task.taskId)).toMatchObject({
      status: 'COMPLETED',
      app: { stage: 'STOPPED', state: 'stopped' },
    });
  });

  test('a stop accepted without op id is not ended by a report of another operation, however recent: only by its own', async () => {
    await seed.catalogApp({ name: 'excalidraw', versions: ['0.17.6'] });
    await seed.user('alice').app({ appName: 'excalidraw', state: 'running', version: '0.17.6' });
    fake.setBehaviour('suspend', { respond: 'accept', opId: null });
    const stopped = dataOf(
      await execute(
        server,
        StopAppHttpMutation,
        { input: { sourceId: SOURCE, appName: 'excalidraw' } },
        { token: TOKENS.alice },
      ),
    ).stopApp;
    if (stopped.__typename !== 'StopAppSuccess') throw new Error(`stop refused: ${JSON.stringify(stopped)}`);
    expect((await accepted(stopped.task.taskId)).opId).toBeNull();
    const report = (opType: string, opID: string, offsetMs: number) =>
      sendEvent(intake, SECRET, {
        name: 'excalidraw',
        user: 'alice',
        marketSource: SOURCE,
        opType,
        opID,
        state: 'stopped',
        createTime: at(offsetMs),
      });
    // Newer than the task's start, and `stopped`: but an upgrade's. The app's row takes it.
    expect(await report('upgrade', 'some-upgrade', 1000)).toBe(202);
    expect(await taskOf(stopped.task.taskId)).toMatchObject({ status: 'RUNNING', opId: null });
    expect(await report('stop', 'op-stop-own', 2000)).toBe(202);
    expect(await taskOf(stopped.task.taskId)).toMatchObject({
      status: 'COMPLETED',
      opId: 'op-stop-own',
      app: { stage: 'STOPPED', state: 'stopped' },
    });
  });

  test('an install sends the images of its catalogue entry, and its completed result holds the op id and the app service answer with the secret env value redacted', async () => {
    const catalogued = await seed.catalogApp({ name: 'immich-lite', versions: ['1.120.1'] });
    const images = [
      { name: 'ghcr.io/immich-app/immich-server:v1.120.1', total_size: 734003200 },
      { name: 'docker.io/library/redis:7', total_size: 41943040 },
    ];
    await server.app.db.catalogApp.update({
      where: { id: catalogued.id },
      data: {
        entry: {
          ...(catalogued.entry as object),
          image_analysis: { images: Object.fromEntries(images.map((image) => [image.name, image])) },
        },
      },
    });
    const dbPassword = 'pg-secret-value-0014';
    // An app service that quotes the request back in its acceptance, secret and all.
    fake.setBehaviour('install', {
      respond: 'json',
      body: {
        code: 200,
        message: `accepted DB_PASSWORD=${dbPassword}`,
        data: { opID: 'op-immich', request: { envs: [{ envName: 'DB_PASSWORD', value: dbPassword }] } },
      },
    });
    try {
      const installed = dataOf(
        await execute(
          server,
          InstallAppMutation,
          {
            input: {
              sourceId: SOURCE,
              appName: 'immich-lite',
              version: '1.120.1',
              envs: [{ name: 'DB_PASSWORD', value: dbPassword }],
            },
          },
          { token: TOKENS.alice },
        ),
      ).installApp;
      if (installed.__typename !== 'InstallAppSuccess')
        throw new Error(`install refused: ${JSON.stringify(installed)}`);
      const running = await accepted(installed.task.taskId);
      expect(requestTo('/app-service/v1/apps/immich-lite/install')?.body).toMatchObject({
        // From the image analysis, a map: by name.
        images: [
          { name: 'docker.io/library/redis:7', size: 41943040 },
          { name: 'ghcr.io/immich-app/immich-server:v1.120.1', size: 734003200 },
        ],
        envs: [{ envName: 'DB_PASSWORD', value: dbPassword }],
      });
      expect(running.opId).toBe('op-immich');

      expect(
        await sendEvent(intake, SECRET, {
          name: 'immich-lite',
          user: 'alice',
          marketSource: SOURCE,
          opID: 'op-immich',
          opType: 'install',
          state: 'running',
          createTime: at(1000),
        }),
      ).toBe(202);
      const done = await taskOf(installed.task.taskId);
      expect(done?.status).toBe('COMPLETED');
      expect(done?.result).toMatchObject({
        operation: 'install',
        app_name: 'immich-lite',
        user: 'alice',
        source: SOURCE,
        cfgType: 'app',
        version: '1.120.1',
        opID: 'op-immich',
        status: 'success',
        backend_response: { code: 200, data: { opID: 'op-immich' } },
      });
      expect(done?.result).not.toHaveProperty('all');
      const row = await server.app.db.task.findUnique({ where: { taskId: installed.task.taskId } });
      expect(JSON.stringify(row?.result)).not.toContain(dbPassword);
      expect(JSON.stringify(row?.result)).toContain('DB_PASSWORD');
      expect(JSON.stringify(row)).not.toContain(SERVICE_TOKEN);
    } finally {
      fake.setBehaviour('install', { respond: 'accept' });
    }
  });

  test('an app without images in its catalogue entry is installed with images: []', async () => {
    await seed.catalogApp({ name: 'plain-app', versions: ['1.0.0'] });
    const installed = dataOf(
      await execute(
        server,
        InstallAppMutation,
        { input: { sourceId: SOURCE, appName: 'plain-app', version: '1.0.0' } },
        { token: TOKENS.alice },
      ),
    ).installApp;
    if (installed.__typename !== 'InstallAppSuccess') throw new Error(`install refused: ${JSON.stringify(installed)}`);
    await accepted(installed.task.taskId);
    expect(requestTo('/app-service/v1/apps/plain-app/install')?.body).toMatchObject({ images: [] });
  });

  test("an install of an older version sends no images: the entry's describe its current version", async () => {
    const catalogued = await seed.catalogApp({ name: 'older-app', versions: ['2.0.0', '1.0.0'] });
    await server.app.db.catalogApp.update({
      where: { id: catalogued.id },
      data: { entry: { ...(catalogued.entry as object), images: ['docker.io/older/app:2.0.0'] } },
    });
    const installed = dataOf(
      await execute(
        server,
        InstallAppMutation,
        { input: { sourceId: SOURCE, appName: 'older-app', version: '1.0.0' } },
        { token: TOKENS.alice },
      ),
    ).installApp;
    if (installed.__typename !== 'InstallAppSuccess') throw new Error(`install refused: ${JSON.stringify(installed)}`);
    await accepted(installed.task.taskId);
    expect(requestTo('/app-service/v1/apps/older-app/install')?.body).toMatchObject({ images: [] });
  });

  test('uninstallApp sends the all and deleteData the user asked for', async () => {
    await seed.catalogApp({ name: 'outline', versions: ['0.81.1'] });
    await seed.user('alice').app({ appName: 'outline', state: 'running', version: '0.81.1' });
    const uninstalled = dataOf(
      await execute(
        server,
        UninstallAppMutation,
        { input: { sourceId: SOURCE, appName: 'outline', all: true, deleteData: true } },
        { token: TOKENS.alice },
      ),
    ).uninstallApp;
    if (uninstalled.__typename !== 'UninstallAppSuccess') throw new Error(`refused: ${JSON.stringify(uninstalled)}`);
    const running = await accepted(uninstalled.task.taskId);
    expect(requestTo('/app-service/v1/apps/outline/uninstall')?.body).toEqual({ all: true, deleteData: true });
    expect(running.result).toMatchObject({ operation: 'uninstall', all: true, deleteData: true, status: 'success' });
    expect(running.result).not.toHaveProperty('version');
  });

  test('an acceptance whose data is longer than a result keeps is named in the result, not copied into it', async () => {
    await seed.catalogApp({ name: 'chatty', versions: ['1.0.0'] });
    // An app service that sends back a large document with its op id (here 200,000 characters).
    const echo = 'e'.repeat(200_000);
    fake.setBehaviour('install', {
      respond: 'json',
      body: { code: 200, message: 'success', data: { opID: 'op-chatty', echo } },
    });
    try {
      const installed = dataOf(
        await execute(
          server,
          InstallAppMutation,
          { input: { sourceId: SOURCE, appName: 'chatty', version: '1.0.0' } },
          { token: TOKENS.alice },
        ),
      ).installApp;
      if (installed.__typename !== 'InstallAppSuccess') throw new Error(`refused: ${JSON.stringify(installed)}`);
      const running = await accepted(installed.task.taskId);
      expect(running.opId).toBe('op-chatty');
      const length = JSON.stringify({ opID: 'op-chatty', echo }).length;
      expect(running.result).toMatchObject({
        operation: 'install',
        opID: 'op-chatty',
        status: 'success',
        backend_response: {
          code: 200,
          message: 'success',
          data: { omitted: `${length} characters of JSON, more than the 16384 a task result keeps` },
        },
      });
      // Ends it, as the next tests need alice's turn.
      const ran = stateEvent('chatty', 'install', 'running', at(1000));
      expect(await sendEvent(intake, SECRET, { ...ran, opID: 'op-chatty' })).toBe(202);
      expect((await waitForTask(installed.task.taskId, (task) => task.status !== 'RUNNING')).status).toBe('COMPLETED');
    } finally {
      fake.setBehaviour('install', { respond: 'accept' });
    }
  });

  test('a stop the app service refuses fails the task with its answer in the result envelope', async () => {
    await seed.catalogApp({ name: 'system-files', versions: ['1.0.0'] });
    await seed.user('alice').app({ appName: 'system-files', state: 'running', version: '1.0.0' });
    fake.setBehaviour('suspend', { respond: 'business-error', code: 400, message: 'sys app can not be suspend' });
    try {
      const stopped = dataOf(
        await execute(
          server,
          StopAppHttpMutation,
          { input: { sourceId: SOURCE, appName: 'system-files' } },
          { token: TOKENS.alice },
        ),
      ).stopApp;
      if (stopped.__typename !== 'StopAppSuccess') throw new Error(`stop refused: ${JSON.stringify(stopped)}`);
      const failed = await waitForTask(stopped.task.taskId, (task) => task.status === 'FAILED');
      expect(failed.error).toBe('app service rejected stop of system-files: sys app can not be suspend');
      expect(failed.result).toMatchObject({
        operation: 'stop',
        app_name: 'system-files',
        status: 'failed',
        opID: null,
        error: 'app service rejected stop of system-files: sys app can not be suspend',
        backend_response: { code: 400 },
      });
    } finally {
      fake.setBehaviour('suspend', { respond: 'accept' });
    }
  });

  test('a stop that fails with a 5xx before anything happened leaves the app running, with the reason, and it can be stopped again', async () => {
    await seed.catalogApp({ name: 'flaky-stop', versions: ['1.0.0'] });
    await seed.user('alice').app({ appName: 'flaky-stop', state: 'running', version: '1.0.0' });
    const stop = async () => {
      const answer = dataOf(
        await execute(
          server,
          StopAppHttpMutation,
          { input: { sourceId: SOURCE, appName: 'flaky-stop' } },
          { token: TOKENS.alice },
        ),
      ).stopApp;
      if (answer.__typename !== 'StopAppSuccess') throw new Error(`stop refused: ${JSON.stringify(answer)}`);
      return answer.task.taskId;
    };
    fake.setBehaviour('suspend', { respond: 'http-error', status: 500 });
    try {
      const failed = await waitForTask(await stop(), (task) => task.status === 'FAILED');
      expect(failed.error).toMatch(/app service failed on stop of flaky-stop.*HTTP 500/);
      expect(failed.app).toMatchObject({ state: 'running', stage: 'RUNNING' });
      const row = await server.app.db.appState.findFirst({ where: { userId: 'alice', appName: 'flaky-stop' } });
      expect(row?.reason).toMatch(/HTTP 500/);
    } finally {
      fake.setBehaviour('suspend', { respond: 'accept' });
    }
    // The app service is back: the same stop is accepted, and ends with its events.
    const again = await stop();
    await accepted(again);
    expect(await sendEvent(intake, SECRET, stateEvent('flaky-stop', 'stop', 'stopped', at(1000)))).toBe(202);
    expect(await waitForTask(again, (task) => task.status === 'COMPLETED')).toMatchObject({
      app: { state: 'stopped', stage: 'STOPPED' },
    });
  });

  test('a resume the app service reports resumeFailed leaves the app resumeFailed, and it can be resumed again', async () => {
    await seed.catalogApp({ name: 'sleepy', versions: ['1.0.0'] });
    await seed.user('alice').app({ appName: 'sleepy', state: 'stopped', version: '1.0.0' });
    const resume = async () => {
      const answer = dataOf(
        await execute(
          server,
          ResumeAppHttpMutation,
          { input: { sourceId: SOURCE, appName: 'sleepy' } },
          { token: TOKENS.alice },
        ),
      ).resumeApp;
      if (answer.__typename !== 'ResumeAppSuccess') throw new Error(`resume refused: ${JSON.stringify(answer)}`);
      return answer.task.taskId;
    };
    const first = await resume();
    await accepted(first);
    expect(await sendEvent(intake, SECRET, stateEvent('sleepy', 'resume', 'resumeFailed', at(1000)))).toBe(202);
    expect(await waitForTask(first, (task) => task.status === 'FAILED')).toMatchObject({
      app: { state: 'resumeFailed', stage: 'FAILED' },
    });
    const second = await resume();
    await accepted(second);
    expect(await sendEvent(intake, SECRET, stateEvent('sleepy', 'resume', 'running', at(2000)))).toBe(202);
    expect(await waitForTask(second, (task) => task.status === 'COMPLETED')).toMatchObject({
      app: { state: 'running', stage: 'RUNNING' },
    });
  });
});
