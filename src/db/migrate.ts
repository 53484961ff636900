import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Logger } from '../platform/logger.js';
import { type DatabaseProvider, databaseProvider, databaseShown, sqliteFilePath } from './client.js';
import { CONNECTION_LIMIT_ADVICE, tooManyConnections } from './connection-limits.js';
import { advisoryLock, beginImmediate } from './migration-lock.js';
import { POSTGRES_POOL } from './postgres-pool.js';
import { SESSION_SETTINGS_SQL, type SessionSettings, sessionRefusal } from './postgres-session.js';
import { type PastState, pastStatesOf, RETIRED_NAMES } from './retired-migrations.js';

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
  /** Past states of main's own history brought forward (src/db/retired-migrations.ts), one line each. */
  repaired: string[];
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
  finished_at: Date | number | string;
}

const APPLIED_ROWS =
  'SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL';

/** A repair, and the migrations whose records it replaces by its successor's. */
interface Repair {
  state: PastState;
  successor: Migration;
}

interface Plan {
  repairs: Repair[];
  pending: Migration[];
  unknown: string[];
}

/**
 * What the run does: bring past states of main's history forward, then apply what is missing.
 * Refuses any other applied migration this release has with other contents, or that main retired:
 * the database's schema is then not one this release can know.
 */
function planMigrations(provider: DatabaseProvider, all: Migration[], applied: AppliedRow[]): Plan {
  const byName = new Map(all.map((migration) => [migration.name, migration]));
  const repairs = pastStatesOf(provider, new Map(applied.map((row) => [row.migration_name, row.checksum])))
    .map((state) => ({ state, successor: byName.get(state.becomes) }))
    .filter((repair): repair is Repair => repair.successor !== undefined);
  const replaced = new Set(repairs.flatMap((repair) => Object.keys(repair.state.recorded)));
  const kept = applied.filter((row) => !replaced.has(row.migration_name));
  for (const row of kept) {
    const current = byName.get(row.migration_name);
    if (current ? current.checksum !== row.checksum : RETIRED_NAMES.has(row.migration_name)) {
      throw new MigrationError(foreignHistory(row));
    }
  }
  const done = new Set([...kept.map((row) => row.migration_name), ...repairs.map((repair) => repair.state.becomes)]);
  return {
    repairs,
    pending: all.filter((migration) => !done.has(migration.name)),
    unknown: kept.map((row) => row.migration_name).filter((name) => !byName.has(name)),
  };
}

/** For whoever runs the migration: what the database holds, and the ways out. */
function foreignHistory(row: AppliedRow): string {
  const at = new Date(typeof row.finished_at === 'string' ? Date.parse(row.finished_at) : row.finished_at);
  const when = Number.isNaN(at.getTime()) ? 'earlier' : `at ${at.toISOString()}`;
  return (
    `the database records migration ${row.migration_name} (applied ${when}) with contents no build of this ` +
    `service released, so its schema is unknown to this release: restore a backup taken before then, or ` +
    `go on running the build whose migrations were applied to it (a developer who edited a released ` +
    `migration adds a new one instead)`
  );
}

/** The log line of one repair. */
function repairShown(repair: Repair): string {
  return `${Object.keys(repair.state.recorded).join(' + ')} (build ${repair.state.builds}) → ${repair.state.becomes}`;
}

/** Why a record was written by a repair rather than by its migration. */
function repairLog(repair: Repair): string {
  return `brought forward from ${repairShown(repair)} by src/db/retired-migrations.ts`;
}

/** `logger` gets a line when the run has to wait for another process's migration, and one when it may go on. */
export async function migrateDatabase(url: string, root?: string, logger?: Logger): Promise<MigrationResult> {
  const provider = databaseProvider(url);
  const migrations = readMigrations(provider, root);
  const outcome =
    provider === 'sqlite'
      ? await migrateSqlite(url, migrations, logger)
      : await migratePostgres(url, migrations, logger);
  return { provider, ...outcome };
}

/**
 * migrateDatabase as `npm start` and `npm run db:migrate` run it: a failure is one line for whoever
 * started them, naming the database (never a credential) and why.
 */
