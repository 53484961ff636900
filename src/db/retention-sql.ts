import { TERMINAL_STATUSES } from '../domain/tasks.js';
import { join, raw, type Sql, sql } from '../generated/prisma-sqlite/internal/prismaNamespace.js';
import type { DriverHandle, SqlRunner } from './driver-sql.js';

/**
 * The statements of the retention cleanup (HISTORY_RETENTION_DAYS; the outbox's are in
 * outbox-sql.ts, removeFinishedMessages): each deletes at most `limit`
 * rows, oldest first, so that no statement holds the database long; the caller repeats it
 * (platform/bounded-removal.ts). Each walks an index on the time it compares.
 */

/** The provider a statement is for (providerOf): the bounded DELETE's form differs. */
export type Provider = DriverHandle['kind'];

/**
 * Deletes the rows of `table` whose ids `ids` (a SELECT of at most the statement's bound, down an
 * index) returns, each found by its primary key. On PostgreSQL as `= ANY (ARRAY(…))`: with
 * `IN (…)` it planned a hash semi-join over a sequential scan of the whole table at every
 * statement (1,000,000 history records: 253 ms a statement against 8 ms).
 */
export function deleteByIds(db: SqlRunner, provider: Provider, table: string, ids: Sql): Promise<number> {
  const among = provider === 'postgresql' ? sql`= ANY (ARRAY(${ids}))` : sql`IN (${ids})`;
  return db.$executeRaw`DELETE FROM ${raw(`"${table}"`)} WHERE "id" ${among}`;
}

/**
 * History records written before `cutoff`, down the HistoryRecord(time) index. One unbounded
 * DELETE of 500,000 took 13.5 s on SQLite (every request waited) and 1.5 s on PostgreSQL.
 * Returns how many went.
 */
export function removeOldHistory(db: SqlRunner, provider: Provider, cutoff: Date, limit: number): Promise<number> {
  const ids = sql`SELECT "id" FROM "HistoryRecord" WHERE "time" < ${cutoff} ORDER BY "time" LIMIT ${limit}`;
  return deleteByIds(db, provider, 'HistoryRecord', ids);
}

/** Finished tasks (COMPLETED, FAILED, CANCELED) that ended before `cutoff`. Returns how many went. */
export function removeFinishedTasks(db: SqlRunner, provider: Provider, cutoff: Date, limit: number): Promise<number> {
  const ids = sql`SELECT "id" FROM "Task"
    WHERE "completedAt" < ${cutoff} AND "status" IN (${join([...TERMINAL_STATUSES])})
    ORDER BY "completedAt" LIMIT ${limit}`;
  return deleteByIds(db, provider, 'Task', ids);
}

/**
 * Payment pushes (their redacted copies) written before `cutoff`, unless their delivery is still
 * pending: the outbox worker reads the notification when it sends it. Returns how many went.
 */
export function removeOldPaymentNotifications(
  db: SqlRunner,
  provider: Provider,
  cutoff: Date,
  limit: number,
): Promise<number> {
  const ids = sql`SELECT "id" FROM "PaymentNotification" AS "notification"
    WHERE "createdAt" < ${cutoff} AND NOT EXISTS (
      SELECT 1 FROM "OutboxMessage"
      WHERE "notificationId" = "notification"."id" AND "status" = 'PENDING')
    ORDER BY "createdAt" LIMIT ${limit}`;
  return deleteByIds(db, provider, 'PaymentNotification', ids);
}
