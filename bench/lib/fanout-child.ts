/**
 * The child side of the fan-out benchmark's processes: answering the parent's numbered requests
 * over IPC, CPU and heap samples, the file-descriptor limit, and an on-demand V8 CPU profile (only
 * the measured windows, not start-up and connection set-up).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { Session } from 'node:inspector/promises';
import { setTimeout as delay } from 'node:timers/promises';
import {
  type BurstResult,
  type ChildMessage,
  type CpuSample,
  epochMs,
  type HeapSample,
  type ServerRequest,
} from './fanout-protocol.js';

export function send(message: ChildMessage): void {
  process.send?.(message);
}

/**
 * Serves the parent's requests: each gets a reply with its id. `onStop` runs on a `stop` request
 * and when the parent goes away; the process then leaves its IPC channel and exits.
 */
export function serve<R extends { id: number; type: string }>(
  handle: (request: R) => Promise<unknown>,
  onStop: () => Promise<void>,
): void {
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= onStop();
    return stopping;
  };
  process.on('message', (request: R) => {
    const work = request.type === 'stop' ? stop().then(() => true) : handle(request);
    work.then(
      (value) => {
        send({ type: 'reply', id: request.id, value });
        if (request.type === 'stop') {
          process.disconnect();
          // Nothing may keep a finished child alive (a stray handle would leave a port open).
          setTimeout(() => process.exit(0), 2000).unref();
        }
      },
      (error: unknown) => send({ type: 'reply', id: request.id, value: null, error: String(error) }),
    );
  });
  process.on('disconnect', () => {
    void stop().finally(() => process.exit(0));
  });
}

export function failed(error: unknown): void {
  send({ type: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exitCode = 1;
  process.disconnect?.();
}

export function cpuSample(): CpuSample {
  const usage = process.cpuUsage();
  return { cpuMicros: usage.user + usage.system, wallMs: performance.now() };
}

/** Memory after full collections; needs --expose-gc. */
export async function heapSample(): Promise<HeapSample> {
  const gc = globalThis.gc;
  if (!gc) throw new Error('run the child with --expose-gc');
  for (let i = 0; i < 4; i++) {
    gc();
    await delay(20); // lets finalizers and pending socket callbacks run between collections
  }
  const { heapUsed, external, arrayBuffers, rss } = process.memoryUsage();
  return { heapUsed, external, arrayBuffers, rss };
}

/** This process's soft limit of open files (Linux), or null when unknown. */
export function fdLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((text) => text.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? null : Number(soft);
  } catch {
    return null;
  }
}

/** A V8 CPU profile of this process between start() and stop(file). */
export class CpuProfiler {
  private session: Session | null = null;

  async start(): Promise<boolean> {
    if (this.session) return false;
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
    this.session = session;
    return true;
  }

  async stop(file: string): Promise<string | null> {
    const session = this.session;
    if (!session) return null;
    this.session = null;
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    writeFileSync(file, JSON.stringify(profile));
    return file;
  }
}

/**
 * `count` changes `intervalMs` apart (event indices first, first + 1, …), each stamped just before
 * `change` makes it. A change that returns a promise (e.g. a commit) is awaited before the next
 * one is paced; a synchronous one is not.
 */
export async function pacedBurst(
  first: number,
  count: number,
  intervalMs: number,
  change: (index: number) => void | Promise<void>,
): Promise<BurstResult> {
  const published: number[] = [];
  let maxTimerLagMs = 0;
  const start = performance.now();
  for (let k = 0; k < count; k++) {
    const due = start + k * intervalMs;
    if (k > 0) await delay(Math.max(0, due - performance.now()));
    maxTimerLagMs = Math.max(maxTimerLagMs, performance.now() - due);
    published.push(epochMs());
    const made = change(first + k);
    if (made) await made;
  }
  return { published, maxTimerLagMs };
}

/**
 * Serves a fan-out server's requests (both the subject and the raw baseline): samples, its open
 * connections, and bursts of changes, `change(index)` being the server's way of making one.
 * Each change is stamped just before it is made; the bursts keep their pace with timers.
 */
export function serveFanoutServer(server: Server, change: (index: number) => void, onStop: () => Promise<void>): void {
  const profiler = new CpuProfiler();
  serve<ServerRequest>(async (request) => {
    switch (request.type) {
      case 'cpu':
        return cpuSample();
      case 'heap':
        return heapSample();
      case 'connections':
        return new Promise<number>((resolve, reject) =>
          server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
        );
      case 'burst':
        return pacedBurst(request.first, request.count, request.intervalMs, change);
      case 'profile':
        return request.action === 'start' ? profiler.start() : profiler.stop(request.file);
      case 'stop':
        return true;
    }
  }, onStop);
}
