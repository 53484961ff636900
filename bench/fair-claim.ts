// `npx tsx bench/fair-claim.ts`: the task engine's fair claim (claimPendingTasks, hot-path-sql.ts)
// with 10,000 PENDING tasks of 100 users (one of them 5,000), 8 RUNNING and 300,000 finished tasks,
// on both providers: its plan and its time (median of 7 warm runs, each claim of 4 rolled back),
// with and without the (status, userId, id, notBefore) index (0015_task_fair_claim_index, notBefore since 0016).
// Every 10th pending task waits to be sent again (start-retry.ts): half of those are due, half not yet.
// Seeds a PostgreSQL database `fairclaim_bench` and /tmp/fairclaim-bench.db once, migrated by the
// release's migrateDatabase. Drop them afterwards: `DROP DATABASE fairclaim_bench`, rm /tmp/fairclaim-bench.db.
import Database from 'better-sqlite3';
import pg from 'pg';
import { migrateDatabase } from '../src/db/migrate.js';

const PG_ADMIN = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const PG_URL = PG_ADMIN.replace(/\/[^/]*$/, '/fairclaim_bench');
const SQLITE_FILE = '/tmp/fairclaim-bench.db';
const INDEX = '"Task_status_userId_id_notBefore_idx"';
const INDEX_COLUMNS = '("status","userId","id","notBefore")';

// n 1..300000 finished; then 10,000 pending (half of them user0's, the rest over 99 users); 8 running.
const STATUS = `CASE WHEN n > 310000 THEN 'RUNNING' WHEN n > 300000 THEN 'PENDING' ELSE 'COMPLETED' END`;
const USER = `CASE WHEN n > 300000 AND n % 2 = 0 THEN 'user0' ELSE 'user' || (1 + n % 99) END`;
// Seeded at 2026-06-01 + n s: a waiting task's notBefore is before NOW (due) or after it (2027).
const seed = (series: string, ts: string, later: string) => `
  INSERT INTO "Task" ("taskId","type","status","userId","sourceId","appName","progress","metadata","activeKey",
    "createdAt","updatedAt","notBefore")
  SELECT 't' || n, 'CLONE', ${STATUS}, ${USER}, 'market.olares', 'app' || n, 0, '{}',
    CASE WHEN n > 300000 THEN 'k' || n END, ${ts}, ${ts},
    CASE WHEN n > 300000 AND n <= 310000 AND n % 10 = 1 THEN (CASE WHEN n % 20 = 1 THEN ${ts} ELSE ${later} END) END
  FROM ${series}`;
const NOW = `'2026-12-01T00:00:00.000+00:00'`;

// claimPendingTasks's statement as text (EXPLAIN needs it, Prisma's tagged template does not give it):
// a copy, to keep in step with src/db/hot-path-sql.ts by hand.
const CLAIM_IDS = `
  SELECT "pending"."id" FROM (
    SELECT "id", "userId", ROW_NUMBER() OVER (PARTITION BY "userId" ORDER BY "id") AS "place"
    FROM "Task" WHERE "status" = 'PENDING' AND ("notBefore" IS NULL OR "notBefore" <= ${NOW})
  ) AS "pending"
  LEFT JOIN (
    SELECT "userId", COUNT(*) AS "count" FROM "Task" WHERE "status" = 'RUNNING' GROUP BY "userId"
  ) AS "running" ON "running"."userId" = "pending"."userId"
  WHERE "pending"."place" <= 4
  ORDER BY "pending"."place" + COALESCE("running"."count", 0), "pending"."id"
  LIMIT 4`;
const CLAIM = `UPDATE "Task" SET "status" = 'RUNNING', "workerId" = 'bench'
  WHERE "id" IN (${CLAIM_IDS}) AND "status" = 'PENDING' AND ("notBefore" IS NULL OR "notBefore" <= ${NOW})
  RETURNING "id", "userId"`;
