import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { driverSqlOf } from '../src/db/driver-sql.js';
import { appCategories, conditionsSql, countRows, pageRows, type RowWindow } from '../src/db/list-sql.js';
import type { TaskRow } from '../src/db/models.js';
import { ownerCondition } from '../src/domain/filters.js';
import { CATALOG_FILTER } from '../src/services/catalog-service.js';
import { TASK_FILTER } from '../src/services/task-service.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';

/**
 * The contract of src/db/list-sql.ts: for every kind of filter condition and page window, the
 * hand-written page and count return exactly the rows and the number that the Prisma query they
 * replace returns (the `where` compiled from the same filter table), on both providers.
 */

const databases = await availableDatabases();
const T0 = Date.parse('2026-11-22T18:14:09.003Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000);

const WINDOWS: RowWindow[] = [
  { fromNewest: true, take: 5 },
  { fromNewest: true, take: 3, idBelow: 20 },
  { fromNewest: false, take: 4 },
  { fromNewest: false, take: 50, idAbove: 7, idBelow: 30 },
];

function prismaWindow(window: RowWindow) {
  return {
    where: {
      id: {
        ...(window.idBelow !== undefined ? { lt: window.idBelow } : {}),
        ...(window.idAbove !== undefined ? { gt: window.idAbove } : {}),
      },
    },
    orderBy: { id: window.fromNewest ? ('desc' as const) : ('asc' as const) },
    take: window.take + 1,
  };
}

describe.each(databases)('list SQL on %s', (kind) => {
  let database: TestDatabase;
  let db: Db;
  beforeAll(async () => {
    database = await createTestDatabase(kind);
    db = createPrismaClient(database.url);
    const statuses = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELED'];
    const types = ['INSTALL', 'UNINSTALL', 'UPGRADE'];
    await db.task.createMany({
      data: Array.from({ length: 40 }, (_, i) => ({
        taskId: `t${i}`,
        type: types[i % 3] as string,
        status: statuses[i % 5] as string,
        userId: i % 4 === 0 ? 'bob' : 'alice',
        sourceId: i % 7 === 0 ? 'upload' : 'market.olares',
        appName: `app${i % 6}`,
        progress: i,
        metadata: { cfgType: 'app', envs: [] },
        createdAt: at(i),
        updatedAt: at(i),
      })),
    });
    for (let i = 0; i < 12; i++) {
      await db.catalogApp.create({
        data: {
          sourceId: i % 3 === 0 ? 'upload' : 'market.olares',
          appId: `c${i}`,
          name: `cat_${i}`,
          version: '1.0.0',
          versions: ['1.0.0'],
          searchText: `cat_${i} ${i % 2 === 0 ? 'media server' : 'notes'} 100%`,
          paid: i % 4 === 0,
          entry: {},
          updatedAt: at(i),
          categories: { create: (i % 2 === 0 ? ['media', 'tools'] : ['notes']).map((category) => ({ category })) },
        },
      });
    }
  });
  afterAll(async () => {
    await db?.$disconnect();
    await database?.drop();
  });

  test('task pages and counts equal Prisma’s for every kind of condition and window', async () => {
    const filters = [
      {},
      { sourceId: 'upload' },
      { appName: 'app3', status: ['FAILED', 'COMPLETED'] as never },
      { status: [] as never, type: ['UPGRADE'] as never },
      { createdAfter: at(10), createdBefore: at(30) },
      { createdAfter: at(10.5) },
    ];
    for (const owner of [undefined, 'alice']) {
      for (const filter of filters) {
        const compiled = TASK_FILTER.compile(filter);
        const conditions = conditionsSql('Task', [...ownerCondition(owner), ...compiled.stored]);
        const where = { ...(owner ? { userId: owner } : {}), ...compiled.where };
        expect(await countRows(driverSqlOf(db), 'Task', conditions), JSON.stringify(filter)).toBe(
          await db.task.count({ where }),
        );
        for (const window of WINDOWS) {
          const rows = await pageRows<TaskRow>(driverSqlOf(db), 'Task', conditions, window);
          const { where: bounds, ...rest } = prismaWindow(window);
          expect(rows, `${JSON.stringify(filter)} ${JSON.stringify(window)}`).toEqual(
            await db.task.findMany({ ...rest, where: { AND: [where, bounds] } }),
          );
        }
      }
    }
  });

  test('catalogue pages equal Prisma’s with search (LIKE wildcards as Prisma’s contains), category, paid and sources', async () => {
    const cases = [
      { rules: { search: 'media' }, paid: undefined, sources: undefined },
      { rules: { search: 'cat_1' }, paid: undefined, sources: undefined },
      { rules: { search: '100%' }, paid: false, sources: undefined },
      { rules: { category: 'tools' }, paid: true, sources: ['market.olares', 'upload'] },
      { rules: { category: 'nothing' }, paid: undefined, sources: undefined },
      { rules: {}, paid: undefined, sources: [] as string[] },
    ];
    const relations = { categories: { table: 'CatalogAppCategory' as const, foreignKey: 'catalogAppId' } };
    for (const { rules, paid, sources } of cases) {
      const compiled = CATALOG_FILTER.compile(rules);
      const stored = [
        ...compiled.stored,
        ...(paid === undefined ? [] : [{ op: 'equals' as const, column: 'paid', relation: '', value: paid }]),
        ...(sources === undefined ? [] : [{ op: 'oneOf' as const, column: 'sourceId', relation: '', value: sources }]),
      ];
      const conditions = conditionsSql('CatalogApp', stored, relations);
      const where = {
        AND: [
          compiled.where,
          paid === undefined ? {} : { paid },
          sources === undefined ? {} : { sourceId: { in: sources } },
        ],
      };
      const label = JSON.stringify({ rules, paid, sources });
      expect(await countRows(driverSqlOf(db), 'CatalogApp', conditions), label).toBe(
        await db.catalogApp.count({ where }),
      );
      const rows = await pageRows(driverSqlOf(db), 'CatalogApp', conditions, { fromNewest: true, take: 20 });
      expect(rows, label).toEqual(await db.catalogApp.findMany({ where, orderBy: { id: 'desc' }, take: 21 }));
    }
    // A `some` on a relation it is not told about has no SQL form: refused, never dropped.
    expect(() => conditionsSql('CatalogApp', CATALOG_FILTER.compile({ category: 'media' }).stored)).toThrow(
      /no SQL form/,
    );
  });

  test('categories come back by app, sorted by name', async () => {
    const apps = await db.catalogApp.findMany({ orderBy: { id: 'asc' }, take: 3 });
    const rows = await appCategories(
      driverSqlOf(db),
      apps.map((app) => app.id),
    );
    const expected = await db.catalogAppCategory.findMany({
      where: { catalogAppId: { in: apps.map((app) => app.id) } },
      orderBy: { category: 'asc' },
      select: { catalogAppId: true, category: true },
    });
    expect(rows).toEqual(expected);
    expect(await appCategories(driverSqlOf(db), [])).toEqual([]);
  });
});
