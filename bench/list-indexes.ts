// `npx tsx bench/list-indexes.ts`: the admin list filters at production volumes (300,000 finished
// tasks of 5,000 users, 1,000,000 history records) on both providers, each statement's plan and
// time (median of 5, warm; PostgreSQL's EXPLAIN (ANALYZE, BUFFERS) for the pages touched, the
// first run's time is the closest to a cold cache), and what the 0014 indexes add to a task insert.
// Seeds a PostgreSQL database `listidx_bench` and /tmp/listidx-bench.db once, migrated by the
// release's migrateDatabase (a run before a migration is added, then one after, compares plans).
// Drop them afterwards: `DROP DATABASE listidx_bench`, rm /tmp/listidx-bench.db.
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import { migrateDatabase } from '../src/db/migrate.js';

const PG_ADMIN = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const PG_URL = PG_ADMIN.replace(/\/[^/]*$/, '/listidx_bench');
const SQLITE_FILE = '/tmp/listidx-bench.db';

const TYPES = `CASE WHEN n % 100 < 50 THEN 'INSTALL' WHEN n % 100 < 80 THEN 'UNINSTALL' WHEN n % 100 < 95 THEN 'UPGRADE' WHEN n % 100 < 97 THEN 'CANCEL' ELSE 'CLONE' END`;
const taskSeed = (series: string, ts: (n: string) => string) => `
  INSERT INTO "Task" ("taskId","type","status","userId","sourceId","appName","progress","metadata","createdAt","completedAt","updatedAt")
  SELECT 't' || n, ${TYPES}, CASE WHEN n % 10 = 0 THEN 'FAILED' ELSE 'COMPLETED' END, 'user' || (n % 5000),
    'source' || (n % 3), 'app' || (n % 400), 100, '{}', ${ts('n')}, ${ts('n')}, ${ts('n')} FROM ${series}`;
// 1M records over the 60 days before 2026-12-06, time increasing with id (as written in practice).
const historySeed = (series: string, ts: (n: string) => string) => `
  INSERT INTO "HistoryRecord" ("type","message","app","userId","time")
  SELECT CASE WHEN n % 2 = 0 THEN 'ACTION_INSTALL' ELSE 'SYSTEM_INSTALL_SUCCEED' END, 'installed app' || (n % 400) || ' for its user',
    'app' || (n % 400), 'user' || (n % 5000), ${ts('n')} FROM ${series}`;

const STATEMENTS: [string, string][] = [
  ['tasks appName', `SELECT "id" FROM "Task" WHERE "appName" = 'nope' ORDER BY "id" DESC LIMIT 21`],
  ['tasks appName hit', `SELECT "id" FROM "Task" WHERE "appName" = 'app7' ORDER BY "id" DESC LIMIT 21`],
  ['tasks sourceId', `SELECT "id" FROM "Task" WHERE "sourceId" = 'nope' ORDER BY "id" DESC LIMIT 21`],
  ['tasks type CLONE', `SELECT "id" FROM "Task" WHERE "type" IN ('CLONE') ORDER BY "id" DESC LIMIT 21`],
  ['tasks type CLONE count', `SELECT COUNT(*) FROM "Task" WHERE "type" IN ('CLONE')`],
  ['history to', `SELECT "id" FROM "HistoryRecord" WHERE "time" <= $TO ORDER BY "id" DESC LIMIT 21`],
  [
    'history to, by time range',
    `SELECT "id" FROM "HistoryRecord" WHERE "id" IN (SELECT "id" FROM "HistoryRecord" WHERE "time" <= $TO ORDER BY "time" DESC LIMIT 10001) AND "time" <= $TO ORDER BY "id" DESC LIMIT 21`,
  ],
  [
    'history to, probe',
    `SELECT COUNT(*) FROM (SELECT 1 FROM "HistoryRecord" WHERE "time" <= $TO LIMIT 10001) AS "probe"`,
  ],
];

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function postgres() {
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  const exists = (await admin.query(`SELECT 1 FROM pg_database WHERE datname = 'listidx_bench'`)).rowCount;
  if (!exists) await admin.query('CREATE DATABASE listidx_bench');
  await admin.end();
  await migrateDatabase(PG_URL);
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  if (Number((await db.query('SELECT COUNT(*) FROM "Task"')).rows[0].count) === 0) {
    const t = (n: string) => `TIMESTAMP '2026-06-01' + ${n} * INTERVAL '50 seconds'`;
    await db.query(taskSeed('generate_series(1, 300000) AS n', t));
    const h = (n: string) => `TIMESTAMP '2026-10-07' + ${n} * INTERVAL '5184 milliseconds'`;
    await db.query(historySeed('generate_series(1, 1000000) AS n', h));
    await db.query('VACUUM ANALYZE "Task"');
    await db.query('VACUUM ANALYZE "HistoryRecord"');
  }
  for (const [label, text] of STATEMENTS) {
    const statement = text.replaceAll('$TO', `'2026-10-08T00:00:00Z'`);
    const plan = (await db.query(`EXPLAIN (ANALYZE, BUFFERS) ${statement}`)).rows.map((r) => r['QUERY PLAN']);
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const start = performance.now();
      await db.query(statement);
      times.push(performance.now() - start);
    }
    console.log(`\n[postgresql] ${label}: ${median(times).toFixed(2)} ms\n  ${plan.join('\n  ')}`);
  }
  await timeInserts('postgresql', (sql) => db.query(sql).then(() => undefined));
  await db.end();
}

