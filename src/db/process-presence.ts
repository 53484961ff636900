import { randomUUID } from 'node:crypto';
import type { Db } from './client.js';

/**
 * Without REDIS_URL each server process keeps the runtime state and live views of its own changes
 * only: two of them on one database (a second `npm start`, a deployment scaled to two replicas)
 * each showed the other's installs only after a restart, and nothing said why. Each such process
 * writes a row of its own (JobCursor, the table of small named markers) at every collector cycle,
 * and reads whether another wrote one lately; the `database` component says so while one does.
 */
const PRESENCE = 'single-process';

export class ProcessPresence {
  private readonly name = `${PRESENCE}:${randomUUID()}`;

  constructor(
    private readonly db: Db,
    /** Longer than a live process's longest gap between two writes of its row. */
    private readonly staleMs: number,
  ) {}

  /**
   * Writes this process's row and returns how many other processes wrote theirs within `staleMs`;
   * rows older than that (a process killed without its stop) are removed.
   */
  async beat(): Promise<number> {
    const now = new Date();
    await this.db.jobCursor.upsert({
      where: { name: this.name },
      create: { name: this.name, position: now },
      update: { position: now },
    });
    const since = new Date(now.getTime() - this.staleMs);
    await this.db.jobCursor.deleteMany({ where: { name: { startsWith: `${PRESENCE}:` }, position: { lt: since } } });
    return this.db.jobCursor.count({ where: { name: { startsWith: `${PRESENCE}:`, not: this.name } } });
  }

  /** At the stop: the other processes stop counting this one at once. */
  async leave(): Promise<void> {
    await this.db.jobCursor.deleteMany({ where: { name: this.name } });
  }
}
