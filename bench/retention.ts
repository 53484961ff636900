/**
 * Before/after of the retention statements at production volumes (not a test; run by hand:
 * `npx tsx bench/retention.ts`). For each provider (SQLite, and PostgreSQL at TEST_DATABASE_URL),
 * a fresh migrated database with 1,000,000 history records spread evenly over 60 days; the cutoff
 * is 30 days ago (HISTORY_RETENTION_DAYS' default), so half of them are past it.
 *  - before: the one unbounded DELETE the cleanup sent (Prisma's deleteMany `time < cutoff`), timed;
 *  - after: removeOldHistory (10,000 rows per statement) repeated until fewer are left, on a second
 *    copy of the same rows: total time and the longest single statement (what a request waits for
 *    at most on SQLite).
 * Then 200,000 outbox messages (finished or pending, all changed within the week: nothing to delete,
 * as in a steady state) and one cleanup statement of each form, median of 5: before, on `updatedAt`
 * alone ordered by id; after, removeFinishedMessages. On the same rows (half of them webhook
 * messages of 20 webhooks), the ids of `webhooks { deliveries(last: 20) }`, median of 5: before, the
 * ROW_NUMBER() window; after, recentMessageIds.
 */
import pg from 'pg';
import { createPrismaClient, type Db, prepareDatabase } from '../src/db/client.js';
import { recentMessageIds, removeFinishedMessages } from '../src/db/outbox-sql.js';
import { removeOldHistory } from '../src/db/retention-sql.js';
import { join } from '../src/generated/prisma-sqlite/internal/prismaNamespace.js';
import { ROWS_PER_STATEMENT } from '../src/platform/bounded-removal.js';
import { availableDatabases, createTestDatabase, type DatabaseKind } from '../test/support/databases.js';

const RECORDS = 1_000_000;
const DAY_MS = 24 * 60 * 60 * 1000;

async function seeded(kind: DatabaseKind): Promise<{ db: Db; drop: () => Promise<void> }> {
  const database = await createTestDatabase(kind);
  const db = createPrismaClient(database.url);
  await prepareDatabase(db, database.url);
  const start = Date.now() - 60 * DAY_MS;
  const stepMs = Math.floor((60 * DAY_MS) / RECORDS);
  if (kind === 'postgresql') {
    // Through pg itself: the server's pool gives up on a statement this long (its read timeout).
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    await client.query(`
      INSERT INTO "HistoryRecord" ("type", "message", "userId", "time")
      SELECT 'system', 'record ' || n, 'user' || (n % 50), to_timestamp((${start} + n::bigint * ${stepMs}) / 1000.0)
      FROM generate_series(1, ${RECORDS}) AS n`);
    await client.query('ANALYZE "HistoryRecord"');
    await client.end();
  } else {
    await db.$executeRawUnsafe(`
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${RECORDS})
      INSERT INTO "HistoryRecord" ("type", "message", "userId", "time")
      SELECT 'system', 'record ' || i, 'user' || (i % 50),
        strftime('%Y-%m-%dT%H:%M:%fZ', (${start} + i * ${stepMs}) / 1000.0, 'unixepoch') FROM n`);
  }
  return {
    db,
    drop: async () => {
      await db.$disconnect();
      await database.drop();
    },
  };
}

async function measure(kind: DatabaseKind): Promise<void> {
  const cutoff = new Date(Date.now() - 30 * DAY_MS);
  const before = await seeded(kind);
  let started = performance.now();
  const { count } = await before.db.historyRecord.deleteMany({ where: { time: { lt: cutoff } } });
  const unboundedMs = performance.now() - started;
  await before.drop();

  const after = await seeded(kind);
  let removed = 0;
  let longestMs = 0;
  started = performance.now();
  for (;;) {
    const statementStart = performance.now();
    const batch = await removeOldHistory(after.db, kind, cutoff, ROWS_PER_STATEMENT);
    longestMs = Math.max(longestMs, performance.now() - statementStart);
    removed += batch;
    if (batch < ROWS_PER_STATEMENT) break;
  }
  const boundedMs = performance.now() - started;
  await after.drop();
  console.info(
    `${kind}: before one DELETE of ${count} rows ${unboundedMs.toFixed(0)} ms; after ${removed} rows in ` +
      `${Math.ceil(removed / ROWS_PER_STATEMENT)} statements, ${boundedMs.toFixed(0)} ms in all, longest ${longestMs.toFixed(0)} ms`,
  );
}

