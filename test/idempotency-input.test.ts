import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import { InstallAppMutation, UninstallAppMutation, UpgradeAppMutation } from './support/operations.js';
import { REMOTE_SOURCE, type Seeder, startSeededServer } from './support/seed.js';
import { dataOf, execute, type TestServer, waitFor } from './support/server.js';

/**
 * An idempotencyKey names one request: repeated with the same input it returns the original task;
 * with another version, envs or option it is a client error, never the original task as though the
 * second request had been accepted.
 */

const databases = await availableDatabases();
const SOURCE = REMOTE_SOURCE;
const reused = (key: string) => ({
  __typename: 'ValidationError',
  code: 'VALIDATION',
  message: `idempotencyKey "${key}" was already used for another request`,
});

describe.each(databases)('an idempotencyKey reused on %s', (kind) => {
  let server: TestServer;
  let seed: Seeder;
  beforeAll(async () => {
    ({ server, seed } = await startSeededServer(kind, { preseed: (seed) => seed.remoteSource() }));
  });
  afterAll(() => server?.stop());

  const install = async (input: { appName: string; version: string; idempotencyKey: string; envs?: unknown[] }) =>
    dataOf(await execute(server, InstallAppMutation, { input: { sourceId: SOURCE, ...input } as never })).installApp;

  test('an install with another version or other envs is refused; the same input returns the original task', async () => {
    await seed.catalogApp({ name: 'keyed-install', versions: ['2.0.0', '1.0.0'] });
    const envs = [{ name: 'TZ', value: 'UTC' }];
    const request = { appName: 'keyed-install', version: '1.0.0', idempotencyKey: 'keyed-install-1', envs };
    const first = await install(request);
    if (first.__typename !== 'InstallAppSuccess') throw new Error(`install refused: ${JSON.stringify(first)}`);

    expect(await install({ ...request, version: '2.0.0' })).toMatchObject(reused('keyed-install-1'));
    expect(await install({ ...request, envs: [{ name: 'TZ', value: 'Europe/Paris' }] })).toMatchObject(
      reused('keyed-install-1'),
    );
    expect(await install({ ...request, envs: [] })).toMatchObject(reused('keyed-install-1'));
    // The same request, its fields in another order: the original task.
    const envsFirst = [{ value: 'UTC', name: 'TZ' }];
    const again = await install({
      idempotencyKey: 'keyed-install-1',
      envs: envsFirst,
      version: '1.0.0',
      appName: 'keyed-install',
    });
    expect(again).toMatchObject({ __typename: 'InstallAppSuccess', task: { taskId: first.task.taskId } });
    expect(await server.app.db.task.count({ where: { appName: 'keyed-install' } })).toBe(1);
  });

  test('an uninstall with other options is refused', async () => {
    await seed.catalogApp({ name: 'keyed-uninstall', versions: ['1.0.0'] });
    await seed.user('admin').app({ appName: 'keyed-uninstall', state: 'running', version: '1.0.0' });
    const uninstall = async (options: { deleteData?: boolean }) =>
      dataOf(
        await execute(server, UninstallAppMutation, {
          input: { sourceId: SOURCE, appName: 'keyed-uninstall', idempotencyKey: 'keyed-uninstall-1', ...options },
        }),
      ).uninstallApp;
    const first = await uninstall({});
    if (first.__typename !== 'UninstallAppSuccess') throw new Error(`uninstall refused: ${JSON.stringify(first)}`);

    expect(await uninstall({ deleteData: true })).toEqual(reused('keyed-uninstall-1'));
    expect(await uninstall({})).toMatchObject({ task: { taskId: first.task.taskId } });
  });

  test('a retry spelling out the defaults or listing the envs in another order returns the original task', async () => {
    await seed.catalogApp({ name: 'keyed-defaults', versions: ['1.0.0'] });
    await seed.user('admin').app({ appName: 'keyed-defaults', state: 'running', version: '1.0.0' });
    const uninstall = async (options: { all?: boolean; deleteData?: boolean }) =>
      dataOf(
        await execute(server, UninstallAppMutation, {
          input: { sourceId: SOURCE, appName: 'keyed-defaults', idempotencyKey: 'keyed-defaults-1', ...options },
        }),
      ).uninstallApp;
    const first = await uninstall({});
    if (first.__typename !== 'UninstallAppSuccess') throw new Error(`uninstall refused: ${JSON.stringify(first)}`);
    expect(await uninstall({ all: false, deleteData: false })).toMatchObject({ task: { taskId: first.task.taskId } });
    expect(await uninstall({ all: true })).toEqual(reused('keyed-defaults-1'));

    await seed.catalogApp({ name: 'keyed-envs', versions: ['1.0.0'] });
    const envs = [
      { name: 'A', value: '1' },
      { name: 'B', value: '2' },
    ];
    const request = { appName: 'keyed-envs', version: '1.0.0', idempotencyKey: 'keyed-envs-1' };
    const installed = await install({ ...request, envs });
    if (installed.__typename !== 'InstallAppSuccess') throw new Error(`install refused: ${JSON.stringify(installed)}`);
    expect(await install({ ...request, envs: [...envs].reverse() })).toMatchObject({
      __typename: 'InstallAppSuccess',
      task: { taskId: installed.task.taskId },
    });
    expect(await install({ ...request, envs: [envs[1], { name: 'A', value: '3' }] })).toMatchObject(
      reused('keyed-envs-1'),
    );
    expect(await server.app.db.task.count({ where: { appName: { in: ['keyed-defaults', 'keyed-envs'] } } })).toBe(2);
  });
});

