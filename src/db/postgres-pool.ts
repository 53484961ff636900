import pg, { type Pool } from 'pg';
import { DatabaseBusyError } from './availability.js';

/**
 * Bounds of the PostgreSQL connection pool (pg's Pool options), so that a database that vanishes
 * (stopped, or the network cut or blackholed) makes queries fail instead of waiting forever, and
 * the pool recovers by itself once it is back. A connection not established within 5 s fails its
 * query (pg's default is to wait forever), and so does a query that waited 5 s for a connection
 * of a full pool (pg bounds both waits with this one option); a query with no answer within
 * DATABASE_QUERY_TIMEOUT_MS (PrismaOptions.queryTimeoutMs) fails and its connection is dropped,
 * the bound for a connection that died silently: at 60 s, requests on pooled connections hung that
 * long while /readiness already said the database did not answer. TCP keep-alive lets the kernel
 * notice dead idle connections. pg's pool discards a connection that failed rather than handing it
 * out again. The pool's size is DATABASE_POOL_SIZE (`max`).
 */
export const POSTGRES_POOL = {
  connectionTimeoutMillis: 5_000,
  idleTimeoutMillis: 10_000,
  keepAlive: true,
} as const;

/** pg-pool's error for a query whose wait for a connection of a full pool ran out (connectionTimeoutMillis). */
const POOL_WAIT_TIMED_OUT = 'timeout exceeded when trying to connect';

/** What /metrics shows of a pool: its size and state, and the waits that ran out on a busy pool. */
export interface PoolFigures {
  size: number;
  /** The pool in use now; null before the first query. */
  pool: Pick<Pool, 'totalCount' | 'idleCount' | 'waitingCount'> | null;
  /** Queries whose wait for a connection ran out while every connection was established and in use. */
  busyTimeouts: number;
}

/** pg-pool's internals read to tell a busy pool from one still connecting (pg-pool 3: its list of clients). */
type PoolInternals = { _clients: { _connected?: boolean }[] };

/**
 * Makes a wait for a connection that ran out on a busy pool throw DatabaseBusyError, and counts it.
 * pg-pool gives the same error whether its connections were all established and in use (load: the
 * database answers, only slower than queries arrive) or still being established (the database does
 * not answer them: an outage, which the connections' own failures report a moment later). Only the
 * first is busy; the second stays pg's error, the database unavailable. A network that silently
 * drops the packets of connections already open looks like the first until DATABASE_QUERY_TIMEOUT_MS
 * ends their queries: /readiness, on a connection of its own, tells the two apart meanwhile.
 */
export function reportBusyWaits(pool: Pool, figures: PoolFigures): void {
  figures.pool = pool;
  const busy = (error: unknown): unknown => {
    if (!(error instanceof Error) || error.message !== POOL_WAIT_TIMED_OUT) return error;
    const clients = (pool as unknown as PoolInternals)._clients;
    if (clients.length === 0 || !clients.every((client) => client._connected)) return error;
    figures.busyTimeouts++;
    return new DatabaseBusyError(figures.size, POSTGRES_POOL.connectionTimeoutMillis);
  };
  type Connected = (error: unknown, client: unknown, done: unknown) => void;
  const connect = pool.connect.bind(pool) as (callback?: Connected) => Promise<unknown> | undefined;
  // pool.query waits through connect(callback), a transaction through connect(): both are replaced.
  pool.connect = ((callback?: Connected) => {
    if (callback) return connect((error, client, done) => callback(busy(error), client, done));
    return (connect() as Promise<unknown>).catch((error: unknown) => {
      throw busy(error);
    });
  }) as Pool['connect'];
}

/**
 * `/readiness`'s connection: a pool of one of its own, apart from the queries' pool, so that a busy
 * pool (every connection in use, queries waiting) does not make a healthy instance "not ready"
 * and taken out of its load balancer, which only moved its load onto the others. Its `SELECT 1`
 * asks whether the database answers, not whether this instance has a connection free. It holds
 * its connection between probes for up to idleTimeoutMillis (10 s): one connection more than
 * DATABASE_POOL_SIZE per instance.
 */
export function readinessPool(url: string, queryTimeoutMs: number): Pool {
  const pool = new pg.Pool({ connectionString: url, ...POSTGRES_POOL, max: 1, query_timeout: queryTimeoutMs });
  // An idle connection the server ends (a restart) emits 'error' on the pool: unheard, it ends the process.
  pool.on('error', () => {});
  return pool;
}