const OLDEST = `UPDATE "Task" SET "status" = 'RUNNING', "workerId" = 'bench'
  WHERE "id" IN (SELECT "id" FROM "Task" WHERE "status" = 'PENDING' ORDER BY "id" LIMIT 4) AND "status" = 'PENDING'
  RETURNING "id", "userId"`;

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function postgres() {
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  const exists = (await admin.query(`SELECT 1 FROM pg_database WHERE datname = 'fairclaim_bench'`)).rowCount;
  if (!exists) await admin.query('CREATE DATABASE fairclaim_bench');
  await admin.end();
  await migrateDatabase(PG_URL);
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  if (Number((await db.query('SELECT COUNT(*) FROM "Task"')).rows[0].count) === 0) {
    const ts = `TIMESTAMP '2026-06-01' + n * INTERVAL '1 second'`;
    await db.query(seed('generate_series(1, 310008) AS n', ts, `TIMESTAMP '2027-01-01'`));
    await db.query('VACUUM ANALYZE "Task"');
  }
  for (const indexed of [true, false]) {
    await db.query(indexed ? `CREATE INDEX IF NOT EXISTS ${INDEX} ON "Task"${INDEX_COLUMNS}` : `DROP INDEX ${INDEX}`);
    await db.query('ANALYZE "Task"');
    for (const [name, statement] of [
      ['fair', CLAIM],
      ['oldest', OLDEST],
    ] as const) {
      const { ms, claimed } = await sevenRuns(async () => {
        await db.query('BEGIN');
        const start = performance.now();
        const { rows } = await db.query(statement);
        const took = performance.now() - start;
        await db.query('ROLLBACK');
        return { took, users: rows.map((row) => row.userId) };
      });
      await db.query('BEGIN');
      const plan = await db.query(`EXPLAIN (ANALYZE, BUFFERS) ${statement}`);
      await db.query('ROLLBACK');
      console.log(`\npostgresql ${name}, index ${indexed}: ${ms.toFixed(2)} ms, claimed ${claimed}`);
      console.log(plan.rows.map((row) => `  ${row['QUERY PLAN']}`).join('\n'));
    }
  }
  await db.query(`CREATE INDEX IF NOT EXISTS ${INDEX} ON "Task"${INDEX_COLUMNS}`);
  await db.end();
}

async function sqlite() {
  await migrateDatabase(`file:${SQLITE_FILE}`);
  const db = new Database(SQLITE_FILE);
  if ((db.prepare('SELECT COUNT(*) AS n FROM "Task"').get() as { n: number }).n === 0) {
    const ts = `strftime('%Y-%m-%dT%H:%M:%S.000+00:00', '2026-06-01', '+' || n || ' seconds')`;
    const later = `'2027-01-01T00:00:00.000+00:00'`;
    db.exec(`WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 310008) ${seed('s', ts, later)}`);
    db.exec('ANALYZE');
  }
  for (const indexed of [true, false]) {
    db.exec(indexed ? `CREATE INDEX IF NOT EXISTS ${INDEX} ON "Task"${INDEX_COLUMNS}` : `DROP INDEX ${INDEX}`);
    db.exec('ANALYZE');
    for (const [name, statement] of [
      ['fair', CLAIM],
      ['oldest', OLDEST],
    ] as const) {
      const { ms, claimed } = await sevenRuns(async () => {
        db.exec('BEGIN');
        const start = performance.now();
        const rows = db.prepare(statement).all() as { userId: string }[];
        const took = performance.now() - start;
        db.exec('ROLLBACK');
        return { took, users: rows.map((row) => row.userId) };
      });
      const plan = db.prepare(`EXPLAIN QUERY PLAN ${statement}`).all() as { detail: string }[];
      console.log(`\nsqlite ${name}, index ${indexed}: ${ms.toFixed(2)} ms, claimed ${claimed}`);
      console.log(plan.map((row) => `  ${row.detail}`).join('\n'));
    }
  }
  db.exec(`CREATE INDEX IF NOT EXISTS ${INDEX} ON "Task"${INDEX_COLUMNS}`);
  db.close();
}

/** The median of seven claims, each rolled back, and whom the last one claimed for. */
async function sevenRuns(claim: () => Promise<{ took: number; users: string[] }>) {
  const times: number[] = [];
  let users: string[] = [];
  for (let run = 0; run < 7; run++) {
    const result = await claim();
    times.push(result.took);
    users = result.users;
  }
  return { ms: median(times), claimed: users.join(',') };
}

await postgres();
await sqlite();
