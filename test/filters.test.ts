import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { driverSqlOf } from '../src/db/driver-sql.js';
import { conditionsSql, pageRows, type Relations } from '../src/db/list-sql.js';
import type { RuntimeTaskRow, TaskRow } from '../src/db/models.js';
import type { AppKey } from '../src/domain/app-key.js';
import { APP_STAGES, type AppStage, HEALTHS, type Health } from '../src/domain/app-stage.js';
import { ValidationError } from '../src/domain/errors.js';
import { defineFilter, derived, equals, equalsId, oneOf, oneOfIds } from '../src/domain/filters.js';
import { PAYMENT_STATUSES } from '../src/domain/payment-status.js';
import { TASK_STATUSES, TASK_TYPES, type TaskStatus, type TaskType } from '../src/domain/tasks.js';
import { type RuntimeApp, type SnapshotFilter, SnapshotScope } from '../src/runtime/state-store.js';
import { CATALOG_FILTER } from '../src/services/catalog-service.js';
import { HISTORY_FILTER } from '../src/services/history-service.js';
import { APP_FILTER } from '../src/services/installed-app-service.js';
import { PAYMENT_FILTER } from '../src/services/payment-service.js';
import { TASK_FILTER } from '../src/services/task-service.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';

/**
 * src/domain/filters.ts derives both a filter's Prisma `where` and its in-memory predicate from
 * one table of rules. Its contract: over any rows, the `where` selects exactly the rows the
 * predicate accepts (checked on generated rows and filters), and the runtime store's matching is
 * what it was when it was written by hand.
 */

const databases = await availableDatabases();

/** A small deterministic PRNG (mulberry32), so a failing case is the same on every run. */
function random(seed: number) {
  let state = seed;
  const next = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)] as T;
  return {
    pick,
    /** Absent, null, empty or one of `values` (what a client may send for a scalar field). */
    scalar: <T>(values: readonly T[]): T | null | undefined => pick([undefined, null, ...values]),
    /** Absent, null, empty, or a few of `values`, repeats included. */
    list: <T>(values: readonly T[]): T[] | null | undefined =>
      pick([undefined, null, [], 'some'] as const) === 'some'
        ? Array.from({ length: 1 + Math.floor(next() * 3) }, () => pick(values))
        : pick([undefined, null, []]),
  };
}

