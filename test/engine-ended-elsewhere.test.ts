import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import {
  type AppStateEventBody,
  type FakeAppService,
  sendEvent,
  startFakeAppService,
} from './support/fake-app-service.js';
import { APP_SERVICE_SECRET, at, installOwnApp, SOURCE, taskOf } from './support/http-app-service-world.js';
import { UninstallAppMutation, UpgradeAppMutation } from './support/operations.js';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './support/redis.js';
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
 * A task ended by another instance (the app service posted its final state report there) is no
 * longer the app's task on the instance that ran it. That instance kept it in memory until its
 * next lease heartbeat (TASK_LEASE_MS / 3): the app's next operation, started there meanwhile, had
 * every report matched against the ended task and ignored; it stayed RUNNING at progress 0, and a
 * cancel or failure of it was never seen (FAILED "timed out" at TASK_TIMEOUT_MS, the app
 * upgradeFailed though it ran on). The ended task also held one of its TASK_CONCURRENCY workers.
 *
 * The lease here is long (a heartbeat every 40 s), so only the end itself can free the instance.
 */

const databases = await availableDatabases();
/** PostgreSQL when there is one: instances share it in production. */
const kind = databases.includes('postgresql') ? 'postgresql' : databases[0];
const LONG_LEASE = { TASK_LEASE_MS: '120000' };
/** Neither instance claims on its own: each runs what its own mutations ask for. */
const NO_POLL = { TASK_POLL_INTERVAL_MS: '3600000' };
const PROMPTLY_MS = 8_000;

interface Pair {
  fake: FakeAppService;
  a: TestServer;
  b: TestServer;
}

async function startPair(env: Record<string, string> = {}): Promise<Pair> {
  const fake = await startFakeAppService();
  const common = {
    ...AUTH_ENV,
    ...LONG_LEASE,
    ...NO_POLL,
    APP_SERVICE_URL: fake.url,
    APP_SERVICE_EVENT_SECRET: APP_SERVICE_SECRET,
    APP_SERVICE_TOKEN: 'service-credential-0001',
    RECONCILE_INTERVAL_MS: '3600000',
    DEMO_DATA: '0',
    ...env,
  };
  const a = await startTestServer(kind ?? 'sqlite', { env: { ...common, INSTANCE_NAME: 'a' } });
  const b = await startTestServer(kind ?? 'sqlite', { env: { ...common, INSTANCE_NAME: 'b' }, database: a.database });
  return { fake, a, b };
}

async function stopPair({ fake, a, b }: Partial<Pair>): Promise<void> {
  await b?.stop();
  await a?.stop(); // a created the database and drops it
  await fake?.stop();
}

const report = (server: TestServer, event: Omit<AppStateEventBody, 'createTime' | 'user' | 'marketSource'>) =>
  sendEvent(`${server.url}/events/app-state`, APP_SERVICE_SECRET, {
    createTime: at(0),
    user: 'alice',
    marketSource: SOURCE,
    ...event,
  });

/** The task's op id once the app service has accepted it. */
function acceptedOpId(server: TestServer, taskId: string): Promise<string> {
  return waitFor(async () => (await taskOf(server, taskId))?.opId ?? undefined, `task ${taskId} to be accepted`);
}

function statusOf(server: TestServer, taskId: string, status: string, timeoutMs = PROMPTLY_MS) {
  return waitFor(
    async () => {
      const task = await taskOf(server, taskId);
      return task?.status === status ? task : undefined;
    },
    `task ${taskId} to be ${status}`,
    timeoutMs,
  );
}

/** Installs on A, whose task B ends (its final report goes to B); the install's task id. */
async function installEndedOnB({ a, b }: Pair, appName: string, versions: string[]): Promise<string> {
  await seed(a.app.db).catalogApp({ name: appName, versions });
  const installId = await installThroughApi(
    a,
    { sourceId: SOURCE, appName, version: versions[0] as string },
    TOKENS.alice,
  );
  const opID = await acceptedOpId(a, installId);
  expect(await report(b, { name: appName, opID, opType: 'install', state: 'running' })).toBe(202);
  await statusOf(b, installId, 'COMPLETED');
  return installId;
}

