import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Db } from '../src/db/client.js';
import { appKeyString } from '../src/domain/app-key.js';
import { graphql } from './gql/index.js';
import { availableDatabases } from './support/databases.js';
import { type FakeAppService, sendEvent, startFakeAppService } from './support/fake-app-service.js';
import { HistoryQuery, TaskDetailQuery } from './support/operations.js';
import { REMOTE_SOURCE, type Seeder, startSeededServer } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * Status correction against an app service whose list lags behind its events (a cache), over
 * HTTP: a list older than the app's stored state never ends the operation that followed it, and
 * two runs that plan the same corrections (two leaders, one of them late) record each one once.
 */

const databases = await availableDatabases();
const SECRET = 'app-service-event-secret-0071';
const SOURCE = REMOTE_SOURCE;
const SECOND = 1000;
const MINUTE = 60 * SECOND;

const ago = (ms: number) => new Date(Date.now() - ms);

/** An app as Olares's app service lists it (an Application resource), with no op id. */
function application(owner: string, name: string, state: string, statusTime: Date) {
  return {
    metadata: { name: `${name}-${owner}`, namespace: `${name}-${owner}` },
    spec: { name, owner, appid: name, isSysApp: false, settings: { market_source: SOURCE, version: '1.0.0' } },
    status: { state, statusTime: statusTime.toISOString(), updateTime: statusTime.toISOString() },
  };
}

const StopLaggingMutation = graphql(`
  mutation StopLagging($input: StopAppInput!) {
    stopApp(input: $input) {
      __typename
      ... on StopAppSuccess { task { taskId } }
      ... on Error { code message }
    }
  }
`);

const ResumeLaggingMutation = graphql(`
  mutation ResumeLagging($input: ResumeAppInput!) {
    resumeApp(input: $input) {
      __typename
      ... on ResumeAppSuccess { task { taskId } }
      ... on Error { code message }
    }
  }
`);

