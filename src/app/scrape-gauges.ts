import { Counter, Gauge, type Registry } from 'prom-client';
import type { PoolFigures } from '../db/postgres-pool.js';
import type { ComponentState, StateStore } from '../runtime/state-store.js';

/**
 * The gauges of /metrics read at scrape time from figures the app keeps anyway (metrics.ts has the
 * rest): open connections and cohorts, tasks and workers, components, the collector's sources.
 */

/** What the scrape-time gauges read (the collector's runs exist once the app has started). */
export interface WatchedParts {
  store: Pick<StateStore, 'summary' | 'lastSequence' | 'allComponents'>;
  engine: { readonly running: number; readonly startRetries: number };
  workers: number;
  /** WebSocket connections and SSE streams now open, cohorts and subscriptions. */
  live(): { connections: number; streams: number; cohorts: number };
  /** The collector's last run of each poll source; null before it started. */
  sourceRuns(): ReadonlyMap<string, { seconds: number; ok: boolean }> | null;
  /** This process's `database` component (`database@<instance>` in cluster mode). */
  databaseComponent: string;
  /** Cluster mode: whether the change log's connections to Redis are up and answering; null otherwise. */
  redisConnected: (() => boolean) | null;
  /** PostgreSQL: the pool's size, state and busy waits; null on SQLite (one connection, no pool). */
  databasePool: PoolFigures | null;
  /** Writes the database refused for want of room (db/disk-full.ts). */
  diskFull: { readonly failures: number };
  /** Queries and mutations waiting for a place of their user's (MAX_OPERATIONS_IN_FLIGHT_PER_USER). */
  operationsWaiting(): number;
}

/** Every state a component can be in (runtime/state-store.ts), each a series of market_component_state. */
const COMPONENT_STATES: readonly ComponentState[] = ['RUNNING', 'DEGRADED', 'STOPPED', 'ERROR', 'DISABLED'];

/** Registers every scrape-time gauge over the app's parts. */
export function watchParts(registry: Registry, parts: WatchedParts): void {
  watchLive(registry, parts);
  watchTasks(registry, parts);
  watchRuntime(registry, parts);
  watchDatabasePool(registry, parts);
}

/**
 * The PostgreSQL pool (none on SQLite): a pool whose connections are all in use with queries
 * waiting, and busy timeouts rising, is an instance short of connections (DATABASE_POOL_SIZE) or
 * with slow queries, not a database down.
 */
function watchDatabasePool(registry: Registry, { databasePool, diskFull }: WatchedParts): void {
  const registers = [registry];
  new Counter({
    name: 'market_database_disk_full_errors_total',
    help: 'Writes the database refused for want of room (SQLite SQLITE_FULL, PostgreSQL disk_full 53100)',
    registers,
    collect() {
      this.reset();
      this.inc(diskFull.failures);
    },
  });
  if (!databasePool) return;
  new Gauge({
    name: 'market_database_pool_connections',
    help: 'Connections of the PostgreSQL pool: in_use (or being established), idle, and size (DATABASE_POOL_SIZE)',
    labelNames: ['state'],
    registers,
    collect() {
      const { totalCount = 0, idleCount = 0 } = databasePool.pool ?? {};
      this.set({ state: 'in_use' }, totalCount - idleCount);
      this.set({ state: 'idle' }, idleCount);
      this.set({ state: 'size' }, databasePool.size);
    },
  });
  new Gauge({
    name: 'market_database_pool_waiting',
    help: 'Queries waiting for a connection of the PostgreSQL pool',
    registers,
    collect() {
      this.set(databasePool.pool?.waitingCount ?? 0);
    },
  });
  new Counter({
    name: 'market_database_pool_busy_timeouts_total',
    help: 'Queries whose wait for a pool connection ran out while every connection was in use (answered "database busy")',
    registers,
    collect() {
      this.reset();
      this.inc(databasePool.busyTimeouts);
    },
  });
}

function watchLive(registry: Registry, { live, operationsWaiting }: WatchedParts): void {
  const registers = [registry];
  new Gauge({
    name: 'market_operations_waiting',
    help: 'Queries and mutations waiting for a place of their user (MAX_OPERATIONS_IN_FLIGHT_PER_USER)',
    registers,
    collect() {
      this.set(operationsWaiting());
    },
  });
  new Gauge({
    name: 'market_connections',
    help: 'Open WebSocket connections (ws) and SSE streams (sse)',
    labelNames: ['transport'],
    registers,
    collect() {
      const { connections, streams } = live();
      this.set({ transport: 'ws' }, connections);
      this.set({ transport: 'sse' }, streams);
    },
  });
  new Gauge({
    name: 'market_cohorts',
    help: 'Subscription cohorts (one shared execution each) over both transports',
    registers,
    collect() {
      this.set(live().cohorts);
    },
  });
}

