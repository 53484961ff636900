/**
 * Subject of the fan-out benchmark (bench/fanout.ts): the real server (`buildApp`) in its own
 * process, local development mode (no auth; every connection is the admin), over a fresh migrated
 * SQLite file (DATABASE_URL) with the demo data, graphql-ws on /graphql.
 *
 * On a `burst` request it makes changes at a fixed rate by calling `services.store.putTask(...)`,
 * the StateStore's own entry point that the collector calls for every task change: each call emits
 * one TASK_CHANGED runtime event, which the `runtimeEvents` subscriptions deliver to every
 * subscriber. The changed task is one RUNNING bench task whose `progress` carries the event's
 * index, so clients can tell events apart. The change time is stamped just before the call (the
 * store notifies its listeners synchronously, inside the call).
 *
 * The poll-only collector cycle is set to an hour, so no COMPONENT_CHANGED event lands in a
 * measured window; the task engine runs as usual (the demo's PENDING tasks finish at start-up).
 */
import { buildApp } from '../src/app/build-app.js';
import type { RuntimeTaskRow } from '../src/db/models.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logger.js';
import { failed, fdLimit, send, serveFanoutServer } from './lib/fanout-child.js';
import { BENCH_TASK_APP, BENCH_TASK_ID } from './lib/fanout-protocol.js';

async function main(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl?.startsWith('file:')) throw new Error('DATABASE_URL must be a file: URL');
  // An explicit environment, not process.env: stray AUTH_* variables would leave local mode.
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    DEMO_DATA: '1',
    SIMULATED_STEP_MS: '0',
    COLLECT_INTERVAL_MS: '3600000',
    // Every subscriber of the benchmark is the one local user: lift the per-user and total caps.
    MAX_CONNECTIONS_PER_USER: '1000000',
    MAX_DISTINCT_SUBSCRIPTIONS_PER_USER: '1000000',
    MAX_CONNECTIONS: '1000000',
  });
  const app = buildApp(config, { logger: createLogger('silent') });
  const { url } = await app.start(0);
  const { store } = app.services;

  const created = new Date();
  const task: RuntimeTaskRow = {
    id: 1_000_000_000,
    taskId: BENCH_TASK_ID,
    type: 'INSTALL',
    status: 'RUNNING',
    userId: 'admin',
    sourceId: 'market.olares',
    appName: BENCH_TASK_APP,
    version: '1.0.0',
    opId: 'bench-fanout-op',
    progress: 0,
    result: null,
    error: null,
    retryOfTaskId: null,
    message: null,
    createdAt: created,
    startedAt: created,
    completedAt: null,
    updatedAt: created,
  };

  serveFanoutServer(
    app.server,
    (index) => store.putTask({ ...task, progress: index, updatedAt: new Date() }),
    () => app.stop(),
  );
  send({
    type: 'ready',
    url,
    fdLimit: fdLimit(),
    pid: process.pid,
    detail: {
      storeSequence: store.lastSequence,
      storeTasks: store.summary().totalTasks,
      storeApps: store.summary().totalApps,
    },
  });
}

main().catch(failed);
