import { join, raw, sql } from '../generated/prisma-sqlite/internal/prismaNamespace.js';
import { readInChunks } from './chunks.js';
import { paddedIds, type SqlRunner } from './driver-sql.js';
import type { OutboxMessageRow } from './models.js';
import { deleteByIds, type Provider } from './retention-sql.js';

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
  | 'destination'
  | 'topic'
  | 'body'
  | 'webhookId'
  | 'notificationId'
  | 'attempts'
  | 'lockedUntil'
>;

/**
 * The kinds of message (OutboundKind is this list), in the order claims take them: payment pushes
 * first (a buyer waits on them). A kind not listed here could be written but never claimed.
 */
export const OUTBOUND_KINDS = ['payment', 'webhook'] as const;

/**
 * The payment pushes an instance can send: those whose receiver (`destination`) it has a URL for,
 * and those written with their URL. A push for a receiver it has no URL for is left to an instance
 * that has one (during a rolling update that sets a push URL, say): claimed here, it was
 * dead-lettered, and its body blanked. `null`: any (a caller that sends nothing).
 */
function sendableBy(destinations: readonly string[] | null) {
  if (destinations === null) return raw('');
  if (destinations.length === 0) return sql`AND "destination" IS NULL`;
  return sql`AND ("destination" IS NULL OR "destination" IN (${join([...destinations])}))`;
}

/**
 * Claims up to `limit` due messages for `workerId` until `lockedUntil`, and counts the attempt:
 * payment pushes first (a buyer waits on them; webhooks are notifications), then the others, each
 * kind oldest due first, one statement per kind until the limit is reached. Each is one
 * conditional UPDATE: the outer conditions repeat the inner ones, so on PostgreSQL two claims
 * racing for a row re-check them on the row the winner wrote (whose lock is no longer expired)
 * and only one gets it; SQLite runs one write at a time anyway. A lock left by a dead worker
 * expires, and its message is claimed again.
 *
 * One kind per statement so that the (status, kind, nextAttemptAt) index hands the rows over in
 * order and the LIMIT stops the scan: ranking the kinds inside one statement made the database
 * sort every due row at every claim (933 µs per claim of 32 with 3,000 due on SQLite, 2.4 ms on
 * PostgreSQL). Two more choices keep a claim's cost with the rows it takes (measured on SQLite,
 * 3,000 due, claims of 22 as the worker makes them: 0.60 ms → 0.34 ms for the first, and the
 * second removes a scan that grew with the messages in flight):
 * - on SQLite a claim moves `nextAttemptAt` to the end of its lock, so the messages in flight
 *   leave the due range of the index instead of being read and skipped by every later claim; if
 *   the attempt never reports, the message is due again exactly when its lock expires (on both
 *   providers the lock's own condition decides that);
 * - the outer re-check of the status is written `("status" = 'PENDING') IS TRUE`, which no index
 *   serves: written plainly, SQLite's planner walked every PENDING row of the (status, …) index
 *   and tested each against the ids instead of looking the ids up by primary key.
 *
 * On PostgreSQL (`onPostgres`) the claim leaves `nextAttemptAt` as it is: a claim that changes no
 * indexed column is a HOT update (the new row version on the same page, which the table's
 * fillfactor keeps free, migration 0006), with no entry added to any of the table's five
 * indexes. Measured there (3,000 due, claims of 32, deliveries recorded 80 at a time): WAL per
 * message 1,570 → 704 bytes, the server's CPU per message 43–67 → 30–33 µs, in exchange for later
 * claims reading past the messages in flight (at most the worker's window), which PostgreSQL does
 * cheaply and SQLite, which updates in place, does not need to.
 */
/**
 * PostgreSQL: the rows another worker's claim holds (not committed yet) are passed over, not
 * waited for. Without it two instances' claims, each locking its rows as its scan found them,
 * deadlocked now and then (40P01, one a quarter hour per instance at ~670 messages a minute in a
 * two-instance soak): a warning and a delayed claim each time. SQLite has one writer at a time.
 */
const SKIP_LOCKED = raw('FOR UPDATE SKIP LOCKED');

