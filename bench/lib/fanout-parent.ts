/**
 * The parent side of the fan-out benchmark's processes: starts a child (TypeScript through tsx)
 * pinned to one core with `taskset` when available, with its open-files limit raised with
 * `ulimit -n` when the current one is too low, and talks to it with numbered requests over IPC.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, Unnumbered } from './fanout-protocol.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let tasksetAvailable: boolean | undefined;

/** Whether processes can be pinned to cores: `taskset` exists and there are at least 2 cores. */
export function canPin(): boolean {
  if (tasksetAvailable === undefined) {
    try {
      execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
      tasksetAvailable = os.availableParallelism() >= 2;
    } catch {
      tasksetAvailable = false;
    }
  }
  return tasksetAvailable;
}

/** The soft and hard open-files limits of this process (Linux), or null. */
export function ownFdLimits(): { soft: number; hard: number } | null {
  try {
    const out = execFileSync('sh', ['-c', 'ulimit -S -n; ulimit -H -n'], { encoding: 'utf8' }).trim().split('\n');
    const parse = (text: string | undefined) => (text === 'unlimited' ? Number.POSITIVE_INFINITY : Number(text));
    return { soft: parse(out[0]), hard: parse(out[1]) };
  } catch {
    return null;
  }
}

export interface LaunchOptions {
  /** Pin to this core (taskset -c) when pinning is possible. */
  core?: number;
  /** Open files the child needs; `ulimit -n` raises its limit when the current one is lower. */
  fds?: number;
  env?: Record<string, string>;
  execArgv?: string[];
  /** What to call it in errors. */
  name: string;
}

/** A child process speaking the request/reply protocol of fanout-child.ts. */
export class Child<R extends { id: number; type: string }> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private exited = false;
  private readonly exitedPromise: Promise<void>;
  private completeListener: (() => void) | null = null;
  ready!: Extract<ChildMessage, { type: 'ready' }>;

  private constructor(
    private readonly child: ChildProcess,
    readonly name: string,
  ) {
    this.exitedPromise = new Promise((resolve) => child.once('exit', () => resolve()));
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'complete') this.completeListener?.();
      if (message.type !== 'reply') return;
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.error) waiter?.reject(new Error(`${name}: ${message.error}`));
      else waiter?.resolve(message.value);
    });
    child.on('exit', (code, signal) => {
      this.exited = true;
      for (const waiter of this.pending.values()) {
        waiter.reject(new Error(`${name} exited (code ${code}, signal ${signal})`));
      }
      this.pending.clear();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  static async launch<R extends { id: number; type: string }>(
    entry: string,
    options: LaunchOptions,
  ): Promise<Child<R>> {
    const node = [process.execPath, '--import', 'tsx', ...(options.execArgv ?? []), fileURLToPath(entry)];
    const pinned = options.core !== undefined && canPin() ? ['taskset', '-c', String(options.core)] : [];
    const limits = ownFdLimits();
    const raise = options.fds !== undefined && limits !== null && limits.soft < options.fds;
    // `ulimit -n` raises soft and hard limit when allowed (root); else at least the soft one up to the hard one.
    const argv = raise
      ? [
          'sh',
          '-c',
          `ulimit -n ${options.fds} 2>/dev/null || ulimit -S -n "$(ulimit -H -n)" 2>/dev/null; exec "$@"`,
          'sh',
          ...pinned,
          ...node,
        ]
      : [...pinned, ...node];
    const [command, ...args] = argv as [string, ...string[]];
    const child = spawn(command, args, {
      cwd: ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const handle = new Child<R>(child, options.name);
    handle.ready = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${options.name} did not become ready within 60 s`));
      }, 60_000);
      child.on('message', (message: ChildMessage) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          resolve(message);
        } else if (message.type === 'failed') {
          clearTimeout(timer);
          reject(new Error(`${options.name} failed to start:\n${message.error}`));
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${options.name} exited during start-up (code ${code})`));
      });
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    return handle;
  }

  request<T>(request: Unnumbered<R>): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} is gone`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ ...request, id });
    });
  }

  /** Resolves at the child's next `complete` message, or with false after `timeoutMs`. */
  nextComplete(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.completeListener = null;
        resolve(false);
      }, timeoutMs);
      this.completeListener = () => {
        clearTimeout(timer);
        this.completeListener = null;
        resolve(true);
      };
    });
  }

  /** Asks the child to stop; kills it if it has not exited within `graceMs`. */
  async stop(graceMs = 20_000): Promise<void> {
    if (this.exited) return;
    try {
      await Promise.race([this.request({ type: 'stop' } as Unnumbered<R>), this.exitedPromise]);
    } catch {
      // fall through to the kill below
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exitedPromise;
    clearTimeout(timer);
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

/** Machine-wide CPU time so far (Linux /proc/stat, USER_HZ = 100), in ms; null elsewhere. */
export function machineCpu(): { busyMs: number; stealMs: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    const jiffies = [user, nice, system, irq, softirq].reduce<number>((sum, value) => sum + (value ?? 0), 0);
    return { busyMs: jiffies * 10, stealMs: (steal ?? 0) * 10 };
  } catch {
    return null;
  }
}
