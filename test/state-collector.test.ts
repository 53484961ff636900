import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { type DriverSql, driverSqlOf } from '../src/db/driver-sql.js';
import { raiseProgress } from '../src/db/hot-path-sql.js';
import { RUNTIME_TASK_COLUMNS } from '../src/db/models.js';
import { ChangeFeed, createEventBus, type EventBus } from '../src/events/change-feed.js';
import { createLogger } from '../src/platform/logger.js';
import { StateCollector } from '../src/runtime/state-collector.js';
import { StateStore } from '../src/runtime/state-store.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { createPendingInstall } from './support/rows.js';

/**
 * How the collector reads announced changes back into the StateStore: announcements of the same
 * task or app are coalesced (one read however many arrive together), and one arriving while its
 * key is being read is read again, so the store always ends with the latest committed row.
 */

const databases = await availableDatabases();
const key = { userId: 'alice', sourceId: 'market.olares', appName: 'n8n' };

/** Lets every pending microtask run: announcements reach the collector a few microtasks after publishing. */
const afterMicrotasks = () => new Promise((resolve) => setImmediate(resolve));

describe.each(databases)('state collector on %s', (kind) => {
  let database: TestDatabase;
  let db: Db;
  let bus: EventBus;
  let feed: ChangeFeed;
  let store: StateStore;
  /** Read-back statements of the collector, by table. */
  let reads: { Task: number; AppState: number };

  beforeEach(async () => {
    database = await createTestDatabase(kind);
    reads = { Task: 0, AppState: 0 };
    db = createPrismaClient(database.url, {
      onQuery: (sql) => {
        const table = /^\s*SELECT .+? FROM "(Task|AppState)"/.exec(sql)?.[1] as 'Task' | 'AppState' | undefined;
        if (table) reads[table] += 1;
      },
    });
    bus = createEventBus();
    feed = new ChangeFeed(bus);
    store = new StateStore({ bufferSize: 1000, recentFinishedTasks: 100 });
  });
  afterEach(async () => {
    await db?.$disconnect();
    await database?.drop();
  });

  function collector(client: Db = db): StateCollector {
    return new StateCollector(client, store, bus, [], null, createLogger('silent'), {
      intervalMs: 3_600_000,
      sourceTimeoutMs: 1000,
    });
  }

  async function createTask() {
    const task = await createPendingInstall(db, key, 'task-1');
    await db.task.update({ where: { taskId: 'task-1' }, data: { status: 'RUNNING' } });
    return task;
  }

  test('announcements of one task and app arriving together are read back once each', async () => {
    const task = await createTask();
    const subject = collector();
    await subject.start();
    expect(store.activeTasks()).toMatchObject([{ taskId: 'task-1', status: 'RUNNING', progress: 0 }]);
    reads = { Task: 0, AppState: 0 };

    for (const progress of [5, 10, 35, 60, 70, 85]) await raiseProgress(db, task.taskId, progress, new Date());
    // As the engine announces each of those commits, only all within one turn of the event loop.
    for (let step = 0; step < 6; step++) {
      feed.task(task);
      feed.app(key);
    }
    await afterMicrotasks(); // every announcement has arrived (and nothing was read yet)
    await subject.stop(); // returns once what was announced is read back

    expect(reads).toEqual({ Task: 1, AppState: 1 });
    // The runtime's columns of the row: not its metadata (see runtime-task-columns.test.ts).
    const select = Object.fromEntries(RUNTIME_TASK_COLUMNS.map((column) => [column, true]));
    expect(store.activeTasks()).toEqual([await db.task.findUnique({ where: { taskId: 'task-1' }, select })]);
    expect(store.app(key)).toMatchObject({ state: 'pending', derived: { stage: 'INSTALLING' } });
  });

  test('a change announced while its task is being read is read again: the store ends with the latest row', async () => {
    const task = await createTask();
    // Holds the first task read-back's rows, once, until the test has committed and announced
    // another change of the same task. The collector reads on the client's driver (db/driver-sql.ts).
    let hold: ((rows: unknown) => Promise<unknown>) | null = null;
    const driver = driverSqlOf(db);
    const read = driver.$queryRaw.bind(driver);
    driver.$queryRaw = (async (...args: Parameters<DriverSql['$queryRaw']>) => {
      const rows = await read(...args);
      const held = hold;
      hold = null;
      return held ? held(rows) : rows;
    }) as DriverSql['$queryRaw'];
    const subject = collector();
    await subject.start();
    reads = { Task: 0, AppState: 0 }; // the read-backs from here (the load at start reads the tables too)

    const heldRows = new Promise<unknown>((resolve) => {
      hold = async (rows) => {
        await raiseProgress(db, task.taskId, 35, new Date());
        feed.task(task);
        await afterMicrotasks(); // the announcement has arrived while the read is in flight
        resolve(rows);
        return rows;
      };
    });
    await raiseProgress(db, task.taskId, 5, new Date());
    feed.task(task);
    expect(await heldRows).toMatchObject([{ taskId: 'task-1', progress: 5 }]);
    await subject.stop();

    expect(reads.Task).toBe(2);
    expect(store.activeTasks()).toMatchObject([{ taskId: 'task-1', progress: 35 }]);
  });

  test('the rows loaded at start are in the store without an event each, and the store moved', async () => {
    await createTask();
    await createPendingInstall(db, { ...key, appName: 'ghost' }, 'task-2');
    const first = store.lastSequence;
    const revision = store.revision;
    const subject = collector();
    await subject.start();
    await subject.stop();

    expect(store.summary()).toMatchObject({ totalApps: 2, totalTasks: 2 });
    expect(store.app({ ...key, appName: 'ghost' })).toMatchObject({ derived: { stage: 'INSTALLING' } });
    expect(store.eventsSince(first)?.filter((event) => event.kind === 'APP_CHANGED')).toEqual([]);
    expect(store.revision).toBeGreaterThan(revision);
  });

  test('an app changed while the store loads its rows at start ends as its latest row', async () => {
    await createTask();
    // Holds the load's first page of app rows until the test has committed and announced a change
    // of that app: the page still holds the row from before it.
    let hold: ((rows: unknown) => Promise<unknown>) | null = null;
    const driver = driverSqlOf(db);
    const read = driver.$queryRaw.bind(driver);
    driver.$queryRaw = (async (...args: Parameters<DriverSql['$queryRaw']>) => {
      const rows = await read(...args);
      const text = Array.isArray(args[0]) ? args[0].join('?') : '';
      if (!hold || !text.includes('FROM "AppState" WHERE "id" >')) return rows;
      const held = hold;
      hold = null;
      return held(rows);
    }) as DriverSql['$queryRaw'];
    hold = async (rows) => {
      await db.appState.update({ where: { userId_sourceId_appName: key }, data: { state: 'downloading' } });
      feed.app(key);
      await afterMicrotasks(); // the announcement has arrived while the page is in flight
      return rows;
    };
    const subject = collector();
    await subject.start();
    await subject.stop(); // returns once what was announced is read back

    expect(hold).toBeNull();
    expect(store.app(key)).toMatchObject({ state: 'downloading' });
  });
});
