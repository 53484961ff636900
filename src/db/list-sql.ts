import type { StoredCondition } from '../domain/filters.js';
import { empty, join, raw, type Sql, sql } from '../generated/prisma-sqlite/internal/prismaNamespace.js';
import { RAW_PARAMETERS, readInChunks } from './chunks.js';
import { paddedIds, type SqlRunner } from './driver-sql.js';
import { CATALOG_VIEW_COLUMNS, type CatalogAppRow, TASK_VIEW_COLUMNS } from './models.js';

/**
 * The list queries (`tasks`, `apps`, `catalog` pages and their `totalCount`) as hand-written SQL
 * built from the same filter tables (domain/filters.ts) that build their Prisma `where`, for
 * driver-sql.ts: through Prisma, a `tasks(first: 20)` page cost 4.8 ms of server CPU, mostly in
 * Prisma's query compiler and interpreter (G1 benchmark, issue 11). Same rules as hot-path-sql.ts
 * (quoted identifiers, no casts, Dates as parameters); test/list-sql.test.ts runs every condition
 * on both providers against the Prisma query it replaces.
 */

/** The tables read here: names written in code, never taken from a request. */
export type ListTable = 'Task' | 'AppState' | 'CatalogApp' | 'MarketSource' | 'CatalogAppCategory';

/** Related rows a `some` condition looks into: `relation` → its table and the key back to the row. */
export type Relations = Readonly<Record<string, { table: ListTable; foreignKey: string }>>;

/** Which ids a page reads, newest (highest id) first unless `fromNewest` is false. */
export interface RowWindow {
  fromNewest: boolean;
  take: number;
  idBelow?: number;
  idAbove?: number;
}

const name = (identifier: string) => raw(`"${identifier.replace(/"/g, '""')}"`);

/**
 * The conditions as SQL, to be ANDed. A `some` on a relation not in `relations` throws: dropping
 * it (or answering without the conditions) would widen the list, the owner's condition included.
 */
export function conditionsSql(
  table: ListTable,
  conditions: readonly StoredCondition[],
  relations: Relations = {},
): Sql[] {
  const parts: Sql[] = [];
  for (const { op, column, relation, value } of conditions) {
    const col = name(column);
    switch (op) {
      case 'equals':
        parts.push(sql`${col} = ${value}`);
        break;
      case 'oneOf': {
        const values = value as unknown[];
        // An empty list matches nothing, as Prisma's `in: []` (SQL has no empty IN list).
        parts.push(values.length === 0 ? sql`1 = 0` : sql`${col} IN (${join(values)})`);
        break;
      }
      case 'atOrAfter':
        parts.push(sql`${col} >= ${value}`);
        break;
      case 'atOrBefore':
        parts.push(sql`${col} <= ${value}`);
        break;
      case 'contains':
        // The text itself: its `%` and `_` escaped, with an escape character that needs no
        // escaping in an SQL string on either database (`\` is PostgreSQL's default, not SQLite's).
        parts.push(sql`${col} LIKE ${`%${(value as string).replace(/[!%_]/g, '!$&')}%`} ESCAPE '!'`);
        break;
      case 'some': {
        const related = relations[relation];
        if (!related)
          throw new Error(`no SQL form for a condition on ${table}.${relation}: it is not in the relations given`);
        parts.push(
          sql`EXISTS (SELECT 1 FROM ${name(related.table)} AS "related" WHERE "related".${name(related.foreignKey)} = ${name(table)}."id" AND "related".${col} = ${value})`,
        );
        break;
      }
    }
  }
  return parts;
}

function whereSql(parts: readonly Sql[]): Sql {
  return parts.length === 0 ? empty : sql`WHERE ${join(parts, ' AND ')}`;
}

/**
 * One page of rows matching the conditions: `take + 1` of them, so the caller knows whether more
 * follow. `columns`: what to read of each (every column unless given).
 */
export function pageRows<Row>(
  db: SqlRunner,
  table: ListTable,
  conditions: readonly Sql[],
  window: RowWindow,
  columns: Sql = raw('*'),
): Promise<Row[]> {
  const bounds = [
    ...conditions,
    ...(window.idBelow !== undefined ? [sql`"id" < ${window.idBelow}`] : []),
    ...(window.idAbove !== undefined ? [sql`"id" > ${window.idAbove}`] : []),
  ];
  const order = window.fromNewest ? raw('DESC') : raw('ASC');
  return db.$queryRaw<Row[]>`
    SELECT ${columns} FROM ${name(table)} ${whereSql(bounds)} ORDER BY "id" ${order} LIMIT ${window.take + 1}`;
}

/** How many rows match the conditions. */
export async function countRows(db: SqlRunner, table: ListTable, conditions: readonly Sql[]): Promise<number> {
  const [row] = await db.$queryRaw<{ count: number | bigint }[]>`
    SELECT COUNT(*) AS "count" FROM ${name(table)} ${whereSql(conditions)}`;
  return Number(row?.count ?? 0);
}

/** The categories of catalogue apps, in no order (the caller sorts: a collation's order differs by database). */
export function appCategories(
  db: SqlRunner,
  appIds: readonly number[],
): Promise<{ catalogAppId: number; category: string }[]> {
  if (appIds.length === 0) return Promise.resolve([]);
  // Each app once (its loader does not cache), and as many as a statement may name (db/chunks.ts).
  return readInChunks(
    [...new Set(appIds)],
    RAW_PARAMETERS,
    (ids) => db.$queryRaw<{ catalogAppId: number; category: string }[]>`
      SELECT "catalogAppId", "category" FROM "CatalogAppCategory"
      WHERE "catalogAppId" IN (${join(ids)})`,
  );
}

/** A list of quoted column names, written in code (never taken from a request). */
export const columnList = (columns: readonly string[]) => raw(columns.map((column) => `"${column}"`).join(', '));

/** The columns of a catalogue page (CatalogListRow): not the entry, which the page takes from CatalogEntries. */
export const CATALOG_LIST_COLUMNS = columnList(CATALOG_VIEW_COLUMNS);

/** The columns of a `tasks` page: those the API shows (TaskView). */
export const TASK_LIST_COLUMNS = columnList(TASK_VIEW_COLUMNS);

/** Catalogue entries by app id, each with the revision it was read at (CatalogApp.entryRevision). */
export function catalogEntries(
  db: SqlRunner,
  ids: readonly number[],
): Promise<{ id: number; entryRevision: number; entry: CatalogAppRow['entry'] }[]> {
  return db.$queryRaw`
    SELECT "id", "entryRevision", "entry" FROM "CatalogApp" WHERE "id" IN (${join(paddedIds(ids))})`;
}
