import { type DatabaseProbe, type Db, databaseProvider, prepareDatabase, sqliteFilePath } from '../db/client.js';
import { ensureDefaultSources } from '../db/default-sources.js';
import { seedDemoData } from '../db/demo-data.js';
import { SqliteFile } from '../db/sqlite-file.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';

/** How long `stop()` waits for the database connection to close. */
const DISCONNECT_TIMEOUT_MS = 5000;

/**
 * SQLite: the database file, watched from now on (readiness, the `database` component), whose loss
 * stops `db`'s writes; null on PostgreSQL.
 */
export function watchedDatabaseFile(config: Config, db: Db): SqliteFile | null {
  const url = config.databaseUrl;
  return databaseProvider(url) === 'sqlite' ? new SqliteFile(sqliteFilePath(url), db) : null;
}

/**
 * Checks that the database is migrated and creates the default market sources. A database that
 * is not ready becomes one error that says why, and what to run when its tables are missing. The
 * SQLite file is the one opened from then on.
 */
export async function openDatabase(db: Db, config: Config, file: SqliteFile | null): Promise<void> {
  try {
    await prepareDatabase(db, config.databaseUrl);
    await ensureDefaultSources(db, config.catalogue.marketSourceUrl);
  } catch (error) {
    const advice = isTableMissing(error) ? ' Run "npm run db:migrate" first.' : '';
    throw new Error(`The database is not ready (${meaningfulLine(error)}).${advice}`);
  }
  await file?.remember();
}

/**
 * The line of an error that says what went wrong. Prisma's messages begin with a blank line and
 * "Invalid `prisma.marketSource.findMany()` invocation:" (the start said "The database is not
 * ready ()"); the reason is the next line with text.
 */
function meaningfulLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const lines = message.split('\n').map((line) => line.trim());
  return lines.find((line) => line && !/^Invalid `.*` invocation:?$/.test(line)) ?? 'no reason given';
}

/**
 * A table or column the statement needs is not there: migrations not applied (Prisma's P2021,
 * P2022; PostgreSQL's 42P01, 42703 unwrapped; SQLite's "no such table"). Only then is
 * `db:migrate` the advice: a statement timeout or a refused connection has nothing to do with it.
 */
function isTableMissing(error: unknown): boolean {
  const { code, meta, message } = (error ?? {}) as {
    code?: unknown;
    meta?: { driverAdapterError?: { cause?: { kind?: string } } };
    message?: unknown;
  };
  const kind = meta?.driverAdapterError?.cause?.kind;
  if (kind === 'TableDoesNotExist' || kind === 'ColumnNotFound') return true;
  if (typeof code === 'string' && ['P2021', 'P2022', '42P01', '42703'].includes(code)) return true;
  return typeof message === 'string' && /no such (table|column)/.test(message);
}

/**
 * With DEMO_DATA, seeds demo users, their apps, tasks and payments into a database that has none.
 * After the bundled catalogue's first sync: the demo users have its apps installed.
 */
export async function seedDemo(db: Db, config: Config, logger: Logger): Promise<void> {
  if (config.demoData && (await seedDemoData(db))) logger.info('seeded demo data into the empty database');
}

/**
 * Disconnects (the readiness probe's connection too), but a database that vanished can leave the
 * driver's pool waiting forever: bound the wait. A SQLite file replaced (a restore) or deleted while the server ran: its `-wal` and `-shm`
 * go too, which SQLite keeps then and would apply to the file now at the path (sqlite-wal.ts).
 */
export async function closeDatabase(
  db: Db,
  logger: Logger,
  { file, probe }: { file: SqliteFile | null; probe: DatabaseProbe },
): Promise<void> {
  const orphaned = file && (await file.wal.orphaned()) ? file.wal : null;
  await orphaned?.empty(db).catch((error: unknown) => logger.warn({ err: error }, 'could not empty the WAL'));
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = await Promise.race([
    Promise.all([db.$disconnect(), probe.close()]).then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), DISCONNECT_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  if (gaveUp) logger.warn('the database connection did not close within 5 s; leaving it');
  // Only once closed: an open connection writes to its WAL still.
  if (!orphaned || gaveUp) return;
  const removed = await orphaned.removeOrphans();
  logger.warn(
    { file: orphaned.filePath, removed },
    'the database file was replaced or deleted while the server ran: the -wal and -shm it had open are removed (SQLite would apply them to the file now at the path)',
  );
}
