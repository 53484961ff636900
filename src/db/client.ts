import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import type BetterSqlite3 from 'better-sqlite3';
import type { Pool, PoolClient } from 'pg';
import { parse as parsePostgresUrl } from 'pg-connection-string';
import { PrismaClient as PostgresPrismaClient } from '../generated/prisma-postgres/client.js';
import { PrismaClient as SqlitePrismaClient } from '../generated/prisma-sqlite/client.js';
import { DEFAULT_POOL_SIZE, DEFAULT_QUERY_TIMEOUT_MS } from '../platform/config-env.js';
import { type DriverConnection, type DriverHandle, registerDriver, rollBackThenRelease } from './driver-sql.js';
import { POSTGRES_POOL, type PoolFigures, readinessPool, reportBusyWaits } from './postgres-pool.js';
import { answerWritable } from './postgres-session.js';

/**
 * The Prisma client the services use. Prisma generates one client per provider (a client refuses
 * an adapter of another provider), from the same models, so their query APIs are identical; the
 * SQLite client's type stands for both.
 */
export type Db = SqlitePrismaClient;

export type DatabaseProvider = 'sqlite' | 'postgresql';

export function databaseProvider(url: string): DatabaseProvider {
  return url.startsWith('file:') ? 'sqlite' : 'postgresql';
}

/** `file:./data/market.db` → absolute path, relative paths taken from the working directory. */
export function sqliteFilePath(url: string): string {
  return path.resolve(url.slice('file:'.length));
}

/**
 * The database as the banner and start-up errors name it: kind, host and path, never a credential.
 * A Unix socket's directory is read as pg reads it (`@/db?host=/run/postgresql`, or the host
 * `%2Frun%2Fpostgresql`): `new URL` took the first for no URL and showed the second encoded.
 */
export function databaseShown(url: string): string {
  if (databaseProvider(url) === 'sqlite') return `SQLite ${sqliteFilePath(url)}`;
  try {
    const { host, port, database } = parsePostgresUrl(url);
    if (host?.startsWith('/')) {
      const named = database ? `, database ${database}` : '';
      return `PostgreSQL on the Unix socket in ${host}${port ? ` (port ${port})` : ''}${named}`;
    }
    const parsed = new URL(url);
    return `PostgreSQL at ${parsed.host}${parsed.pathname}`;
  } catch {
    return 'PostgreSQL';
  }
}

export interface PrismaOptions {
  /** Called with every SQL statement Prisma sends (tests count them to prove batching). */
  onQuery?: (sql: string) => void;
  /** PostgreSQL: how long a statement may go unanswered (DATABASE_QUERY_TIMEOUT_MS). @default 15000 */
  queryTimeoutMs?: number;
  /** PostgreSQL: connections of the pool (DATABASE_POOL_SIZE). @default 10 */
  poolSize?: number;
}

type PostgresAdapter = Awaited<ReturnType<PrismaPg['connect']>>;
type PostgresTransaction = Awaited<ReturnType<PostgresAdapter['startTransaction']>>;

/**
 * PrismaPg, without its connection leak. Prisma 6.19 ends an interactive transaction by sending
 * COMMIT or ROLLBACK and only then hands the connection back to the pool; when that statement
 * fails (above all when the connection died with the database), the connection is never handed
 * back. Each transaction a database outage interrupts would cost the pool one connection for
 * good, until none is left and every query waits in vain after the database returned. Here a
 * failed COMMIT or ROLLBACK hands the connection back as broken, so the pool closes it.
 */
class LeakFreePrismaPg extends PrismaPg {
  /** Where the pool goes once connected, for driver-sql.ts (set by createPrismaClient). */
  driver: DriverConnection | null = null;
  /** The pool's figures for /metrics, of whichever pool is current (Prisma makes a new one after $disconnect). */
  readonly figures: PoolFigures;
  /** Told of each failed COMMIT or ROLLBACK (see onFailedCommit). */
  failedEnd: (error: unknown) => void = () => {};

  constructor(config: ConstructorParameters<typeof PrismaPg>[0] & { max: number }) {
    super(config);
    this.figures = { size: config.max, pool: null, busyTimeouts: 0 };
  }

  override async connect(): Promise<PostgresAdapter> {
    const adapter = await super.connect();
    // A connection the server terminates (a database shut down or dropped: 57P01) while it is
    // checked out between two queries emits 'error' with no listener of pg's or the adapter's, and
    // an unheard 'error' ends the process. Its queries fail on their own and the pool drops it.
    const pool = (adapter as unknown as { client: Pool }).client;
    pool.on('connect', (connection) => connection.on('error', () => {}));
    reportBusyWaits(pool, this.figures);
    const startTransaction = adapter.startTransaction.bind(adapter);
    // READ COMMITTED unless asked otherwise, as driver-sql.ts's, not the database's default (a DBA's serializable).
    adapter.startTransaction = async (isolationLevel) =>
      releasedOnFailedEnd(await startTransaction(isolationLevel ?? 'READ COMMITTED'), (error) => this.failedEnd(error));
    handOver(adapter, this.driver, { kind: 'postgresql', pool });
    return adapter;
  }
}