describe.each(databases)('status correction with a list that lags behind on %s', (kind) => {
  let fake: FakeAppService;
  let server: TestServer;
  let seed: Seeder;
  let db: Db;
  let intake: string;
  beforeAll(async () => {
    fake = await startFakeAppService();
    // The app service answers suspend and resume without an op id, as the real one does.
    fake.setBehaviour('suspend', { respond: 'accept', opId: null });
    fake.setBehaviour('resume', { respond: 'accept', opId: null });
    ({ server, seed } = await startSeededServer(kind, {
      env: {
        ...AUTH_ENV,
        APP_SERVICE_URL: fake.url,
        APP_SERVICE_EVENT_SECRET: SECRET,
        APP_SERVICE_TIMEOUT_MS: '5000',
        STATUS_CORRECTION_INTERVAL_MS: '3600000',
        TASK_LEASE_MS: '600000',
      },
      preseed: (seed) => seed.remoteSource(),
    }));
    db = server.app.db;
    intake = `${server.url}/events/app-state`;
    const correction = server.app.services.statusCorrection;
    await waitFor(async () => (correction.status().checks >= 1 ? true : undefined), 'the correction at start');
  });
  afterAll(async () => {
    await server?.stop();
    await fake?.stop();
  });

  const run = () => server.app.services.statusCorrection.run();
  const taskOf = async (taskId: string) =>
    dataOf(await execute(server, TaskDetailQuery, { taskId }, { token: TOKENS.ops })).task;
  const historyOf = async (userId: string, app: string) => {
    const filter = { userId, app, type: ['system'] };
    const { history } = dataOf(await execute(server, HistoryQuery, { filter, first: 100 }, { token: TOKENS.ops }));
    return history.edges.map((edge) => edge.node.message);
  };
  /** An app the app service reported in `state` at `time`, its operation accepted now. */
  const reported = async (userId: string, appName: string, state: string, time: Date) => {
    await seed.catalogApp({ name: appName, versions: ['1.0.0'] });
    await seed.user(userId).app({ appName, state, version: '1.0.0' });
    const event = { name: appName, user: userId, marketSource: SOURCE, state, createTime: time.toISOString() };
    expect(await sendEvent(intake, SECRET, event)).toBe(202);
  };
  /** The task as if it had been running for a minute: past the 30 s after which a list may end it. */
  const startedAMinuteAgo = (taskId: string) =>
    db.task.update({ where: { taskId }, data: { startedAt: ago(MINUTE), dispatchedAt: ago(MINUTE) } });

  test('a resume the app service accepted is not completed by a list older than the stop it follows', async () => {
    await reported('alice', 'jellyfin', 'stopped', ago(70 * SECOND));
    const answer = dataOf(
      await execute(
        server,
        ResumeLaggingMutation,
        { input: { sourceId: SOURCE, appName: 'jellyfin' } },
        { token: TOKENS.alice },
      ),
    ).resumeApp;
    if (answer.__typename !== 'ResumeAppSuccess') throw new Error(`resume refused: ${JSON.stringify(answer)}`);
    const { taskId } = answer.task;
    await waitFor(async () => ((await taskOf(taskId))?.status === 'RUNNING' ? true : undefined), 'the resume sent');
    await startedAMinuteAgo(taskId);
    // The list still shows the app running from before its stop (10 minutes ago, no op id).
    fake.apps.push(application('alice', 'jellyfin', 'running', ago(10 * MINUTE)));
    await run();

    expect(await taskOf(taskId)).toMatchObject({ status: 'RUNNING', app: { state: 'stopped', stage: 'RESUMING' } });
    expect(await historyOf('alice', 'jellyfin')).toEqual([]);

    // Once the list shows the app running after its stop, that is the resume's end.
    fake.apps.splice(-1, 1, application('alice', 'jellyfin', 'running', ago(SECOND)));
    await run();
    expect(await taskOf(taskId)).toMatchObject({ status: 'COMPLETED', app: { state: 'running', stage: 'RUNNING' } });
    expect(await historyOf('alice', 'jellyfin')).toContain(
      'resume of jellyfin completed by status correction: the app service reports it running',
    );
  });

  test('a stop the app service accepted is not completed by a list that still shows the app stopped from before its resume', async () => {
    await reported('bob', 'n8n', 'running', ago(70 * SECOND));
    const answer = dataOf(
      await execute(
        server,
        StopLaggingMutation,
        { input: { sourceId: SOURCE, appName: 'n8n' } },
        { token: TOKENS.bob },
      ),
    ).stopApp;
    if (answer.__typename !== 'StopAppSuccess') throw new Error(`stop refused: ${JSON.stringify(answer)}`);
    const { taskId } = answer.task;
    await waitFor(async () => ((await taskOf(taskId))?.status === 'RUNNING' ? true : undefined), 'the stop sent');
    await startedAMinuteAgo(taskId);
    fake.apps.push(application('bob', 'n8n', 'stopped', ago(10 * MINUTE)));
    await run();

    expect(await taskOf(taskId)).toMatchObject({ status: 'RUNNING', app: { state: 'running', stage: 'STOPPING' } });
    expect(await historyOf('bob', 'n8n')).toEqual([]);
  });

  test('two runs that plan the same corrections at once record each app and each completed task once', async () => {
    // Two leaders, the old one late: both read the rows before either made its corrections.
    const crowd = Array.from({ length: 60 }, (_, i) => application('carol', `twice-${i}`, 'running', ago(MINUTE)));
    // Installs another (live) instance runs, which the list shows ended after they started.
    const carol = seed.user('carol');
    for (let i = 0; i < 10; i++) {
      const appName = `ending-${i}`;
      await carol.app({ appName, state: 'installing' });
      const key = { userId: 'carol', sourceId: SOURCE, appName };
      await db.task.create({
        data: {
          ...key,
          taskId: `lagging-${appName}`,
          type: 'INSTALL',
          status: 'RUNNING',
          version: '1.0.0',
          activeKey: appKeyString(key),
          metadata: { cfgType: 'app', envs: [], appId: appName },
          workerId: 'another-instance',
          heartbeatAt: new Date(Date.now() + 10 * MINUTE),
          dispatchedAt: ago(MINUTE),
          startedAt: ago(MINUTE),
        },
      });
      crowd.push(application('carol', appName, 'running', ago(SECOND)));
    }
    fake.apps.push(...crowd);
    await Promise.all([run(), run()]);

    const rows = await db.appState.count({ where: { userId: 'carol', state: 'running' } });
    expect(rows).toBe(crowd.length);
    const completed = await db.task.count({ where: { userId: 'carol', status: 'COMPLETED' } });
    expect(completed).toBe(10);
    const records = await db.historyRecord.groupBy({
      by: ['app', 'message'],
      where: { userId: 'carol', type: 'system' },
      _count: { _all: true },
    });
    expect(records.filter((record) => record._count._all !== 1)).toEqual([]);
    // Each appeared app once; each ended install its state correction and its completion, once each.
    expect(records).toHaveLength(60 + 2 * 10);
  });
});
