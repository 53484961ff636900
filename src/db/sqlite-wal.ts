import { stat, unlink } from 'node:fs/promises';
import type { Db } from './client.js';

interface Identity {
  dev: number;
  ino: number;
}

/** The file at `file` now (null when there is none): the same path may hold another file later. */
async function identityOf(file: string): Promise<Identity | null> {
  try {
    const { dev, ino } = await stat(file);
    return { dev, ino };
  } catch {
    return null;
  }
}

function same(a: Identity | null, b: Identity | null): boolean {
  return a !== null && b !== null && a.dev === b.dev && a.ino === b.ino;
}

/**
 * The write-ahead log (`-wal`) and its index (`-shm`) of the SQLite file the server opened, for the
 * stop of a server whose file was replaced (a restore) or deleted while it ran.
 *
 * SQLite finds a WAL by its name and applies it to whatever file is at the path. The last
 * connection's close normally checkpoints the WAL into the file and deletes both, but not when the
 * file was moved or unlinked since it was opened (pager.c, databaseIsUnmoved): then it keeps them.
 * A clean stop after a restore thus left the old database's WAL beside the restored file, and the
 * next open applied it ("database disk image is malformed"). Here the stop of such a server empties
 * its WAL into the file it had open, then removes the two files, if the path still holds the ones
 * it had open: a `-wal` or `-shm` that came with the restored file is another file, left alone.
 */
export class SqliteWal {
  private opened: { file: Identity | null; wal: Identity | null; shm: Identity | null } | null = null;

  constructor(readonly filePath: string) {}

  /** Called once the database is open and used (its connection has both files open from then on). */
  async remember(): Promise<void> {
    const [file, wal, shm] = await Promise.all([
      identityOf(this.filePath),
      identityOf(`${this.filePath}-wal`),
      identityOf(`${this.filePath}-shm`),
    ]);
    this.opened = { file, wal, shm };
  }

  /** Whether the path no longer holds the file opened: replaced or deleted (false before `remember`). */
  async orphaned(): Promise<boolean> {
    if (!this.opened?.file) return false;
    return !same(await identityOf(this.filePath), this.opened.file);
  }

  /**
   * Before the connection's close, when orphaned: moves the WAL's pages into the file it has open
   * and truncates the WAL, touching only files this connection holds open. A WAL left at the path
   * (one that `removeOrphans` cannot tell for this server's) is then empty, so harmless.
   */
  async empty(db: Db): Promise<void> {
    await db.$queryRawUnsafe('PRAGMA wal_checkpoint(TRUNCATE)');
  }

  /**
   * After the connection closed, when orphaned: removes the `-wal` and `-shm` at the path that are
   * still the ones this server had open, and returns their paths.
   */
  async removeOrphans(): Promise<string[]> {
    const removed: string[] = [];
    for (const [suffix, opened] of [
      ['-wal', this.opened?.wal ?? null],
      ['-shm', this.opened?.shm ?? null],
    ] as const) {
      const file = `${this.filePath}${suffix}`;
      if (!same(await identityOf(file), opened)) continue;
      await unlink(file).then(
        () => removed.push(file),
        () => {}, // gone meanwhile
      );
    }
    return removed;
  }
}
