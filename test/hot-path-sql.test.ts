import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import {
  applyReportedState,
  claimPendingTasks,
  deleteAppStateRow,
  endTask,
  findActiveTasks,
  findAppState,
  findAppStates,
  findCatalogApp,
  findTasks,
  insertHistory,
  insertTask,
  isUniqueViolation,
  markDispatched,
  raiseProgress,
  setAppOperation,
  setAppStateFailure,
  setInstalledVersion,
  setTaskAccepted,
  setTaskResult,
  upsertAppStateForTask,
} from '../src/db/hot-path-sql.js';
import { appKeyString } from '../src/domain/app-key.js';
import { JsonNull } from '../src/generated/prisma-sqlite/internal/prismaNamespace.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';

/**
 * The contract of src/db/hot-path-sql.ts: rows its raw statements write read back through Prisma
 * exactly as the rows Prisma's query API writes, rows they read are exactly what the query API
 * returns, on both providers, and its conditional statements keep their conditions.
 */

const databases = await availableDatabases();

const T0 = new Date('2026-11-22T18:14:09.003Z');
const later = (ms: number) => new Date(T0.getTime() + ms);
const key = (appName: string) => ({ userId: 'alice', sourceId: 'market.olares', appName });
const metadata = { cfgType: 'app', envs: [{ name: 'A', value: 'it\'s "quoted"' }], appId: 'x' };

function newTask(appName: string, createdAt = T0) {
  return {
    taskId: `task-${appName}`,
    type: 'INSTALL',
    ...key(appName),
    version: '1.0.0',
    metadata,
    idempotencyKey: null,
    activeKey: appKeyString(key(appName)),
    retryOfTaskId: null,
    createdAt,
  };
}

