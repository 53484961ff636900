import type { AppKey } from '../domain/app-key.js';
import type { TerminalStatus } from '../domain/tasks.js';
import { empty, join, sql } from '../generated/prisma-sqlite/internal/prismaNamespace.js';
import { KEYS_PER_OR, RAW_PARAMETERS, readInChunks } from './chunks.js';
import type { SqlRunner } from './driver-sql.js';
import type { AppRow, CatalogAppRow, HistoryRow, TaskRow } from './models.js';

/**
 * Hand-written SQL for the statements every install runs: the mutation's catalogue lookup and
 * writes, the task engine's claim, progress and end, and the runtime collector's reads of what
 * changed; and for reading one app (`app(...)` and its stage), the most frequent small query. Through Prisma's query API each of these costs 4–5× the same statement sent with
 * `$queryRaw`/`$executeRaw` (Prisma's query compiler and result mapping dominate; measured on
 * SQLite: an updateMany 550 µs CPU vs 110 µs raw, a create 2 ms vs 0.45 ms).
 * Everything else, and every rare path, stays on the query API. Each statement takes any SqlRunner;
 * the hot paths send them on the driver (driver-sql.ts), in its `$transaction` where several
 * commit together: through Prisma's `$queryRaw` or batch transactions their own pipeline was most
 * of the cost again (a read-back of a task and an app: 340–710 µs of CPU, 20–39 µs on the driver,
 * SQLite; README, "Hand-written SQL on the hot paths").
 *
 * The contract, checked on both providers by test/hot-path-sql.test.ts: a row these statements
 * write reads back through Prisma exactly as the row Prisma would have written, and a row they
 * read is exactly what Prisma's query API returns for it, so the rest of the code cannot tell
 * them apart. One SQL text serves SQLite and PostgreSQL, which is why:
 * - identifiers are quoted as Prisma names them ("Task", "appName");
 * - parameters carry no casts: PostgreSQL infers each one's type from the column it is written to
 *   or compared with (so JSON goes in as its text and lands as jsonb);
 * - DateTime parameters are Dates, which the SQLite adapter writes as Prisma does
 *   (`2026-11-22T18:14:09.003+00:00`), so text comparisons such as `"eventTime" <= ?` still order
 *   correctly; `@updatedAt` and `@default(now())` columns are set here, as Prisma's client sets
 *   them itself (the database defaults would store another format on SQLite);
 * - rows come back with `RETURNING *` (or `SELECT *`), which both adapters type like Prisma's own
 *   results (Dates, booleans, parsed JSON).
 */

/** JSON as Prisma stores a Json column; `undefined` is SQL NULL. */
function json(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

/**
 * A unique index refused the write: Prisma's P2002 from its query API, a raw statement's P2010
 * whose driver error says so (the form the statements of this module fail with through Prisma),
 * or the driver's own error (through driver-sql.ts: better-sqlite3's code, PostgreSQL's 23505).
 */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, meta } = error as { code?: string; meta?: { driverAdapterError?: { cause?: { kind?: string } } } };
  return (
    code === 'P2002' ||
    (code === 'P2010' && meta?.driverAdapterError?.cause?.kind === 'UniqueConstraintViolation') ||
    code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    code === '23505'
  );
}

/** A task row as it is inserted, PENDING (see insertTask). */
export interface NewTask extends AppKey {
  taskId: string;
  type: string;
  version: string | null;
  metadata: unknown;
  idempotencyKey: string | null;
  /** What the idempotencyKey is bound to (services/request-digest.ts); none when omitted. */
  requestDigest?: string | null;
  /** `appKeyString` of the task's app: the one-active-task-per-app slot it takes. */
  activeKey: string;
  retryOfTaskId: string | null;
  createdAt: Date;
}

/** A new PENDING task (one row, in the transaction that writes its app's row and history record). */
export function insertTask(db: SqlRunner, task: NewTask): Promise<TaskRow[]> {
  return db.$queryRaw<TaskRow[]>`
    INSERT INTO "Task" ("taskId", "type", "status", "userId", "sourceId", "appName", "version", "metadata",
      "idempotencyKey", "requestDigest", "activeKey", "retryOfTaskId", "createdAt", "updatedAt")
    VALUES (${task.taskId}, ${task.type}, 'PENDING', ${task.userId}, ${task.sourceId}, ${task.appName},
      ${task.version}, ${json(task.metadata)}, ${task.idempotencyKey}, ${task.requestDigest ?? null}, ${task.activeKey},
      ${task.retryOfTaskId}, ${task.createdAt}, ${task.createdAt})
    RETURNING *`;
}

