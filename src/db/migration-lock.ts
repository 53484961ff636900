import { setTimeout as delay } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import type pg from 'pg';
import type { Logger } from '../platform/logger.js';

/**
 * The migrations' lock (src/db/migrate.ts), taken so that a run which has to wait for another
 * process says so: one line when it starts waiting, one when it may go on.
 */

/**
 * How long a run on SQLite waits for the write lock another process holds (another instance's or
 * job's migration, or a long write): as long as a migration may take (an upgrade of a file of
 * 600,000 tasks held it 20 s), bounded so that a lock never released fails the start. PostgreSQL's
 * wait for the advisory lock has no bound.
 */
export const SQLITE_LOCK_WAIT_MS = 10 * 60_000;
/** How often a run waiting for SQLite's write lock tries again (waiting on the event loop, not blocking it). */
const SQLITE_LOCK_RETRY_MS = 50;

/**
 * BEGIN IMMEDIATE, waiting up to SQLITE_LOCK_WAIT_MS for another process's write lock: tried
 * again every SQLITE_LOCK_RETRY_MS rather than in SQLite's busy handler, which would block the
 * event loop (the server answers /health and /readiness while it migrates).
 */
export async function beginImmediate(db: Database.Database, file: string, logger: Logger | undefined): Promise<void> {
  const since = Date.now();
  db.pragma('busy_timeout = 0');
  for (let waiting = false; ; waiting = true) {
    try {
      db.exec('BEGIN IMMEDIATE');
      if (waiting) logger?.info({ waitedMs: Date.now() - since }, 'got the migration lock: migrating');
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
    }
    const minutes = SQLITE_LOCK_WAIT_MS / 60_000;
    if (Date.now() - since >= SQLITE_LOCK_WAIT_MS) {
      throw new Error(
        `another process held the write lock of ${file} for ${minutes} min (another instance's or job's ` +
          `migration, or a write that never ended): stop it, then start again`,
      );
    }
    if (!waiting) {
      logger?.info(
        `waiting for another process's migration: another process holds the write lock of ${file} ` +
          `(waiting up to ${minutes} min)`,
      );
    }
    await delay(SQLITE_LOCK_RETRY_MS);
  }
}

/**
 * pg_advisory_xact_lock(id) in the client's transaction, tried first without waiting so that a
 * run held up by another process's migration says so (the wait has no bound: see migrate.ts).
 */
export async function advisoryLock(client: pg.Client, id: number, logger: Logger | undefined): Promise<void> {
  const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS locked', [id]);
  if (rows[0]?.locked) return;
  const since = Date.now();
  logger?.info(
    `waiting for another process's migration: another session holds the migrations' advisory lock ` +
      `(pg_locks: locktype 'advisory', objid ${id}); waiting until it commits or rolls back`,
  );
  await client.query('SELECT pg_advisory_xact_lock($1)', [id]);
  logger?.info({ waitedMs: Date.now() - since }, 'got the migration lock: migrating');
}
