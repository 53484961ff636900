import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { driverSqlOf } from '../src/db/driver-sql.js';
import { appCategories, conditionsSql, countRows, pageRows, type RowWindow } from '../src/db/list-sql.js';
import type { TaskRow } from '../src/db/models.js';
import { ownerCondition } from '../src/domain/filters.js';
import { CATALOG_FILTER, searchPattern } from '../src/services/catalog-service.js';
import { APP_FILTER } from '../src/services/installed-app-service.js';
import { TASK_FILTER } from '../src/services/task-service.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { planOf, SORTS } from './support/query-plans.js';

/**
 * The contract of src/db/list-sql.ts: for every kind of filter condition and page window, the
 * hand-written page and count return exactly the rows and the number that the Prisma query they
 * replace returns (the `where` compiled from the same filter table), on both providers; a
 * catalogue search, which has no Prisma form, by the rows that hold its text.
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

  test('catalogue pages equal Prisma’s with category, paid and sources, and its rows holding the search as typed', async () => {
    const cases = [
      { rules: { search: 'media' }, paid: undefined, sources: undefined },
      { rules: { search: 'cat_1' }, paid: undefined, sources: undefined },
      { rules: { search: '100%' }, paid: false, sources: undefined },
      // Wildcards of LIKE, as Prisma's `contains` reads them: here they are the characters.
      { rules: { search: 'cat%' }, paid: undefined, sources: undefined },
      { rules: { search: 'MEDIA_SERVER' }, paid: undefined, sources: undefined },
      { rules: { search: '%' }, paid: undefined, sources: ['market.olares'] },
      { rules: { category: 'tools' }, paid: true, sources: ['market.olares', 'upload'] },
      { rules: { category: 'nothing' }, paid: undefined, sources: undefined },
      { rules: {}, paid: undefined, sources: [] as string[] },
    ];
    const relations = { categories: { table: 'CatalogAppCategory' as const, foreignKey: 'catalogAppId' } };
    for (const { rules, paid, sources } of cases) {
      const compiled = CATALOG_FILTER.compile(rules);
      // The search has no Prisma form (its `contains` does not escape): Prisma's rows, those holding the text.
      const { search, ...others } = rules as { search?: string };
      const holds = (row: { searchText: string }) => row.searchText.includes(searchPattern(search ?? ''));
      const stored = [
        ...compiled.stored,
        ...(paid === undefined ? [] : [{ op: 'equals' as const, column: 'paid', relation: '', value: paid }]),
        ...(sources === undefined ? [] : [{ op: 'oneOf' as const, column: 'sourceId', relation: '', value: sources }]),
      ];
      const conditions = conditionsSql('CatalogApp', stored, relations);
      const where = {
        AND: [
          CATALOG_FILTER.compile(others).where,
          paid === undefined ? {} : { paid },
          sources === undefined ? {} : { sourceId: { in: sources } },
        ],
      };
      const label = JSON.stringify({ rules, paid, sources });
      const expected = (await db.catalogApp.findMany({ where, orderBy: { id: 'desc' } })).filter(holds);
      expect(await countRows(driverSqlOf(db), 'CatalogApp', conditions), label).toBe(expected.length);
      const rows = await pageRows(driverSqlOf(db), 'CatalogApp', conditions, { fromNewest: true, take: 3 });
      expect(rows, label).toEqual(expected.slice(0, 4));
    }
    // A `some` on a relation it is not told about has no SQL form: refused, never dropped.
    expect(() => conditionsSql('CatalogApp', CATALOG_FILTER.compile({ category: 'media' }).stored)).toThrow(
      /no SQL form/,
    );
  });

  test("the categories of the apps asked for come back, each app's (the catalogue sorts them)", async () => {
    const apps = await db.catalogApp.findMany({ orderBy: { id: 'asc' }, take: 3 });
    const rows = await appCategories(
      driverSqlOf(db),
      apps.map((app) => app.id),
    );
    const expected = await db.catalogAppCategory.findMany({
      where: { catalogAppId: { in: apps.map((app) => app.id) } },
      select: { catalogAppId: true, category: true },
    });
    const sorted = (list: typeof expected) =>
      list.map((row) => `${row.catalogAppId}/${row.category}`).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(sorted(rows)).toEqual(sorted(expected));
    expect(rows.length).toBeGreaterThan(0);
    expect(await appCategories(driverSqlOf(db), [])).toEqual([]);
  });
});

/**
 * A page of one user's tasks or apps costs what the page holds, not what the user has: the
 * database walks the (userId, id) index in the page's order and stops at the page's end, instead
 * of reading every row of the user and sorting them (measured on SQLite with 10,000 tasks of one
 * user: 7.5 ms per `tasks(first: 20)` page sorted, 66 µs walked). Checked on the plans of the
 * statements pageRows sends, with statistics gathered (PostgreSQL's planner needs them; its
 * autovacuum gathers them in production).
 */