/**
 * The same key sent twice at once with different versions: the second request's replay finds no
 * task yet, and its insert loses to the first on the key's unique index (lostRace). Forced on
 * PostgreSQL: a third connection holds the app's row, so the first request's transaction waits
 * having inserted its task; the second's insert waits on it; then the row is released.
 */
describe.skipIf(!databases.includes('postgresql'))('an idempotencyKey reused at the same moment', () => {
  let server: TestServer;
  let seed: Seeder;
  let blocker: pg.Client;
  beforeAll(async () => {
    ({ server, seed } = await startSeededServer('postgresql', { preseed: (seed) => seed.remoteSource() }));
    blocker = new pg.Client({ connectionString: server.database.url });
    await blocker.connect();
  });
  afterAll(async () => {
    await blocker?.end();
    await server?.stop();
  });

  async function lockWaiters(): Promise<number> {
    const [row] = await server.app.db.$queryRawUnsafe<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    return row?.n ?? 0;
  }

  test('with another version, the request that loses the insert is refused, not given the winner’s task', async () => {
    await seed.catalogApp({ name: 'keyed-race', versions: ['3.0.0', '2.0.0', '1.0.0'] });
    await seed.user('admin').app({ appName: 'keyed-race', state: 'running', version: '1.0.0' });
    const upgrade = async (version: string) =>
      dataOf(
        await execute(server, UpgradeAppMutation, {
          input: { sourceId: SOURCE, appName: 'keyed-race', version, idempotencyKey: 'keyed-race-1' },
        }),
      ).upgradeApp;

    await blocker.query('BEGIN');
    await blocker.query(`SELECT 1 FROM "AppState" WHERE "userId" = 'admin' AND "appName" = 'keyed-race' FOR UPDATE`);
    const winner = upgrade('2.0.0');
    await waitFor(async () => ((await lockWaiters()) >= 1 ? true : undefined), 'the first upgrade to wait on the row');
    const loser = upgrade('3.0.0');
    await waitFor(async () => ((await lockWaiters()) >= 2 ? true : undefined), 'the second upgrade to wait on it');
    await blocker.query('COMMIT');

    expect(await winner).toMatchObject({ __typename: 'UpgradeAppSuccess', task: { version: '2.0.0' } });
    expect(await loser).toEqual(reused('keyed-race-1'));
  });
});