const T0 = new Date('2026-11-22T18:14:09.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
/** Values differing only in case, and empty strings, must not be taken for each other or for "any". */
const USERS = ['alice', 'bob', 'Alice'];
const SOURCES = ['market.olares', 'local', 'Market.Olares'];
const APP_NAMES = ['n8n', 'ghost', 'N8N'];
const TIMES = [0, 1, 2, 3, 4].map(at);
const ROWS = 60;
const FILTERS = 150;
/** The catalogue's categories, rows of their own table (as catalog-service.ts names them). */
const CATEGORIES: Relations = { categories: { table: 'CatalogAppCategory', foreignKey: 'catalogAppId' } };

describe.each(databases)('filters on %s: the Prisma where selects exactly the rows the predicate accepts', (kind) => {
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

  async function expectSameRows<Row extends { id: number }>(
    rows: readonly Row[],
    select: (where: never) => Promise<{ id: number }[]>,
    compiled: { where: unknown; matches(row: Row): boolean },
  ) {
    const bySql = (await select(compiled.where as never)).map((row) => row.id).sort((a, b) => a - b);
    const inMemory = rows.filter((row) => compiled.matches(row)).map((row) => row.id);
    expect({ where: compiled.where, ids: bySql }).toEqual({ where: compiled.where, ids: inMemory });
  }

  test('TaskFilter: source, app, statuses, types and the creation time range', async () => {
    const r = random(1);
    for (let i = 0; i < ROWS; i += 1) {
      await db.task.create({
        data: {
          taskId: `task-${i}`,
          type: r.pick(TASK_TYPES),
          status: r.pick(TASK_STATUSES),
          userId: r.pick(USERS),
          sourceId: r.pick(SOURCES),
          appName: r.pick(APP_NAMES),
          metadata: {},
          createdAt: r.pick(TIMES),
          updatedAt: T0,
        },
      });
    }
    const rows = await db.task.findMany({ orderBy: { id: 'asc' } });
    for (let i = 0; i < FILTERS; i += 1) {
      const compiled = TASK_FILTER.compile({
        sourceId: r.scalar([...SOURCES, 'nope']),
        appName: r.scalar(APP_NAMES),
        status: r.list(TASK_STATUSES),
        type: r.list(TASK_TYPES),
        createdAfter: r.scalar(TIMES),
        createdBefore: r.scalar(TIMES),
      });
      await expectSameRows(rows, (where) => db.task.findMany({ where, select: { id: true } }), compiled);
    }
  });

  test('HistoryFilter: types, app and the time range', async () => {
    const r = random(2);
    for (let i = 0; i < ROWS; i += 1) {
      await db.historyRecord.create({
        data: {
          type: r.pick(['ACTION_INSTALL', 'PAYMENT', 'action', 'Action']),
          message: 'm',
          app: r.pick([null, ...APP_NAMES]),
          userId: r.pick(USERS),
          time: r.pick(TIMES),
        },
      });
    }
    const rows = await db.historyRecord.findMany({ orderBy: { id: 'asc' } });
    for (let i = 0; i < FILTERS; i += 1) {
      const compiled = HISTORY_FILTER.compile({
        type: r.list(['ACTION_INSTALL', 'PAYMENT', 'action', 'ACTION']),
        app: r.scalar(APP_NAMES),
        from: r.scalar(TIMES),
        to: r.scalar(TIMES),
      });
      await expectSameRows(rows, (where) => db.historyRecord.findMany({ where, select: { id: true } }), compiled);
    }
  });

  test('CatalogFilter: its SQL selects what its predicate accepts, the search as typed, categories through the relation', async () => {
    const r = random(3);
    const texts = [
      'n8n workflow automation',
      'ghost blog',
      'g%ost',
      'a\\b path',
      'wordpress blog',
      'x_y',
      'qwen',
      'q_en 100%',
    ];
    const categories = ['Productivity', 'Blog', 'Dev'];
    for (let i = 0; i < ROWS / 2; i += 1) {
      await db.catalogApp.create({
        data: {
          sourceId: r.pick(SOURCES),
          appId: `app-${i}`,
          name: `app-${i}`,
          version: '1.0.0',
          versions: [],
          searchText: r.pick(texts),
          entry: {},
          categories: {
            create: [...new Set([r.pick(categories), r.pick(categories)])].map((category) => ({ category })),
          },
        },
      });
    }
    const rows = await db.catalogApp.findMany({ include: { categories: true }, orderBy: { id: 'asc' } });
    const searches = [
      '',
      '   ',
      'n8n',
      'GHOST ',
      'blog',
      'g_ost',
      'g%ost',
      '%',
      '_',
      'a\\b',
      'x_y',
      'q_en',
      '%_%',
      'nothing',
    ];
    for (let i = 0; i < FILTERS; i += 1) {
      const compiled = CATALOG_FILTER.compile({
        sourceId: r.scalar(SOURCES),
        search: r.scalar(searches),
        category: r.scalar(['', 'blog', ...categories]),
      });
      const conditions = conditionsSql('CatalogApp', compiled.stored, CATEGORIES);
      const page = await pageRows<{ id: number }>(driverSqlOf(db), 'CatalogApp', conditions, {
        fromNewest: false,
        take: ROWS,
      });
      const inMemory = rows.filter((row) => compiled.matches(row)).map((row) => row.id);
      expect({ stored: compiled.stored, ids: page.map((row) => row.id) }).toEqual({
        stored: compiled.stored,
        ids: inMemory,
      });
    }
    // Its Prisma form would take `%` and `_` for wildcards: there is none.
    expect(() => CATALOG_FILTER.compile({ search: 'q_en' }).where).toThrow(/no Prisma form/);
    expect(CATALOG_FILTER.compile({ category: 'Dev' }).where).toEqual({ categories: { some: { category: 'Dev' } } });
  });

  test('AppFilter and PaymentFilter: the stored columns by SQL, the derived ones left to memory', async () => {
    const r = random(4);
    for (const userId of USERS) {
      for (const sourceId of SOURCES) {
        for (const appName of APP_NAMES) {
          await db.appState.create({ data: { userId, sourceId, appName, eventTime: T0 } });
          await db.payment.create({
            data: {
              userId,
              sourceId,
              appId: appName,
              appName,
              productId: sourceId,
              paymentNeed: 'required',
              developerSync: 'completed',
              larePassSync: 'not_started',
              signatureStatus: 'not_evaluated',
              paymentStatus: 'not_evaluated',
            },
          });
        }
      }
    }
    const apps = (await db.appState.findMany({ orderBy: { id: 'asc' } })).map((row) => ({
      ...row,
      derived: { stage: r.pick(APP_STAGES), health: r.pick(HEALTHS) },
    }));
    const payments = (await db.payment.findMany({ orderBy: { id: 'asc' } })).map((row) => ({
      ...row,
      derived: { status: r.pick(PAYMENT_STATUSES) },
    }));
    for (let i = 0; i < FILTERS; i += 1) {
      const app = APP_FILTER.compile({ sourceId: r.scalar(SOURCES), appName: r.scalar(APP_NAMES) });
      expect(app.hasDerived).toBe(false);
      await expectSameRows(apps, (where) => db.appState.findMany({ where, select: { id: true } }), app);
      const payment = PAYMENT_FILTER.compile({ sourceId: r.scalar(SOURCES), appId: r.scalar(APP_NAMES) });
      expect(payment.hasDerived).toBe(false);
      await expectSameRows(payments, (where) => db.payment.findMany({ where, select: { id: true } }), payment);

      // With derived conditions: SQL narrows by the stored ones, memory decides the rest.
      const stage = r.list(APP_STAGES);
      const health = r.scalar(HEALTHS);
      const withDerived = APP_FILTER.compile({ sourceId: r.scalar(SOURCES), stage, health });
      const selected = new Set((await db.appState.findMany({ where: withDerived.where })).map((row) => row.id));
      expect(apps.filter((row) => withDerived.matches(row)).map((row) => row.id)).toEqual(
        apps
          .filter(
            (row) =>
              selected.has(row.id) &&
              (!stage?.length || stage.includes(row.derived.stage)) &&
              (!health || row.derived.health === health),
          )
          .map((row) => row.id),
      );
    }
  });
});

describe('a compiled filter', () => {
  const row = { id: 1, name: 'n8n', tags: 'a', at: at(2), derived: { score: 'high' } };
  const ROW_FILTER = defineFilter<
    { name?: string | null; tags?: string[] | null; score?: string | null },
    typeof row,
    Record<string, unknown>
  >({
    name: equals('name'),
    tags: oneOf('tags'),
    score: derived(equals('score')),
  });

  test('takes null, undefined, empty strings and empty lists for no condition', ({ expect }) => {
    const absent: [string | null | undefined, string[] | null | undefined][] = [
      [null, null],
      [undefined, undefined],
      ['', []],
    ];
    for (const [value, list] of absent) {
      const compiled = ROW_FILTER.compile({ name: value, tags: list, score: value });
      expect(compiled.where).toEqual({});
      expect(compiled.hasDerived).toBe(false);
      expect(compiled.matches({ ...row, name: 'other' })).toBe(true);
    }
  });

  test('refuses an empty or over-long id, alone or in a list, naming the field inside its argument', ({ expect }) => {
    const IDS = defineFilter<{ name?: string | null; tags?: string[] | null }, typeof row>({
      name: equalsId('name', 3),
      tags: oneOfIds('tags', 3),
    });
    const refusal = (filter: { name?: string | null; tags?: string[] | null }) => {
      try {
        IDS.compile(filter);
        return null;
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        return { message: error.message, issues: error.issues };
      }
    };
    expect(refusal({ name: '' })).toEqual({
      message: 'Argument "filter.name" must not be empty',
      issues: [{ path: 'filter.name', message: 'empty' }],
    });
    expect(refusal({ tags: ['a', ''] })).toEqual({
      message: 'Argument "filter.tags.1" must not be empty',
      issues: [{ path: 'filter.tags.1', message: 'empty' }],
    });
    expect(refusal({ name: 'abcd' })?.message).toBe('Argument "filter.name" must be at most 3 characters');
    expect(refusal({ tags: ['abcd'] })?.message).toBe('Argument "filter.tags.0" must be at most 3 characters');
    // Characters, not UTF-16 units; absent, null and an empty list still constrain nothing.
    expect(refusal({ name: '😀😀😀', tags: ['😀😀😀'] })).toBeNull();
    for (const absent of [{}, { name: null, tags: null }, { tags: [] }]) {
      expect(IDS.compile(absent).matchesAll).toBe(true);
    }
    // An argument of its own (catalog(sourceId:)) is named alone.
    const topLevel = defineFilter<{ name?: string | null }, typeof row>({ name: equalsId('name', 3) }, null);
    expect(() => topLevel.compile({ name: '' })).toThrow('Argument "name" must not be empty');
  });

  test('gives an IN list of distinct values and compares exactly, case included', ({ expect }) => {
    const compiled = ROW_FILTER.compile({ name: 'N8N', tags: ['a', 'b', 'a'] });
    expect(compiled.where).toEqual({ name: 'N8N', tags: { in: ['a', 'b'] } });
    expect(compiled.matches(row)).toBe(false);
    expect(ROW_FILTER.compile({ name: 'n8n', tags: ['b', 'a'] }).matches(row)).toBe(true);
  });

  test('puts both ends of a time range on the one column, each end inclusive', ({ expect }) => {
    const compiled = TASK_FILTER.compile({ createdAfter: at(1), createdBefore: at(3) });
    expect(compiled.where).toEqual({ createdAt: { gte: at(1), lte: at(3) } });
    const task = (createdAt: Date) => ({ createdAt }) as TaskRow;
    expect([0, 1, 2, 3, 4].map((s) => compiled.matches(task(at(s))))).toEqual([false, true, true, true, false]);
  });

  test('leaves derived conditions out of the where and reads them from row.derived', ({ expect }) => {
    const compiled = ROW_FILTER.compile({ name: 'n8n', score: 'low' });
    expect(compiled.where).toEqual({ name: 'n8n' });
    expect(compiled.hasDerived).toBe(true);
    expect(compiled.matches(row)).toBe(false);
    expect(compiled.matches({ ...row, derived: { score: 'low' } })).toBe(true);
  });

  test('restricted to some columns, keeps only their conditions', ({ expect }) => {
    const compiled = ROW_FILTER.compile({ name: 'n8n', tags: ['z'], score: 'low' }).only(['name']);
    expect(compiled.where).toEqual({ name: 'n8n' });
    expect(compiled.hasDerived).toBe(false);
    expect(compiled.matches({ name: 'n8n' })).toBe(true);
    expect(compiled.matches({ name: 'ghost' })).toBe(false);
  });
});

/** The runtime store's matchers as they were written by hand before filters.ts: the oracle. */
function handWrittenAppMatches(app: RuntimeApp | AppKey, filter: SnapshotFilter): boolean {
  if (filter.userId && app.userId !== filter.userId) return false;
  if (filter.sourceId && app.sourceId !== filter.sourceId) return false;
  if (filter.appName && app.appName !== filter.appName) return false;
  if ('derived' in app) {
    if (filter.stage?.length && !filter.stage.includes(app.derived.stage)) return false;
    if (filter.health && app.derived.health !== filter.health) return false;
  }
  return true;
}

function handWrittenTaskMatches(task: RuntimeTaskRow, filter: SnapshotFilter): boolean {
  if (filter.userId && task.userId !== filter.userId) return false;
  if (filter.sourceId && task.sourceId !== filter.sourceId) return false;
  if (filter.appName && task.appName !== filter.appName) return false;
  if (filter.taskStatus?.length && !filter.taskStatus.includes(task.status as TaskStatus)) return false;
  if (filter.taskType?.length && !filter.taskType.includes(task.type as TaskType)) return false;
  return true;
}

test('the runtime store matches apps, removed apps and tasks as its hand-written matchers did', () => {
  const r = random(5);
  const key = (): AppKey => ({ userId: r.pick(USERS), sourceId: r.pick(SOURCES), appName: r.pick(APP_NAMES) });
  const apps = Array.from(
    { length: 40 },
    () => ({ ...key(), derived: { stage: r.pick(APP_STAGES), health: r.pick(HEALTHS) } }) as RuntimeApp,
  );
  const keys = Array.from({ length: 20 }, key);
  const tasks = Array.from(
    { length: 40 },
    () => ({ ...key(), status: r.pick(TASK_STATUSES), type: r.pick(TASK_TYPES) }) as RuntimeTaskRow,
  );
  for (let i = 0; i < FILTERS * 2; i += 1) {
    const filter: SnapshotFilter = {
      userId: r.scalar(['', ...USERS]),
      sourceId: r.scalar(SOURCES),
      appName: r.scalar(APP_NAMES),
      taskStatus: r.list(TASK_STATUSES),
      taskType: r.list(TASK_TYPES),
      stage: r.list<AppStage>(APP_STAGES),
      health: r.scalar<Health>(HEALTHS),
    };
    const scope = new SnapshotScope(filter);
    expect(apps.map((app) => scope.apps.matches(app))).toEqual(apps.map((app) => handWrittenAppMatches(app, filter)));
    expect(keys.map((k) => scope.appKeys.matches(k))).toEqual(keys.map((k) => handWrittenAppMatches(k, filter)));
    expect(tasks.map((task) => scope.tasks.matches(task))).toEqual(
      tasks.map((task) => handWrittenTaskMatches(task, filter)),
    );
  }
});
