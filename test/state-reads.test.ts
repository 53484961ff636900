import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { driverSqlOf } from '../src/db/driver-sql.js';
import { RUNTIME_TASK_COLUMNS } from '../src/db/models.js';
import {
  activeRuntimeTasks,
  allActiveTasks,
  allAppStates,
  appStatePages,
  latestFinishedRuntimeTasks,
  runtimeTasks,
} from '../src/db/state-reads.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';

/**
 * The contract of src/db/state-reads.ts: on the driver, each whole-table read returns exactly the
 * rows (values and types: Dates, parsed JSON, nulls) and the order that Prisma's query API returns
 * for the same question, on both providers.
 */

const databases = await availableDatabases();
const T0 = new Date('2026-11-22T18:14:09.003Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
/** The columns the runtime state reads of a task, as Prisma's `select` names them. */
const RUNTIME_SELECT = Object.fromEntries(RUNTIME_TASK_COLUMNS.map((column) => [column, true]));

describe.each(databases)('whole-table state reads on %s', (kind) => {
  let database: TestDatabase;
  let db: Db;
  beforeAll(async () => {
    database = await createTestDatabase(kind);
    db = createPrismaClient(database.url);
    const statuses = ['COMPLETED', 'RUNNING', 'FAILED', 'PENDING', 'CANCELED', 'COMPLETED'];
    for (const [index, status] of statuses.entries()) {
      const finished = status !== 'PENDING' && status !== 'RUNNING';
      await db.task.create({
        data: {
          taskId: `task-${index}`,
          type: 'INSTALL',
          status,
          userId: index % 2 ? 'alice' : 'bob',
          sourceId: 'market.olares',
          appName: `app-${index}`,
          version: '1.0.0',
          metadata: { cfgType: 'app', envs: [{ name: 'A', value: 'it\'s "quoted"' }] },
          result: finished ? { operation: 'install', response: { code: 200 } } : undefined,
          error: status === 'FAILED' ? 'boom' : null,
          activeKey: finished ? null : `alice/market.olares/app-${index}`,
          progress: finished ? 100 : 40,
          createdAt: at(index),
          completedAt: finished ? at(index + 100) : null,
        },
      });
      await db.appState.create({
        data: {
          userId: index % 2 ? 'alice' : 'bob',
          sourceId: 'market.olares',
          appName: `app-${index}`,
          title: index === 0 ? null : `it's "app ${index}"`,
          installedVersion: index % 3 ? '1.0.0' : null,
          state: index === 4 ? '' : 'running',
          eventTime: at(index),
          entrances:
            index % 2
              ? [{ name: 'web', url: `https://app-${index}.example`, invisible: false, authLevel: 'private' }]
              : undefined,
        },
      });
    }
  });
  afterAll(async () => {
    await db?.$disconnect();
    await database?.drop();
  });

  test('every app state row, oldest first, as appState.findMany returns it', async () => {
    const rows = await allAppStates(driverSqlOf(db));
    expect(rows).toHaveLength(6);
    expect(rows).toEqual(await db.appState.findMany({ orderBy: { id: 'asc' } }));
  });

  test('the app state rows a page at a time: every row once, in order, whether or not the pages divide them', async () => {
    const expected = await db.appState.findMany({ orderBy: { id: 'asc' } });
    for (const [pageRows, sizes] of [
      [4, [4, 2]],
      [3, [3, 3]],
      [6, [6]],
      [100, [6]],
    ] as const) {
      const pages = [];
      for await (const page of appStatePages(driverSqlOf(db), pageRows)) pages.push(page);
      expect(pages.map((page) => page.length)).toEqual(sizes);
      expect(pages.flat()).toEqual(expected);
    }
  });

  test('a whole-table read lets the event loop turn between its pages (SQLite runs statements synchronously)', async () => {
    let turned = false;
    setImmediate(() => {
      turned = true;
    });
    const seenBefore: boolean[] = [];
    for await (const _page of appStatePages(driverSqlOf(db), 2)) seenBefore.push(turned);
    // On PostgreSQL the statements' I/O lets it turn anyway; on SQLite only the pauses between pages do.
    expect(seenBefore).toHaveLength(3);
    expect(seenBefore.at(-1)).toBe(true);
  });

  test('every PENDING or RUNNING task, oldest first', async () => {
    const rows = await allActiveTasks(driverSqlOf(db));
    expect(rows.map((task) => task.taskId)).toEqual(['task-1', 'task-3']);
    expect(rows).toEqual(
      await db.task.findMany({ where: { status: { in: ['PENDING', 'RUNNING'] } }, orderBy: { id: 'asc' } }),
    );
  });

  test('every PENDING or RUNNING task with the runtime columns (no metadata), oldest first', async () => {
    const rows = await activeRuntimeTasks(driverSqlOf(db));
    expect(rows.map((task) => task.taskId)).toEqual(['task-1', 'task-3']);
    expect(rows).toEqual(
      await db.task.findMany({
        where: { status: { in: ['PENDING', 'RUNNING'] } },
        orderBy: { id: 'asc' },
        select: RUNTIME_SELECT,
      }),
    );
    expect(rows.every((task) => !('metadata' in task))).toBe(true);
  });

  test('the latest finished tasks with the runtime columns, newest first, at most the number asked for', async () => {
    const rows = await latestFinishedRuntimeTasks(driverSqlOf(db), 3);
    expect(rows.map((task) => task.taskId)).toEqual(['task-5', 'task-4', 'task-2']);
    expect(rows).toEqual(
      await db.task.findMany({
        where: { status: { notIn: ['PENDING', 'RUNNING'] } },
        orderBy: { id: 'desc' },
        take: 3,
        select: RUNTIME_SELECT,
      }),
    );
  });

  test('tasks by id with the runtime columns, those that exist', async () => {
    const rows = await runtimeTasks(driverSqlOf(db), ['task-4', 'task-0', 'task-unknown']);
    const byId = (a: { id: number }, b: { id: number }) => a.id - b.id;
    expect(rows.sort(byId)).toEqual(
      await db.task.findMany({
        where: { taskId: { in: ['task-0', 'task-4'] } },
        orderBy: { id: 'asc' },
        select: RUNTIME_SELECT,
      }),
    );
    expect(await runtimeTasks(driverSqlOf(db), [])).toEqual([]);
  });
});
