import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import { InstallAppMutation, UninstallAppMutation } from './support/operations.js';
import { seed } from './support/seed.js';
import { dataOf, execute, installThroughApi, startTestServer, type TestServer, waitFor } from './support/server.js';

/**
 * A repeated installApp or uninstallApp (a double click, a client's retry on another instance)
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
    const input = { sourceId: 'market.olares', appName: 'race-install', version: '2.0.0' };
    const first = await installThroughApi(server, input);

    const repeated = await endWhileRepeated('race-install', first, async () =>
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
    await seed(server.app.db).user('admin').app({ appName: 'race-uninstall', state: 'running', version: '3.0.0' });
    const input = { sourceId: 'market.olares', appName: 'race-uninstall' };
    const first = dataOf(await execute(server, UninstallAppMutation, { input })).uninstallApp;
    if (first.__typename !== 'UninstallAppSuccess') throw new Error(`uninstall refused: ${JSON.stringify(first)}`);

    const repeated = await endWhileRepeated('race-uninstall', first.task.taskId, async () =>
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
});
