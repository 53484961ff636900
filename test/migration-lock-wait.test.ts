import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterEach, describe, expect, test } from 'vitest';
import { sqliteFilePath } from '../src/db/client.js';
import { readMigrations } from '../src/db/migrate.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { killLeftovers, type LogLine, serverEnv, startProcess } from './support/process.js';

/**
 * `npm run db:migrate` (and the server's start, which runs the same step) while another process
 * holds the migrations' lock: a Kubernetes migration Job beside a starting instance, two Jobs, or
 * two instances. Nothing pending: it never waits. Something pending: it says it waits, and migrates
 * once the other process is done, however long that takes.
 */

/** What `npm run db:migrate` runs (tsx, as node's loader). */
const MIGRATE_COMMAND = [process.execPath, '--import', 'tsx', 'src/db/migrate-cli.ts'];
const databases = await availableDatabases();
const MIGRATIONS = fileURLToPath(new URL('../prisma/migrations', import.meta.url));
const WAITING = "waiting for another process's migration";

/**
 * Another process on the SQLite file (better-sqlite3, as the server's): takes the write lock with
 * BEGIN IMMEDIATE, says `held`, commits after argv[2] ms and says `committed`.
 */
const SQLITE_HOLDER = `
const Database = require('better-sqlite3');
const db = new Database(process.argv[1]);
db.exec('BEGIN IMMEDIATE');
console.log(JSON.stringify({ msg: 'held' }));
setTimeout(() => {
  db.exec('COMMIT');
  console.log(JSON.stringify({ msg: 'committed' }));
  db.close();
}, Number(process.argv[2]));
`;

const created: TestDatabase[] = [];
const directories: string[] = [];
afterEach(async () => {
  await killLeftovers();
  for (const database of created.splice(0)) await database.drop();
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

/** A database at the previous release: every migration but the last, which is then pending. */
async function databaseOneBehind(kind: 'sqlite' | 'postgresql'): Promise<{ database: TestDatabase; last: string }> {
  const root = mkdtempSync(path.join(tmpdir(), 'migrations-'));
  directories.push(root);
  cpSync(MIGRATIONS, root, { recursive: true });
  const last = readMigrations(kind).at(-1)?.name as string;
  rmSync(path.join(root, kind, last), { recursive: true });
  const database = await createTestDatabase(kind, root);
  created.push(database);
  return { database, last };
}

async function holdSqliteWriteLock(database: TestDatabase, holdMs: number) {
  const holder = startProcess(
    [process.execPath, '-e', SQLITE_HOLDER, sqliteFilePath(database.url), String(holdMs)],
    process.env,
  );
  await holder.waitForLog((line) => line.msg === 'held', 'it held the write lock');
  return holder;
}

const messages = (logs: LogLine[]) => logs.map((line) => String(line.msg));

describe('SQLite: another process holds the write lock', () => {
  test('an up-to-date database is migrated at once, without the write lock', async () => {
    const database = await createTestDatabase('sqlite');
    created.push(database);
    const holder = await holdSqliteWriteLock(database, 120_000);
    const migrate = startProcess(MIGRATE_COMMAND, serverEnv(database.url));
    expect(await migrate.exited, migrate.output.join('\n')).toEqual({ code: 0, signal: null });
    expect(messages(migrate.logs)).toContain('database schema is up to date');
    expect(messages(migrate.logs).filter((msg) => msg.startsWith(WAITING))).toEqual([]);
    // the lock was held throughout
    expect(messages(holder.logs)).toEqual(['held']);
    expect(holder.child.exitCode).toBeNull();
  }, 60_000);

  test('a pending migration waits past 10 s for the lock, saying so, and applies once the other commits', async () => {
    const { database, last } = await databaseOneBehind('sqlite');
    // Longer than the 10 s after which the migration used to give up ("database is locked").
    const holder = await holdSqliteWriteLock(database, 12_000);
    const migrate = startProcess(MIGRATE_COMMAND, serverEnv(database.url));
    const waiting = await migrate.waitForLog((line) => String(line.msg).startsWith(WAITING), 'it waited');
    expect(waiting.msg).toMatch(/holds the write lock of .*test\.db \(waiting up to 10 min\)$/);
    expect(await migrate.exited, migrate.output.join('\n')).toEqual({ code: 0, signal: null });
    expect(await holder.exited).toEqual({ code: 0, signal: null });
    expect(messages(holder.logs)).toEqual(['held', 'committed']);
    const got = migrate.logs.find((line) => line.msg === 'got the migration lock: migrating');
    expect(got?.waitedMs).toBeGreaterThan(0);
    expect(migrate.logs.find((line) => line.msg === 'migrations applied')?.applied).toEqual([last]);
  }, 60_000);
});

describe.skipIf(!databases.includes('postgresql'))('PostgreSQL: another session holds the advisory lock', () => {
  test('a pending migration says it waits for another process, and applies once the other commits', async () => {
    const { database, last } = await databaseOneBehind('postgresql');
    // Another process's migration: a transaction holding the advisory lock of src/db/migrate.ts.
    const other = new pg.Client({ connectionString: database.url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT pg_advisory_xact_lock(727063311)');
      const migrate = startProcess(MIGRATE_COMMAND, serverEnv(database.url));
      const waiting = await migrate.waitForLog((line) => String(line.msg).startsWith(WAITING), 'it waited');
      expect(waiting.msg).toContain("advisory lock (pg_locks: locktype 'advisory', objid 727063311)");
      expect(messages(migrate.logs)).not.toContain('got the migration lock: migrating');
      await other.query('COMMIT');
      expect(await migrate.exited, migrate.output.join('\n')).toEqual({ code: 0, signal: null });
      expect(messages(migrate.logs).filter((msg) => msg.startsWith('got the migration lock'))).toHaveLength(1);
      expect(migrate.logs.find((line) => line.msg === 'migrations applied')?.applied).toEqual([last]);
    } finally {
      await other.end();
    }
  }, 60_000);

  test('a migration nobody holds up logs no wait', async () => {
    const { database, last } = await databaseOneBehind('postgresql');
    const migrate = startProcess(MIGRATE_COMMAND, serverEnv(database.url));
    expect(await migrate.exited, migrate.output.join('\n')).toEqual({ code: 0, signal: null });
    expect(messages(migrate.logs).filter((msg) => /migration lock|another process/.test(msg))).toEqual([]);
    expect(migrate.logs.find((line) => line.msg === 'migrations applied')?.applied).toEqual([last]);
  }, 60_000);
});
