import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { graphql } from './gql/index.js';
import { availableDatabases } from './support/databases.js';
import { type FakeAppService, sendEvent, startFakeAppService } from './support/fake-app-service.js';
import { HistoryQuery, UninstallAppMutation, UpgradeAppMutation } from './support/operations.js';
import { type Seeder, REMOTE_SOURCE as SOURCE, seed } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { proxyDatabase, type TcpProxy } from './support/tcp-proxy.js';

/**
 * Operations on one app raced against each other on two instances of one PostgreSQL database (B
 * reaches it through a proxy the test can hold B's answers in), against one app service over HTTP
 * (the fake, whose part the test plays by sending the state events). What a user must see: one
 * accepted operation per app at a time, the others refused with a clear error, and the accepted
 * task carrying the app as it is when the task is written, not as an earlier read found it.
 */

const databases = await availableDatabases();
const SECRET = 'app-service-event-secret-0048';
/** B's connections, told apart from A's in pg_stat_activity. */
const B_APPLICATION = 'operation-races-b';
/** The statement an operation reads its app's row with (db/hot-path-sql.ts findAppState). */
const APP_ROW_READ = '%FROM "AppState" WHERE "userId" = $1 AND "sourceId" = $2 AND "appName" = $3%';

const StopRaceMutation = graphql(`
  mutation StopRace($input: StopAppInput!) {
    stopApp(input: $input) {
      __typename
      ... on StopAppSuccess { task { taskId type version } }
      ... on Error { code message }
    }
  }
`);

const ResumeRaceMutation = graphql(`
  mutation ResumeRace($input: ResumeAppInput!) {
    resumeApp(input: $input) {
      __typename
      ... on ResumeAppSuccess { task { taskId type version } }
      ... on Error { code message }
    }
  }
`);

const RaceTaskQuery = graphql(`
  query RaceTask($taskId: String!) {
    task(taskId: $taskId) {
      taskId type status version opId result
      app { stage state installedVersion }
    }
  }
`);

const RaceAppQuery = graphql(`
  query RaceApp($sourceId: String!, $appName: String!, $userId: String) {
    app(sourceId: $sourceId, appName: $appName, userId: $userId) { stage state installedVersion }
  }
`);

type Operation = 'stop' | 'resume' | 'uninstall' | 'upgrade';
/** What a user sees of one request: the task it became, or the refusal's code and message. */
type Answer = { task: { taskId: string; type: string; version: string | null } } | { code: string; message: string };

/** Sends `operation` of alice's `appName` to `server` (an upgrade goes to 2.0.0). */
async function send(server: TestServer, operation: Operation, appName: string): Promise<Answer> {
  const input = { sourceId: SOURCE, appName };
  const auth = { token: TOKENS.alice };
  const answer =
    operation === 'stop'
      ? dataOf(await execute(server, StopRaceMutation, { input }, auth)).stopApp
      : operation === 'resume'
        ? dataOf(await execute(server, ResumeRaceMutation, { input }, auth)).resumeApp
        : operation === 'uninstall'
          ? dataOf(await execute(server, UninstallAppMutation, { input }, auth)).uninstallApp
          : dataOf(await execute(server, UpgradeAppMutation, { input: { ...input, version: '2.0.0' } }, auth))
              .upgradeApp;
  if ('task' in answer) return { task: answer.task };
  if ('code' in answer) return { code: answer.code, message: answer.message };
  throw new Error(`unexpected answer ${JSON.stringify(answer)}`);
}

const taskOf = async (server: TestServer, taskId: string) =>
  dataOf(await execute(server, RaceTaskQuery, { taskId }, { token: TOKENS.ops })).task;

const appOf = async (server: TestServer, appName: string) =>
  dataOf(await execute(server, RaceAppQuery, { sourceId: SOURCE, appName, userId: 'alice' }, { token: TOKENS.ops }))
    .app;

/** Waits until the app service has accepted the task (it is RUNNING with the acceptance as its result). */
const acceptedTask = (server: TestServer, taskId: string) =>
  waitFor(async () => {
    const task = await taskOf(server, taskId);
    return task?.status === 'RUNNING' && task.result !== null ? task : undefined;
  }, `task ${taskId} to be accepted by the app service`);