function sqlite() {
  const fresh = !existsSync(SQLITE_FILE);
  return migrateDatabase(`file:${SQLITE_FILE}`).then(async () => {
    const db = new Database(SQLITE_FILE);
    if (fresh || (db.prepare('SELECT COUNT(*) AS c FROM "Task"').get() as { c: number }).c === 0) {
      const series = (count: number) =>
        `(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${count}) SELECT n FROM s)`;
      db.exec(taskSeed(series(300000), (n) => `(1780272000000 + ${n} * 50000)`));
      db.exec(historySeed(series(1000000), (n) => `(1791331200000 + ${n} * 5184)`));
      db.exec('ANALYZE');
    }
    for (const [label, text] of STATEMENTS) {
      const statement = text.replaceAll('$TO', String(Date.parse('2026-10-08T00:00:00Z')));
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${statement}`).all() as { detail: string }[]).map((r) => r.detail);
      const prepared = db.prepare(statement);
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const start = performance.now();
        prepared.all();
        times.push(performance.now() - start);
      }
      console.log(`\n[sqlite] ${label}: ${median(times).toFixed(2)} ms\n  ${plan.join('\n  ')}`);
    }
    await timeInserts('sqlite', async (sql) => void db.exec(sql));
    db.close();
  });
}

const NEW_INDEXES = ['Task_appName_id_idx', 'Task_sourceId_id_idx', 'Task_type_id_idx'];

/**
 * 5,000 task inserts, one statement each as submissions write them, in one transaction (a commit's
 * fsync would hide what an index adds) that is rolled back: with the 0014 indexes and with them
 * dropped inside the transaction, alternating, three pairs.
 */
async function timeInserts(provider: string, run: (sql: string) => Promise<void>) {
  for (let pair = 0; pair < 3; pair++) {
    for (const without of [false, true]) {
      await run('BEGIN');
      if (without) for (const index of NEW_INDEXES) await run(`DROP INDEX IF EXISTS "${index}"`);
      const start = performance.now();
      for (let i = 0; i < 5000; i++) {
        const now = provider === 'sqlite' ? String(Date.now()) : 'now()';
        await run(`INSERT INTO "Task" ("taskId","type","status","userId","sourceId","appName","metadata","updatedAt")
          VALUES ('bench${i}', 'INSTALL', 'PENDING', 'user${i % 5000}', 'source1', 'app${i % 400}', '{}', ${now})`);
      }
      const ms = performance.now() - start;
      await run('ROLLBACK');
      const label = without ? 'without the 0014 indexes' : 'with the indexes there are';
      console.log(
        `[${provider}] 5,000 task inserts ${label}: ${ms.toFixed(0)} ms (${((ms / 5000) * 1000).toFixed(0)} µs each)`,
      );
    }
  }
}

await postgres();
await sqlite();
