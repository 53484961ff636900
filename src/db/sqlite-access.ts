import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { databaseProvider, sqliteFilePath } from './client.js';

/**
 * Whether this process can create or write the SQLite file DATABASE_URL names, checked before the
 * migrations open it: SQLite's own errors name neither the file nor the setting nor the cause. A
 * directory the server's user may not write failed the start with "unable to open database file",
 * a file of another user with "attempt to write a readonly database", a missing directory on a
 * read-only file system with a bare "ENOENT … mkdir". SQLite writes the file and, beside it, its
 * -wal and -shm files, so the directory must be writable as well as the file.
 */
export function sqliteAccessProblem(url: string): string | null {
  if (databaseProvider(url) !== 'sqlite') return null;
  const file = sqliteFilePath(url);
  const directory = path.dirname(file);
  const user = typeof process.getuid === 'function' ? `uid ${process.getuid()}` : 'its user';
  const named = `DATABASE_URL names the SQLite file ${file}`;
  const fix = `or point DATABASE_URL at a writable path (in the image: a volume at /app/data, writable by uid 1000)`;
  if (!existsSync(directory)) {
    try {
      mkdirSync(directory, { recursive: true });
    } catch (error) {
      return `${named}, whose directory ${directory} does not exist and cannot be created (${codeOf(error)}, as ${user}): create it writable for the server's user, or mount a volume there, ${fix}`;
    }
  }
  for (const each of [file, `${file}-wal`, `${file}-shm`]) {
    if (!existsSync(each)) continue;
    const problem = unwritable(each);
    if (problem) {
      return `${named}; ${each} cannot be written by this process (${problem}, running as ${user}, the file owned by uid ${statSync(each).uid}): give it and its directory to the server's user (chown), ${fix}`;
    }
  }
  const problem = unwritable(directory, constants.W_OK | constants.X_OK);
  if (problem) {
    return `${named}; its directory ${directory} cannot be written by this process (${problem}, running as ${user}), and SQLite creates its -wal and -shm files there: make it writable for the server's user (chown, or a volume owned by that user), ${fix}`;
  }
  return null;
}

function unwritable(target: string, mode = constants.R_OK | constants.W_OK): string | null {
  try {
    accessSync(target, mode);
    return null;
  } catch (error) {
    return codeOf(error);
  }
}

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}

/** Throws sqliteAccessProblem's message, for `npm start` and `npm run db:migrate` to report as their one line. */
export function assertSqliteWritable(url: string): void {
  const problem = sqliteAccessProblem(url);
  if (problem) throw new Error(`Could not open the database: ${problem}`);
}
