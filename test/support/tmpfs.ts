import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REQUIRE_SERVICES } from './databases.js';

/** A small tmpfs of its own (needs root, as a container's CI has); null where mounting is not allowed. */
export function mountTmpfs(bytes: number): { dir: string; unmount(): void } | null {
  const dir = mkdtempSync(path.join(tmpdir(), 'test-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
  return {
    dir,
    unmount() {
      execFileSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Whether this machine lets the tests mount a tmpfs (root). A skip where it does not, said loudly,
 * as test/pgbouncer.test.ts does for a missing PgBouncer; a failure under REQUIRE_SERVICES=1 (CI
 * runs as root, where a skip would hide the tests).
 */
export function canMountTmpfs(what: string): boolean {
  const probe = mountTmpfs(1 << 20);
  if (probe) {
    probe.unmount();
    return true;
  }
  const message = `cannot mount a tmpfs (mount needs root): ${what}`;
  if (REQUIRE_SERVICES) throw new Error(`${message}; REQUIRE_SERVICES=1 forbids skipping`);
  console.warn(`\n!!! SKIPPING ${what}: ${message}\n`);
  return false;
}

/** Writes a file until its filesystem has not a byte left; returns its path. */
export function fillDisk(dir: string): string {
  const filler = path.join(dir, 'filler');
  const fd = openSync(filler, 'w');
  try {
    for (const size of [1 << 20, 4096, 1]) {
      try {
        for (;;) writeSync(fd, Buffer.alloc(size));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      }
    }
  } finally {
    closeSync(fd);
  }
  return filler;
}
