import type { SqlRunner } from './driver-sql.js';
import type { AppRow, TaskRow } from './models.js';

/**
 * The whole-table reads of the runtime state: the runtime store's load at start, status
 * correction's comparison with the app service (at start and every interval), and the simulated
 * app service's cluster. They grow with the fleet, and through Prisma's query API its result
 * mapping was most of their cost: 10k app rows took 100–150 ms with `appState.findMany()` and
 * 54–72 ms with this statement on the driver (SQLite, the same rows; a 10k-app start-up reads
 * them three times). Same contract as hot-path-sql.ts (rows exactly as the query API returns
 * them, one SQL text for both providers); meant for driver-sql.ts's DriverSql.
 */

/** Every app state row, oldest first. */
export function allAppStates(db: SqlRunner): Promise<AppRow[]> {
  return db.$queryRaw<AppRow[]>`SELECT * FROM "AppState" ORDER BY "id"`;
}

/** Every PENDING or RUNNING task, oldest first. */
export function allActiveTasks(db: SqlRunner): Promise<TaskRow[]> {
  return db.$queryRaw<TaskRow[]>`SELECT * FROM "Task" WHERE "status" IN ('PENDING', 'RUNNING') ORDER BY "id"`;
}

/** The latest `take` finished tasks (neither PENDING nor RUNNING), newest first. */
export function latestFinishedTasks(db: SqlRunner, take: number): Promise<TaskRow[]> {
  return db.$queryRaw<TaskRow[]>`
    SELECT * FROM "Task" WHERE "status" NOT IN ('PENDING', 'RUNNING') ORDER BY "id" DESC LIMIT ${take}`;
}
