import type BetterSqlite3 from 'better-sqlite3';
import type { Pool, PoolClient, QueryConfig, QueryResult } from 'pg';
import { type Sql, sql } from '../generated/prisma-sqlite/internal/prismaNamespace.js';
import { pgbouncerMode } from '../platform/connection-urls.js';
import { PG_TYPES, postgresValue } from './pg-values.js';

/**
 * Hand-written statements sent straight to the driver Prisma's adapter already holds (the same
 * better-sqlite3 connection, the same pg pool), each prepared once: for the paths where Prisma's
 * `$queryRaw` itself is most of the cost. Profiled on SQLite (G1 `app`/`tasks`/`catalog`, outbox
 * deliveries, a catalogue sync): of a raw statement's CPU, Prisma's request pipeline and
 * interpreter took ~60 % and better-sqlite3's `prepare`, which the adapter runs for every
 * statement, another ~5 %; the statement itself was the small rest.
 *
 * It answers `$queryRaw`, `$executeRaw` and `$transaction(fn)` like a Prisma client, so the
 * statements of hot-path-sql.ts and its siblings run on either, and rows come back as Prisma's
 * query API returns them (test/driver-sql.test.ts compares them on both providers): DateTime as
 * Date, Json parsed, Boolean as boolean, Int as number. Parameters are written as Prisma's adapters
 * write them: on SQLite a Date as `2026-11-22T18:14:09.003+00:00` and a boolean as 1/0; on
 * PostgreSQL a Date in UTC.
 *
 * Transactions keep Prisma's rules: on SQLite the adapter's own transaction lock is taken (one
 * connection, one transaction at a time), on PostgreSQL a pool connection is held for the
 * transaction and handed back as broken should COMMIT or ROLLBACK fail (see LeakFreePrismaPg).
 */
export interface DriverSql extends SqlRunner {
  /**
   * Runs `body` in one transaction; statements of `tx` belong to it. Not nested: on SQLite a
   * second `$transaction` inside `body` would wait for the lock its caller holds.
   */
  $transaction<T>(body: (tx: DriverSql) => Promise<T>): Promise<T>;
}

/** What a hand-written statement needs: a Prisma client, a Prisma transaction or a DriverSql. */
export interface SqlRunner {
  $queryRaw<T = unknown>(query: TemplateStringsArray | Sql, ...values: unknown[]): Promise<T>;
  $executeRaw(query: TemplateStringsArray | Sql, ...values: unknown[]): Promise<number>;
}

/** What createPrismaClient hands over once Prisma's adapter has connected (see register). */
export type DriverHandle =
  /** `begin` runs BEGIN under the adapter's transaction lock and returns its release. */
  | { kind: 'sqlite'; connection: BetterSqlite3.Database; begin: () => Promise<() => void> }
  | { kind: 'postgresql'; pool: Pool };

type OnQuery = (sql: string) => void;
/** What of a Prisma client this module uses (not client.ts's Db: client.ts imports this module). */
type PrismaConnectable = { $connect(): Promise<void> };

/**
 * The driver of one Prisma client as its adapter last connected it: Prisma connects lazily, and
 * again after a `$disconnect` (a new better-sqlite3 connection, a new pg pool each time).
 */
export class DriverConnection {
  current: DriverHandle | null = null;
  constructor(
    readonly provider: DriverHandle['kind'],
    readonly onQuery: OnQuery | undefined,
  ) {}
}

const connections = new WeakMap<object, DriverConnection>();
const drivers = new WeakMap<object, DriverSql>();

/**
 * Called by createPrismaClient: where its adapter puts the driver each time it connects, and who
 * hears of every statement (PrismaOptions.onQuery, as Prisma's own statements are heard).
 */
export function registerDriver(db: object, provider: DriverHandle['kind'], onQuery?: OnQuery): DriverConnection {
  const connection = new DriverConnection(provider, onQuery);
  connections.set(db, connection);
  return connection;
}

/**
 * The provider of a client made by createPrismaClient, for the few statements that must differ
 * between the two (see claimDueMessages).
 */