describe.each(databases)('hot-path SQL on %s', (kind) => {
  let database: TestDatabase;
  let db: Db;
  beforeAll(async () => {
    database = await createTestDatabase(kind);
    db = createPrismaClient(database.url);
  });
  afterAll(async () => {
    await db?.$disconnect();
    await database?.drop();
  });

  /** A PENDING install of `name` with its app's state row, as a submission writes them. */
  async function taskWithAppRow(name: string, title: string) {
    await insertTask(db, newTask(name));
    await upsertAppStateForTask(db, {
      ...key(name),
      opType: 'install',
      targetVersion: '1.0.0',
      cfgType: 'app',
      title,
      rawAppName: null,
      now: T0,
    });
  }

  test('a task, its app state row and a history record read back as the ones Prisma writes', async () => {
    const [raw] = await insertTask(db, newTask('raw'));
    const viaPrisma = await db.task.create({
      data: { ...newTask('prisma'), status: 'PENDING', updatedAt: T0 },
    });
    const { id: _a, taskId: _b, appName: _c, activeKey: _d, ...rawRest } = raw!;
    const { id: _e, taskId: _f, appName: _g, activeKey: _h, ...prismaRest } = viaPrisma;
    expect(rawRest).toEqual(prismaRest);
    expect(await db.task.findUnique({ where: { taskId: 'task-raw' } })).toEqual(raw);

    await upsertAppStateForTask(db, {
      ...key('raw'),
      opType: 'install',
      targetVersion: '1.0.0',
      cfgType: 'app',
      title: 'Raw',
      rawAppName: null,
      now: T0,
    });
    await db.appState.create({
      data: {
        ...key('prisma'),
        state: 'pending',
        opType: 'install',
        targetVersion: '1.0.0',
        cfgType: 'app',
        title: 'Raw',
        rawAppName: null,
        eventTime: T0,
        createdAt: T0,
        updatedAt: T0,
      },
    });
    const rawApp = await findAppState(db, key('raw'));
    const prismaApp = await db.appState.findUnique({ where: { userId_sourceId_appName: key('prisma') } });
    expect({ ...rawApp, id: 0, appName: '' }).toEqual({ ...prismaApp, id: 0, appName: '' });

    const entry = { type: 'ACTION_INSTALL', message: 'install raw', app: 'raw', userId: 'alice', time: T0 };
    const [record] = await insertHistory(db, { ...entry, extended: { taskId: 'task-raw', retryOf: null } });
    const [bare] = await insertHistory(db, entry);
    expect(await db.historyRecord.findUnique({ where: { id: record!.id } })).toEqual({
      ...entry,
      id: record!.id,
      extended: { taskId: 'task-raw', retryOf: null },
    });
    expect(bare?.extended).toBeNull();
  });

  test('DateTime columns are stored in Prisma’s own format, so comparisons on them keep working', async () => {
    await insertTask(db, newTask('format'));
    const stored =
      kind === 'sqlite'
        ? await db.$queryRawUnsafe<{ t: string }[]>(
            `SELECT "createdAt" || '' AS t FROM "Task" WHERE "taskId" = 'task-format'`,
          )
        : await db.$queryRawUnsafe<{ t: string }[]>(
            `SELECT "createdAt"::text AS t FROM "Task" WHERE "taskId" = 'task-format'`,
          );
    expect(stored[0]?.t).toBe(kind === 'sqlite' ? '2026-11-22T18:14:09.003+00:00' : '2026-11-22 18:14:09.003');
    expect(await db.task.count({ where: { taskId: 'task-format', createdAt: { gte: T0, lte: T0 } } })).toBe(1);
  });

  test('the app state row takes a report unless it holds a newer one; unreported op fields stay', async () => {
    await upsertAppStateForTask(db, {
      ...key('events'),
      opType: 'install',
      targetVersion: '1.0.0',
      cfgType: 'app',
      title: null,
      rawAppName: null,
      now: T0,
    });
    const report = (state: string, at: Date, opId: string | null) => ({
      ...key('events'),
      state,
      progress: null,
      reason: null,
      message: null,
      eventTime: at,
      opId,
      opType: null,
      rawAppName: null,
    });
    expect(await applyReportedState(db, report('downloading', later(10), 'op-1'), later(10))).toBe(1);
    expect(await applyReportedState(db, report('installing', later(20), null), later(20))).toBe(1);
    expect(await applyReportedState(db, report('pending', later(5), 'op-0'), later(30))).toBe(0); // older
    const row = await db.appState.findUnique({ where: { userId_sourceId_appName: key('events') } });
    expect(row).toMatchObject({ state: 'installing', opId: 'op-1', opType: 'install', eventTime: later(20) });
    expect(row?.updatedAt).toEqual(later(20));

    await setAppOperation(db, key('events'), 'op-2', 'install', later(25));
    await setInstalledVersion(db, key('events'), '1.0.0', later(26));
    expect(await findAppState(db, key('events'))).toMatchObject({
      opId: 'op-2',
      installedVersion: '1.0.0',
      state: 'installing',
      updatedAt: later(26),
    });

    // upsert of an existing row: the new operation, the reported state stays
    await upsertAppStateForTask(db, {
      ...key('events'),
      opType: 'upgrade',
      targetVersion: '2.0.0',
      cfgType: 'app',
      title: 'ignored',
      rawAppName: null,
      now: later(40),
    });
    expect(await findAppState(db, key('events'))).toMatchObject({
      state: 'installing',
      opType: 'upgrade',
      opId: null,
      targetVersion: '2.0.0',
      installedVersion: '1.0.0',
      title: null,
      eventTime: later(20),
      updatedAt: later(40),
    });
  });

  test('claims take the oldest pending tasks once; progress only rises; a task ends once', async () => {
    await db.task.updateMany({ where: { status: 'PENDING' }, data: { status: 'CANCELED', activeKey: null } });
    for (const [index, name] of ['c1', 'c2', 'c3'].entries()) await insertTask(db, newTask(name, later(index)));
    const first = await claimPendingTasks(db, 'worker-a', later(100), 2);
    expect(first.map((task) => task.taskId)).toEqual(['task-c1', 'task-c2']);
    expect(first[0]).toMatchObject({ status: 'RUNNING', workerId: 'worker-a', startedAt: later(100), metadata });
    const second = await claimPendingTasks(db, 'worker-b', later(101), 5);
    expect(second.map((task) => task.taskId)).toEqual(['task-c3']);
    expect(await claimPendingTasks(db, 'worker-b', later(102), 5)).toEqual([]);

    expect(await markDispatched(db, 'task-c1', 'worker-b', later(103))).toBe(false); // not its task
    expect(await markDispatched(db, 'task-c1', 'worker-a', later(103))).toBe(true);
    const accepted = { operation: 'install', opID: 'op-c1', status: 'success', backend_response: { code: 200 } };
    expect(await setTaskAccepted(db, 'task-c1', 'op-c1', accepted, later(103))).toBe(1);
    expect(await db.task.findUnique({ where: { taskId: 'task-c1' } })).toMatchObject({
      dispatchedAt: later(103),
      opId: 'op-c1',
      result: accepted,
      updatedAt: later(103),
    });
    // No op id in the answer (uninstall, stop): the one the task has is kept.
    expect(await setTaskAccepted(db, 'task-c1', null, { ...accepted, opID: null }, later(103))).toBe(1);
    expect(await db.task.findUnique({ where: { taskId: 'task-c1' } })).toMatchObject({
      opId: 'op-c1',
      result: { ...accepted, opID: null },
    });

    expect(await raiseProgress(db, 'task-c1', 35, later(104))).toBe(1);
    expect(await raiseProgress(db, 'task-c1', 10, later(105))).toBe(0);
    expect((await db.task.findUnique({ where: { taskId: 'task-c1' } }))?.progress).toBe(35);

    const ended = await endTask(db, 'task-c1', { status: 'FAILED', now: later(106), error: 'boom', result: { a: 1 } });
    expect(ended).toMatchObject({
      status: 'FAILED',
      activeKey: null,
      progress: 35,
      error: 'boom',
      result: { a: 1 },
      completedAt: later(106),
    });
    expect(await endTask(db, 'task-c1', { status: 'COMPLETED', now: later(107), progress: 100 })).toBeNull();
    expect(await setTaskAccepted(db, 'task-c1', 'op-late', accepted, later(107))).toBe(0); // only while running
    expect(await db.task.findUnique({ where: { taskId: 'task-c1' } })).toEqual(ended);
    expect(await markDispatched(db, 'task-c1', 'worker-a', later(108))).toBe(false); // no longer running
  });

  test('the read-back of several tasks and app rows returns what Prisma reads, and nothing for unknown keys', async () => {
    for (const name of ['read-a', 'read-b']) await taskWithAppRow(name, `it's "${name}"`);
    await endTask(db, 'task-read-b', { status: 'FAILED', now: later(1), error: 'boom', result: { a: [1] } });
    const byId = <T extends { id: number }>(rows: T[]) => [...rows].sort((a, b) => a.id - b.id);

    const tasks = await findTasks(db, ['task-read-a', 'task-read-b', 'task-unknown']);
    expect(byId(tasks)).toEqual(
      await db.task.findMany({ where: { taskId: { in: ['task-read-a', 'task-read-b'] } }, orderBy: { id: 'asc' } }),
    );
    expect(await findTasks(db, [])).toEqual([]);

    const apps = await findAppStates(db, [
      key('read-a'),
      key('read-b'),
      key('read-unknown'),
      { ...key('read-a'), userId: 'bob' },
    ]);
    expect(byId(apps)).toEqual(
      await db.appState.findMany({ where: { appName: { in: ['read-a', 'read-b'] } }, orderBy: { id: 'asc' } }),
    );
    // Each key matches as a whole: alice's read-a and bob's read-b is not alice's read-b.
    expect(await findAppStates(db, [key('read-a'), { ...key('read-b'), userId: 'bob' }])).toMatchObject([
      { userId: 'alice', appName: 'read-a' },
    ]);
    expect(await findAppStates(db, [])).toEqual([]);

    // read-a's task is still pending (its slot taken), read-b's ended (its slot freed).
    const active = await findActiveTasks(db, [appKeyString(key('read-a')), appKeyString(key('read-b')), 'unknown']);
    expect(active).toEqual(
      await db.task.findMany({
        where: { activeKey: { in: [appKeyString(key('read-a')), appKeyString(key('read-b'))] } },
      }),
    );
    expect(active.map((task) => task.taskId)).toEqual(['task-read-a']);
    expect(await findActiveTasks(db, [])).toEqual([]);
  });

  test('the catalogue lookup returns exactly what Prisma’s findUnique returns, and null where it does', async () => {
    const entry = (sourceId: string, name: string) => ({
      sourceId,
      appId: `${sourceId}/${name}`,
      name,
      version: '1.70.1',
      versions: ['1.70.1', '1.69.0'],
      searchText: name,
      entry: { chart: `${name}-1.70.1.tgz`, ports: [5678], options: { nested: null, flag: true } },
    });
    await db.catalogApp.create({
      data: {
        ...entry('market.olares', 'n8n'),
        cfgType: 'middleware',
        title: 'n8n',
        description: 'it\'s "quoted" — ünïcode',
        paid: true,
        price: { amount: '9.99', currency: 'USD', tiers: [1, 2.5] },
        createdAt: T0,
        updatedAt: later(1),
      },
    });
    // The same name in another source, with every optional column left to its default or null;
    // and a JSON null price (not SQL NULL), which Prisma also reads back as null.
    await db.catalogApp.create({ data: entry('market.local', 'n8n') });
    await db.catalogApp.createMany({ data: [{ ...entry('market.local', 'local-only'), price: JsonNull }] });

    const lookups: [string, string][] = [
      ['market.olares', 'n8n'],
      ['market.local', 'n8n'],
      ['market.local', 'local-only'],
      ['market.olares', 'local-only'], // another source's app
      ['market.olares', 'no-such-app'],
      ['market.olares', 'N8N'], // names match exactly, case included
      ['nowhere', 'n8n'],
    ];
    const found = [];
    for (const [sourceId, name] of lookups) {
      const raw = await findCatalogApp(db, sourceId, name);
      const viaPrisma = await db.catalogApp.findUnique({ where: { sourceId_name: { sourceId, name } } });
      expect(raw, `${sourceId}/${name}`).toStrictEqual(viaPrisma);
      found.push(raw && `${raw.sourceId}/${raw.name}`);
    }
    expect(found).toEqual(['market.olares/n8n', 'market.local/n8n', 'market.local/local-only', null, null, null, null]);
    // Typed as Prisma types them (not SQLite's 0/1 or JSON text), so the callers' checks hold.
    expect(await findCatalogApp(db, 'market.olares', 'n8n')).toMatchObject({
      paid: true,
      versions: ['1.70.1', '1.69.0'],
      price: { amount: '9.99', currency: 'USD', tiers: [1, 2.5] },
      createdAt: T0,
      updatedAt: later(1),
    });
    expect(await findCatalogApp(db, 'market.local', 'n8n')).toMatchObject({ paid: false, price: null, title: null });
  });

  test('a unique violation is recognised from the raw statements as from the query API', async () => {
    await insertTask(db, newTask('unique'));
    const raw = await insertTask(db, { ...newTask('unique'), taskId: 'task-unique-2' }).catch((error) => error);
    const viaPrisma = await db.task
      .create({ data: { ...newTask('unique'), taskId: 'task-unique-3', status: 'PENDING' } })
      .catch((error) => error);
    expect(isUniqueViolation(raw)).toBe(true);
    expect(isUniqueViolation(viaPrisma)).toBe(true);
    expect(isUniqueViolation(new Error('other'))).toBe(false);
  });

  test("a task's end writes (a replaced result, an app row failed or removed) read back as Prisma's updates", async () => {
    for (const name of ['end-raw', 'end-prisma']) await taskWithAppRow(name, name);
    const result = { status: 'failed', response: { code: 500 }, error: 'it\'s "quoted"' };
    expect(await setTaskResult(db, 'task-end-raw', result, later(50))).toBe(1);
    await db.task.update({ where: { taskId: 'task-end-prisma' }, data: { result, updatedAt: later(50) } });
    const [raw, viaPrisma] = await Promise.all(
      ['task-end-raw', 'task-end-prisma'].map((taskId) => db.task.findUnique({ where: { taskId } })),
    );
    const { id: _a, taskId: _b, appName: _c, activeKey: _d, ...rawRest } = raw!;
    const { id: _e, taskId: _f, appName: _g, activeKey: _h, ...prismaRest } = viaPrisma!;
    expect(rawRest).toEqual(prismaRest);
    expect(rawRest.result).toEqual(result);

    const rows = await Promise.all(['end-raw', 'end-prisma'].map((name) => findAppState(db, key(name))));
    const [rawRow, prismaRow] = rows as [NonNullable<(typeof rows)[0]>, NonNullable<(typeof rows)[0]>];
    // A failure with a new state, then one that keeps the state (a failed stop or resume).
    expect(await setAppStateFailure(db, rawRow.id, { state: 'installFailed', reason: 'boom' }, later(60))).toBe(1);
    await db.appState.update({
      where: { id: prismaRow.id },
      data: { state: 'installFailed', reason: 'boom', updatedAt: later(60) },
    });
    expect(await setAppStateFailure(db, rawRow.id, { state: null, reason: 'again' }, later(70))).toBe(1);
    await db.appState.update({ where: { id: prismaRow.id }, data: { reason: 'again', updatedAt: later(70) } });
    const [rawAfter, prismaAfter] = await Promise.all(
      ['end-raw', 'end-prisma'].map((name) => findAppState(db, key(name))),
    );
    expect({ ...rawAfter, id: 0, appName: '', title: '' }).toEqual({ ...prismaAfter, id: 0, appName: '', title: '' });
    expect(rawAfter).toMatchObject({ state: 'installFailed', reason: 'again', updatedAt: later(70) });

    expect(await deleteAppStateRow(db, rawRow.id)).toBe(1);
    expect(await deleteAppStateRow(db, rawRow.id)).toBe(0);
    expect(await findAppState(db, key('end-raw'))).toBeNull();
    expect(await findAppState(db, key('end-prisma'))).not.toBeNull();
  });
});