export async function claimDueMessages(
  db: SqlRunner,
  workerId: string,
  now: Date,
  lockedUntil: Date,
  limit: number,
  onPostgres: boolean,
  kinds: readonly (typeof OUTBOUND_KINDS)[number][] = OUTBOUND_KINDS,
  pushDestinations: readonly string[] | null = null,
): Promise<ClaimedMessage[]> {
  const claimed: ClaimedMessage[] = [];
  const dueAfter = onPostgres ? sql`"nextAttemptAt"` : sql`${lockedUntil}`;
  const sendable = sendableBy(pushDestinations);
  for (const kind of kinds) {
    const room = limit - claimed.length;
    if (room <= 0) break;
    const rows = await db.$queryRaw<ClaimedMessage[]>`
      UPDATE "OutboxMessage"
      SET "lockedBy" = ${workerId}, "lockedUntil" = ${lockedUntil}, "nextAttemptAt" = ${dueAfter},
        "attempts" = "attempts" + 1, "updatedAt" = ${now}
      WHERE "id" IN (
          SELECT "id" FROM "OutboxMessage"
          WHERE "status" = 'PENDING' AND "kind" = ${kind} AND "nextAttemptAt" <= ${now}
            AND ("lockedUntil" IS NULL OR "lockedUntil" < ${now}) ${kind === 'payment' ? sendable : raw('')}
          ORDER BY "nextAttemptAt" LIMIT ${room} ${onPostgres ? SKIP_LOCKED : raw('')})
        AND ("status" = 'PENDING') IS TRUE AND ("lockedUntil" IS NULL OR "lockedUntil" < ${now})
      RETURNING "id", "kind", "idempotencyKey", "url", "destination", "topic", "body", "webhookId", "notificationId", "attempts", "lockedUntil"`;
    // In the order written within a kind (RETURNING promises no order).
    claimed.push(...rows.sort((a, b) => a.id - b.id));
  }
  return claimed;
}

/**
 * A payment push's body once it is finished: the buyer's credential is not kept in the outbox (the
 * PaymentNotification keeps the redacted copy). Webhook bodies hold nothing secret and stay.
 */
const FINISHED_BODY = sql`CASE WHEN "kind" = 'payment' THEN '{}' ELSE "body" END`;

/**
 * Messages this worker delivered with `statusCode`, in one statement; its lock is released.
 * Returns the ids written: a message whose lock this worker lost (it expired, another worker
 * claimed it) is not, and is not this worker's to settle.
 */
export async function markDelivered(
  db: SqlRunner,
  workerId: string,
  ids: readonly number[],
  statusCode: number,
  now: Date,
): Promise<number[]> {
  const rows = await db.$queryRaw<{ id: number }[]>`
    UPDATE "OutboxMessage"
    SET "status" = 'DELIVERED', "deliveredAt" = ${now}, "lastStatusCode" = ${statusCode}, "lastError" = NULL,
      "lockedBy" = NULL, "lockedUntil" = NULL, "updatedAt" = ${now}, "body" = ${FINISHED_BODY}
    WHERE "id" IN (${join(paddedIds(ids))}) AND "lockedBy" = ${workerId}
    RETURNING "id"`;
  return rows.map((row) => Number(row.id));
}

export interface FailedAttempt {
  id: number;
  /** PENDING (retried at nextAttemptAt) or DEAD (the retry limit was reached). */
  status: 'PENDING' | 'DEAD';
  nextAttemptAt: Date;
  lastError: string;
  lastStatusCode: number | null;
  /** The attempts it has made: one less than claimed when its claim was past OUTBOX_MAX_ATTEMPTS (not sent). */
  attempts: number;
}

/**
 * A failed attempt of this worker's: the message waits for its next one, or is dead-lettered.
 * Returns the rows written: 0 when this worker had lost the lock (nothing of it is recorded).
 */
export function markFailed(db: SqlRunner, workerId: string, failed: FailedAttempt, now: Date): Promise<number> {
  const body = failed.status === 'DEAD' ? FINISHED_BODY : sql`"body"`;
  return db.$executeRaw`
    UPDATE "OutboxMessage"
    SET "status" = ${failed.status}, "attempts" = ${failed.attempts}, "nextAttemptAt" = ${failed.nextAttemptAt},
      "lastError" = ${failed.lastError},
      "lastStatusCode" = ${failed.lastStatusCode}, "lockedBy" = NULL, "lockedUntil" = NULL, "updatedAt" = ${now},
      "body" = ${body}
    WHERE "id" = ${failed.id} AND "lockedBy" = ${workerId}`;
}

