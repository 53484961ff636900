import { stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { SqliteWal } from './sqlite-wal.js';

/** Free space below this on the database file's filesystem is reported: SQLite's writes are about to fail. */
export const LOW_DISK_BYTES = 16 * 1024 * 1024;

/**
 * The SQLite file the server opened, watched from outside: `SELECT 1` keeps answering from the
 * open file after it was deleted or replaced (every write since is lost at the next start, which
 * finds an empty database and migrates it), and on a full disk (its writes fail). Readiness says
 * not ready for a file gone or replaced; the `database` component reports both. Its messages do
 * not name the file: every signed-in user sees them; the path is the component's `file` figure,
 * which only admins see (runtime/sources.ts).
 */
export class SqliteFile {
  private opened: { dev: number; ino: number } | null = null;

  /** Its `-wal` and `-shm`, which the stop of a server whose file was replaced or deleted removes. */
  readonly wal: SqliteWal;

  constructor(readonly filePath: string) {
    this.wal = new SqliteWal(filePath);
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
      return "the database file was replaced while the server ran: stop the server, then start it (the stop removes the replaced file's -wal and -shm files; if they remain, after a kill, and did not come with the new file, move them away before the start: SQLite would apply them to it)";
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') return `the database file cannot be checked (${code})`;
      return 'the database file was deleted while the server ran: what is written since is lost at the next start';
    }
  }

  /** Bytes free to this process on the file's filesystem. */
  async freeBytes(): Promise<number> {
    const { bavail, bsize } = await statfs(path.dirname(this.filePath));
    return bavail * bsize;
  }
}