export function providerOf(db: PrismaConnectable): DriverHandle['kind'] {
  const connection = connections.get(db);
  if (!connection) throw new Error('this Prisma client was not made by createPrismaClient');
  return connection.provider;
}

/** The driver-level statements of a client made by createPrismaClient (one per client). */
export function driverSqlOf(db: PrismaConnectable): DriverSql {
  let driver = drivers.get(db);
  if (!driver) {
    const connection = connections.get(db);
    if (!connection) throw new Error('this Prisma client was not made by createPrismaClient');
    driver = new LazyDriver(db, connection);
    drivers.set(db, driver);
  }
  return driver;
}

/**
 * The ids for an `IN (…)` list, the last repeated up to the next power of two: a statement's text
 * (and so its prepared statement, and on PostgreSQL its name and plan) depends on the list's
 * length, and callers send every length (the outbox worker records batches of 1 to its window);
 * padded, a handful of texts serve them all.
 */
export function paddedIds(ids: readonly number[]): number[] {
  if (ids.length === 0) return [];
  const padded = [...ids];
  const size = 2 ** Math.ceil(Math.log2(Math.max(1, ids.length)));
  while (padded.length < size) padded.push(ids[ids.length - 1] as number);
  return padded;
}

function statementOf(query: TemplateStringsArray | Sql, values: unknown[]): Sql {
  return 'raw' in query ? sql(query, ...(values as never[])) : query;
}

/** Statements on the driver the adapter holds now, connecting through Prisma first when it has none. */
class LazyDriver implements DriverSql {
  private driverOf: DriverHandle | null = null;
  private driven: DriverSql | null = null;

  constructor(
    private readonly db: PrismaConnectable,
    private readonly connection: DriverConnection,
  ) {}

  private get onQuery(): OnQuery | undefined {
    return this.connection.onQuery;
  }

  private async driver(): Promise<DriverSql> {
    if (!this.connection.current) await this.db.$connect(); // a failure is the statement's; the next one tries again
    const handle = this.connection.current;
    if (!handle) throw new Error('Prisma connected without its adapter handing over the driver');
    if (handle !== this.driverOf || !this.driven) {
      this.driverOf = handle;
      this.driven =
        handle.kind === 'sqlite'
          ? new SqliteDriver(handle.connection, handle.begin)
          : new PostgresDriver(handle.pool, !pgbouncerMode(handle.pool.options.connectionString));
    }
    return this.driven;
  }

  async $queryRaw<T>(query: TemplateStringsArray | Sql, ...values: unknown[]): Promise<T> {
    const statement = statementOf(query, values);
    this.onQuery?.(statement.sql);
    return (await this.driver()).$queryRaw<T>(statement);
  }

  async $executeRaw(query: TemplateStringsArray | Sql, ...values: unknown[]): Promise<number> {
    const statement = statementOf(query, values);
    this.onQuery?.(statement.sql);
    return (await this.driver()).$executeRaw(statement);
  }

  async $transaction<T>(body: (tx: DriverSql) => Promise<T>): Promise<T> {
    const { onQuery } = this;
    return (await this.driver()).$transaction((tx) => body(onQuery ? reporting(tx, onQuery) : tx));
  }
}

/** A transaction's statements, heard by `onQuery` too. */
function reporting(tx: DriverSql, onQuery: OnQuery): DriverSql {
  return {
    $queryRaw<T>(query: TemplateStringsArray | Sql, ...values: unknown[]) {
      const statement = statementOf(query, values);
      onQuery(statement.sql);
      return tx.$queryRaw<T>(statement);
    },
    $executeRaw(query: TemplateStringsArray | Sql, ...values: unknown[]) {
      const statement = statementOf(query, values);
      onQuery(statement.sql);
      return tx.$executeRaw(statement);
    },
    $transaction: (inner) => tx.$transaction(inner),
  };
}

// ——— SQLite ———

type Converter = (value: unknown) => unknown;
/**
 * A DateTime column's text: Prisma's `2026-11-22T18:14:09.003+00:00`, or SQLite's own
 * `CURRENT_TIMESTAMP` form `2026-11-22 18:14:09` (a row written by hand), which is UTC as Prisma
 * reads it, though `new Date` would take it for local time.
 */
