import { join } from '../generated/prisma-sqlite/internal/prismaNamespace.js';
import type { SqlClient } from './hot-path-sql.js';
import type { OutboxMessageRow } from './models.js';

/**
 * The outbox worker's statements, hand-written for the reasons hot-path-sql.ts gives (one SQL text
 * for both providers, Dates as parameters, `updatedAt` set here): each delivery costs a claim and
 * an outcome, and through the query API those two would cost more CPU than the HTTP POST itself.
 */

/** What an attempt needs of a claimed message (the rest of the row stays in the database). */
export type ClaimedMessage = Pick<
  OutboxMessageRow,
  | 'id'
  | 'kind'
  | 'idempotencyKey'
  | 'url'
  | 'topic'
  | 'body'
  | 'webhookId'
  | 'notificationId'
  | 'attempts'
  | 'lockedUntil'
>;

/**
 * Claims up to `limit` due messages for `workerId` until `lockedUntil`, in one statement, and
 * counts the attempt. The outer conditions repeat the inner ones: on PostgreSQL two claims racing
 * for a row re-check them on the row the winner wrote (whose lock is no longer expired), so only
 * one of them gets it; SQLite runs one write at a time anyway. A lock left by a dead worker
 * expires, and its message is claimed again.
 */
export async function claimDueMessages(
  db: SqlClient,
  workerId: string,
  now: Date,
  lockedUntil: Date,
  limit: number,
): Promise<ClaimedMessage[]> {
  const rows = await db.$queryRaw<ClaimedMessage[]>`
    UPDATE "OutboxMessage"
    SET "lockedBy" = ${workerId}, "lockedUntil" = ${lockedUntil}, "attempts" = "attempts" + 1, "updatedAt" = ${now}
    WHERE "id" IN (
        SELECT "id" FROM "OutboxMessage"
        WHERE "status" = 'PENDING' AND "nextAttemptAt" <= ${now} AND ("lockedUntil" IS NULL OR "lockedUntil" < ${now})
        ORDER BY "nextAttemptAt" LIMIT ${limit})
      AND "status" = 'PENDING' AND ("lockedUntil" IS NULL OR "lockedUntil" < ${now})
    RETURNING "id", "kind", "idempotencyKey", "url", "topic", "body", "webhookId", "notificationId", "attempts", "lockedUntil"`;
  return rows.sort((a, b) => a.id - b.id);
}

/** Messages this worker delivered with `statusCode`, in one statement; its lock is released. */
export function markDelivered(
  db: SqlClient,
  workerId: string,
  ids: readonly number[],
  statusCode: number,
  now: Date,
): Promise<number> {
  return db.$executeRaw`
    UPDATE "OutboxMessage"
    SET "status" = 'DELIVERED', "deliveredAt" = ${now}, "lastStatusCode" = ${statusCode}, "lastError" = NULL,
      "lockedBy" = NULL, "lockedUntil" = NULL, "updatedAt" = ${now}
    WHERE "id" IN (${join(ids)}) AND "lockedBy" = ${workerId}`;
}

export interface FailedAttempt {
  id: number;
  /** PENDING (retried at nextAttemptAt) or DEAD (the retry limit was reached). */
  status: 'PENDING' | 'DEAD';
  nextAttemptAt: Date;
  lastError: string;
  lastStatusCode: number | null;
}

/** A failed attempt of this worker's: the message waits for its next one, or is dead-lettered. */
export function markFailed(db: SqlClient, workerId: string, failed: FailedAttempt, now: Date): Promise<number> {
  return db.$executeRaw`
    UPDATE "OutboxMessage"
    SET "status" = ${failed.status}, "nextAttemptAt" = ${failed.nextAttemptAt}, "lastError" = ${failed.lastError},
      "lastStatusCode" = ${failed.lastStatusCode}, "lockedBy" = NULL, "lockedUntil" = NULL, "updatedAt" = ${now}
    WHERE "id" = ${failed.id} AND "lockedBy" = ${workerId}`;
}

/**
 * Gives claimed messages back as if they had not been claimed (their attempt not counted): those
 * a stopping worker had not started, or that waited so long in its queue that their lock would
 * expire during the attempt.
 */
export function releaseClaims(db: SqlClient, workerId: string, ids: readonly number[], now: Date): Promise<number> {
  return db.$executeRaw`
    UPDATE "OutboxMessage"
    SET "attempts" = "attempts" - 1, "lockedBy" = NULL, "lockedUntil" = NULL, "updatedAt" = ${now}
    WHERE "id" IN (${join(ids)}) AND "lockedBy" = ${workerId} AND "status" = 'PENDING'`;
}