async function uninstall(server: TestServer, appName: string): Promise<string> {
  const input = { sourceId: SOURCE, appName };
  const { uninstallApp } = dataOf(await execute(server, UninstallAppMutation, { input }, { token: TOKENS.alice }));
  if (uninstallApp.__typename !== 'UninstallAppSuccess') throw new Error(JSON.stringify(uninstallApp));
  return uninstallApp.task.taskId;
}

async function upgrade(server: TestServer, appName: string, version: string): Promise<string> {
  const input = { sourceId: SOURCE, appName, version };
  const { upgradeApp } = dataOf(await execute(server, UpgradeAppMutation, { input }, { token: TOKENS.alice }));
  if (upgradeApp.__typename !== 'UpgradeAppSuccess') throw new Error(JSON.stringify(upgradeApp));
  return upgradeApp.task.taskId;
}

const appRow = (server: TestServer, appName: string) =>
  server.app.db.appState.findFirst({ where: { userId: 'alice', sourceId: SOURCE, appName } });

describe.runIf(kind)(
  'a task ended by another instance, then the app’s next operation on the instance that ran it',
  () => {
    let pair: Pair;
    beforeAll(async () => {
      pair = await startPair();
    }, 60_000);
    afterAll(() => stopPair(pair ?? {}));

    test('an uninstall started at once on A follows its own reports to COMPLETED, and the app is gone', async () => {
      const { a } = pair;
      await installEndedOnB(pair, 'ended-there-uninstall', ['1.0.0']);
      const uninstallId = await uninstall(a, 'ended-there-uninstall');
      const opID = await acceptedOpId(a, uninstallId);
      const name = 'ended-there-uninstall';
      expect(await report(a, { name, opID, opType: 'uninstall', state: 'uninstalling' })).toBe(202);
      await waitFor(async () => ((await taskOf(a, uninstallId))?.progress === 70 ? true : undefined), 'progress 70');
      expect(await report(a, { name, opID, opType: 'uninstall', state: 'uninstalled' })).toBe(202);
      await statusOf(a, uninstallId, 'COMPLETED');
      expect(await appRow(a, name)).toBeNull();
    });

    test('an upgrade started at once on A that the app service cancels ends CANCELED, the app on its old version', async () => {
      const { a } = pair;
      const name = 'ended-there-cancel';
      await installEndedOnB(pair, name, ['1.0.0', '1.1.0']);
      const upgradeId = await upgrade(a, name, '1.1.0');
      const opID = await acceptedOpId(a, upgradeId);
      expect(await report(a, { name, opID, opType: 'upgrade', state: 'upgradingCanceled' })).toBe(202);
      const canceled = await statusOf(a, upgradeId, 'CANCELED');
      expect(canceled.error ?? '').not.toMatch(/timed out/);
      expect(await appRow(a, name)).toMatchObject({ state: 'upgradingCanceled', installedVersion: '1.0.0' });
    });

    test('an uninstall B runs, whose reports go to A, completes', async () => {
      const { a, b } = pair;
      const name = 'ended-there-reported-to-a';
      await installEndedOnB(pair, name, ['1.0.0']);
      const uninstallId = await uninstall(b, name);
      const opID = await acceptedOpId(b, uninstallId);
      expect(await report(a, { name, opID, opType: 'uninstall', state: 'uninstalled' })).toBe(202);
      await statusOf(a, uninstallId, 'COMPLETED');
      expect(await appRow(a, name)).toBeNull();
    });
  },
);

const clustered = databases.includes('postgresql') && (await redisAvailable());

describe.runIf(clustered)('cluster mode: a task ended by another instance frees its worker at once', () => {
  let pair: Pair;
  const prefix = uniquePrefix();
  beforeAll(async () => {
    pair = await startPair({ REDIS_URL, REDIS_PREFIX: prefix, TASK_CONCURRENCY: '1' });
  }, 60_000);
  afterAll(async () => {
    await stopPair(pair ?? {});
    await deleteKeys(prefix);
  });

  test('with one worker, A sends its next install (another app) as soon as B has ended its first', async () => {
    const { a } = pair;
    await installEndedOnB(pair, 'ended-there-first', ['1.0.0']);
    const secondId = await installOwnApp(a, 'ended-there-second', '1.0.0');
    await waitFor(
      async () => ((await taskOf(a, secondId))?.opId ? true : undefined),
      'the second install to be sent',
      PROMPTLY_MS,
    );
  });
});