function sqliteDate(value: string | number): Date {
  if (typeof value === 'number' || /[zZ]|[+-]\d\d:?\d\d$/.test(value)) return new Date(value);
  return new Date(`${value.replace(' ', 'T')}Z`);
}

const SQLITE_COLUMN: Record<string, Converter> = {
  DATETIME: (value) => (value === null ? null : sqliteDate(value as string | number)),
  JSONB: (value) => (value === null ? null : JSON.parse(value as string)),
  BOOLEAN: (value) => (value === null ? null : value === 1 || value === 1n || value === true),
};

/**
 * Statements kept prepared, per connection: the hand-written ones are a few dozen texts, but an
 * `IN (…)` list makes one text per length, so the least recently used go past this many.
 */
const PREPARED_LIMIT = 500;

interface PreparedSqlite {
  statement: BetterSqlite3.Statement;
  /** Per result column: its name and how its value becomes Prisma's. */
  columns: { name: string; convert: Converter | undefined }[] | null;
}

function sqliteValue(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString().replace('Z', '+00:00');
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}

class SqliteDriver implements DriverSql {
  private readonly prepared = new Map<string, PreparedSqlite>();

  constructor(
    private readonly connection: BetterSqlite3.Database,
    private readonly begin: () => Promise<() => void>,
  ) {}

  private prepare(text: string): PreparedSqlite {
    let entry = this.prepared.get(text);
    if (entry) {
      // Least recently used first out: a hit moves to the end of the Map's order.
      this.prepared.delete(text);
      this.prepared.set(text, entry);
    } else {
      const statement = this.connection.prepare(text).safeIntegers(false);
      const columns = statement.reader
        ? statement.columns().map(({ name, type }) => ({ name, convert: type ? SQLITE_COLUMN[type] : undefined }))
        : null;
      entry = { statement, columns };
      this.prepared.set(text, entry);
      if (this.prepared.size > PREPARED_LIMIT) this.prepared.delete(this.prepared.keys().next().value as string);
    }
    return entry;
  }

  async $queryRaw<T>(query: TemplateStringsArray | Sql, ...values: unknown[]): Promise<T> {
    const statement = statementOf(query, values);
    const { statement: prepared, columns } = this.prepare(statement.sql);
    const args = statement.values.map(sqliteValue);
    if (!columns) {
      prepared.run(args);
      return [] as T;
    }
    const rows = prepared.raw(true).all(args) as unknown[][];
    return rows.map((row) => {
      const out: Record<string, unknown> = {};
      for (let i = 0; i < columns.length; i++) {
        const { name, convert } = columns[i] as { name: string; convert: Converter | undefined };
        out[name] = convert ? convert(row[i]) : row[i];
      }
      return out;
    }) as T;
  }

  async $executeRaw(query: TemplateStringsArray | Sql, ...values: unknown[]): Promise<number> {
    const statement = statementOf(query, values);
    const { statement: prepared } = this.prepare(statement.sql);
    return prepared.run(statement.values.map(sqliteValue)).changes;
  }

  async $transaction<T>(body: (tx: DriverSql) => Promise<T>): Promise<T> {
    const release = await this.begin();
    // Within it, a nested $transaction joins it (as on PostgreSQL) rather than wait for the lock it holds.
    const tx: DriverSql = {
      $queryRaw: (query, ...values) => this.$queryRaw(query, ...values),
      $executeRaw: (query, ...values) => this.$executeRaw(query, ...values),
      $transaction: (inner) => inner(tx),
    };
    let result: T;
    try {
      result = await body(tx);
      this.connection.prepare('COMMIT').run();
    } catch (error) {
      rollBackThenRelease(this.connection, release);
      throw error;
    }
    release();
    return result;
  }
}

/**
 * After a transaction failed (its body, or its COMMIT: a deferred constraint, a disk full or
 * read-only): rolls the connection back, then releases the transaction lock. While the ROLLBACK
 * fails too (the disk still refusing), it is tried again every second and the lock kept: released
 * on a connection still inside the transaction, the next BEGIN would fail, and the adapter's lock
 * with it, for good (see SharedPrismaBetterSQLite3). Meanwhile a statement outside any transaction
 * (the lock covers only transactions) runs inside the failed one and goes with its rollback: with
 * the disk refusing the ROLLBACK, it could not have been written either.
 */
