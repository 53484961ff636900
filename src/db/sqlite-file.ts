import { stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { type Db, refuseWrites } from './client.js';
import { SqliteWal } from './sqlite-wal.js';

/** Free space below this on the database file's filesystem is reported: SQLite's writes are about to fail. */
export const LOW_DISK_BYTES = 16 * 1024 * 1024;

/**
 * The SQLite file the server opened, watched from outside: `SELECT 1` keeps answering from the
 * open file after it was deleted or replaced (a write since would go into the orphaned file, lost
 * at the next start, which finds an empty database and migrates it, or the restored one), and on
 * a full disk (its writes fail). Readiness says not ready for a file gone or replaced; the
 * `database` component reports both. Its messages do not name the file: every signed-in user sees
 * them; the path is the component's `file` figure, which only admins see (runtime/sources.ts).
 *
 * Once it finds the file gone or replaced, the server's connection refuses every write until the
 * process ends (refuseWrites): with one instance, the only setup SQLite allows, a readiness of 503
 * turns no traffic away, and each write acknowledged (a mutation, the task engine's, the outbox's)
 * was lost. Reads go on, from the orphaned file.
 */
export class SqliteFile {
  private opened: { dev: number; ino: number } | null = null;

  /** Its `-wal` and `-shm`, which the stop of a server whose file was replaced or deleted removes. */
  readonly wal: SqliteWal;

  /** `db`: the client whose writes the file's loss stops (none: only watched, as tests do). */
  constructor(
    readonly filePath: string,
    private readonly db: Db | null = null,
  ) {
    this.wal = new SqliteWal(filePath);
  }

  private orphaned(problem: string): string {
    if (this.db) refuseWrites(this.db);
    return problem;
  }

  /** Called once the database is open: the file from now on is this one. */
  async remember(): Promise<void> {
    const { dev, ino } = await stat(this.filePath);
    this.opened = { dev, ino };
    await this.wal.remember();
  }

  /** Why the file is no longer the one opened (null while it is, or before `remember`). */
  async problem(): Promise<string | null> {
    if (!this.opened) return null;
    try {
      const { dev, ino } = await stat(this.filePath);
      if (dev === this.opened.dev && ino === this.opened.ino) return null;
      return this.orphaned(
        "the database file was replaced while the server ran, and writes are refused until it restarts: stop the server, then start it (the stop removes the replaced file's -wal and -shm files; if they remain, after a kill, and did not come with the new file, move them away before the start: SQLite would apply them to it)",
      );
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') return `the database file cannot be checked (${code})`;
      return this.orphaned(
        'the database file was deleted while the server ran: writes are refused until it restarts, which starts on an empty database',
      );
    }
  }

  /** Bytes free to this process on the file's filesystem. */
  async freeBytes(): Promise<number> {
    const { bavail, bsize } = await statfs(path.dirname(this.filePath));
    return bavail * bsize;
  }
}
