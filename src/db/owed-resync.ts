import type { Logger } from '../platform/logger.js';
import type { Db } from './client.js';
import type { DatabaseClock } from './database-clock.js';

/**
 * Markers that an instance owes the cluster changes Redis never took (it is, or was when it died,
 * cut off from Redis): the other instances' runtime stores miss them, and nothing else would ever
 * tell them. An instance that starts takes every marker, and the leader takes those no instance
 * has written for INSTANCE_SILENCE_MS (their instance died: SIGKILL, a crash); either then has
 * every instance re-read its state from the database (RedisChangeLog.requestResync). One JobCursor
 * row per instance (the table of small named markers), whose position is when it was last written.
 */
const OWED_RESYNC = 'cluster-log:resync-owed';
/**
 * How often at most an instance that still owes writes its marker again (at its retries of the
 * append, which back off to 5 s): the marker's age tells whether the instance lives.
 */
const REFRESH_MS = 1000;

/** Longer than a live instance's longest gap between two writes of its marker (see takeAbandoned). */
const MIN_ABANDONED_MS = 15_000;

/** This instance's marker, written while its cluster log owes changes and removed once it owes none. */
export class OwedResyncMarker {
  private readonly name: string;
  private marked = false;
  private writtenAt = 0;
  private writing: Promise<void> = Promise.resolve();
  private failing = false;

  constructor(
    private readonly db: Db,
    instance: string,
    private readonly logger: Logger,
    /** The marker's age is judged by another instance: both on the database's clock. */
    private readonly clock: DatabaseClock,
  ) {
    this.name = `${OWED_RESYNC}:${instance}`;
  }

  /**
   * The log failed to append what it holds (`true`, told at every attempt), or holds nothing any
   * more (`false`). Written from the first failure on, not at the stop: a process killed while cut
   * off has no stop, and its changes were lost to the others for good.
   */
  owing(owing: boolean): void {
    if (owing ? Date.now() - this.writtenAt < REFRESH_MS : !this.marked) return;
    this.marked = owing;
    this.writtenAt = owing ? Date.now() : 0;
    this.writing = this.writing.then(() => (owing ? this.write() : this.remove()));
  }

  /**
   * Writes the marker (a stop that leaves changes unsent), after the writes asked for before (a
   * removal still waiting must not come after it); `settled` waits for it. A failure is logged.
   */
  record(): void {
    this.marked = true;
    this.writtenAt = Date.now();
    this.writing = this.writing.then(() => this.write());
  }

  private async write(): Promise<void> {
    const position = this.clock.date();
    await this.db.jobCursor
      .upsert({ where: { name: this.name }, create: { name: this.name, position }, update: { position } })
      .then(this.succeeded, this.failed);
  }

  /**
   * The leader's look for the markers of instances that died owing: those no instance has written
   * for `silenceMs` (INSTANCE_SILENCE_MS), and never less than MIN_ABANDONED_MS. A live instance
   * writes its own at each retry of its append: at most 10 s apart (a 5 s backoff, and up to 5 s
   * for Redis to time out). True when it took some.
   */
  takeAbandoned(silenceMs: number): Promise<boolean> {
    return takeOwedResync(this.db, new Date(this.clock.now() - Math.max(silenceMs, MIN_ABANDONED_MS)));
  }

  /** The writes asked for so far are done (before the database connection closes). */
  settled(): Promise<void> {
    return this.writing;
  }

  private async remove(): Promise<void> {
    await this.db.jobCursor.deleteMany({ where: { name: this.name } }).then(this.succeeded, this.failed);
  }

  private readonly succeeded = (): void => {
    this.failing = false;
  };

  private readonly failed = (error: unknown): void => {
    // Once per outage of the database: the marker is written again at the log's next attempt.
    if (!this.failing) this.logger.error({ err: error }, 'could not record the resync owed for unsent cluster changes');
    this.failing = true;
  };
}

/**
 * Takes the markers (every one, or only those not written since `writtenBefore`): true for the one
 * caller that removed some (instances may start together).
 */
export async function takeOwedResync(db: Db, writtenBefore?: Date): Promise<boolean> {
  const { count } = await db.jobCursor.deleteMany({
    where: { name: { startsWith: OWED_RESYNC }, ...(writtenBefore ? { position: { lt: writtenBefore } } : {}) },
  });
  return count > 0;
}
