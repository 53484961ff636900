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

/** How much of a redis-server's stdout `readyToAccept` keeps: its start-up banner is about 2 KB. */
const KEPT_OUTPUT = 64 * 1024;

/**
 * Resolves once a redis-server says it is ready; rejects with its output if it exits first. Its
 * stdout is matched as a whole, not chunk by chunk: a line split across two chunks was never
 * matched, and the test hung until its timeout.
 */
function readyToAccept(server: ServerProcess): Promise<void> {
  const stdout = server.child.stdout!;
  let text = '';
  return new Promise<void>((resolve, reject) => {
    const read = (data: Buffer) => {
      text = (text + String(data)).slice(-KEPT_OUTPUT);
      if (!/Ready to accept/.test(text)) return;
      stdout.off('data', read);
      resolve();
    };
    stdout.on('data', read);
    void server.exited.then(({ code, signal }) => {
      stdout.off('data', read);
      reject(new Error(`redis-server exited (${signal ?? code}) before it was ready:\n${server.output.join('\n')}`));
    });
  });
}

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
    try {
      await readyToAccept(child);
    } catch (error) {
      if (/Address already in use/.test(String(error))) continue; // the port was taken
      rmSync(directory, { recursive: true, force: true });
      throw error;
    }
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