export async function migrateOrExplain(url: string, logger: Logger): Promise<MigrationResult> {
  return migrateDatabase(url, undefined, logger).catch((error: unknown) => {
    const reason = error instanceof Error ? error.message : String(error);
    const advice = tooManyConnections(error) ? `. ${CONNECTION_LIMIT_ADVICE}.` : '';
    throw new Error(`Could not migrate the database (${databaseShown(url)}): ${reason}${advice}`);
  });
}

/** The log of a migration run: what it applied, and a warning for a database a newer release migrated. */
export function logMigrationResult(logger: Logger, result: MigrationResult): void {
  logger.info(
    { provider: result.provider, applied: result.applied },
    result.applied.length ? 'migrations applied' : 'database schema is up to date',
  );
  if (result.repaired.length) {
    logger.info(
      { repaired: result.repaired },
      `migrations an earlier build applied, renamed, merged or edited since, brought to this release's schema: ${result.repaired.join('; ')}`,
    );
  }
  if (!result.unknown.length) return;
  logger.warn(
    { unknown: result.unknown },
    `the database has migrations this release does not know (${result.unknown.join(', ')}): a newer release migrated it, and this one may fail on what they changed`,
  );
}

/** The outcome of a run on SQLite with nothing to do, found by reads alone; null when it has work. */
function sqliteNothingPending(db: Database.Database, migrations: Migration[]): Outcome | null {
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_prisma_migrations'").get();
  if (!table) return null;
  const { repairs, pending, unknown } = planMigrations(
    'sqlite',
    migrations,
    db.prepare(APPLIED_ROWS).all() as AppliedRow[],
  );
  return repairs.length || pending.length ? null : { applied: [], unknown, repaired: [] };
}

async function migrateSqlite(url: string, migrations: Migration[], logger: Logger | undefined): Promise<Outcome> {
  const file = sqliteFilePath(url);
  mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 10000');
    db.pragma('journal_mode = WAL');
    // Nothing to do (every start of an up-to-date file): reads only, which WAL lets through while
    // another process writes or migrates, so that such a start neither waits nor fails.
    const upToDate = sqliteNothingPending(db, migrations);
    if (upToDate) return upToDate;
    // IMMEDIATE takes the write lock up front: a second instance waits here, then plans again
    // below and finds nothing to do.
    await beginImmediate(db, file, logger);
    db.pragma('busy_timeout = 10000');
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
      const rows = db.prepare(APPLIED_ROWS).all() as AppliedRow[];
      const { repairs, pending, unknown } = planMigrations('sqlite', migrations, rows);
      const record = db.prepare(
        'INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, started_at, applied_steps_count, logs) VALUES (?, ?, ?, ?, ?, 1, ?)',
      );
      const forget = db.prepare('DELETE FROM "_prisma_migrations" WHERE migration_name = ?');
      for (const repair of repairs) {
        const startedAt = Date.now();
        db.exec(repair.state.repair.sqlite);
        for (const name of Object.keys(repair.state.recorded)) forget.run(name);
        record.run(
          randomUUID(),
          repair.successor.checksum,
          Date.now(),
          repair.successor.name,
          startedAt,
          repairLog(repair),
        );
      }
      for (const migration of pending) {
        const startedAt = Date.now();
        db.exec(migration.sql);
        record.run(randomUUID(), migration.checksum, Date.now(), migration.name, startedAt, null);
      }
      db.exec('COMMIT');
      return { applied: pending.map((migration) => migration.name), unknown, repaired: repairs.map(repairShown) };
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
  } finally {
    db.close();
  }
}

/**
 * The outcome of a run with nothing to do, found by reads alone; null when the run has work (a
 * migration or a repair is pending, or the database has no `_prisma_migrations` yet). A pending
 * migration the role may not apply (no CREATE on the schema) fails here, before any DDL, saying so.
 */
