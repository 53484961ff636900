import { setImmediate as nextTurn } from 'node:timers/promises';
import { join } from '../generated/prisma-sqlite/internal/prismaNamespace.js';
import { RAW_PARAMETERS, readInChunks } from './chunks.js';
import type { SqlRunner } from './driver-sql.js';
import { columnList } from './list-sql.js';
import { type AppRow, RUNTIME_TASK_COLUMNS, type RuntimeTaskRow, type TaskRow } from './models.js';

/**
 * The whole-table reads of the runtime state: the runtime store's load at start (and its
 * read-back of changed tasks), status correction's comparison with the app service (at start and
 * every interval), and the simulated app service's cluster. They grow with the fleet, and through Prisma's query API its result
 * mapping was most of their cost: 10k app rows took 100–150 ms with `appState.findMany()` and
 * 54–72 ms with this statement on the driver (SQLite, the same rows; a 10k-app start-up reads
 * them three times). Same contract as hot-path-sql.ts (rows exactly as the query API returns
 * them, one SQL text for both providers); meant for driver-sql.ts's DriverSql.
 */

/** Every app state row, oldest first. */
export async function allAppStates(db: SqlRunner): Promise<AppRow[]> {
  const rows: AppRow[] = [];
  for await (const page of appStatePages(db)) rows.push(...page);
  return rows;
}

/** App state rows per statement of `appStatePages`. */
export const APP_STATE_PAGE_ROWS = 2_000;

/**
 * Every app state row, oldest first, a page at a time (keyset on the id), so that each page's
 * intermediate values (the driver's row arrays) die young. Read in one statement, they lived
 * through the whole read: at 100k apps V8 promoted 727 MB to the old space (240 MB stayed) and
 * spent 2.6 s in scavenges, 0.7 s of it scanning the handles of the statement's result for
 * roots. The runtime store's load applies each page before reading the next. At 100k apps
 * (SQLite, with the load's events dropped too: StateStore.loadApps), three alternating pairs:
 * `app.start` 5.73–5.77 → 3.45–3.48 s, and until status correction's first run (which the start
 * does not wait for, and which reads every row too) was over as well 5.73–5.77 → 4.54–4.60 s;
 * peak RSS by then 969–1,015 → 851–866 MB.
 */
export async function* appStatePages(db: SqlRunner, pageRows = APP_STATE_PAGE_ROWS): AsyncGenerator<AppRow[]> {
  let after = 0;
  for (;;) {
    const rows = await db.$queryRaw<AppRow[]>`
      SELECT * FROM "AppState" WHERE "id" > ${after} ORDER BY "id" LIMIT ${pageRows}`;
    if (rows.length > 0) yield rows;
    if (rows.length < pageRows) return;
    after = (rows[rows.length - 1] as AppRow).id;
    // SQLite's statements run synchronously: without a turn of the event loop between pages, a
    // whole-table read held every request up until its end (a status correction run at 100k apps
    // blocked it for 2.4–3.2 s; its longest pause is now 0.57–0.9 s, in the comparison itself).
    await nextTurn();
  }
}

/** Every PENDING or RUNNING task, oldest first. */
export function allActiveTasks(db: SqlRunner): Promise<TaskRow[]> {
  return db.$queryRaw<TaskRow[]>`SELECT * FROM "Task" WHERE "status" IN ('PENDING', 'RUNNING') ORDER BY "id"`;
}

/** The runtime state's task reads: its columns (RUNTIME_TASK_COLUMNS), never `metadata`. */
const RUNTIME_TASK = columnList(RUNTIME_TASK_COLUMNS);

/** Every PENDING or RUNNING task, oldest first, with the runtime's columns. */
export function activeRuntimeTasks(db: SqlRunner): Promise<RuntimeTaskRow[]> {
  return db.$queryRaw<RuntimeTaskRow[]>`
    SELECT ${RUNTIME_TASK} FROM "Task" WHERE "status" IN ('PENDING', 'RUNNING') ORDER BY "id"`;
}

/** The latest `take` finished tasks (neither PENDING nor RUNNING), newest first, with the runtime's columns. */
export function latestFinishedRuntimeTasks(db: SqlRunner, take: number): Promise<RuntimeTaskRow[]> {
  return db.$queryRaw<RuntimeTaskRow[]>`
    SELECT ${RUNTIME_TASK} FROM "Task" WHERE "status" NOT IN ('PENDING', 'RUNNING') ORDER BY "id" DESC
    LIMIT ${take}`;
}

/** The tasks with these ids that exist, in no particular order, with the runtime's columns (a read-back). */
export async function runtimeTasks(db: SqlRunner, taskIds: readonly string[]): Promise<RuntimeTaskRow[]> {
  if (taskIds.length === 0) return [];
  return readInChunks(
    taskIds,
    RAW_PARAMETERS,
    (ids) => db.$queryRaw<RuntimeTaskRow[]>`SELECT ${RUNTIME_TASK} FROM "Task" WHERE "taskId" IN (${join(ids)})`,
  );
}
