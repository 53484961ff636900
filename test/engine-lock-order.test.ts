import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AppService } from '../src/adapters/app-service/port.js';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { claimPendingTasks } from '../src/db/hot-path-sql.js';
import { TaskEngine } from '../src/engine/task-engine.js';
import { ChangeFeed, createEventBus } from '../src/events/change-feed.js';
import { createLogger } from '../src/platform/logger.js';
import { HistoryService } from '../src/services/history-service.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { createPendingInstall } from './support/rows.js';
import { waitFor } from './support/server.js';

/**
 * The task engine's transactions that write both a task and its app's state row lock them in one
 * order (task first), so on PostgreSQL a task ending (timeout, cancel) never deadlocks with a
 * progress report of the same task. SQLite runs one writer at a time and cannot deadlock.
 *
 * The test makes the dangerous interleaving happen every time: a third connection holds the app's
 * row while the progress report and the task's end both start; each then waits on a lock, and
 * only then is the row released. With the two transactions locking in opposite orders they wait
 * on each other, and PostgreSQL aborts one of them (deadlock detected).
 */

const databases = await availableDatabases();
const key = { userId: 'alice', sourceId: 'market.olares', appName: 'n8n' };

describe.skipIf(!databases.includes('postgresql'))('task engine lock order on postgresql', () => {
  let database: TestDatabase;
  let db: Db;
  let blocker: pg.Client;
  let monitor: pg.Client;
  const logged: { level: number; msg: string; err?: { message?: string } }[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('postgresql');
    db = createPrismaClient(database.url);
    blocker = new pg.Client({ connectionString: database.url });
    monitor = new pg.Client({ connectionString: database.url });
    await Promise.all([blocker.connect(), monitor.connect()]);
  });
  afterAll(async () => {
    await Promise.all([blocker?.end(), monitor?.end()]);
    await db?.$disconnect();
    await database?.drop();
  });

  function engine(): TaskEngine {
    const bus = createEventBus();
    const feed = new ChangeFeed(bus);
    const logger = createLogger('warn', { write: (line: string) => logged.push(JSON.parse(line)) });
    const unused = {} as AppService; // neither path below calls the app service
    // Not started: nothing is claimed or timed by the engine itself; the test drives both paths.
    return new TaskEngine(db, unused, new HistoryService(db, 100, bus), feed, logger, {
      concurrency: 1,
      timeoutMs: 60_000,
      pollIntervalMs: 60_000,
      leaseMs: 60_000,
      maxActivePerUser: 100,
      startRetry: { attempts: 1, firstDelayMs: 1000, maxDelayMs: 1000 },
    });
  }

  /** Backends of this database waiting for a lock (the blocker and monitor never do). */
  async function lockWaiters(): Promise<number> {
    const { rows } = await monitor.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    return rows[0]?.n ?? 0;
  }

  test('a task timing out while a progress report of it commits: both succeed', async () => {
    const started = new Date();
    await createPendingInstall(db, key, 'task-lock-order', started);
    await claimPendingTasks(db, 'another-instance', started, 1);
    const subject = engine();

    await blocker.query('BEGIN');
    await blocker.query(
      `SELECT 1 FROM "AppState" WHERE "userId" = $1 AND "sourceId" = $2 AND "appName" = $3 FOR UPDATE`,
      [key.userId, key.sourceId, key.appName],
    );
    const report = subject.onAppState({
      ...key,
      state: 'downloading',
      progress: '50',
      createTime: new Date(started.getTime() + 1),
    });
    await waitFor(async () => ((await lockWaiters()) >= 1 ? true : undefined), 'the progress report to wait');
    const timeout = subject.finish('task-lock-order', 'FAILED', { error: 'timed out' });
    await waitFor(async () => ((await lockWaiters()) >= 2 ? true : undefined), 'the task end to wait');
    await blocker.query('COMMIT');

    const [, ended] = await Promise.all([report, timeout]);
    expect(logged.filter((entry) => entry.level >= 50).map((entry) => entry.err?.message ?? entry.msg)).toEqual([]);
    expect(ended).toBe(true);
    expect(await db.task.findUnique({ where: { taskId: 'task-lock-order' } })).toMatchObject({
      status: 'FAILED',
      progress: 35, // the report committed first
      error: 'timed out',
      activeKey: null,
    });
    expect(await db.appState.findUnique({ where: { userId_sourceId_appName: key } })).toMatchObject({
      state: 'installFailed',
      progress: '50',
    });
  });
});
