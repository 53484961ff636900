/**
 * A server process of the cluster benchmark (bench/cluster.ts): the real server (`buildApp`) on a
 * PostgreSQL database (DATABASE_URL), in cluster mode when REDIS_URL is set (REDIS_PREFIX,
 * INSTANCE_NAME), local development mode (no auth), no demo data, graphql-ws on /graphql.
 *
 * BENCH_ROLE=origin makes the changes, the way a task progress report does
 * (src/engine/app-state-reports.ts): commit the task's new `progress` on the server's own database
 * driver (`raiseProgress`, the engine's statement, sent as the engine sends it), then announce it
 * with `ChangeFeed.task`. The
 * feed is built from the same parts as the services' own (bus, cluster log, local bus; the services
 * do not expose theirs), so the announcement takes the real path: this instance's collector reads
 * the row back and, in cluster mode, appends it to the Redis change log, from which every instance
 * (this one included) applies it to its runtime store, whose `runtimeEvents` subscriptions deliver
 * it. Without REDIS_URL the collector applies the read-back at once (the single-process baseline).
 *
 * The bench tasks are RUNNING with a worker id of their own and a heartbeat far in the future, so
 * the task engine never adopts, times out or ends them; the collector cycle is an hour, so no
 * component change lands in a window.
 */
import net from 'node:net';
import { Redis } from 'ioredis';
import { buildApp } from '../src/app/build-app.js';
import { driverSqlOf } from '../src/db/driver-sql.js';
import { raiseProgress } from '../src/db/hot-path-sql.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logger.js';
import type { CaughtUpResult, ClusterServerRequest, LoopResult, RedisTraffic } from './lib/cluster-protocol.js';
import { CpuProfiler, cpuSample, failed, fdLimit, pacedBurst, send, serve } from './lib/fanout-child.js';
import type { CpuSample } from './lib/fanout-protocol.js';
import { BENCH_TASK_APP, BENCH_TASK_ID, epochMs } from './lib/fanout-protocol.js';
import { SUBSCRIBER_SERVER_ENV } from './lib/server-config.js';

const USER = 'admin';
const SOURCE = 'market.olares';
const HEARTBEAT_NEVER_STALE = new Date('2100-01-01T00:00:00Z');

interface BenchTask {
  taskId: string;
  userId: string;
  sourceId: string;
  appName: string;
  progress: number;
}

/**
 * This process's own Redis traffic, counted on the client side so that other users of the same
 * Redis do not blur it: every command ioredis sends (pipelined ones included), and every write to
 * a socket connected to Redis (ioredis writes a whole pipeline at once, each other command alone:
 * one write, one round trip). Installed before the app creates its connections.
 */
function countRedisTraffic(port: number): RedisTraffic {
  const traffic: RedisTraffic = { commands: {}, writes: 0 };
  const sendCommand = Redis.prototype.sendCommand;
  Redis.prototype.sendCommand = function (this: Redis, ...args: Parameters<Redis['sendCommand']>) {
    const name = args[0].name;
    traffic.commands[name] = (traffic.commands[name] ?? 0) + 1;
    return sendCommand.apply(this, args);
  };
  const write = net.Socket.prototype.write;
  net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]) {
    if (this.remotePort === port) traffic.writes += 1;
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof write;
  return traffic;
}