/**
 * Deletes a message this worker claimed: a webhook's, written after its webhook was removed (by a
 * dispatcher whose cached list still had it). A dead letter would outlive every way to list it.
 */
export function deleteClaimed(db: SqlRunner, workerId: string, id: number): Promise<number> {
  return db.$executeRaw`DELETE FROM "OutboxMessage" WHERE "id" = ${id} AND "lockedBy" = ${workerId}`;
}

/**
 * Gives claimed messages back as if they had not been claimed (their attempt not counted): those
 * a stopping worker had not started, or that waited so long in its queue that their lock would
 * expire during the attempt. They are due again at once.
 */
export function releaseClaims(db: SqlRunner, workerId: string, ids: readonly number[], now: Date): Promise<number> {
  return db.$executeRaw`
    UPDATE "OutboxMessage"
    SET "attempts" = "attempts" - 1, "lockedBy" = NULL, "lockedUntil" = NULL, "nextAttemptAt" = ${now},
      "updatedAt" = ${now}
    WHERE "id" IN (${join(ids)}) AND "lockedBy" = ${workerId} AND "status" = 'PENDING'`;
}

/**
 * Deletes up to `limit` finished (DELIVERED or DEAD) messages last written before `cutoff`, in one
 * statement (the retention cleanup, OUTBOX_RETENTION_DAYS, repeats it until fewer are left, so no
 * statement holds the database long). Returns how many were deleted.
 * A message is written (createdAt) before any change of it (updatedAt), so `createdAt < cutoff`
 * adds nothing to what goes but lets the (status, kind, createdAt) index bound the walk to the
 * finished messages created before the cutoff: on `updatedAt` alone, with no index, each run
 * scanned the whole outbox (200,000 rows: 279-441 ms on PostgreSQL, 157 ms on SQLite, with nothing
 * to delete). No ORDER BY: it would sort every eligible message of a backlog at each statement.
 */
export function removeFinishedMessages(
  db: SqlRunner,
  provider: Provider,
  cutoff: Date,
  limit: number,
): Promise<number> {
  const ids = sql`SELECT "id" FROM "OutboxMessage"
    WHERE "status" IN ('DELIVERED', 'DEAD') AND "kind" IN (${join([...OUTBOUND_KINDS])})
      AND "createdAt" < ${cutoff} AND "updatedAt" < ${cutoff}
    LIMIT ${limit}`;
  return deleteByIds(db, provider, 'OutboxMessage', ids);
}

/** Webhooks looked up per statement of `recentMessageIds` (SQLite allows 500 SELECTs in a UNION). */
const WEBHOOKS_PER_QUERY = 100;

/**
 * Row (message) ids of the latest `take` messages of each webhook: one statement per 100
 * webhooks, each webhook one walk down the (webhookId, id) index from its newest message, `take`
 * steps long (a UNION ALL of those walks). A window (ROW_NUMBER() OVER (PARTITION BY webhookId))
 * ranked every message of every webhook: with 200,000 stored, 434 ms and an external sort on
 * PostgreSQL, 255 ms on SQLite's main thread, to return 20.
 */
export async function recentMessageIds(db: SqlRunner, webhookIds: readonly string[], take: number): Promise<number[]> {
  if (webhookIds.length === 0) return [];
  const rows = await readInChunks(webhookIds, WEBHOOKS_PER_QUERY, (chunk) => {
    const walks = chunk.map(
      (webhookId, index) =>
        sql`SELECT * FROM (SELECT "id" FROM "OutboxMessage"
          WHERE "webhookId" = ${webhookId} ORDER BY "id" DESC LIMIT ${take}) AS ${raw(`"w${index}"`)}`,
    );
    return db.$queryRaw<{ id: number }[]>`${join(walks, ' UNION ALL ')}`;
  });
  return rows.map((row) => Number(row.id));
}

/** A webhook's newest message about a subject: what it announced is in its key and body (see webhook-messages.ts). */
export type LastMessage = { idempotencyKey: string; body: string };

/** Subjects looked up per statement of `lastKeysOfSubjects` (two parameters each). */
const SUBJECTS_PER_QUERY = 100;

/**
 * The idempotency key and body of each webhook's newest message about a subject, for many (webhookId,
 * subject) pairs: one statement per 100, each pair one step down the (webhookId, subject, id)
 * index, compared exactly (a UNION ALL of those steps). Found by the key's prefix before, it walked
 * every message of the webhook that no index could answer: with 300k stored, 190 ms on SQLite (on
 * the main thread: /health took 6.6 s) and 1.5 s on PostgreSQL per new app's change. Keyed by
 * `<webhookId> <subject>`; a pair with no message is absent.
 */
