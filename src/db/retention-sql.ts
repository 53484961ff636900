import { TERMINAL_STATUSES } from '../domain/tasks.js';
import { join } from '../generated/prisma-sqlite/internal/prismaNamespace.js';
import type { SqlRunner } from './driver-sql.js';

/**
 * The statements of the retention cleanup (HISTORY_RETENTION_DAYS): each deletes at most `limit`
 * rows, oldest first, so that no statement holds the database long; the caller repeats it
 * (platform/bounded-removal.ts). Each walks an index on the time it compares.
 */

/**
 * History records written before `cutoff`, down the HistoryRecord(time) index. One unbounded
 * DELETE of 500,000 took 13.5 s on SQLite (every request waited) and 1.5 s on PostgreSQL.
 * Returns how many went.
 */
export function removeOldHistory(db: SqlRunner, cutoff: Date, limit: number): Promise<number> {
  return db.$executeRaw`
    DELETE FROM "HistoryRecord" WHERE "id" IN (
      SELECT "id" FROM "HistoryRecord" WHERE "time" < ${cutoff} ORDER BY "time" LIMIT ${limit})`;
}

/** Finished tasks (COMPLETED, FAILED, CANCELED) that ended before `cutoff`. Returns how many went. */
export function removeFinishedTasks(db: SqlRunner, cutoff: Date, limit: number): Promise<number> {
  return db.$executeRaw`
    DELETE FROM "Task" WHERE "id" IN (
      SELECT "id" FROM "Task"
      WHERE "completedAt" < ${cutoff} AND "status" IN (${join([...TERMINAL_STATUSES])})
      ORDER BY "completedAt" LIMIT ${limit})`;
}

/**
 * Payment pushes (their redacted copies) written before `cutoff`, unless their delivery is still
 * pending: the outbox worker reads the notification when it sends it. Returns how many went.
 */
export function removeOldPaymentNotifications(db: SqlRunner, cutoff: Date, limit: number): Promise<number> {
  return db.$executeRaw`
    DELETE FROM "PaymentNotification" WHERE "id" IN (
      SELECT "id" FROM "PaymentNotification" AS "notification"
      WHERE "createdAt" < ${cutoff} AND NOT EXISTS (
        SELECT 1 FROM "OutboxMessage"
        WHERE "notificationId" = "notification"."id" AND "status" = 'PENDING')
      ORDER BY "createdAt" LIMIT ${limit})`;
}
