/**
 * Telling "the database is away" (stopped, unreachable, overloaded, the network cut) from other
 * failures, so that requests answer UNAVAILABLE (retry later) instead of an unexpected error, and
 * subscriptions wait for it to come back instead of ending.
 */

/**
 * Prisma's codes for a server it cannot reach, a connection it lost, or a pool it waited on, and
 * for a database that is gone or refuses the server's user (dropped, or the role's login taken
 * away: `/readiness` said "database unreachable" while every request failed as an unexpected error).
 */
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1003', 'P1008', 'P1010', 'P1017', 'P2024']);
/** What a driver adapter reports for the same (`meta.driverAdapterError.cause.kind`). */
const ADAPTER_KINDS = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
  'DatabaseDoesNotExist',
  'DatabaseAccessDenied',
  'AuthenticationFailed',
]);
/**
 * SQLite's file that cannot be written or read (a disk full or read-only, an I/O error, the file
 * gone): the database is away for writes as a stopped server is, until someone frees the disk.
 * And its write lock held by another process ("database is locked", SQLITE_BUSY after the busy
 * timeout, SQLITE_BUSY_SNAPSHOT for a transaction whose snapshot the other's commit made stale):
 * away until that process lets go. Matched on the driver's code (`SQLITE_IOERR_WRITE`, …),
 * unwrapped or as the adapter's cause (the adapter maps only the plain SQLITE_BUSY, to SocketTimeout).
 */
const SQLITE_AWAY_CODES = /^SQLITE_(IOERR|FULL|READONLY|CANTOPEN|BUSY)/;
/**
 * No room for a write: SQLite's SQLITE_FULL (the disk holding the file, or the file's own
 * max_page_count) and PostgreSQL's disk_full (SQLSTATE 53100, the server could not extend a file),
 * unwrapped or as the adapter's cause. Away for writes until an operator frees space: reads go on.
 */
export function isDiskFull(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, meta, cause } = error as {
    code?: unknown;
    meta?: { driverAdapterError?: { cause?: { originalCode?: unknown } } };
    cause?: { originalCode?: unknown };
  };
  const codes = [code, (meta?.driverAdapterError?.cause ?? cause)?.originalCode];
  return codes.some((one) => typeof one === 'string' && (one.startsWith('SQLITE_FULL') || one === DISK_FULL_SQLSTATE));
}
const DISK_FULL_SQLSTATE = '53100';

/**
 * Prisma's own transaction (one its query plan needs, e.g. some `updateMany`) whose COMMIT failed:
 * Prisma 6.19's client engine then tries a ROLLBACK of a transaction it already counts as
 * committed and reports that ("Transaction already closed: A rollback cannot be executed on a
 * committed transaction", P2028) instead of the COMMIT's error. Seen with SQLite's disk full: the
 * task engine's heartbeat logged it as an unexpected error. The database refused the write; the
 * cause reached the adapter (see client.ts onFailedCommit), not the caller.
 */
function isFailedCommit(code: unknown, message: unknown): boolean {
  return code === 'P2028' && typeof message === 'string' && message.includes('cannot be executed on a committed');
}

/**
 * An interactive transaction that outlived its time (Prisma's `timeout`, 5 s by default: "A query
 * cannot be executed on an expired transaction") or could not start within its `maxWait` ("Unable
 * to start a transaction in the given time"), both P2028: the database or this process was too
 * slow now (a lock held by another session, a pool full, a long GC pause), not the request wrong.
 * `addWebhook` waiting on its table lock past 5 s answered 500 "Unexpected error.".
 */
function isTransactionOutOfTime(code: unknown, message: unknown): boolean {
  return (
    code === 'P2028' &&
    typeof message === 'string' &&
    /expired transaction|start a transaction in the given time/.test(message)
  );
}

/**
 * Socket errors, PostgreSQL's admin_shutdown, crash_shutdown, cannot_connect_now and
 * too_many_connections: the codes of driver errors as they reach us unwrapped, from the adapter or from db/driver-sql.ts.
 */
const DRIVER_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '3D000',
  '28000',
  '28P01',
  '57014', // query_canceled (a statement_timeout): answered as DATABASE_QUERY_TIMEOUT_MS's timeout is
  '25006', // read_only_sql_transaction: a failover onto a standby, or default_transaction_read_only (/readiness says so)
]);
/**
 * pg's own messages, which reach us unwrapped through the adapter (seen with a TCP proxy that
 * blackholes or refuses: "Connection terminated unexpectedly", "… due to connection timeout").
 */
