import { join, type Sql, sql } from '../generated/prisma-sqlite/internal/prismaNamespace.js';
import type { SqlRunner } from './driver-sql.js';

/** The condition stageCandidatesSql builds, for the services that hold it between their reads. */
export type { Sql as CandidateCondition };

/**
 * The SQL side of `apps` filtered by stage or health (installed-app-service.ts): which AppState rows
 * can derive to the wanted values, so that only they are read and given deriveStage. Same rules as
 * list-sql.ts (quoted identifiers, no casts, values as parameters).
 */

/**
 * The distinct `state` values of AppState, by a loose scan of "AppState_state_idx": one index probe
 * per distinct state (a few dozen), not a row per app. Both SQLite and PostgreSQL run the recursive
 * form; a plain DISTINCT reads the whole index.
 */
export async function distinctAppStates(db: SqlRunner): Promise<string[]> {
  const rows = await db.$queryRaw<{ state: string | null }[]>`
    WITH RECURSIVE "states"("state") AS (
      SELECT MIN("state") FROM "AppState"
      UNION ALL
      SELECT (SELECT MIN("state") FROM "AppState" WHERE "state" > "states"."state") FROM "states"
      WHERE "states"."state" IS NOT NULL
    )
    SELECT "state" FROM "states" WHERE "state" IS NOT NULL`;
  return rows.map((row) => row.state as string);
}

/** Which rows may match: by state alone, by state when the progress names a word, and any with an active task. */
export interface StageCandidates {
  states: readonly string[];
  statesIfProgressNames: readonly string[];
  progressWords: readonly string[];
}

/**
 * The candidates as one condition on "AppState", to be ANDed with the list's others. The rows with
 * an active task are found from the Task side, a range of "Task_activeKey_key" (every key is >= '',
 * and only the few active tasks have one: SQLite scans the whole table for `IS NOT NULL`), matched
 * on the key columns the task's activeKey is built from (app-key.ts appKeyString).
 */
export function stageCandidatesSql({ states, statesIfProgressNames, progressWords }: StageCandidates): Sql {
  const byState = states.length > 0 ? [sql`"state" IN (${join(states)})`] : [];
  // LOWER: PostgreSQL's LIKE is case-sensitive, deriveStage's `includes` reads the progress lower-cased.
  const named = progressWords.map((word) => sql`LOWER("progress") LIKE ${`%${word}%`}`);
  const byProgress =
    statesIfProgressNames.length > 0 && named.length > 0
      ? [sql`("state" IN (${join(statesIfProgressNames)}) AND (${join(named, ' OR ')}))`]
      : [];
  const withTask = sql`"id" IN (SELECT "app"."id" FROM "Task" AS "task" JOIN "AppState" AS "app"
    ON "app"."userId" = "task"."userId" AND "app"."sourceId" = "task"."sourceId" AND "app"."appName" = "task"."appName"
    WHERE "task"."activeKey" >= '')`;
  return sql`(${join([...byState, ...byProgress, withTask], ' OR ')})`;
}