export function rollBackThenRelease(connection: BetterSqlite3.Database, release: () => void): void {
  try {
    if (connection.inTransaction) connection.exec('ROLLBACK');
  } catch {
    setTimeout(() => rollBackThenRelease(connection, release), 1000).unref();
    return;
  }
  release();
}

// ——— PostgreSQL ———

/** One name per statement text, for pg's per-connection prepared statements (shared by every pool). */
const statementNames = new Map<string, string>();
let namesGiven = 0;

/**
 * PostgreSQL's answer to a prepared `SELECT *` or `RETURNING *` whose table gained or lost a
 * column since (a migration of a rolling deploy, while this instance still runs).
 */
function isStalePlan(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  return code === '0A000' && /cached plan must not change result type/.test(message ?? '');
}

class PostgresDriver implements DriverSql {
  constructor(
    private readonly pool: Pool | PoolClient,
    /**
     * Unnamed behind PgBouncer in transaction mode (`?pgbouncer=true`), which hands each transaction
     * any server connection: one lacked a name prepared on another ("prepared statement
     * \"driver_sql_7\" does not exist", or "… already exists"). Parsed and planned at each execution
     * then: in-process against a local PostgreSQL 15 (a lookup by unique key, one of 3 ids; median
     * of 15 rounds of 2,000, 2-core machine at load 12–15), 725–853 µs named, 927–1,160 unnamed.
     */
    private readonly named: boolean,
    private readonly inTransaction = false,
  ) {}

  private config(statement: Sql): QueryConfig {
    const text = statement.text;
    let name = this.named ? statementNames.get(text) : undefined;
    // Past the limit, statements go unnamed (parsed each time) rather than pile up on the server.
    if (this.named && !name && statementNames.size < PREPARED_LIMIT) {
      name = `driver_sql_${++namesGiven}`;
      statementNames.set(text, name);
    }
    return { ...(name ? { name } : {}), text, values: statement.values.map(postgresValue), types: PG_TYPES };
  }

  /**
   * Runs a statement; one whose prepared plan went stale is prepared afresh under a new name (on
   * every connection, as each meets it) and, outside a transaction, sent again at once (inside
   * one, the failure has aborted the transaction: its caller's retry takes the new name).
   */
  private async run(statement: Sql): Promise<QueryResult> {
    try {
      return await this.pool.query(this.config(statement));
    } catch (error) {
      if (!isStalePlan(error)) throw error;
      statementNames.delete(statement.text);
      if (this.inTransaction) throw error;
      return this.pool.query(this.config(statement));
    }
  }

  async $queryRaw<T>(query: TemplateStringsArray | Sql, ...values: unknown[]): Promise<T> {
    return (await this.run(statementOf(query, values))).rows as T;
  }

  async $executeRaw(query: TemplateStringsArray | Sql, ...values: unknown[]): Promise<number> {
    return (await this.run(statementOf(query, values))).rowCount ?? 0;
  }

  async $transaction<T>(body: (tx: DriverSql) => Promise<T>): Promise<T> {
    if (this.inTransaction) return body(this);
    const connection = await (this.pool as Pool).connect();
    // A failed BEGIN, COMMIT or ROLLBACK hands the connection back as broken: the pool closes it.
    let broken: Error | undefined;
    const control = (text: string) =>
      connection.query(text).catch((error: Error) => {
        broken = error;
        throw error;
      });
    try {
      // Said, not the database's default_transaction_isolation: at a DBA's `serializable`, concurrent
      // installs failed with 40001 (nothing retries it), "Unexpected error.". Prisma's: client.ts.
      await control('BEGIN ISOLATION LEVEL READ COMMITTED');
      let result: T;
      try {
        result = await body(new PostgresDriver(connection, this.named, true));
      } catch (error) {
        await control('ROLLBACK').catch(() => {});
        throw error;
      }
      await control('COMMIT');
      return result;
    } finally {
      connection.release(broken);
    }
  }
}