/** The state the app service reports at the end of each operation, and its opType. */
const END: Record<string, { state: string; opType: string }> = {
  STOP: { state: 'stopped', opType: 'stop' },
  RESUME: { state: 'running', opType: 'resume' },
  UNINSTALL: { state: 'uninstalled', opType: 'uninstall' },
  UPGRADE: { state: 'running', opType: 'upgrade' },
};

describe.skipIf(!databases.includes('postgresql'))(
  'operations raced on two instances of one PostgreSQL database',
  () => {
    let fake: FakeAppService;
    let a: TestServer;
    let b: TestServer;
    let proxy: TcpProxy;
    let seeder: Seeder;
    let clock = Date.now();
    /** An event time later than every one before: each report is newer than the row's. */
    const later = () => {
      clock += 1000;
      return new Date(clock).toISOString();
    };
    /** The app service reporting the end of an accepted task, to A's intake. */
    const reportEnd = (task: { type: string; opId: string | null }, appName: string) =>
      sendEvent(`${a.url}/events/app-state`, SECRET, {
        name: appName,
        user: 'alice',
        marketSource: SOURCE,
        ...(task.opId ? { opID: task.opId } : {}),
        ...END[task.type],
        createTime: later(),
      } as Parameters<typeof sendEvent>[2]);

    beforeAll(async () => {
      fake = await startFakeAppService();
      const env = {
        ...AUTH_ENV,
        DEMO_DATA: '0',
        APP_SERVICE_URL: fake.url,
        APP_SERVICE_EVENT_SECRET: SECRET,
        APP_SERVICE_TOKEN: 'service-credential-0048',
        APP_SERVICE_TIMEOUT_MS: '5000',
        RECONCILE_INTERVAL_MS: '3600000',
      };
      a = await startTestServer('postgresql', { env });
      const proxied = await proxyDatabase(a.database.url);
      proxy = proxied.proxy;
      const url = new URL(proxied.url);
      url.searchParams.set('application_name', B_APPLICATION);
      // B takes only the tasks written on it (it polls for others once an hour): while its answers
      // are held, it holds no task of A's.
      b = await startTestServer('postgresql', {
        env: { ...env, TASK_POLL_INTERVAL_MS: '3600000' },
        database: { ...a.database, url: url.toString() },
      });
      seeder = seed(a.app.db);
      await seeder.remoteSource();
    });
    afterAll(async () => {
      proxy?.releaseAnswers();
      await b?.stop();
      await a?.stop();
      await proxy?.close();
      await fake?.stop();
    });

    /** A direct connection of the test's own to the database. */
    async function connection(): Promise<pg.Client> {
      const client = new pg.Client({ connectionString: a.database.url });
      await client.connect();
      return client;
    }

    test.each(['stop', 'uninstall'] as const)(
      '%s: a request that read the app before an upgrade ended is refused with CONFLICT, not accepted with the version the upgrade replaced',
      async (operation) => {
        const appName = `stale-${operation}`;
        await seeder.catalogApp({ name: appName, versions: ['2.0.0', '1.0.0'] });
        await seeder.user('alice').app({ appName, state: 'running', version: '1.0.0' });
        const upgrade = await send(a, 'upgrade', appName);
        if (!('task' in upgrade)) throw new Error(`upgrade refused: ${JSON.stringify(upgrade)}`);
        const upgrading = await acceptedTask(a, upgrade.task.taskId);

        const db = await connection();
        const lock = await connection();
        try {
          // The upgrade's end is held back after its final report reached the app's row: the row says
          // `running` at 1.0.0 while the upgrade's end (its task, and the version 2.0.0) waits for the
          // test's lock on the task.
          await lock.query('BEGIN');
          await lock.query('SELECT 1 FROM "Task" WHERE "taskId" = $1 FOR UPDATE', [upgrade.task.taskId]);
          const ended = reportEnd(upgrading, appName);
          await waitFor(async () => {
            const { rows } = await db.query('SELECT 1 FROM pg_locks WHERE NOT granted');
            return rows.length > 0 ? true : undefined;
          }, "the upgrade's end to wait for the lock");
          const { rows: before } = await db.query(
            'SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND query LIKE $2',
            [B_APPLICATION, APP_ROW_READ],
          );
          expect(before).toEqual([]);

          // B reads the app's row (running, 1.0.0) and stands still there, its answers held.
          proxy.holdAnswers();
          const answered = send(b, operation, appName);
          await waitFor(async () => {
            const { rows } = await db.query(
              'SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND query LIKE $2',
              [B_APPLICATION, APP_ROW_READ],
            );
            return rows.length > 0 ? true : undefined;
          }, `B to read the row of ${appName}`);
          // Now the upgrade ends: the app is at 2.0.0 and has no active task. Then B goes on.
          await lock.query('COMMIT');
          expect(await ended).toBe(202);
          expect(await taskOf(a, upgrade.task.taskId)).toMatchObject({
            status: 'COMPLETED',
            app: { installedVersion: '2.0.0' },
          });
          proxy.releaseAnswers();
          const answer = await answered;

          expect(answer).toMatchObject({ code: 'CONFLICT' });
          expect('message' in answer && answer.message).toMatch(/2\.0\.0/);
          expect(await appOf(a, appName)).toMatchObject({ stage: 'RUNNING', installedVersion: '2.0.0' });
          // Sent again, it is accepted, with the version the app is at.
          const again = await send(b, operation, appName);
          expect(again).toMatchObject({ task: { version: '2.0.0' } });
        } finally {
          proxy.releaseAnswers();
          await lock.end().catch(() => {});
          await db.end();
        }
      },
    );

    /** Each round: two operations sent at once, one to each instance, and what either may be refused with. */
    const PAIRS: { first: Operation; second: Operation; refusals: string[] }[] = [
      { first: 'stop', second: 'resume', refusals: ['CONFLICT', 'INVALID_STATE'] },
      { first: 'stop', second: 'uninstall', refusals: ['CONFLICT'] },
      { first: 'upgrade', second: 'stop', refusals: ['CONFLICT'] },
      { first: 'stop', second: 'stop', refusals: ['CONFLICT'] },
    ];
    const ROUNDS = 24;

    test('operations sent at once to two instances: one is accepted, the other refused, and the app ends as its task did', async () => {
      for (let round = 0; round < ROUNDS; round += 1) {
        const { first, second, refusals } = PAIRS[round % PAIRS.length] as (typeof PAIRS)[number];
        const appName = `raced-${round}`;
        await seeder.catalogApp({ name: appName, versions: ['2.0.0', '1.0.0'] });
        await seeder.user('alice').app({ appName, state: 'running', version: '1.0.0' });
        // Alternately, which instance gets which operation.
        const [onA, onB] = round % 2 === 0 ? [first, second] : [second, first];
        const answers = await Promise.all([send(a, onA, appName), send(b, onB, appName)]);
        const accepted = answers.flatMap((answer) => ('task' in answer ? [answer.task] : []));
        const refused = answers.flatMap((answer) => ('code' in answer ? [answer] : []));
        const what = `round ${round} (${onA} on A, ${onB} on B): ${JSON.stringify(answers)}`;
        expect(accepted, what).toHaveLength(1);
        expect(refusals, what).toContain(refused[0]?.code);
        expect(refused[0]?.message, what).toMatch(/already has an active task|cannot resume/);
        const [task] = accepted as [(typeof accepted)[number]];
        expect(task.version, what).toBe(task.type === 'UPGRADE' ? '2.0.0' : '1.0.0');

        // The app service ends it; the app is where its task left it.
        const running = await acceptedTask(a, task.taskId);
        expect(await reportEnd(running, appName)).toBe(202);
        const ended = await waitFor(async () => {
          const row = await taskOf(a, task.taskId);
          return row?.status === 'COMPLETED' ? row : undefined;
        }, `${what}: the task to complete`);
        const app = await appOf(b, appName);
        if (task.type === 'UNINSTALL') expect(app, what).toBeNull();
        else {
          expect(ended.app, what).toMatchObject(app ?? {});
          expect(app, what).toMatchObject({
            stage: task.type === 'STOP' ? 'STOPPED' : 'RUNNING',
            installedVersion: task.type === 'UPGRADE' ? '2.0.0' : '1.0.0',
          });
        }
        // Every record of the app is the accepted task's: the refused request left none.
        const { history } = dataOf(
          await execute(a, HistoryQuery, { filter: { app: appName }, first: 50 }, { token: TOKENS.alice }),
        );
        const taskIds = history.edges.map(({ node }) => (node.extended as { taskId?: string } | null)?.taskId);
        expect(taskIds.length, what).toBeGreaterThan(0);
        expect(new Set(taskIds), what).toEqual(new Set([task.taskId]));
      }
    });
  },
);
