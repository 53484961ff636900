import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import {
  killLeftovers,
  LISTENING,
  processTreeOf,
  SERVER_COMMAND,
  type SeenProcess,
  serverEnv,
  startProcess,
} from './support/process.js';
import { waitFor } from './support/server.js';

/**
 * A stop that arrives while the server is still loading: in a container node is PID 1, and the
 * kernel drops a signal PID 1 has no handler for. The SIGTERM handlers were installed only once the
 * port was bound, so a `docker stop` or pod deletion in the first seconds was ignored and the server
 * migrated and served. The test holds the server while it loads its modules (a loader hook on
 * app/build-app.ts, test/support/hold-module.mjs), sends SIGTERM there, and runs the server as PID 1
 * of its own PID namespace when `unshare` may (root, as in CI), as a plain child process otherwise
 * (where a process without a handler dies of the signal instead of exiting 0).
 */

const PID_NAMESPACE = spawnSync('unshare', ['--pid', '--fork', '--kill-child', 'true']).status === 0;
/** How long the server gets to act on the signal before the test lets it go on loading. */
const STOP_WINDOW_MS = 10_000;

let seen: SeenProcess[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await killLeftovers(seen.splice(0));
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** Where the held loader checks in; resolves with its connection, which releases it when ended. */
async function holdPoint(): Promise<{ port: number; reached: Promise<Socket> }> {
  const server: Server = createServer();
  const reached = once(server, 'connection').then(([socket]) => socket as Socket);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => server.close());
  return { port: (server.address() as { port: number }).port, reached };
}

test(`SIGTERM while the server still loads ends it with exit code 0 at once, nothing migrated (${PID_NAMESPACE ? 'as PID 1' : 'as a plain process'})`, async () => {
  const directory = mkdtempSync(path.join(tmpdir(), 'market-early-stop-'));
  cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
  const databaseFile = path.join(directory, 'market.db');
  const hold = await holdPoint();
  const [node, ...args] = SERVER_COMMAND as [string, ...string[]];
  const command = [node, '--import', './test/support/hold-module.mjs', ...args];
  const server = startProcess(
    PID_NAMESPACE ? ['unshare', '--pid', '--fork', '--kill-child', ...command] : command,
    serverEnv(`file:${databaseFile}`, { HOLD_MODULE: '/src/app/build-app.ts', HOLD_PORT: String(hold.port) }),
  );
  const release = await hold.reached;
  // The node process itself: under unshare, the child of `unshare`.
  const underUnshare = async () => processTreeOf(server.child.pid!).find((p) => p.command[0] === node)?.pid;
  const pid = PID_NAMESPACE ? await waitFor(underUnshare, 'node under unshare') : server.child.pid!;
  seen = processTreeOf(server.child.pid!);
  process.kill(pid, 'SIGTERM');

  const windowEnded = new Promise<'still running'>((resolve) => {
    const timer = setTimeout(() => resolve('still running'), STOP_WINDOW_MS);
    cleanups.push(() => clearTimeout(timer));
  });
  const outcome = await Promise.race([server.exited, windowEnded]);
  if (outcome === 'still running') {
    // Let it go on: what it does after ignoring the signal is the failure to show.
    release.end();
    await Promise.race([server.waitForLog((line) => line.msg === LISTENING, 'it listened'), server.exited]);
  }
  expect(outcome, `the server after SIGTERM:\n${server.output.join('\n')}`).toEqual({ code: 0, signal: null });
  expect(server.logs.some((line) => line.msg === LISTENING)).toBe(false);
  // Nothing started: no database file, no migration, no stop of a started server.
  expect(existsSync(databaseFile)).toBe(false);
  expect(server.logs.map((line) => line.msg)).not.toContain('shutting down: no longer accepting connections');
  release.destroy();
}, 60_000);
