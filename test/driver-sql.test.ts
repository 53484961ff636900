import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { type DriverSql, driverSqlOf } from '../src/db/driver-sql.js';
import {
  claimPendingTasks,
  endTask,
  findActiveTasks,
  findAppState,
  findAppStates,
  findCatalogApp,
  findTasks,
  insertTask,
  isUniqueViolation,
} from '../src/db/hot-path-sql.js';
import { appKeyString } from '../src/domain/app-key.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';

/**
 * The contract of src/db/driver-sql.ts: statements sent straight to the driver read rows exactly
 * as Prisma's query API returns them (Dates, parsed JSON, booleans, numbers), write rows Prisma
 * reads back as its own (so text comparisons of SQLite's DateTime columns keep ordering), keep
 * transactions whole, and fail with errors the services recognise.
 */

const databases = await availableDatabases();
const T0 = new Date('2026-11-22T18:14:09.003Z');
const later = (ms: number) => new Date(T0.getTime() + ms);
const key = (appName: string) => ({ userId: 'alice', sourceId: 'market.olares', appName });

describe.each(databases)('driver-level SQL on %s', (kind) => {
  let database: TestDatabase;
  let db: Db;
  let driver: DriverSql;
  beforeAll(async () => {
    database = await createTestDatabase(kind);
    db = createPrismaClient(database.url);
    driver = driverSqlOf(db);
  });
  afterAll(async () => {
    await db?.$disconnect();
    await database?.drop();
  });

  test('rows Prisma wrote read back through the driver exactly as Prisma’s query API returns them', async () => {
    const source = await db.marketSource.create({
      data: { sourceId: 'driver-src', title: 'Driver', type: 'remote', nsfw: true, isActive: false, updatedAt: T0 },
    });
    const app = await db.catalogApp.create({
      data: {
        sourceId: 'driver-src',
        appId: 'a1',
        name: 'drive',
        version: '1.0.0',
        versions: ['1.0.0', '0.9.0'],
        searchText: 'drive',
        paid: true,
        price: { amount: '1.5', nested: { quoted: 'it\'s "x"' } },
        entry: { title: { 'en-US': 'Drive' }, list: [1, null, true] },
        updatedAt: T0,
      },
    });
    const state = await db.appState.create({
      data: { ...key('drive'), eventTime: T0, entrances: [{ name: 'drive', invisible: false }], updatedAt: T0 },
    });
    const [task] = await insertTask(db, {
      taskId: 'driver-task',
      type: 'INSTALL',
      ...key('drive'),
      version: '1.0.0',
      metadata: { cfgType: 'app', envs: [] },
      idempotencyKey: null,
      activeKey: appKeyString(key('drive')),
      retryOfTaskId: null,
      createdAt: T0,
    });

    const [sourceRow] = await driver.$queryRaw<
      unknown[]
    >`SELECT * FROM "MarketSource" WHERE "sourceId" = ${'driver-src'}`;
    expect(sourceRow).toEqual(source);
    expect(await findCatalogApp(driver, 'driver-src', 'drive')).toEqual(app);
    expect(await findAppState(driver, key('drive'))).toEqual(state);
    expect(await findAppStates(driver, [key('drive'), key('missing')])).toEqual([state]);
    expect(await findTasks(driver, ['driver-task'])).toEqual([task]);
    expect(await findActiveTasks(driver, [appKeyString(key('drive'))])).toEqual([task]);
    expect(await findAppState(driver, key('missing'))).toBeNull();
  });

  test('rows the driver writes read back through Prisma as its own, and DateTime comparisons keep working', async () => {
    await insertTask(db, {
      taskId: 'driver-written',
      type: 'INSTALL',
      ...key('written'),
      version: null,
      metadata: { cfgType: 'app', envs: [{ name: 'A', value: 'b' }] },
      idempotencyKey: 'idem-1',
      activeKey: appKeyString(key('written')),
      retryOfTaskId: null,
      createdAt: T0,
    });
    // The claim writes Dates and reads the row back (RETURNING).
    const claimed = await claimPendingTasks(driver, 'worker-1', later(5), 10);
    const task = claimed.find((row) => row.taskId === 'driver-written');
    expect(task).toMatchObject({
      taskId: 'driver-written',
      status: 'RUNNING',
      startedAt: later(5),
      workerId: 'worker-1',
    });
    expect(await db.task.findUnique({ where: { taskId: 'driver-written' } })).toEqual(task);
    // The same instant written by Prisma and by the driver compares equal in SQL.
    const same = await driver.$queryRaw<{ taskId: string }[]>`
      SELECT "taskId" FROM "Task" WHERE "startedAt" = ${later(5)} AND "startedAt" <= ${later(5)} AND "startedAt" > ${later(4)}`;
    expect(same.map((row) => row.taskId).sort()).toEqual(['driver-task', 'driver-written']);

    const ended = await endTask(driver, 'driver-written', {
      status: 'FAILED',
      now: later(9),
      error: 'no',
      opId: 'op-1',
    });
    expect(ended).toEqual(await db.task.findUnique({ where: { taskId: 'driver-written' } }));
    expect(ended).toMatchObject({ status: 'FAILED', completedAt: later(9), opId: 'op-1', activeKey: null });
  });

  test('a transaction commits whole or not at all, and a unique violation is recognised', async () => {
    await driver.$transaction(async (tx) => {
      await tx.$executeRaw`INSERT INTO "HistoryRecord" ("type", "message", "userId", "time") VALUES ('system', 'one', 'alice', ${T0})`;
      await tx.$executeRaw`INSERT INTO "HistoryRecord" ("type", "message", "userId", "time") VALUES ('system', 'two', 'alice', ${T0})`;
    });
    await expect(
      driver.$transaction(async (tx) => {
        await tx.$executeRaw`INSERT INTO "HistoryRecord" ("type", "message", "userId", "time") VALUES ('system', 'three', 'alice', ${T0})`;
        await tx.$executeRaw`INSERT INTO "MarketSource" ("sourceId", "title", "type", "updatedAt") VALUES ('dup', 'x', 'local', ${T0})`;
        await tx.$executeRaw`INSERT INTO "MarketSource" ("sourceId", "title", "type", "updatedAt") VALUES ('dup', 'x', 'local', ${T0})`;
      }),
    ).rejects.toSatisfy(isUniqueViolation);
    const messages = await db.historyRecord.findMany({ where: { userId: 'alice' }, orderBy: { id: 'asc' } });
    expect(messages.map((record) => record.message)).toEqual(['one', 'two']);
    expect(await db.marketSource.count({ where: { sourceId: 'dup' } })).toBe(0);
    // Prisma's own statements still work after the driver's transactions.
    expect(await db.historyRecord.count({ where: { userId: 'alice' } })).toBe(2);
  });

  test('transactions of the driver and of Prisma started together run one after the other', async () => {
    const counts: number[] = [];
    const insert = (tx: { $executeRaw: DriverSql['$executeRaw'] }, message: string) =>
      tx.$executeRaw`INSERT INTO "HistoryRecord" ("type", "message", "userId", "time") VALUES ('system', ${message}, 'bob', ${T0})`;
    await Promise.all([
      driver.$transaction(async (tx) => {
        await insert(tx, 'driver-1');
        await insert(tx, 'driver-2');
        counts.push(
          Number(
            (await tx.$queryRaw<{ n: number }[]>`SELECT COUNT(*) AS n FROM "HistoryRecord" WHERE "userId" = 'bob'`)[0]
              ?.n,
          ),
        );
      }),
      db.$transaction(async (tx) => {
        await insert(tx, 'prisma-1');
        await insert(tx, 'prisma-2');
        counts.push(await tx.historyRecord.count({ where: { userId: 'bob' } }));
      }),
    ]);
    // Each saw its own two rows plus all or none of the other's: never half.
    expect(counts.sort()).toEqual([2, 4]);
  });

  // PostgreSQL's counterpart (a COMMIT on a connection that died) is LeakFreePrismaPg's, in
  // engine-outage.test.ts; its foreign keys cannot be deferred.
  test.skipIf(kind !== 'sqlite')(
    "a COMMIT that fails (a deferred foreign key) leaves no lock taken: Prisma's and the driver's later transactions run",
    async () => {
      const ghost = 'ghost-category';
      await expect(
        db.$transaction(async (tx) => {
          await tx.$executeRawUnsafe('PRAGMA defer_foreign_keys = ON');
          await tx.$executeRaw`INSERT INTO "CatalogAppCategory" ("catalogAppId", "category") VALUES (2147483000, ${ghost})`;
        }),
      ).rejects.toThrow(/ForeignKeyConstraintViolation/);
      await expect(
        driver.$transaction(async (tx) => {
          await tx.$executeRaw`PRAGMA defer_foreign_keys = ON`;
          await tx.$executeRaw`INSERT INTO "CatalogAppCategory" ("catalogAppId", "category") VALUES (2147483000, ${ghost})`;
        }),
      ).rejects.toThrow(/FOREIGN KEY constraint failed/);
      // Before, the first failure left the adapter's lock taken: every later transaction waited for good.
      await db.$transaction(async (tx) => tx.jobCursor.create({ data: { name: 'after-failed-commit', position: T0 } }));
      await driver.$transaction(
        (tx) => tx.$executeRaw`UPDATE "JobCursor" SET "afterId" = 1 WHERE "name" = 'after-failed-commit'`,
      );
      expect(await db.jobCursor.findUnique({ where: { name: 'after-failed-commit' } })).toMatchObject({ afterId: 1 });
      expect(await db.catalogAppCategory.count({ where: { category: ghost } })).toBe(0);
    },
  );

  test('a nested $transaction joins the one it runs in, on both providers', async () => {
    const inserted = await driver.$transaction(async (tx) =>
      tx.$transaction(
        async (inner) =>
          inner.$executeRaw`INSERT INTO "HistoryRecord" ("type", "message", "userId", "time") VALUES ('system', 'nested', 'carol', ${T0})`,
      ),
    );
    expect(inserted).toBe(1);
    expect(await db.historyRecord.count({ where: { userId: 'carol' } })).toBe(1);
  });

  test.runIf(kind === 'sqlite')('SQLite text in CURRENT_TIMESTAMP form reads as UTC, as Prisma reads it', async () => {
    await driver.$executeRaw`INSERT INTO "HistoryRecord" ("type", "message", "userId", "time") VALUES ('system', 'by hand', 'dave', '2026-01-01 12:00:00')`;
    const [row] = await driver.$queryRaw<{ time: Date }[]>`SELECT * FROM "HistoryRecord" WHERE "userId" = 'dave'`;
    expect(row?.time).toEqual(new Date('2026-01-01T12:00:00Z'));
    expect(row?.time).toEqual((await db.historyRecord.findFirst({ where: { userId: 'dave' } }))?.time);
  });

  test.runIf(kind === 'postgresql')(
    'a prepared SELECT * whose table gained a column is prepared again, not failed',
    async () => {
      const read = () =>
        driver.$queryRaw<Record<string, unknown>[]>`SELECT * FROM "MarketSource" WHERE "sourceId" = ${'driver-src'}`;
      expect(await read()).toHaveLength(1);
      await db.$executeRawUnsafe('ALTER TABLE "MarketSource" ADD COLUMN "addedLater" INTEGER');
      try {
        // Every pooled connection that prepared it meets the change: each read still answers.
        const rows = await Promise.all(Array.from({ length: 6 }, read));
        for (const [row] of rows) expect(row).toHaveProperty('addedLater', null);
      } finally {
        await db.$executeRawUnsafe('ALTER TABLE "MarketSource" DROP COLUMN "addedLater"');
      }
    },
  );

  test('after a $disconnect the driver connects through Prisma again, and both read the same rows', async () => {
    await db.$disconnect();
    const [row] = await driver.$queryRaw<{ n: number }[]>`SELECT COUNT(*) AS "n" FROM "HistoryRecord"`;
    expect(Number(row?.n)).toBe(await db.historyRecord.count());
  });
});