async function main(): Promise<void> {
  const env = process.env;
  const traffic = env.REDIS_URL ? countRedisTraffic(Number(new URL(env.REDIS_URL).port || 6379)) : null;
  const databaseUrl = env.DATABASE_URL;
  if (!databaseUrl?.startsWith('postgresql:')) throw new Error('DATABASE_URL must be a postgresql: URL');
  const config = loadConfig({
    ...SUBSCRIBER_SERVER_ENV,
    DATABASE_URL: databaseUrl,
    DEMO_DATA: '0',
    ...(env.REDIS_URL
      ? { REDIS_URL: env.REDIS_URL, REDIS_PREFIX: env.REDIS_PREFIX, INSTANCE_NAME: env.INSTANCE_NAME }
      : {}),
  });
  const app = buildApp(config, { logger: createLogger('silent') });
  const { url } = await app.start(0);
  const { store, feed, clusterLog } = app.services;
  const origin = env.BENCH_ROLE === 'origin';
  const tasks: BenchTask[] = [];
  const profiler = new CpuProfiler();
  const sql = driverSqlOf(app.db);

  function mustBeOrigin(): void {
    if (!origin) throw new Error('only the origin instance makes changes');
  }

  /** One change: the task's next progress committed, then announced (what a progress report does). */
  async function change(task: BenchTask, progress: number): Promise<void> {
    const updated = await raiseProgress(sql, task.taskId, progress, new Date());
    if (updated !== 1) throw new Error(`progress ${progress} of ${task.taskId} was not written (${updated} rows)`);
    task.progress = progress;
    feed.task(task);
  }

  async function setup(count: number): Promise<number> {
    mustBeOrigin();
    const now = new Date();
    for (let i = tasks.length; i < count; i++) {
      const appName = i === 0 ? BENCH_TASK_APP : `${BENCH_TASK_APP}-${i}`;
      const task: BenchTask = {
        taskId: i === 0 ? BENCH_TASK_ID : `${BENCH_TASK_ID}-${i}`,
        userId: USER,
        sourceId: SOURCE,
        appName,
        progress: 0,
      };
      await app.db.task.create({
        data: {
          ...task,
          type: 'INSTALL',
          status: 'RUNNING',
          version: '1.0.0',
          opId: `bench-cluster-op-${i}`,
          metadata: { cfgType: 'app', envs: [], appId: appName },
          activeKey: `${USER}/${SOURCE}/${appName}`,
          workerId: 'bench-cluster',
          heartbeatAt: HEARTBEAT_NEVER_STALE,
          dispatchedAt: now,
          startedAt: now,
        },
      });
      feed.task(task);
      tasks.push(task);
    }
    return tasks.length;
  }

  async function loop(durationMs: number): Promise<LoopResult> {
    mustBeOrigin();
    let made = 0;
    const start = cpuSample();
    const startedAt = epochMs();
    const deadline = performance.now() + durationMs;
    await Promise.all(
      tasks.map(async (task) => {
        while (performance.now() < deadline) {
          await change(task, task.progress + 1);
          made += 1;
        }
      }),
    );
    const endedAt = epochMs();
    return {
      made,
      targets: Object.fromEntries(tasks.map((task) => [task.taskId, task.progress])),
      startedAt,
      endedAt,
      cpu: { start, end: cpuSample() },
    };
  }

  // What this instance's runtime store has applied of the bench tasks (after `track`).
  const applied = new Map<string, { progress: number; at: number }>();
  let events = 0;
  let tracking = false;
  let waiter: (() => void) | null = null;
  function track(): CpuSample {
    events = 0;
    if (tracking) return cpuSample();
    tracking = true; // the store takes listeners only after the start (StateStore.startAt)
    store.onEvent((event) => {
      const task = event.kind === 'TASK_CHANGED' ? event.task : undefined;
      if (!task?.taskId.startsWith(BENCH_TASK_ID)) return;
      events += 1;
      applied.set(task.taskId, { progress: task.progress, at: epochMs() });
      waiter?.();
    });
    return cpuSample();
  }

  function caughtUp(targets: Record<string, number>, timeoutMs: number): Promise<CaughtUpResult> {
    const check = () => {
      let at = 0;
      for (const [taskId, progress] of Object.entries(targets)) {
        const held = applied.get(taskId);
        if (!held || held.progress < progress) return null;
        at = Math.max(at, held.at);
      }
      return at;
    };
    return new Promise((resolve) => {
      const finish = (reached: boolean, reachedAt: number) => {
        waiter = null;
        clearTimeout(timer);
        resolve({ reached, reachedAt, events, cpu: cpuSample() });
      };
      const timer = setTimeout(() => finish(false, epochMs()), timeoutMs);
      waiter = () => {
        const at = check();
        if (at !== null) finish(true, at);
      };
      waiter();
    });
  }

  serve<ClusterServerRequest>(
    async (request) => {
      switch (request.type) {
        case 'cpu':
          return cpuSample();
        case 'setup':
          return setup(request.tasks);
        case 'burst': {
          mustBeOrigin();
          const [task] = tasks;
          if (!task) throw new Error('no bench task: send setup first');
          return pacedBurst(request.first, request.count, request.intervalMs, (index) => change(task, index));
        }
        case 'track':
          return track();
        case 'loop':
          return loop(request.durationMs);
        case 'caughtUp':
          return caughtUp(request.targets, request.timeoutMs);
        case 'profile':
          return request.action === 'start' ? profiler.start() : profiler.stop(request.file);
        case 'redisTraffic':
          return traffic && { commands: { ...traffic.commands }, writes: traffic.writes };
        case 'stop':
          return true;
      }
    },
    () => app.stop(),
  );
  const detail = { cluster: clusterLog !== null, storeSequence: store.lastSequence };
  send({ type: 'ready', url, fdLimit: fdLimit(), pid: process.pid, detail });
}

main().catch(failed);
