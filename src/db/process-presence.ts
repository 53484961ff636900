import { randomUUID } from 'node:crypto';
import type { Logger } from '../platform/logger.js';
import type { Db } from './client.js';
import type { DatabaseClock } from './database-clock.js';

/**
 * Without REDIS_URL each server process keeps the runtime state and live views of its own changes
 * only: two of them on one database (a second `npm start`, a deployment scaled to two replicas)
 * each showed the other's installs only after a restart, and nothing said why. Each such process
 * writes a row of its own (JobCursor, the table of small named markers) at every collector cycle,
 * and reads whether another wrote one lately; the `database` component says so while one does,
 * and the log when it starts (warn) and ends (info): the component alone went unseen.
 */
const PRESENCE = 'single-process';

export class ProcessPresence {
  private readonly name = `${PRESENCE}:${randomUUID()}`;
  /** Other processes at the last beat, so that the log tells only of changes between none and some. */
  private others = 0;

  constructor(
    private readonly db: Db,
    /** Longer than a live process's longest gap between two writes of its row. */
    private readonly staleMs: number,
    /**
     * The rows are stamped and judged on the database's clock: processes on machines whose clocks
     * disagree by more than staleMs would otherwise take each other's rows for stale and remove
     * them (a process ahead), or count a gone process for longer (a process behind).
     */
    private readonly clock: Pick<DatabaseClock, 'date'>,
    private readonly logger?: Logger,
  ) {}

  /**
   * Writes this process's row and returns how many other processes wrote theirs within `staleMs`;
   * rows older than that (a process killed without its stop) are removed.
   */
  async beat(): Promise<number> {
    const now = this.clock.date();
    await this.db.jobCursor.upsert({
      where: { name: this.name },
      create: { name: this.name, position: now },
      update: { position: now },
    });
    const since = new Date(now.getTime() - this.staleMs);
    await this.db.jobCursor.deleteMany({ where: { name: { startsWith: `${PRESENCE}:` }, position: { lt: since } } });
    const others = await this.db.jobCursor.count({ where: { name: { startsWith: `${PRESENCE}:`, not: this.name } } });
    if (others > 0 && this.others === 0) {
      this.logger?.warn(
        { otherProcesses: others },
        'other server processes use this database without REDIS_URL: each shows only its own changes live (several instances need PostgreSQL and REDIS_URL; on SQLite, run one)',
      );
    } else if (others === 0 && this.others > 0) {
      this.logger?.info({ otherProcesses: 0 }, 'resolved: no other server process uses this database any more');
    }
    this.others = others;
    return others;
  }

  /** At the stop: the other processes stop counting this one at once. */
  async leave(): Promise<void> {
    await this.db.jobCursor.deleteMany({ where: { name: this.name } });
  }
}
