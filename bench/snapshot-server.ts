/**
 * Subject of the read-path benchmarks (snapshot.ts: G2/G3, g4b.ts): the real server (`buildApp`)
 * in its own process over a SQLite file that bench/lib/seed-fleet.ts filled before the start
 * (DEMO_DATA=0), launched pinned to one core by the parent (bench/lib/fanout-parent.ts `Child`).
 *
 * Authentication is the trusted gateway header (`X-Bench-User`, with `admin` an admin): the
 * benchmark is the gateway, so every request and WebSocket upgrade names its user with one header,
 * and 1,000 dashboards are 1,000 distinct viewers at no cost beyond the header. Installs run at
 * full speed (MUTATION_RATE_PER_S=0, SIMULATED_STEP_MS=0); the seeded RUNNING tasks belong to
 * another engine instance whose lease (TASK_LEASE_MS, a day) outlives the benchmark, so this
 * engine never takes them over and the fleet stays as seeded.
 *
 * "ready" is sent once `app.start()` has resolved (listening, collector started: it loads every
 * app state row and task into the store before that) AND the store holds the expected number of
 * apps (BENCH_EXPECTED_APPS); otherwise the process fails. It is sent only once status
 * correction's first run is over too: the start does not wait for it, and at 100k apps it reads
 * every row for a second or more, which the measurements of serving must not overlap. The time
 * waited for it is reported (`backgroundWaitMs`), and the parent takes it off the start-up.
 *
 * IPC requests (SnapshotServerRequest): CPU and heap samples, in-process timing of
 * `store.snapshot(new SnapshotScope(filter))`, the engine drain and task counts of the benchmark's
 * installs (as install-server.ts), and the subscription counts of the fan-out.
 */
import { buildApp } from '../src/app/build-app.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logger.js';
import { type SnapshotFilter, SnapshotScope } from '../src/runtime/state-store.js';
import { cpuSample, failed, fdLimit, heapSample, send, serve } from './lib/fanout-child.js';
import { INSTALL_APP_PREFIX } from './lib/seed-fleet.js';
import { median, percentile } from './lib/stats.js';

/** Set at the very top of the module graph's evaluation of this file: imports are done by then. */
const importsDoneMs = performance.now();

export const USER_HEADER = 'X-Bench-User';
export const ADMIN_USER = 'admin';

export type SnapshotServerRequest =
  | { id: number; type: 'cpu' }
  | { id: number; type: 'heap' }
  | { id: number; type: 'snapshotTiming'; filter: SnapshotFilter; iterations: number }
  | { id: number; type: 'drain'; timeoutMs: number }
  | { id: number; type: 'taskCounts' }
  | { id: number; type: 'subscriptions' }
  | { id: number; type: 'stop' };

export interface SnapshotTiming {
  medianMs: number;
  p90Ms: number;
  minMs: number;
  /** What the filter matched. */
  apps: number;
  tasks: number;
}

export interface ServerDrain {
  ms: number;
  /** Benchmark installs still PENDING or RUNNING when the drain began. */
  backlog: number;
  cpuMicros: number;
}

/** What the ready message's `detail` carries. */
export interface ServerReadyDetail {
  /** ms from process start to the end of module loading (tsx, Prisma client, schema, …). */
  importsDoneMs: number;
  /** ms of `app.start()`: database check, engine, jobs, collector (store load), listen. */
  appStartMs: number;
  /** ms from the end of `app.start()` until status correction's first run was over (not part of the start-up). */
  backgroundWaitMs: number;
  storeApps: number;
  storeTasks: number;
  engineConcurrency: number;
}