type SqliteAdapter = Awaited<ReturnType<PrismaBetterSQLite3['connect']>>;

/**
 * Hands the adapter's driver to driver-sql.ts until Prisma disposes of the adapter ($disconnect);
 * after that, driver-sql.ts connects through Prisma again.
 */
function handOver(adapter: { dispose(): Promise<void> }, driver: DriverConnection | null, handle: DriverHandle): void {
  if (!driver) return;
  driver.current = handle;
  const dispose = adapter.dispose.bind(adapter);
  adapter.dispose = () => {
    if (driver.current === handle) driver.current = null;
    return dispose();
  };
}

type SqliteTransaction = Awaited<ReturnType<SqliteAdapter['startTransaction']>>;

/**
 * PrismaBetterSQLite3, handing its connection to driver-sql.ts, and its transactions: the
 * adapter's `startTransaction` takes its lock (one transaction at a time on the one connection)
 * and runs BEGIN; releasing the lock is the caller's, after its COMMIT or ROLLBACK.
 *
 * As with PostgreSQL (LeakFreePrismaPg), Prisma 6.19 releases the lock only after a COMMIT or
 * ROLLBACK that succeeded: one that failed (a deferred constraint checked at COMMIT, a disk full
 * or read-only, an I/O error) left the lock taken and the connection inside the transaction, and
 * every later transaction, so every write, waited for good while reads and health checks went
 * on. Here a failed end rolls the connection back and releases the lock (rollBackThenRelease).
 */
class SharedPrismaBetterSQLite3 extends PrismaBetterSQLite3 {
  /** Where the connection goes once connected, for driver-sql.ts (set by createPrismaClient). */
  driver: DriverConnection | null = null;
  /** Set by refuseWrites: every connection from then on is `query_only`. */
  private writesRefused = false;
  /** Told of each failed COMMIT or ROLLBACK (see onFailedCommit). */
  failedEnd: (error: unknown) => void = () => {};

  refuseWrites(): void {
    this.writesRefused = true;
    const current = this.driver?.current;
    if (current?.kind === 'sqlite') current.connection.pragma('query_only = 1');
  }

  override async connect(): Promise<SqliteAdapter> {
    const adapter = await super.connect();
    const connection = (adapter as unknown as { client: BetterSqlite3.Database }).client;
    if (this.writesRefused) connection.pragma('query_only = 1');
    const startTransaction = adapter.startTransaction.bind(adapter);
    adapter.startTransaction = async (isolationLevel) =>
      unlockedOnFailedEnd(await startTransaction(isolationLevel), connection, (error) => this.failedEnd(error));
    const begin = async () => {
      const transaction = await adapter.startTransaction();
      return () => void transaction.commit(); // releases the lock (the adapter sends no SQL here)
    };
    handOver(adapter, this.driver, { kind: 'sqlite', connection, begin });
    return adapter;
  }
}

function unlockedOnFailedEnd(
  transaction: SqliteTransaction,
  connection: BetterSqlite3.Database,
  failedEnd: (error: unknown) => void,
): SqliteTransaction {
  const executeRaw = transaction.executeRaw.bind(transaction);
  // The adapter's commit() and rollback() send nothing: both only release the lock.
  const unlock = () => void transaction.rollback();
  transaction.executeRaw = async (query) => {
    try {
      return await executeRaw(query);
    } catch (error) {
      if (query.sql === 'COMMIT' || query.sql === 'ROLLBACK') {
        rollBackThenRelease(connection, unlock);
        failedEnd(error);
      }
      throw error;
    }
  };
  return transaction;
}

function releasedOnFailedEnd(
  transaction: PostgresTransaction,
  failedEnd: (error: unknown) => void,
): PostgresTransaction {
  const executeRaw = transaction.executeRaw.bind(transaction);
  transaction.executeRaw = async (query) => {
    try {
      return await executeRaw(query);
    } catch (error) {
      if (query.sql === 'COMMIT' || query.sql === 'ROLLBACK') {
        // The adapter's own connection (a protected field): Prisma will not release it now.
        (transaction as unknown as { client: PoolClient }).client.release(error as Error);
        failedEnd(error);
      }
      throw error;
    }
  };
  return transaction;
}

/**
 * How long a statement that finds the SQLite file's write lock taken waits for it (better-sqlite3's
 * `timeout`, SQLite's busy_timeout), blocking the event loop meanwhile: better-sqlite3 runs on the
 * main thread. The server's one connection never meets its own lock, so the lock is another
 * process's (a backup, an operator's sqlite3, a second server wrongly on the file). At 5000 every
 * statement that met it froze the server up to 5 s, the background writers in turns: /health took
 * 26 s under a 30 s lock and a mutation answered 30 s later. 20 ms still waits out a momentary lock
 * (another process's single write), and then the write fails as UNAVAILABLE (db/availability.ts).
 * Measured (event loop blocked per second, timers at 10 ms, demo data with the simulated app
 * service stepping every 200 ms, a 3 s lock; baseline without a lock 106–265 ms/s on the loaded
 * 2-core test machine): busy_timeout 0 +0–30 ms/s, 5 +21, 20 +29–59, 50 +190–234, 200 +356, 5000
 * the loop stood still while the lock was held (one /health took 74 s, the whole of the lock).
 */