describe.each(databases)('a user’s page on %s', (kind) => {
  let database: TestDatabase;
  let db: Db;
  beforeAll(async () => {
    database = await createTestDatabase(kind);
    db = createPrismaClient(database.url);
    // alice: 300 rows of 6,000, where sorting hers costs more than walking an index.
    const users = (i: number) => (i % 20 === 0 ? 'alice' : `user${i % 40}`);
    for (let batch = 0; batch < 12; batch++) {
      await db.task.createMany({
        data: Array.from({ length: 500 }, (_, n) => {
          const i = batch * 500 + n;
          return {
            taskId: `t${i}`,
            // the five types, CLONE the rarest (1 in 50), as in production
            type: i % 50 === 0 ? 'CLONE' : (['INSTALL', 'UNINSTALL', 'UPGRADE', 'CANCEL'][i % 4] as string),
            status: 'COMPLETED',
            userId: users(i),
            sourceId: 'market.olares',
            appName: `app${i}`,
            metadata: {},
            createdAt: at(i),
          };
        }),
      });
      await db.appState.createMany({
        data: Array.from({ length: 500 }, (_, n) => {
          const i = batch * 500 + n;
          return { userId: users(i), sourceId: 'market.olares', appName: `app${i}`, eventTime: at(i) };
        }),
      });
    }
    await db.$executeRawUnsafe('ANALYZE');
  });
  afterAll(async () => {
    await db?.$disconnect();
    await database?.drop();
  });

  test.each([
    ['Task', 'Task_userId_id_idx'],
    ['AppState', 'AppState_userId_id_idx'],
  ] as const)('a page of %s walks %s in order, with no sort', async (table, index) => {
    for (const window of [
      { fromNewest: true, take: 20 },
      { fromNewest: false, take: 20, idAbove: 100 },
    ]) {
      const plan = await planOf(db, (runner) =>
        pageRows(runner, table, conditionsSql(table, ownerCondition('alice')), window),
      );
      // SQLite walks the user's index; PostgreSQL's planner may as well walk the primary key and
      // skip the others' rows (its choice by the statistics): either way, nothing is sorted.
      if (kind === 'sqlite') expect(plan).toContain(index);
      expect(plan).not.toMatch(SORTS);
    }
  });

  // 0014_task_list_filter_indexes: without these indexes both providers walked every task (the
  // primary key backwards, or the table) for a value no task has, and counted a type's tasks by
  // reading every task.
  test.each([
    [{ appName: 'nope' }, 'Task_appName_id_idx'],
    [{ sourceId: 'nope' }, 'Task_sourceId_id_idx'],
  ] as const)('the admin tasks filter %o reads its page and count through %s, with no sort', async (filter, index) => {
    const conditions = conditionsSql('Task', TASK_FILTER.compile(filter).stored);
    for (const window of [
      { fromNewest: true, take: 20 },
      { fromNewest: false, take: 20, idAbove: 100 },
    ]) {
      const plan = await planOf(db, (runner) => pageRows(runner, 'Task', conditions, window));
      expect(plan).toContain(index);
      expect(plan).not.toMatch(SORTS);
    }
    expect(await planOf(db, (runner) => countRows(runner, 'Task', conditions))).toContain(index);
  });

  // 0019_app_state_source_index: without it the admin `apps(filter: { sourceId })` read every app
  // state (PostgreSQL's Seq Scan removed 100,000 rows a page, 204 ms, and as long for its count).
  test('the admin apps filter by source reads its page and count through AppState_sourceId_id_idx, with no sort', async () => {
    const conditions = conditionsSql('AppState', APP_FILTER.compile({ sourceId: 'nope' }).stored);
    for (const window of [
      { fromNewest: true, take: 20 },
      { fromNewest: false, take: 20, idAbove: 100 },
    ]) {
      const plan = await planOf(db, (runner) => pageRows(runner, 'AppState', conditions, window));
      expect(plan).toContain('AppState_sourceId_id_idx');
      expect(plan).not.toMatch(SORTS);
    }
    expect(await planOf(db, (runner) => countRows(runner, 'AppState', conditions))).toContain(
      'AppState_sourceId_id_idx',
    );
  });

  test('the tasks of one type are counted through Task_type_id_idx', async () => {
    const conditions = conditionsSql('Task', TASK_FILTER.compile({ type: ['CLONE'] }).stored);
    expect(await planOf(db, (runner) => countRows(runner, 'Task', conditions))).toContain('Task_type_id_idx');
    // The page: through that index, or the primary key walked while CLONE tasks (1 in 50) come
    // along often enough (the planner's choice by the statistics); either way, nothing is sorted.
    const page = await planOf(db, (runner) => pageRows(runner, 'Task', conditions, { fromNewest: true, take: 20 }));
    expect(page).not.toMatch(SORTS);
  });
});