const MESSAGES = 200_000;

async function medianMs(run: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    await run();
    times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b)[2] as number;
}

async function measureOutbox(kind: DatabaseKind): Promise<void> {
  const database = await createTestDatabase(kind);
  const db = createPrismaClient(database.url);
  await prepareDatabase(db, database.url);
  const client = kind === 'postgresql' ? new pg.Client({ connectionString: database.url }) : null;
  await client?.connect();
  const status = (n: string) =>
    `CASE WHEN ${n} % 10 = 0 THEN 'PENDING' WHEN ${n} % 10 = 1 THEN 'DEAD' ELSE 'DELIVERED' END`;
  if (client) {
    await client.query(`INSERT INTO "OutboxMessage" ("kind", "idempotencyKey", "url", "topic", "body", "status",
      "nextAttemptAt", "createdAt", "updatedAt", "webhookId")
      SELECT CASE WHEN n % 2 = 0 THEN 'webhook' ELSE 'payment' END, 'm:' || n, 'http://127.0.0.1:9/', 't', '{}',
        ${status('n')}, now(), now() - (n % 6000) * interval '1 minute', now() - (n % 3000) * interval '1 minute',
        CASE WHEN n % 2 = 0 THEN 'wh' || (n % 20) END
      FROM generate_series(1, ${MESSAGES}) AS n`);
    await client.query('ANALYZE "OutboxMessage"');
    await client.end();
  } else {
    const iso = (expr: string) => `strftime('%Y-%m-%dT%H:%M:%fZ', ${expr}, 'unixepoch')`;
    const now = Date.now() / 1000;
    await db.$executeRawUnsafe(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${MESSAGES})
      INSERT INTO "OutboxMessage" ("kind", "idempotencyKey", "url", "topic", "body", "status",
        "nextAttemptAt", "createdAt", "updatedAt", "webhookId")
      SELECT CASE WHEN i % 2 = 0 THEN 'webhook' ELSE 'payment' END, 'm:' || i, 'http://127.0.0.1:9/', 't', '{}',
        ${status('i')}, ${iso(String(now))}, ${iso(`${now} - (i % 6000) * 60`)}, ${iso(`${now} - (i % 3000) * 60`)},
        CASE WHEN i % 2 = 0 THEN 'wh' || (i % 20) END
      FROM n`);
  }
  const cutoff = new Date(Date.now() - 7 * DAY_MS);
  const before = await medianMs(
    () => db.$executeRaw`DELETE FROM "OutboxMessage" WHERE "id" IN (
      SELECT "id" FROM "OutboxMessage" WHERE "status" IN ('DELIVERED', 'DEAD') AND "updatedAt" < ${cutoff}
      ORDER BY "id" LIMIT ${ROWS_PER_STATEMENT})`,
  );
  const after = await medianMs(() => removeFinishedMessages(db, kind, cutoff, ROWS_PER_STATEMENT));
  console.info(
    `${kind}: outbox cleanup statement, ${MESSAGES} messages, nothing to delete: before ${before.toFixed(1)} ms, after ${after.toFixed(1)} ms`,
  );
  const webhookIds = Array.from({ length: 20 }, (_, index) => `wh${index}`);
  const windowBefore = await medianMs(
    () => db.$queryRaw`SELECT "id" FROM (
      SELECT "id", ROW_NUMBER() OVER (PARTITION BY "webhookId" ORDER BY "id" DESC) AS "rank"
      FROM "OutboxMessage" WHERE "webhookId" IN (${join(webhookIds)})) AS "ranked" WHERE "rank" <= 20`,
  );
  const walksAfter = await medianMs(() => recentMessageIds(db, webhookIds, 20));
  console.info(
    `${kind}: deliveries of 20 webhooks (last 20): before ${windowBefore.toFixed(1)} ms, after ${walksAfter.toFixed(1)} ms`,
  );
  await db.$disconnect();
  await database.drop();
}

const only = process.argv[2];
for (const kind of await availableDatabases()) {
  if (!only || only === 'history') await measure(kind);
  if (!only || only === 'outbox') await measureOutbox(kind);
}