export interface AppStateForTask extends AppKey {
  opType: string;
  targetVersion: string | null;
  /** Only for a new row. */
  cfgType: string;
  title: string | null;
  rawAppName: string | null;
  now: Date;
}

/**
 * The app's state row when a task is accepted: a new row in state "pending", or the existing one
 * with the new operation (its reported state stays until the app service reports another).
 */
export function upsertAppStateForTask(db: SqlRunner, row: AppStateForTask): Promise<number> {
  return db.$executeRaw`
    INSERT INTO "AppState" ("userId", "sourceId", "appName", "state", "opType", "targetVersion", "cfgType", "title",
      "rawAppName", "eventTime", "createdAt", "updatedAt")
    VALUES (${row.userId}, ${row.sourceId}, ${row.appName}, 'pending', ${row.opType}, ${row.targetVersion},
      ${row.cfgType}, ${row.title}, ${row.rawAppName}, ${row.now}, ${row.now}, ${row.now})
    ON CONFLICT ("userId", "sourceId", "appName") DO UPDATE SET "opType" = excluded."opType", "opId" = NULL,
      "targetVersion" = excluded."targetVersion", "updatedAt" = excluded."updatedAt"`;
}

export interface NewHistoryRecord {
  type: string;
  message: string;
  app: string | null;
  userId: string;
  time: Date;
  extended?: unknown;
}

/** One history record (in the transaction of the change it records, or alone). */
export function insertHistory(db: SqlRunner, record: NewHistoryRecord): Promise<HistoryRow[]> {
  return db.$queryRaw<HistoryRow[]>`
    INSERT INTO "HistoryRecord" ("type", "message", "app", "userId", "time", "extended")
    VALUES (${record.type}, ${record.message}, ${record.app}, ${record.userId}, ${record.time}, ${json(record.extended)})
    RETURNING *`;
}

/**
 * The catalogue entry `name` of a source, if there is one: what `catalogApp.findUnique` on
 * `sourceId_name` returns. Exact, case-sensitive match on both providers (the unique index).
 */
export async function findCatalogApp(db: SqlRunner, sourceId: string, name: string): Promise<CatalogAppRow | null> {
  const rows = await db.$queryRaw<CatalogAppRow[]>`
    SELECT * FROM "CatalogApp" WHERE "sourceId" = ${sourceId} AND "name" = ${name}`;
  return rows[0] ?? null;
}

/** A user's rows of one app name, of every source (the app service runs one app of a name per user). */
export function findAppStatesNamed(db: SqlRunner, userId: string, appName: string): Promise<AppRow[]> {
  return db.$queryRaw<AppRow[]>`SELECT * FROM "AppState" WHERE "userId" = ${userId} AND "appName" = ${appName}`;
}

/** The app's state row, if it has one. */
export async function findAppState(db: SqlRunner, key: AppKey): Promise<AppRow | null> {
  const rows = await db.$queryRaw<AppRow[]>`
    SELECT * FROM "AppState" WHERE "userId" = ${key.userId} AND "sourceId" = ${key.sourceId} AND "appName" = ${key.appName}`;
  return rows[0] ?? null;
}

/**
 * The tasks with these ids that exist, in no particular order. A few hundred ids at most per
 * call (each is a bound parameter).
 */
export async function findTasks(db: SqlRunner, taskIds: readonly string[]): Promise<TaskRow[]> {
  if (taskIds.length === 0) return [];
  return readInChunks(
    taskIds,
    RAW_PARAMETERS,
    (ids) => db.$queryRaw<TaskRow[]>`SELECT * FROM "Task" WHERE "taskId" IN (${join(ids)})`,
  );
}

/**
 * The pending or running tasks holding these one-active-task-per-app slots (`activeKey`, the
 * app's `appKeyString`), in no particular order: an app read (`app(...)`, its stage, its
 * `activeTask`) asks for them on every request. A few hundred keys at most per call.
 */
export async function findActiveTasks(db: SqlRunner, activeKeys: readonly string[]): Promise<TaskRow[]> {
  if (activeKeys.length === 0) return [];
  return readInChunks(
    activeKeys,
    RAW_PARAMETERS,
    (keys) => db.$queryRaw<TaskRow[]>`SELECT * FROM "Task" WHERE "activeKey" IN (${join(keys)})`,
  );
}

