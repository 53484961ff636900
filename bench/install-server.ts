/**
 * Child process of the install-rate benchmark: the subject, a real server (`buildApp`) on its own
 * event loop and core, so the load generator's work is not charged to it. Forked by
 * install-rate.ts with DATABASE_URL (a fresh migrated SQLite file) and BENCH_APP_COUNT; it seeds
 * the demo data (DEMO_DATA=1), adds BENCH_APP_COUNT catalogue apps `bench-app-<i>`, listens on
 * port 0 and answers the parent's requests over IPC (see ServerRequest).
 *
 * BENCH_ENGINE=off stops the task engine after start-up: a diagnostic only (how much of the
 * server's time is the engine's background work), never the benchmark's figure.
 */
import { buildApp } from '../src/app/build-app.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logger.js';
import {
  BENCH_APP_PREFIX,
  BENCH_SOURCE,
  BENCH_VERSION,
  benchAppName,
  type CpuSample,
  type DrainResult,
  type ServerMessage,
  type ServerRequest,
  type TaskCounts,
} from './lib/install-protocol.js';

function send(message: ServerMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL;
  const appCount = Number(process.env.BENCH_APP_COUNT ?? 0);
  const engine = process.env.BENCH_ENGINE !== 'off';
  if (!databaseUrl?.startsWith('file:')) throw new Error('DATABASE_URL must be a file: URL');
  // An explicit environment, not process.env: stray AUTH_* variables would leave local mode.
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    DEMO_DATA: '1',
    SIMULATED_STEP_MS: '0',
    // The benchmark sends hundreds of installApp mutations a second as one user: that is its
    // measure, not abuse, so the per-user mutation rate limit is off.
    MUTATION_RATE_PER_S: '0',
    MAX_OPERATIONS_IN_FLIGHT_PER_USER: '1000000', // one user's load here, many users' in production
    MAX_ACTIVE_TASKS_PER_USER: '10000', // its 150 installs a rep, accepted faster than the engine ends them
  });
  const logger = createLogger('silent');
  const app = buildApp(config, { logger });
  const { url } = await app.start(0);
  if (!engine) await app.services.engine.stop();

  // The catalogue entries the installs target: one app per install (one active task per app).
  const seedStarted = performance.now();
  const rows = Array.from({ length: appCount }, (_, index) => {
    const name = benchAppName(index);
    return {
      sourceId: BENCH_SOURCE,
      appId: name,
      name,
      version: BENCH_VERSION,
      versions: [BENCH_VERSION],
      cfgType: 'app',
      title: `Bench app ${index}`,
      description: 'Catalogue entry of the install-rate benchmark',
      searchText: `${name} bench app ${index}`,
      entry: {},
    };
  });
  for (let start = 0; start < rows.length; start += 1000) {
    await app.db.catalogApp.createMany({ data: rows.slice(start, start + 1000) });
  }
  const seedMs = performance.now() - seedStarted;

  const benchTasks = { appName: { startsWith: BENCH_APP_PREFIX } };
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= app.stop();
    return stopping;
  };

  async function handle(request: ServerRequest): Promise<unknown> {
    switch (request.type) {
      case 'cpu': {
        const usage = process.cpuUsage();
        return { cpuMicros: usage.user + usage.system, wallMs: performance.now() } satisfies CpuSample;
      }
      case 'drain': {
        // Waits until the task engine has run every bench task to its end.
        const started = performance.now();
        const cpuBefore = process.cpuUsage();
        let backlog: number | undefined;
        for (;;) {
          const active = await app.db.task.count({ where: { ...benchTasks, status: { in: ['PENDING', 'RUNNING'] } } });
          backlog ??= active;
          if (!engine || (active === 0 && app.services.engine.running === 0)) {
            const cpu = process.cpuUsage(cpuBefore);
            return { ms: performance.now() - started, backlog, cpuMicros: cpu.user + cpu.system } satisfies DrainResult;
          }
          if (performance.now() - started > request.timeoutMs) {
            throw new Error(`the task engine still had ${active} active bench tasks after ${request.timeoutMs} ms`);
          }
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
      }
      case 'taskCounts': {
        const groups = await app.db.task.groupBy({ by: ['status'], where: benchTasks, _count: { _all: true } });
        const historyRecords = await app.db.historyRecord.count({ where: { app: { startsWith: BENCH_APP_PREFIX } } });
        return {
          byStatus: Object.fromEntries(groups.map((group) => [group.status, group._count._all])),
          historyRecords,
        } satisfies TaskCounts;
      }
      case 'stop':
        await stop();
        return true;
    }
  }

  process.on('message', (request: ServerRequest) => {
    handle(request).then(
      (value) => {
        send({ type: 'reply', id: request.id, value });
        if (request.type === 'stop') process.disconnect();
      },
      (error: unknown) => send({ type: 'reply', id: request.id, value: null, error: String(error) }),
    );
  });
  // The parent went away without stopping us: stop anyway, never linger.
  process.on('disconnect', () => {
    void stop().finally(() => process.exit(0));
  });
  send({ type: 'ready', url, appCount, seedMs, engineConcurrency: config.tasks.concurrency, engine });
}

main().catch((error: unknown) => {
  send({ type: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exitCode = 1;
  process.disconnect?.();
});