export const SQLITE_BUSY_TIMEOUT_MS = 20;

/**
 * Prisma's errors without the code frame it quotes by default (the calling source file, its lines
 * and the query's arguments): a log line per failed query then carried a dozen lines of this
 * project's source (a database outage logged over a hundred of them per instance), and could carry
 * the arguments' values.
 */
const ERROR_FORMAT = 'minimal';

const sqliteAdapters = new WeakMap<object, SharedPrismaBetterSQLite3>();
const postgresAdapters = new WeakMap<object, LeakFreePrismaPg>();

/** The PostgreSQL pool's figures (size, state, busy waits) for /metrics; null on SQLite. */
export function poolFigures(db: Db): PoolFigures | null {
  return postgresAdapters.get(db)?.figures ?? null;
}

/** What `/readiness` asks the database (http/readiness.ts). */
export interface DatabaseProbe {
  /** Resolves once the database answered (PostgreSQL: rejects with DatabaseReadOnlyError while it refuses writes). */
  answer(): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * PostgreSQL: a connection of its own (readinessPool, see there for why); SQLite: `db`'s one
 * connection, which no pool stands before.
 */
export function databaseProbe(db: Db, url: string, queryTimeoutMs = DEFAULT_QUERY_TIMEOUT_MS): DatabaseProbe {
  if (databaseProvider(url) === 'sqlite')
    return { answer: () => db.$queryRawUnsafe('SELECT 1'), close: async () => {} };
  const pool = readinessPool(url, queryTimeoutMs);
  return { answer: () => answerWritable(pool), close: () => pool.end() };
}

/**
 * Tells `listener` of each COMMIT (or ROLLBACK) of a Prisma transaction that failed, with the
 * driver's error: Prisma 6.19 reports the failed COMMIT of its own transactions as a failed
 * ROLLBACK (db/availability.ts isFailedCommit), so the cause (a full disk) reaches only the adapter.
 */
export function onFailedCommit(db: Db, listener: (error: unknown) => void): void {
  const adapter = sqliteAdapters.get(db) ?? postgresAdapters.get(db);
  if (adapter) adapter.failedEnd = listener;
}

/**
 * SQLite: from now on until the process ends, the connection refuses every write (SQLite's own
 * `PRAGMA query_only`: a write fails with SQLITE_READONLY, which db/availability.ts takes for the
 * database away, so a mutation answers UNAVAILABLE), Prisma's and driver-sql.ts's alike, inside a
 * transaction or not; reads, ROLLBACK, COMMIT and checkpoints still run. For a file deleted or
 * replaced under the server (SqliteFile): what it wrote would go into the orphaned file, lost at
 * the next start, though acknowledged. Nothing on PostgreSQL.
 */
export function refuseWrites(db: Db): void {
  sqliteAdapters.get(db)?.refuseWrites();
}

export function createPrismaClient(url: string, options: PrismaOptions = {}): Db {
  const log = options.onQuery ? [{ emit: 'event' as const, level: 'query' as const }] : [];
  let client: Db;
  if (databaseProvider(url) === 'sqlite') {
    const file = sqliteFilePath(url);
    mkdirSync(path.dirname(file), { recursive: true });
    const adapter = new SharedPrismaBetterSQLite3({ url: file, timeout: SQLITE_BUSY_TIMEOUT_MS });
    client = new SqlitePrismaClient({ adapter, log, errorFormat: ERROR_FORMAT });
    adapter.driver = registerDriver(client, 'sqlite', options.onQuery);
    sqliteAdapters.set(client, adapter);
  } else {
    const adapter = new LeakFreePrismaPg({
      connectionString: url,
      ...POSTGRES_POOL,
      max: options.poolSize ?? DEFAULT_POOL_SIZE,
      query_timeout: options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS,
    });
    client = new PostgresPrismaClient({ adapter, log, errorFormat: ERROR_FORMAT }) as unknown as Db;
    postgresAdapters.set(client, adapter);
    adapter.driver = registerDriver(client, 'postgresql', options.onQuery);
  }
  if (options.onQuery) {
    const onQuery = options.onQuery;
    (client as unknown as { $on(event: 'query', cb: (e: { query: string }) => void): void }).$on('query', (event) =>
      onQuery(event.query),
    );
  }
  return client;
}

/**
 * Per-connection settings, applied once at start. SQLite (one connection through the adapter):
 * WAL journal (set by the migration step) with `synchronous = NORMAL`, SQLite's recommended
 * pairing: a commit no longer waits for an fsync, a crash of the process loses nothing, and only
 * a power cut can lose the last commits (never corrupts the file). The busy timeout is the
 * connection's own (SQLITE_BUSY_TIMEOUT_MS), so a connection Prisma opens again has it too.
 */
export async function prepareDatabase(db: Db, url: string): Promise<void> {
  if (databaseProvider(url) !== 'sqlite') return;
  await db.$queryRawUnsafe('PRAGMA synchronous = NORMAL');
}
