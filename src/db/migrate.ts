import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Logger } from '../platform/logger.js';
import { type DatabaseProvider, databaseProvider, databaseShown, POSTGRES_POOL, sqliteFilePath } from './client.js';

/**
 * Applies the SQL migrations in prisma/migrations/<provider>/ that the database has not seen yet.
 *
 * Why our own step: Prisma 6.19's `migrate deploy` fails on PostgreSQL through driver adapters
 * (prisma/orm#27403). We use it on both providers so there is one code path. Applied migrations
 * are recorded in `_prisma_migrations` with Prisma's columns and checksum (SHA-256 of the file),
 * so the official CLI still recognises the history. Each run is one transaction under a lock
 * (PostgreSQL advisory lock, SQLite write lock), so instances starting together migrate once.
 */

const MIGRATIONS_ROOT = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));
/** Arbitrary constant: the advisory lock id all instances of this service agree on. */
const ADVISORY_LOCK_ID = 727_063_311;

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationResult {
  provider: DatabaseProvider;
  applied: string[];
  /**
   * Migrations the database has applied that this release does not have: a newer release migrated
   * it (a rollback). Not refused, so that the rollback still starts; logged (logMigrationResult).
   */
  unknown: string[];
}

/** What one run did inside its transaction. */
type Outcome = Omit<MigrationResult, 'provider'>;

export function readMigrations(provider: DatabaseProvider, root = MIGRATIONS_ROOT): Migration[] {
  const dir = path.join(root, provider);
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(path.join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
}

/** Which migrations still need to run; refuses when an applied one was edited afterwards. */
function planMigrations(all: Migration[], applied: AppliedRow[]): { pending: Migration[]; unknown: string[] } {
  const byName = new Map(applied.map((row) => [row.migration_name, row.checksum]));
  for (const migration of all) {
    const checksum = byName.get(migration.name);
    if (checksum !== undefined && checksum !== migration.checksum) {
      throw new MigrationError(
        `migration ${migration.name} was changed after it was applied; add a new migration instead`,
      );
    }
  }
  const known = new Set(all.map((migration) => migration.name));
  return {
    pending: all.filter((migration) => !byName.has(migration.name)),
    unknown: applied.map((row) => row.migration_name).filter((name) => !known.has(name)),
  };
}

export async function migrateDatabase(url: string, root?: string): Promise<MigrationResult> {
  const provider = databaseProvider(url);
  const migrations = readMigrations(provider, root);
  const outcome = provider === 'sqlite' ? migrateSqlite(url, migrations) : await migratePostgres(url, migrations);
  return { provider, ...outcome };
}

/**
 * migrateDatabase as `npm start` and `npm run db:migrate` run it: a failure is one line for whoever
 * started them, naming the database (never a credential) and why.
 */
export async function migrateOrExplain(url: string): Promise<MigrationResult> {
  return migrateDatabase(url).catch((error: unknown) => {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`Could not migrate the database (${databaseShown(url)}): ${reason}`);
  });
}

/** The log of a migration run: what it applied, and a warning for a database a newer release migrated. */
export function logMigrationResult(logger: Logger, result: MigrationResult): void {
  logger.info(
    { provider: result.provider, applied: result.applied },
    result.applied.length ? 'migrations applied' : 'database schema is up to date',
  );
  if (!result.unknown.length) return;
  logger.warn(
    { unknown: result.unknown },
    `the database has migrations this release does not know (${result.unknown.join(', ')}): a newer release migrated it, and this one may fail on what they changed`,
  );
}

function migrateSqlite(url: string, migrations: Migration[]): Outcome {
  const file = sqliteFilePath(url);
  mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 10000');
    db.pragma('journal_mode = WAL');
    // IMMEDIATE takes the write lock up front: a second instance waits here, then finds nothing to do.
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
        "id" TEXT PRIMARY KEY NOT NULL,
        "checksum" TEXT NOT NULL,
        "finished_at" DATETIME,
        "migration_name" TEXT NOT NULL,
        "logs" TEXT,
        "rolled_back_at" DATETIME,
        "started_at" DATETIME NOT NULL DEFAULT current_timestamp,
        "applied_steps_count" INTEGER UNSIGNED NOT NULL DEFAULT 0
      )`);
      const rows = db
        .prepare(
          'SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
        )
        .all() as AppliedRow[];
      const { pending, unknown } = planMigrations(migrations, rows);
      const record = db.prepare(
        'INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, started_at, applied_steps_count) VALUES (?, ?, ?, ?, ?, 1)',
      );
      for (const migration of pending) {
        const startedAt = Date.now();
        db.exec(migration.sql);
        record.run(randomUUID(), migration.checksum, Date.now(), migration.name, startedAt);
      }
      db.exec('COMMIT');
      return { applied: pending.map((migration) => migration.name), unknown };
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
  } finally {
    db.close();
  }
}

async function migratePostgres(url: string, migrations: Migration[]): Promise<Outcome> {
  // The pool's connection timeout, so that a database that accepts the connection and never
  // answers (a blackholed network) fails the start after 5 s rather than holding it forever.
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: POSTGRES_POOL.connectionTimeoutMillis,
    keepAlive: POSTGRES_POOL.keepAlive,
  });
  await client.connect().catch((error: Error) => {
    // pg's own words for the timeout are "timeout expired".
    const timedOut = error.message === 'timeout expired';
    const reason = timedOut ? `no answer within ${POSTGRES_POOL.connectionTimeoutMillis} ms` : error.message;
    throw new Error(`could not connect: ${reason}`);
  });
  try {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCK_ID]);
      await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
        "id" VARCHAR(36) PRIMARY KEY NOT NULL,
        "checksum" VARCHAR(64) NOT NULL,
        "finished_at" TIMESTAMPTZ,
        "migration_name" VARCHAR(255) NOT NULL,
        "logs" TEXT,
        "rolled_back_at" TIMESTAMPTZ,
        "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
        "applied_steps_count" INTEGER NOT NULL DEFAULT 0
      )`);
      const { rows } = await client.query<AppliedRow>(
        'SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
      );
      const { pending, unknown } = planMigrations(migrations, rows);
      for (const migration of pending) {
        const startedAt = new Date();
        await client.query(migration.sql);
        await client.query(
          'INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, started_at, applied_steps_count) VALUES ($1, $2, now(), $3, $4, 1)',
          [randomUUID(), migration.checksum, migration.name, startedAt],
        );
      }
      await client.query('COMMIT');
      return { applied: pending.map((migration) => migration.name), unknown };
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    }
  } finally {
    await client.end();
  }
}