/** How many PENDING or RUNNING tasks a user has (two ranges of the (status, userId, id, notBefore) index). */
export async function countActiveTasks(db: SqlRunner, userId: string): Promise<number> {
  const [row] = await db.$queryRaw<{ count: number }[]>`
    SELECT CAST(COUNT(*) AS INTEGER) AS "count" FROM "Task"
    WHERE "status" IN ('PENDING', 'RUNNING') AND "userId" = ${userId}`;
  return Number(row?.count ?? 0);
}

/**
 * The state rows these apps have (an app without one is simply absent), in no particular order.
 * A few hundred keys at most per call. One equality per key column, ORed: both SQLite and
 * PostgreSQL answer that from the unique index, and it needs no row-value syntax they differ on.
 */
export async function findAppStates(db: SqlRunner, keys: readonly AppKey[]): Promise<AppRow[]> {
  if (keys.length === 0) return [];
  // Each key is an OR more in one expression, which SQLite nests no deeper than 1,000.
  return readInChunks(keys, KEYS_PER_OR, (chunk) => {
    const matches = chunk.map(
      (key) => sql`("userId" = ${key.userId} AND "sourceId" = ${key.sourceId} AND "appName" = ${key.appName})`,
    );
    return db.$queryRaw<AppRow[]>`SELECT * FROM "AppState" WHERE ${join(matches, ' OR ')}`;
  });
}

/**
 * Claims up to `limit` PENDING tasks for a worker, in one statement, taking turns between users:
 * each user's tasks in id order, a user's k-th pending task ranked k + (that user's RUNNING tasks,
 * on every instance), the lowest ranks first, then the oldest. Claimed strictly oldest first, one
 * user's 600 clones held every worker for more than 6 minutes while another user's install waited
 * behind them; now that install is the next task claimed (test/fair-claims.test.ts).
 * The `"status" = 'PENDING'` condition is re-checked on each row as it is updated, so instances
 * sharing a database never claim the same task (one that lost a row to another claims fewer).
 * A user's tasks past the `limit`-th can never be among the first `limit`, so only those are sorted.
 * Its cost grows with the pending tasks (each is numbered), which MAX_ACTIVE_TASKS_PER_USER bounds
 * per user: 10,000 of 100 users (and 300,000 finished tasks), 10 ms on PostgreSQL, 37 ms on SQLite
 * under load (2.4 and 4.4 ms on a quiet machine, 2026-12-07),
 * by the (status, userId, id, notBefore) index (bench/fair-claim.ts; oldest first was 0.2 ms on SQLite, and
 * 180-240 ms on PostgreSQL, which walked the primary key past every finished task).
 * A task waiting to be sent again (start-retry.ts) is not pending before its `notBefore`: neither
 * claimed nor numbered. A claim clears its `message`, which told of that wait.
 */
export async function claimPendingTasks(db: SqlRunner, workerId: string, now: Date, limit: number): Promise<TaskRow[]> {
  const rows = await db.$queryRaw<TaskRow[]>`
    UPDATE "Task" SET "status" = 'RUNNING', "startedAt" = ${now}, "workerId" = ${workerId}, "heartbeatAt" = ${now},
      "dispatchedAt" = NULL, "message" = NULL, "updatedAt" = ${now}
    WHERE "id" IN (
      SELECT "pending"."id" FROM (
        SELECT "id", "userId", ROW_NUMBER() OVER (PARTITION BY "userId" ORDER BY "id") AS "place"
        FROM "Task" WHERE "status" = 'PENDING' AND ("notBefore" IS NULL OR "notBefore" <= ${now})
      ) AS "pending"
      LEFT JOIN (
        SELECT "userId", COUNT(*) AS "count" FROM "Task" WHERE "status" = 'RUNNING' GROUP BY "userId"
      ) AS "running" ON "running"."userId" = "pending"."userId"
      WHERE "pending"."place" <= ${limit}
      ORDER BY "pending"."place" + COALESCE("running"."count", 0), "pending"."id"
      LIMIT ${limit})
      AND "status" = 'PENDING' AND ("notBefore" IS NULL OR "notBefore" <= ${now})
    RETURNING *`;
  return rows.sort((a, b) => a.id - b.id);
}

