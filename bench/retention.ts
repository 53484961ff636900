/**
 * Before/after of the retention statements at production volumes (not a test; run by hand:
 * `npx tsx bench/retention.ts`). For each provider (SQLite, and PostgreSQL at TEST_DATABASE_URL),
 * a fresh migrated database with 1,000,000 history records spread evenly over 60 days; the cutoff
 * is 30 days ago (HISTORY_RETENTION_DAYS' default), so half of them are past it.
 *  - before: the one unbounded DELETE the cleanup sent (Prisma's deleteMany `time < cutoff`), timed;
 *  - after: removeOldHistory (10,000 rows per statement) repeated until fewer are left, on a second
 *    copy of the same rows: total time and the longest single statement (what a request waits for
 *    at most on SQLite).
 */
import pg from 'pg';
import { createPrismaClient, type Db, prepareDatabase } from '../src/db/client.js';
import { removeOldHistory } from '../src/db/retention-sql.js';
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

for (const kind of await availableDatabases()) await measure(kind);
