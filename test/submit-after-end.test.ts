import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cloneName } from '../src/domain/operations.js';
import { availableDatabases } from './support/databases.js';
import {
  CloneAppMutation,
  InstallAppMutation,
  UninstallAppMutation,
  UpgradeAppMutation,
} from './support/operations.js';
import { seed } from './support/seed.js';
import { dataOf, execute, startTestServer, type TestServer, waitFor } from './support/server.js';

/**
 * A repeated installApp, upgradeApp, uninstallApp or cloneApp (a double click, a client's retry on another instance)
 * that arrives as the app's first task ends: its state check reads the row while that task is
 * still active, and its task insert waits on the one-active-task-per-app index until the end
 * commits. It must get the answer a request after the end gets, not a second task.
 *
 * The interleaving is forced on PostgreSQL: a third connection holds the app's row, so the first
 * task's end (which writes the task first, then the row) waits holding the task's active slot; the
 * repeated request's check then runs, and its insert waits on that slot; only then is the row
 * released. SQLite runs one writer at a time, and its transactions cannot interleave this way.
 */

const databases = await availableDatabases();

describe.skipIf(!databases.includes('postgresql'))('a request that races the end of the app’s task', () => {
  let server: TestServer;
  let blocker: pg.Client;
  let monitor: pg.Client;

  beforeAll(async () => {
    server = await startTestServer('postgresql');
    await seed(server.app.db).remoteSource();
    blocker = new pg.Client({ connectionString: server.database.url });
    monitor = new pg.Client({ connectionString: server.database.url });
    await Promise.all([blocker.connect(), monitor.connect()]);
  });
  afterAll(async () => {
    await Promise.all([blocker?.end(), monitor?.end()]);
    await server?.stop();
  });

  /** Backends of this database waiting for a lock. */
  async function lockWaiters(): Promise<number> {
    const { rows } = await monitor.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    return rows[0]?.n ?? 0;
  }

  /**
   * The first task of each case is seeded RUNNING, as the engine leaves one the app service
   * accepted. Submitted through the API, the engine's dispatch and the simulated app service's
   * first report were at times still in flight: one held the task's row waiting on the blocked app
   * row, the end waited behind it without its slot yet released, and the repeat was a CONFLICT.
   *
   * Ends `taskId` as COMPLETED while `repeat` is sent: the end waits on the app's row (held), the
   * repeat's check runs and its insert waits on the end; then the row is released.
   */
  async function endWhileRepeated<T>(appName: string, taskId: string, repeat: () => Promise<T>): Promise<T> {
    await blocker.query('BEGIN');
    await blocker.query(`SELECT 1 FROM "AppState" WHERE "userId" = 'admin' AND "appName" = $1 FOR UPDATE`, [appName]);
    const ended = server.app.services.engine.finish(taskId, 'COMPLETED');
    await waitFor(async () => ((await lockWaiters()) >= 1 ? true : undefined), 'the task end to wait on the row');
    const repeated = repeat();
    await waitFor(async () => ((await lockWaiters()) >= 2 ? true : undefined), 'the repeat to wait on the end');
    await blocker.query('COMMIT');
    expect(await ended).toBe(true);
    return repeated;
  }

  async function tasksOf(appName: string) {
    const tasks = await server.app.db.task.findMany({ where: { userId: 'admin', appName }, orderBy: { id: 'asc' } });
    return tasks.map((task) => `${task.type} ${task.status}`);
  }

  test('an install repeated as the first one completes is refused as already installed', async () => {
    await seed(server.app.db).catalogApp({ name: 'race-install', versions: ['2.0.0'] });
    const admin = seed(server.app.db).user('admin');
    const app = await admin.app({ appName: 'race-install', state: 'pending', version: '2.0.0' });
    const first = await app.task({ type: 'INSTALL', status: 'RUNNING', version: '2.0.0' });
    const input = { sourceId: 'market.olares', appName: 'race-install', version: '2.0.0' };

    const repeated = await endWhileRepeated('race-install', first.taskId, async () =>
      dataOf(await execute(server, InstallAppMutation, { input })),
    );

    expect(repeated.installApp).toEqual({
      __typename: 'InvalidStateError',
      code: 'INVALID_STATE',
      message: 'race-install is already installed (version 2.0.0); use upgradeApp to change its version',
    });
    expect(await tasksOf('race-install')).toEqual(['INSTALL COMPLETED']);
  });

  test('an uninstall repeated as the first one completes is refused as not installed, and leaves no app', async () => {
    await seed(server.app.db).catalogApp({ name: 'race-uninstall', versions: ['3.0.0'] });
    const admin = seed(server.app.db).user('admin');
    const app = await admin.app({ appName: 'race-uninstall', state: 'uninstalling', version: '3.0.0' });
    const first = await app.task({ type: 'UNINSTALL', status: 'RUNNING', version: '3.0.0' });
    const input = { sourceId: 'market.olares', appName: 'race-uninstall' };

    const repeated = await endWhileRepeated('race-uninstall', first.taskId, async () =>
      dataOf(await execute(server, UninstallAppMutation, { input })),
    );

    expect(repeated.uninstallApp).toEqual({
      __typename: 'InvalidStateError',
      code: 'INVALID_STATE',
      message: 'race-uninstall is not installed from market.olares, so it cannot uninstall',
    });
    expect(await tasksOf('race-uninstall')).toEqual(['UNINSTALL COMPLETED']);
    expect(await server.app.db.appState.findMany({ where: { userId: 'admin', appName: 'race-uninstall' } })).toEqual(
      [],
    );
  });

  test('an upgrade repeated as the first one completes is refused as already at that version', async () => {
    await seed(server.app.db).catalogApp({ name: 'race-upgrade', versions: ['2.0.0', '1.0.0'] });
    const admin = seed(server.app.db).user('admin');
    const app = await admin.app({ appName: 'race-upgrade', state: 'upgrading', version: '1.0.0' });
    const first = await app.task({ type: 'UPGRADE', status: 'RUNNING', version: '2.0.0' });
    const input = { sourceId: 'market.olares', appName: 'race-upgrade', version: '2.0.0' };

    const repeated = await endWhileRepeated('race-upgrade', first.taskId, async () =>
      dataOf(await execute(server, UpgradeAppMutation, { input })),
    );

    expect(repeated.upgradeApp).toEqual({
      __typename: 'InvalidStateError',
      code: 'INVALID_STATE',
      message: 'race-upgrade is already at version 2.0.0',
    });
    expect(await tasksOf('race-upgrade')).toEqual(['UPGRADE COMPLETED']);
  });

  test('a clone repeated as the first one completes is refused as existing', async () => {
    await seed(server.app.db).catalogApp({ name: 'race-clone', versions: ['1.0.0'], entrances: [{ name: 'web' }] });
    const admin = seed(server.app.db).user('admin');
    await admin.app({ appName: 'race-clone', state: 'running', version: '1.0.0' });
    const input = {
      sourceId: 'market.olares',
      appName: 'race-clone',
      title: 'Second',
      entrances: [{ name: 'web', title: 'Web' }],
    };
    const { name: clone } = cloneName({ ...input, envs: [] });
    const cloning = await admin.app({ appName: clone, state: 'pending', rawAppName: 'race-clone' });
    // The clone's task holds the clone's slot (its name): its end is what the repeat waits on.
    const first = await cloning.task({ type: 'CLONE', status: 'RUNNING', version: '1.0.0' });

    const repeated = await endWhileRepeated(clone, first.taskId, async () =>
      dataOf(await execute(server, CloneAppMutation, { input })),
    );

    expect(repeated.cloneApp).toEqual({
      __typename: 'InvalidStateError',
      code: 'INVALID_STATE',
      message: `A clone of race-clone with these settings already exists (${clone})`,
    });
    expect(await tasksOf(clone)).toEqual(['CLONE COMPLETED']);
  });

  test('an uninstall of the version an upgrade is leaving, sent as the upgrade completes, is refused', async () => {
    await seed(server.app.db).catalogApp({ name: 'race-uninstall-version', versions: ['2.0.0', '1.0.0'] });
    const admin = seed(server.app.db).user('admin');
    const app = await admin.app({ appName: 'race-uninstall-version', state: 'upgrading', version: '1.0.0' });
    const upgrade = await app.task({ type: 'UPGRADE', status: 'RUNNING', version: '2.0.0' });
    const input = { sourceId: 'market.olares', appName: 'race-uninstall-version', version: '1.0.0' };

    const uninstall = await endWhileRepeated('race-uninstall-version', upgrade.taskId, async () =>
      dataOf(await execute(server, UninstallAppMutation, { input })),
    );

    expect(uninstall.uninstallApp).toEqual({
      __typename: 'InvalidStateError',
      code: 'INVALID_STATE',
      message: 'race-uninstall-version is installed at version 2.0.0, not 1.0.0',
    });
    expect(await tasksOf('race-uninstall-version')).toEqual(['UPGRADE COMPLETED']);
  });
});
