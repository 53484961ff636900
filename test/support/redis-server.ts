import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { REQUIRE_SERVICES } from './databases.js';
import { type ServerProcess, startProcess } from './process.js';

/**
 * A redis-server of the test's own, for what a test must not do to the shared Redis: set
 * `maxmemory`, make it a Redis Cluster node, restart it without its data. No persistence
 * (`--save ''`, no AOF), as a cache-only Redis runs.
 */
export interface OwnRedis {
  url: string;
  port: number;
  /** A client of the test's own (closed by `stop`). */
  admin: Redis;
  process: ServerProcess;
  stop(): Promise<void>;
}

/** Whether `redis-server` is installed; a test file skips when it is not (and fails under REQUIRE_SERVICES=1). */
export function redisServerInstalled(): boolean {
  const found = spawnSync('redis-server', ['--version']).status === 0;
  if (found) return true;
  if (REQUIRE_SERVICES) throw new Error('redis-server is not installed; REQUIRE_SERVICES=1');
  console.warn('\n!!! SKIPPING tests with a redis-server of their own: redis-server is not installed\n');
  return false;
}

/** Ports the tests' own redis-servers take: a port in use makes redis-server exit, and the next is tried. */
const PORTS = { first: 49_000, count: 1000 };

/**
 * Starts a redis-server on a free port of PORTS (`extra`: more command-line options, e.g. the
 * cluster mode's) and resolves once it answers PING.
 */
export async function startOwnRedis(extra: string[] = []): Promise<OwnRedis> {
  const directory = mkdtempSync(path.join(tmpdir(), 'own-redis-'));
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = PORTS.first + Math.floor(Math.random() * PORTS.count);
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    const child = startProcess(['redis-server', ...args, '--dir', directory, ...extra], process.env);
    const ready = await Promise.race([
      new Promise<true>((resolve) =>
        child.child.stdout?.on('data', (data) => /Ready to accept/.test(String(data)) && resolve(true)),
      ),
      child.exited.then(() => false as const),
    ]);
    if (!ready) continue; // the port was taken
    const url = `redis://127.0.0.1:${port}`;
    const admin = new Redis(url);
    await admin.ping();
    const stop = async () => {
      admin.disconnect();
      child.child.kill('SIGTERM');
      await child.exited;
      rmSync(directory, { recursive: true, force: true });
    };
    return { url, port, admin, process: child, stop };
  }
  throw new Error('no free port for a redis-server in 49000–49999');
}
