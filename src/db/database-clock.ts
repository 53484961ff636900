import { type DriverSql, driverSqlOf, providerOf } from './driver-sql.js';

/**
 * The database's clock as this process reads it: its own clock plus the offset last measured
 * against PostgreSQL's `clock_timestamp()`. The times several instances compare with each other's
 * (a task's lease: the owner's heartbeat against the adopter's "now") are stamped and judged with
 * it, so instances whose clocks disagree still agree on them: with each instance's own clock, one
 * running 45 s ahead took the tasks of live instances over as abandoned within a second (a lease of
 * 30 s; every takeover from ~20 s of skew on). On SQLite, one process and one machine, the offset
 * stays 0.
 *
 * Measured as the middle of the round trip, so it is right to within half of one (a millisecond
 * or two next to the database). One per process (createServices), shared by the task engine, the
 * outbox worker and status correction; `task_engine` shows how far this machine's clock is off.
 */
export class DatabaseClock {
  private offset = 0;
  private measured = false;
  /** When the offset was last measured, on this process's clock (0: never). */
  private syncedAt = 0;

  constructor(private readonly sql: DriverSql | null) {}

  /** Milliseconds since the epoch, on the database's clock. */
  now(): number {
    return Date.now() + this.offset;
  }

  date(): Date {
    return new Date(this.now());
  }

  /** How far this machine's clock is ahead of the database's, as last measured (null: never, or SQLite). */
  get machineLeadMs(): number | null {
    return this.measured ? -this.offset : null;
  }

  /** Reads the database's clock again (PostgreSQL). A failure throws, and the last offset stays in use. */
  async sync(): Promise<void> {
    if (!this.sql) return;
    const sent = Date.now();
    const [row] = await this.sql.$queryRaw<{ now: Date }[]>`SELECT clock_timestamp() AS "now"`;
    const received = Date.now();
    if (!row) return;
    this.offset = Math.round(row.now.getTime() - (sent + received) / 2);
    this.measured = true;
    this.syncedAt = received;
  }

  /** `sync()` when the offset is older than `maxAgeMs` (for a hot path: otherwise one comparison). */
  async syncEvery(maxAgeMs: number): Promise<void> {
    if (this.sql && Date.now() - this.syncedAt >= maxAgeMs) await this.sync();
  }
}

/** The clock of `db`'s database: PostgreSQL's, read through its driver; on SQLite this machine's. */
export function databaseClockOf(db: { $connect(): Promise<void> }): DatabaseClock {
  return new DatabaseClock(providerOf(db) === 'postgresql' ? driverSqlOf(db) : null);
}