export async function lastKeysOfSubjects(
  db: SqlRunner,
  pairs: readonly { webhookId: string; subject: string }[],
): Promise<Map<string, LastMessage>> {
  const keys = new Map<string, LastMessage>();
  for (let start = 0; start < pairs.length; start += SUBJECTS_PER_QUERY) {
    const steps = pairs.slice(start, start + SUBJECTS_PER_QUERY).map(
      ({ webhookId, subject }, index) =>
        sql`SELECT * FROM (SELECT "webhookId", "subject", "idempotencyKey", "body" FROM "OutboxMessage"
          WHERE "webhookId" = ${webhookId} AND "subject" = ${subject} ORDER BY "id" DESC LIMIT 1) AS ${raw(`"s${index}"`)}`,
    );
    const rows = await db.$queryRaw<(LastMessage & { webhookId: string; subject: string })[]>`${join(
      steps,
      ' UNION ALL ',
    )}`;
    for (const { webhookId, subject, idempotencyKey, body } of rows) {
      keys.set(`${webhookId} ${subject}`, { idempotencyKey, body });
    }
  }
  return keys;
}

/** The signing secrets of webhooks, by webhook id (each claim of webhook messages reads them). */
export async function webhookSecrets(db: SqlRunner, webhookIds: readonly string[]): Promise<Map<string, string>> {
  if (webhookIds.length === 0) return new Map();
  const rows = await db.$queryRaw<{ webhookId: string; secret: string }[]>`
    SELECT "webhookId", "secret" FROM "Webhook" WHERE "webhookId" IN (${join(webhookIds)})`;
  return new Map(rows.map((row) => [row.webhookId, row.secret]));
}

/** A new outbox row, as enqueueOutbound writes it. */
export interface NewOutboxMessage {
  kind: string;
  topic: string;
  url: string | null;
  destination: string | null;
  body: string;
  idempotencyKey: string;
  notificationId: number | null;
  webhookId: string | null;
  subject: string | null;
}

/** Rows per INSERT: 12 parameters each, under SQLite's historical limit of 999 per statement. */
const MESSAGES_PER_INSERT = 83;

/**
 * Inserts the messages, due at `now`; one whose idempotency key is already in the outbox is
 * skipped by the database itself, so two instances writing the same key at once both succeed
 * (one row). Returns the rows written.
 */
export async function insertOutboxMessages(
  db: SqlRunner,
  messages: readonly NewOutboxMessage[],
  now: Date,
): Promise<number> {
  let written = 0;
  for (let start = 0; start < messages.length; start += MESSAGES_PER_INSERT) {
    const values = messages
      .slice(start, start + MESSAGES_PER_INSERT)
      .map(
        (m) =>
          sql`(${m.kind}, ${m.idempotencyKey}, ${m.url}, ${m.destination}, ${m.topic}, ${m.body}, ${m.notificationId}, ${m.webhookId}, ${m.subject}, ${now}, ${now}, ${now})`,
      );
    written += await db.$executeRaw`
      INSERT INTO "OutboxMessage" ("kind", "idempotencyKey", "url", "destination", "topic", "body", "notificationId",
        "webhookId", "subject", "nextAttemptAt", "createdAt", "updatedAt")
      VALUES ${join(values)}
      ON CONFLICT ("idempotencyKey") DO NOTHING`;
  }
  return written;
}

/**
 * How many messages of `status` and `kind` there are, counting at most `limit`: one range of the
 * (status, kind, …) indexes read up to `limit` entries (PostgreSQL: index-only). Prisma's
 * `count({ take })` selects more than this and took 90 ms for 10001 rows on SQLite, against 1 ms.
 */
export async function countMessagesUpTo(db: SqlRunner, status: string, kind: string, limit: number): Promise<number> {
  const [row] = await db.$queryRaw<{ n: number | bigint }[]>`
    SELECT COUNT(*) AS "n" FROM (
      SELECT 1 FROM "OutboxMessage" WHERE "status" = ${status} AND "kind" = ${kind} LIMIT ${limit}
    ) AS "upTo"`;
  return Number(row?.n ?? 0);
}