const DRIVER_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Query read timeout/i;

/**
 * A query that waited for a connection of the PostgreSQL pool while every connection was in use,
 * until the wait's bound (db/postgres-pool.ts): the database answers, this instance has more
 * queries than connections (DATABASE_POOL_SIZE). Load, not an outage: still "not now" (every
 * isDatabaseUnavailable caller retries it), but told apart where a client or an operator reads it.
 */
export class DatabaseBusyError extends Error {
  constructor(poolSize: number, waitedMs: number) {
    super(`no connection of the database pool (${poolSize}) was free within ${waitedMs} ms: every one was in use`);
    this.name = 'DatabaseBusyError';
  }
}

export function isDatabaseBusy(error: unknown): boolean {
  return error instanceof DatabaseBusyError;
}

export function isDatabaseUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  if (error instanceof DatabaseBusyError) return true;
  const { code, meta, message } = error as {
    code?: unknown;
    meta?: { driverAdapterError?: { cause?: { kind?: string; originalCode?: string } } };
    message?: unknown;
  };
  if (typeof code === 'string' && (PRISMA_CODES.has(code) || DRIVER_CODES.has(code) || SQLITE_AWAY_CODES.test(code))) {
    return true;
  }
  if (isDiskFull(error) || isFailedCommit(code, message) || isTransactionOutOfTime(code, message)) return true;
  const cause =
    meta?.driverAdapterError?.cause ?? (error as { cause?: { kind?: string; originalCode?: string } }).cause;
  if (cause?.kind && ADAPTER_KINDS.has(cause.kind)) return true;
  if (cause?.originalCode && (SQLITE_AWAY_CODES.test(cause.originalCode) || DRIVER_CODES.has(cause.originalCode))) {
    return true;
  }
  return typeof message === 'string' && DRIVER_MESSAGES.test(message);
}

/** How long a subscription's read waits for the database before it gives that event up. */
const WAIT_MS = { first: 200, max: 5000, total: 10 * 60_000 };

/**
 * Runs a read, and while the database is away, runs it again (doubling the pause up to 5 s) for
 * up to 10 minutes; then, or on any other failure, throws. For subscriptions: the events that
 * arrive meanwhile wait in their order, and are delivered once the database is back.
 */
export async function whenAvailable<T>(read: () => Promise<T>): Promise<T> {
  const started = Date.now();
  let pause = WAIT_MS.first;
  for (;;) {
    try {
      return await read();
    } catch (error) {
      if (!isDatabaseUnavailable(error) || Date.now() - started + pause > WAIT_MS.total) throw error;
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, WAIT_MS.max);
    }
  }
}

/**
 * What a failure says where every user sees it (a component's message, a job's or the status
 * correction's last error). A database error says what it means: Prisma's own message quotes the
 * calling source file and its lines. Any other error its first line, bounded (the adapters'
 * messages are written to be shown: "app service is unreachable …: ECONNREFUSED").
 */
export function failureMessage(error: unknown): string {
  if (isDiskFull(error)) return DISK_FULL;
  if (isDatabaseBusy(error)) return DATABASE_BUSY;
  if (isDatabaseUnavailable(error)) return 'database unavailable';
  const { name, message } = error instanceof Error ? error : { name: '', message: String(error) };
  if (name.startsWith('PrismaClient')) {
    const { code } = error as { code?: unknown };
    return typeof code === 'string' ? `database error ${code}` : 'database error';
  }
  const line = message.split('\n').find((text) => text.trim()) ?? 'failed';
  return line.trim().slice(0, MAX_FAILURE_MESSAGE);
}

/** What a write the database refused for want of room says (it said "database unavailable", the cause only in a log line). */
export const DISK_FULL = "the database's disk is full: writes fail until space is freed";

/** What a query that found no connection of the pool free in time says (it said "database unavailable"). */
export const DATABASE_BUSY = 'database busy: every connection of the pool was in use (DATABASE_POOL_SIZE)';

/** Longest message a failure shows. */
const MAX_FAILURE_MESSAGE = 300;