async function withNothingPending(client: pg.Client, migrations: Migration[]): Promise<Outcome | null> {
  const { rows: found } = await client.query<{ table: string | null; schema: string | null; role: string }>(
    `SELECT to_regclass('"_prisma_migrations"')::text AS table, current_schema() AS schema, current_user AS role`,
  );
  const { table, schema, role } = found[0] ?? { table: null, schema: null, role: '' };
  const applied = table ? (await client.query<AppliedRow>(APPLIED_ROWS)).rows : [];
  const { repairs, pending, unknown } = planMigrations('postgresql', migrations, applied);
  if (table && !repairs.length && !pending.length) return { applied: [], unknown, repaired: [] };
  const { rows: may } = await client.query<{ creates: boolean | null }>(
    "SELECT has_schema_privilege(current_schema(), 'CREATE') AS creates",
  );
  if (may[0]?.creates) return null;
  const first = pending[0]?.name ?? (repairs[0] ? repairShown(repairs[0]) : '_prisma_migrations');
  throw new MigrationError(
    `migration ${first} is pending, and the role "${role}" has no CREATE privilege on the schema ` +
      `${schema ?? '(none: the search_path names no schema that exists)'}: an owner role (one that may CREATE ` +
      `in it and owns the tables) must run "npm run db:migrate" first; then this role can run the server`,
  );
}

/** A migration PostgreSQL refused for want of a privilege (42501): which one, and who can apply it. */
function privilegeExplained(error: unknown, migration: string): unknown {
  if ((error as { code?: string }).code !== '42501') return error;
  return new MigrationError(
    `migration ${migration} needs a privilege the role lacks (${(error as Error).message}): an owner role ` +
      `(one that may CREATE in the schema and owns the tables) must run "npm run db:migrate"`,
  );
}

async function migratePostgres(url: string, migrations: Migration[], logger: Logger | undefined): Promise<Outcome> {
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
    // Before any statement that depends on them: the settings a role, the database or PGOPTIONS gave the session.
    const refusal = sessionRefusal(
      (await client.query<SessionSettings>(SESSION_SETTINGS_SQL)).rows[0] as SessionSettings,
    );
    if (refusal) throw new MigrationError(refusal);
    // Nothing to do (every start of an up-to-date database): no DDL, no lock, so that a role with
    // no CREATE privilege (least privilege, DML only) starts the server. PostgreSQL checks that
    // privilege before it finds that the table of `CREATE TABLE IF NOT EXISTS` exists.
    const upToDate = await withNothingPending(client, migrations);
    if (upToDate) return upToDate;
    await client.query('BEGIN');
    try {
      // This transaction only: a statement_timeout or lock_timeout set on the role or database for
      // the server's requests would cancel an index build on a big table (seconds: see README) or
      // the wait for another instance's migration (the lock below), and the start with it.
      await client.query('SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0');
      await advisoryLock(client, ADVISORY_LOCK_ID, logger);
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
      const { rows } = await client.query<AppliedRow>(APPLIED_ROWS);
      const { repairs, pending, unknown } = planMigrations('postgresql', migrations, rows);
      // Both times on the database's clock as the statements run (clock_timestamp(); now() is the
      // transaction's start, the same for every migration of the run and before any of them began).
      // As text, which keeps the microseconds a Date would drop.
      const clock = async () =>
        (await client.query<{ at: string }>('SELECT clock_timestamp()::text AS at')).rows[0]?.at;
      const record = (migration: Migration, startedAt: string | undefined, logs: string | null) =>
        client.query(
          'INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, started_at, applied_steps_count, logs) VALUES ($1, $2, clock_timestamp(), $3, $4, 1, $5)',
          [randomUUID(), migration.checksum, migration.name, startedAt, logs],
        );
      for (const repair of repairs) {
        const startedAt = await clock();
        if (repair.state.repair.postgresql) await client.query(repair.state.repair.postgresql);
        const names = Object.keys(repair.state.recorded);
        await client.query('DELETE FROM "_prisma_migrations" WHERE migration_name = ANY($1)', [names]);
        await record(repair.successor, startedAt, repairLog(repair));
      }
      for (const migration of pending) {
        const startedAt = await clock();
        await client.query(migration.sql).catch((error: unknown) => {
          throw privilegeExplained(error, migration.name);
        });
        await record(migration, startedAt, null);
      }
      await client.query('COMMIT');
      return { applied: pending.map((migration) => migration.name), unknown, repaired: repairs.map(repairShown) };
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    }
  } finally {
    await client.end();
  }
}