async function main(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL;
  const expectedApps = Number(process.env.BENCH_EXPECTED_APPS);
  if (!databaseUrl?.startsWith('file:')) throw new Error('DATABASE_URL must be a file: URL');
  if (!Number.isInteger(expectedApps)) throw new Error('BENCH_EXPECTED_APPS must be an integer');
  // An explicit environment, not process.env: stray AUTH_* variables would change the mode.
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    DEMO_DATA: '0',
    // The fleet's own catalogue (seed-fleet.ts) is the only one: a synced bundled file would
    // replace it (its apps are not in the file).
    BUNDLED_CATALOGUE_FILE: 'off',
    SIMULATED_STEP_MS: '0',
    MUTATION_RATE_PER_S: '0',
    MAX_OPERATIONS_IN_FLIGHT_PER_USER: '1000000', // one user's load here, many users' in production
    TASK_LEASE_MS: String(24 * 3600 * 1000),
    AUTH_USER_HEADER: USER_HEADER,
    AUTH_ADMIN_USERS: ADMIN_USER,
  });
  const app = buildApp(config, { logger: createLogger('silent') });
  const startBegan = performance.now();
  const { url } = await app.start(0);
  const appStartMs = performance.now() - startBegan;
  const { store, engine } = app.services;
  const loaded = store.summary();
  if (loaded.totalApps !== expectedApps) {
    throw new Error(`the store holds ${loaded.totalApps} apps after start-up, expected ${expectedApps}`);
  }

  const backgroundWaitMs = await firstCorrectionOver(app.services.statusCorrection);
  const benchTasks = { appName: { startsWith: INSTALL_APP_PREFIX } };

  async function drain(timeoutMs: number): Promise<ServerDrain> {
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    let backlog: number | undefined;
    for (;;) {
      const active = await app.db.task.count({ where: { ...benchTasks, status: { in: ['PENDING', 'RUNNING'] } } });
      backlog ??= active;
      if (active === 0 && engine.running === 0) {
        const cpu = process.cpuUsage(cpuBefore);
        return { ms: performance.now() - started, backlog, cpuMicros: cpu.user + cpu.system };
      }
      if (performance.now() - started > timeoutMs) {
        throw new Error(`the task engine still had ${active} active benchmark tasks after ${timeoutMs} ms`);
      }
      // Polls the database, as install-server.ts does: the engine has no "idle" signal to await.
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  function snapshotTiming(filter: SnapshotFilter, iterations: number): SnapshotTiming {
    const times: number[] = [];
    let last = store.snapshot(new SnapshotScope(filter));
    for (let i = 0; i < iterations; i++) {
      const started = performance.now();
      last = store.snapshot(new SnapshotScope(filter));
      times.push(performance.now() - started);
    }
    return {
      medianMs: median(times),
      p90Ms: percentile(times, 90),
      minMs: Math.min(...times),
      apps: last.apps.length,
      tasks: last.tasks.length,
    };
  }

  serve<SnapshotServerRequest>(
    async (request) => {
      switch (request.type) {
        case 'cpu':
          return cpuSample();
        case 'heap':
          return heapSample();
        case 'snapshotTiming':
          return snapshotTiming(request.filter, request.iterations);
        case 'drain':
          return drain(request.timeoutMs);
        case 'taskCounts': {
          const groups = await app.db.task.groupBy({ by: ['status'], where: benchTasks, _count: { _all: true } });
          return Object.fromEntries(groups.map((group) => [group.status, group._count._all]));
        }
        case 'subscriptions':
          return app.subscriptionStats();
        case 'stop':
          return true;
      }
    },
    () => app.stop(),
  );
  const detail: ServerReadyDetail = {
    importsDoneMs,
    appStartMs,
    backgroundWaitMs,
    storeApps: loaded.totalApps,
    storeTasks: loaded.totalTasks,
    engineConcurrency: config.tasks.concurrency,
  };
  send({ type: 'ready', url, fdLimit: fdLimit(), pid: process.pid, detail: { ...detail } });
}

/** Waits (polling, at most a minute) until status correction has run once; returns the ms waited. */
async function firstCorrectionOver(correction: { status(): { checks: number } }): Promise<number> {
  const began = performance.now();
  while (correction.status().checks < 1) {
    if (performance.now() - began > 60_000)
      throw new Error('status correction did not run within a minute of the start');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return performance.now() - began;
}

main().catch(failed);