/** Marks a task as sent to the app service; false when it is no longer this worker's running task. */
export async function markDispatched(db: SqlRunner, taskId: string, workerId: string, now: Date): Promise<boolean> {
  const count = await db.$executeRaw`
    UPDATE "Task" SET "dispatchedAt" = ${now}, "updatedAt" = ${now}
    WHERE "taskId" = ${taskId} AND "status" = 'RUNNING' AND "workerId" = ${workerId}`;
  return count > 0;
}

/**
 * What the app service answered when it accepted a task's operation: its op id (kept when it gave
 * none) and the task's result, on a task that is still running.
 */
export function setTaskAccepted(
  db: SqlRunner,
  taskId: string,
  opId: string | null,
  result: unknown,
  now: Date,
): Promise<number> {
  return db.$executeRaw`
    UPDATE "Task" SET "opId" = COALESCE(${opId}, "opId"), "result" = ${json(result)}, "updatedAt" = ${now}
    WHERE "taskId" = ${taskId} AND "status" = 'RUNNING'`;
}

/**
 * The acceptance of a task whose end was written first: its op id and result where the end left
 * none. Returns the row when it changed.
 */
export async function setEndedTaskAcceptance(
  db: SqlRunner,
  taskId: string,
  opId: string | null,
  result: unknown,
  now: Date,
): Promise<TaskRow | null> {
  const rows = await db.$queryRaw<TaskRow[]>`
    UPDATE "Task" SET "opId" = COALESCE("opId", ${opId}), "result" = COALESCE("result", ${json(result)}), "updatedAt" = ${now}
    WHERE "taskId" = ${taskId} AND "status" IN ('COMPLETED', 'FAILED', 'CANCELED')
      AND ("result" IS NULL OR "opId" IS NULL)
    RETURNING *`;
  return rows[0] ?? null;
}

/**
 * The operation the app's state row now follows; 0 when the row already follows it (a report of
 * that operation came first) or there is no row.
 */
export function setAppOperation(db: SqlRunner, key: AppKey, opId: string, opType: string, now: Date): Promise<number> {
  return db.$executeRaw`
    UPDATE "AppState" SET "opId" = ${opId}, "opType" = ${opType}, "updatedAt" = ${now}
    WHERE "userId" = ${key.userId} AND "sourceId" = ${key.sourceId} AND "appName" = ${key.appName}
      AND ("opId" IS NULL OR "opId" <> ${opId})`;
}

export interface ReportedState extends AppKey {
  state: string;
  progress: string | null;
  reason: string | null;
  message: string | null;
  /** When the app service produced the report. */
  eventTime: Date;
  /** Kept as they are when not reported. */
  opId: string | null;
  opType: string | null;
  rawAppName: string | null;
  /** The app's entrances (AppEntrance[]); kept as they are when not reported (undefined or null). */
  entrances?: readonly unknown[] | null;
}

/** An app's state row as status correction read it (see applyReportedState; engine RowAsRead). */
export type RowRead = { updatedAt: Date; ownState?: string | null | undefined };

/**
 * An app-service report into the app's state row, unless the row holds a newer one (its
 * `eventTime` is later): returns how many rows took it (0 or 1). A row no report has reached yet
 * (a first install's: `eventTime` is still its `createdAt`, this server's clock, see
 * upsertAppStateForTask) takes any report of the operation it follows: compared with this
 * server's clock, every report of an app service whose clock ran 10 s behind was older, and the
 * install never completed.
 *
 * `read` (a state status correction read from the list; the row's `updatedAt` as it read the
 * row, before it asked for the list): the row takes it only unchanged since, and a report at the
 * row's own time is not taken either. A row changed since (a report, an operation accepted) is not
 * the one the list was compared with. Planned only when later than the row, a state at its time is
 * already there (another leader's run wrote it while this one ran), and taking it again recorded
 * the same correction twice. A state event at the row's time still counts: a repeated event must
 * still end its task. `ownState`: the row holds, at the report's time, a failure this server wrote
 * itself (heldOwnFailure), replaced at that time; its reason stays unless the report gives one.
 */
