import type { Db } from '../../src/db/client.js';
import { driverSqlOf, providerOf, type SqlRunner } from '../../src/db/driver-sql.js';
import { type Sql, sql } from '../../src/generated/prisma-sqlite/internal/prismaNamespace.js';

/**
 * The database's plan for the statement `run` sends (a read or a write through a SqlRunner, as the
 * hand-written list, catalogue and retention statements are), as text lines: SQLite's
 * `EXPLAIN QUERY PLAN` details or PostgreSQL's `EXPLAIN` lines. The statement itself is not run
 * (a write answers that it changed no row).
 */
export async function planOf(db: Db, run: (runner: SqlRunner) => Promise<unknown>): Promise<string> {
  const driver = driverSqlOf(db);
  const explain = providerOf(db) === 'sqlite' ? 'EXPLAIN QUERY PLAN' : 'EXPLAIN';
  let plan: string[] = [];
  const explainOf = async (query: TemplateStringsArray | Sql, values: unknown[]) => {
    const statement = 'raw' in query ? sql(query, ...(values as never[])) : query;
    const rows = await driver.$queryRaw<Record<string, unknown>[]>(sql([`${explain} `, ''], statement));
    plan = rows.map((row) => String(row.detail ?? row['QUERY PLAN']));
  };
  const explaining: SqlRunner = {
    async $queryRaw<T>(query: TemplateStringsArray | Sql, ...values: unknown[]) {
      await explainOf(query, values);
      return [] as T;
    },
    async $executeRaw(query: TemplateStringsArray | Sql, ...values: unknown[]) {
      await explainOf(query, values);
      return 0;
    },
  };
  await run(explaining);
  return plan.join('\n');
}

/** A plan that sorts rows (SQLite's temporary B-tree for ORDER BY, a PostgreSQL Sort node). */
export const SORTS = /TEMP B-TREE FOR ORDER BY|Sort/;
