import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { killLeftovers, SERVER_COMMAND, serverEnv, startProcess } from './support/process.js';
import { canMountTmpfs, mountTmpfs } from './support/tmpfs.js';

/**
 * A SQLite file the server cannot create or write: the start said only SQLite's "unable to open
 * database file" or "attempt to write a readonly database", or a bare "ENOENT … mkdir". It now
 * names the file, DATABASE_URL, the cause and the likely fix. The server runs as a child process,
 * as the user nobody (uid 65534) where the tests run as root, since root may write any file.
 */

const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
const MIGRATE_COMMAND = [process.execPath, '--import', 'tsx', 'src/db/migrate-cli.ts'];
const asRoot = process.getuid?.() === 0;

const cleanups: (() => void)[] = [];
afterEach(async () => {
  await killLeftovers();
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

/** A directory of the test's, owned by root, that others may enter but not write. */
function rootDirectory(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sqlite-access-'));
  chmodSync(dir, 0o755);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The one line a start (or a migration run) that fails prints, and its exit code. */
async function failure(command: string[], file: string) {
  const started = startProcess(command, serverEnv(`file:${file}`, { LOG_FORMAT: 'json' }));
  const { code } = await started.exited;
  return { code, line: started.logs.at(-1)?.msg ?? started.output.join('\n') };
}

describe.runIf(asRoot)('a SQLite file the server cannot write', () => {
  test.each([
    ['npm start', SERVER_COMMAND],
    ['npm run db:migrate', MIGRATE_COMMAND],
  ])('%s in a directory its user may not write names the directory and the setting', async (_, command) => {
    const dir = rootDirectory();
    const { code, line } = await failure([...NOBODY, ...command], path.join(dir, 'market.db'));
    expect(code).toBe(1);
    expect(line).toBe(
      `Could not open the database: DATABASE_URL names the SQLite file ${dir}/market.db; its directory ${dir} cannot be written by this process (EACCES, running as uid 65534), and SQLite creates its -wal and -shm files there: make it writable for the server's user (chown, or a volume owned by that user), or point DATABASE_URL at a writable path (in the image: a volume at /app/data, writable by uid 1000)`,
    );
  });

  test('a file of another user names the file, both users and chown', async () => {
    const dir = rootDirectory();
    chmodSync(dir, 0o777);
    const file = path.join(dir, 'market.db');
    writeFileSync(file, '', { mode: 0o644 });
    const { code, line } = await failure([...NOBODY, ...SERVER_COMMAND], file);
    expect(code).toBe(1);
    expect(line).toContain(
      `DATABASE_URL names the SQLite file ${file}; ${file} cannot be written by this process (EACCES, running as uid 65534, the file owned by uid 0): give it and its directory to the server's user (chown)`,
    );
  });
});

describe.runIf(asRoot && canMountTmpfs('a SQLite directory on a read-only file system'))(
  'a read-only file system',
  () => {
    test('a missing directory on it names the directory, the setting and a volume', async () => {
      const mounted = mountTmpfs(1 << 20)!;
      cleanups.push(() => mounted.unmount());
      mkdirSync(path.join(mounted.dir, 'kept'));
      execFileSync('mount', ['-o', 'remount,ro', mounted.dir]);
      const file = path.join(mounted.dir, 'data', 'market.db');
      const { code, line } = await failure(SERVER_COMMAND, file);
      expect(code).toBe(1);
      expect(line).toMatch(
        new RegExp(
          `^Could not open the database: DATABASE_URL names the SQLite file ${file}, whose directory ${path.dirname(file)} does not exist and cannot be created \\((EROFS|ENOENT), as uid 0\\): create it writable for the server's user, or mount a volume there`,
        ),
      );
    });
  },
);