export function applyReportedState(db: SqlRunner, report: ReportedState, now: Date, read?: RowRead): Promise<number> {
  const own = read?.ownState ? sql`OR ("eventTime" = ${report.eventTime} AND "state" = ${read.ownState})` : empty;
  const notNewer = read ? sql`("eventTime" < ${report.eventTime} ${own})` : sql`"eventTime" <= ${report.eventTime}`;
  const unchanged = read ? sql`AND "updatedAt" = ${read.updatedAt}` : empty;
  const reason = read?.ownState ? sql`COALESCE(${report.reason || null}, "reason")` : sql`${report.reason}`;
  return db.$executeRaw`
    UPDATE "AppState" SET "state" = ${report.state}, "progress" = ${report.progress}, "reason" = ${reason},
      "message" = ${report.message}, "eventTime" = ${report.eventTime}, "opId" = COALESCE(${report.opId}, "opId"),
      "opType" = COALESCE(${report.opType}, "opType"), "rawAppName" = COALESCE(${report.rawAppName}, "rawAppName"),
      "entrances" = COALESCE(${json(report.entrances ?? undefined)}, "entrances"), "updatedAt" = ${now}
    WHERE "userId" = ${report.userId} AND "sourceId" = ${report.sourceId} AND "appName" = ${report.appName}
      AND (${notNewer} OR ("eventTime" = "createdAt" AND "opId" = ${report.opId})) ${unchanged}`;
}

/** Raises a running task's progress; never lowers it (a late or repeated report changes nothing). */
export function raiseProgress(db: SqlRunner, taskId: string, progress: number, now: Date): Promise<number> {
  return db.$executeRaw`
    UPDATE "Task" SET "progress" = ${progress}, "updatedAt" = ${now}
    WHERE "taskId" = ${taskId} AND "status" = 'RUNNING' AND "progress" < ${progress}`;
}

export interface TaskEnd {
  status: TerminalStatus;
  now: Date;
  /** Kept as they are when undefined. */
  progress?: number;
  error?: string;
  result?: unknown;
  /** The op id the app service gave the task, for an end that overtook the write of its acceptance. */
  opId?: string | null;
}

/**
 * Ends a task that is still PENDING or RUNNING (once: the status condition; the statuses
 * TASK_TRANSITIONS lets a task end from) and frees its app's active-task slot; returns the ended
 * row, or null when it had already ended.
 */
export async function endTask(db: SqlRunner, taskId: string, end: TaskEnd): Promise<TaskRow | null> {
  const rows = await db.$queryRaw<TaskRow[]>`
    UPDATE "Task" SET "status" = ${end.status}, "activeKey" = NULL, "completedAt" = ${end.now},
      "progress" = COALESCE(${end.progress ?? null}, "progress"), "error" = COALESCE(${end.error ?? null}, "error"),
      "result" = COALESCE(${json(end.result)}, "result"), "opId" = COALESCE("opId", ${end.opId ?? null}),
      "updatedAt" = ${end.now}
    WHERE "taskId" = ${taskId} AND "status" IN ('RUNNING', 'PENDING')
    RETURNING *`;
  return rows[0] ?? null;
}

/** The version a completed install, clone or upgrade left on the app. */
export function setInstalledVersion(db: SqlRunner, key: AppKey, version: string, now: Date): Promise<number> {
  return db.$executeRaw`
    UPDATE "AppState" SET "installedVersion" = ${version}, "updatedAt" = ${now}
    WHERE "userId" = ${key.userId} AND "sourceId" = ${key.sourceId} AND "appName" = ${key.appName}`;
}

/** A task's result replaced (an accepted operation that then failed or was canceled says so). */
export function setTaskResult(db: SqlRunner, taskId: string, result: unknown, now: Date): Promise<number> {
  return db.$executeRaw`UPDATE "Task" SET "result" = ${json(result)}, "updatedAt" = ${now} WHERE "taskId" = ${taskId}`;
}

/** An app's state row gone (a completed uninstall, a canceled first install). */
export function deleteAppStateRow(db: SqlRunner, id: number): Promise<number> {
  return db.$executeRaw`DELETE FROM "AppState" WHERE "id" = ${id}`;
}

/** The reason an operation failed on an app's state row, and its new state unless `state` is null (kept). */
export function setAppStateFailure(
  db: SqlRunner,
  id: number,
  failure: { state: string | null; reason: string },
  now: Date,
): Promise<number> {
  return db.$executeRaw`
    UPDATE "AppState" SET "state" = COALESCE(${failure.state}, "state"), "reason" = ${failure.reason},
      "updatedAt" = ${now}
    WHERE "id" = ${id}`;
}