function watchTasks(registry: Registry, { store, engine, workers }: WatchedParts): void {
  const registers = [registry];
  new Gauge({
    name: 'market_tasks',
    help: 'Tasks in the runtime view, by status (finished ones: the most recent kept)',
    labelNames: ['status'],
    registers,
    collect() {
      const summary = store.summary();
      this.set({ status: 'PENDING' }, summary.pendingTasks);
      this.set({ status: 'RUNNING' }, summary.runningTasks);
      this.set({ status: 'COMPLETED' }, summary.completedTasks);
      this.set({ status: 'FAILED' }, summary.failedTasks);
      this.set({ status: 'CANCELED' }, summary.canceledTasks);
    },
  });
  new Gauge({
    name: 'market_task_queue_depth',
    help: 'Tasks waiting for a worker (PENDING)',
    registers,
    collect() {
      this.set(store.summary().pendingTasks);
    },
  });
  new Gauge({
    name: 'market_engine_workers_busy',
    help: 'Task engine workers running a task on this instance',
    registers,
    collect() {
      this.set(engine.running);
    },
  });
  new Gauge({ name: 'market_engine_workers', help: 'Task engine workers (TASK_CONCURRENCY)', registers }).set(workers);
  new Counter({
    name: 'market_task_start_retries_total',
    help: 'Task starts the app service did not take (HTTP 429, 503, no connection) that this instance put back to wait to be sent again',
    registers,
    collect() {
      this.reset();
      this.inc(engine.startRetries);
    },
  });
  new Gauge({
    name: 'market_apps',
    help: 'Apps in the runtime view, by stage',
    labelNames: ['stage'],
    registers,
    collect() {
      this.reset();
      for (const { stage, count } of store.summary().appsByStage) this.set({ stage }, count);
    },
  });
}

function watchRuntime(registry: Registry, parts: WatchedParts): void {
  const { store, sourceRuns, databaseComponent, redisConnected } = parts;
  const registers = [registry];
  new Gauge({
    name: 'market_runtime_event_sequence',
    help: 'Sequence number of the last runtime event',
    registers,
    collect() {
      this.set(store.lastSequence);
    },
  });
  // As the API's `healthy`: RUNNING and DISABLED (not configured, on purpose) are healthy. A STOPPED
  // component is not running, which is no fault (an instance that stopped cleanly keeps its
  // components in the runtime, STOPPED, for STOPPED_COMPONENT_RETENTION_MS): it has no sample here,
  // so `== 0` alerts only on DEGRADED and ERROR; market_component_state shows it.
  new Gauge({
    name: 'market_component_healthy',
    help: 'Runtime components healthy (1: RUNNING or DISABLED) or not (0: DEGRADED, ERROR); STOPPED ones are left out',
    labelNames: ['component'],
    registers,
    collect() {
      this.reset();
      for (const c of store.allComponents())
        if (c.state !== 'STOPPED') this.set({ component: c.name }, c.healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: 'market_component_state',
    help: 'Runtime components by state: 1 for the state each is in, 0 for the others',
    labelNames: ['component', 'state'],
    registers,
    collect() {
      this.reset();
      for (const c of store.allComponents()) {
        for (const state of COMPONENT_STATES) this.set({ component: c.name, state }, c.state === state ? 1 : 0);
      }
    },
  });
  if (redisConnected) {
    // Read from the log itself: a process's components reach its runtime store through the log,
    // so during an outage its `pubsub` component still shows what it last published.
    new Gauge({
      name: 'market_redis_connected',
      help: "1 while the cluster change log's connections to Redis are up and Redis takes its appends and reads (cluster mode)",
      registers,
      collect() {
        this.set(redisConnected() ? 1 : 0);
      },
    });
  }
  new Gauge({
    name: 'market_database_ping_seconds',
    help: "The collector's last `SELECT 1` round trip to the database; no sample while it fails",
    registers,
    collect() {
      const latencyMs = store.allComponents().find((c) => c.name === databaseComponent)?.metrics.latencyMs;
      // No sample when the last ping failed (the component then has no latency): the last good
      // round trip, kept, showed a database answering in 68 ms while it answered nothing.
      if (typeof latencyMs === 'number') this.set(latencyMs / 1000);
      else this.remove();
    },
  });
  new Gauge({
    name: 'market_collector_source_duration_seconds',
    help: "Duration of each collector poll source's last run",
    labelNames: ['source'],
    registers,
    collect() {
      this.reset();
      for (const [source, run] of sourceRuns() ?? []) this.set({ source }, run.seconds);
    },
  });
  new Gauge({
    name: 'market_collector_source_up',
    help: "Whether each collector poll source's last run answered in time (1) or failed (0)",
    labelNames: ['source'],
    registers,
    collect() {
      this.reset();
      for (const [source, run] of sourceRuns() ?? []) this.set({ source }, run.ok ? 1 : 0);
    },
  });
}
