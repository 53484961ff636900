/**
 * Cluster mode (issue 12, "Benchmark"): two instances of the real server on one PostgreSQL
 * database and one Redis change log, against the same server in one process.
 *
 * Processes: server A (BENCH_ROLE=origin, makes every change) and server B (cluster-server.ts,
 * REDIS_URL and a REDIS_PREFIX of this run), one load client per instance (the fan-out
 * benchmark's fanout-client.ts: graphql-ws `runtimeEvents` subscribers stamping every receipt),
 * and for the baseline a single-process server S (no REDIS_URL) on a PostgreSQL database of its
 * own. Pinned with `taskset`, crosswise so that neither instance is favoured: A and B's client on
 * core 0, B and A's client on core 1, S on core 0; PostgreSQL and Redis are not pinned.
 *
 *  1. Latency: N subscribers, half on A, half on B. A makes `events` changes `intervalMs` apart,
 *     each a progress report's path (commit the task's progress on A's database driver, announce
 *     it with ChangeFeed.task; A's collector reads it back and appends it to the log; both
 *     instances apply it from the log), stamped just before the commit. p50/p99 change → receipt
 *     for A's subscribers (same instance) and B's (other instance); target: other p99 ≤ 1.1 ×
 *     same p99 + 1 ms, i.e. (other p99 − 1 ms) ÷ same p99 ≤ 1.1 (the headline ratio).
 *  2. Throughput, no subscribers: a closed loop of the same change (one worker per bench task)
 *     for `durationMs`, on S (baseline) and on A (subject), interleaved; changes made ÷ the time
 *     from the loop's start until the store (S's; B's for the subject, A's reported too) has
 *     applied the last of them. Target B ÷ S ≥ 0.8.
 *  3. Redis commands per change: INFO commandstats (calls per command) and total_reads_processed
 *     (read events on client sockets, ≈ round trips) before and after the subject's loops (and the
 *     latency windows), ÷ changes made. Server-wide counters: other clients active meanwhile are
 *     reported.
 */
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import {
  BENCH_REDIS_URL,
  type BenchDatabase,
  counterDelta,
  createBenchDatabase,
  deleteRedisPrefix,
  foreignActiveClients,
  type RedisCounters,
  redisCounters,
  uniqueRedisPrefix,
} from './lib/bench-services.js';
import type { CaughtUpResult, ClusterServerRequest, LoopResult, RedisTraffic } from './lib/cluster-protocol.js';
import { Child, canPin, machineCpu } from './lib/fanout-parent.js';
import type { BurstResult, ClientRequest, ConnectResult, CpuSample, WindowResult } from './lib/fanout-protocol.js';
import { type BenchResult, meetsTarget } from './lib/report.js';
import { median, percentile, round } from './lib/stats.js';

export interface ClusterOptions {
  /** Subscribers in all, half on each instance. */
  subscribers: number;
  /** Latency windows: changes per window, their spacing, measured windows (after one warm-up). */
  latency: { events: number; intervalMs: number; reps: number };
  /** Closed-loop throughput: seconds per loop, loops per side (after one warm-up each), bench tasks. */
  throughput: { durationMs: number; reps: number; tasks: number };
  connectConcurrency?: number;
  /** Directory for V8 CPU profiles of the servers over the measured throughput loops, if wanted. */
  cpuProfDir?: string;
  log?: (line: string) => void;
}

export const TARGETS = {
  /** Other-instance p99 ≤ this × same-instance p99 + SLACK_MS. */
  latencyFactor: 1.1,
  latencySlackMs: 1,
  /** Cluster changes/s (applied on the other instance) ÷ single-process. */
  throughput: 0.8,
};

const SERVER_ENTRY = new URL('./cluster-server.ts', import.meta.url).href;
const CLIENT_ENTRY = new URL('./fanout-client.ts', import.meta.url).href;
const PROBE_ATTEMPTS = 30;
const WARMUP_LOOP_MS = 1000;

type Server = Child<ClusterServerRequest>;
type Client = Child<ClientRequest>;

interface Instance {
  name: 'A' | 'B';
  server: Server;
  client: Client;
  connect?: ConnectResult;
  latenciesMs: number[];
  reps: { p50Ms: number; p99Ms: number }[];
  errors: number;
  errorSamples: string[];
}

const ms = (value: number) => `${Number.isFinite(value) ? value.toFixed(2) : 'n/a'} ms`;
const perSecond = (value: number) => `${Math.round(value).toLocaleString('en-US')}/s`;
const load = () =>
  os
    .loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');

function noteError(instance: Instance, detail: string): void {
  instance.errors += 1;
  if (instance.errorSamples.length < 8) instance.errorSamples.push(`${instance.name}: ${detail.slice(0, 300)}`);
}

/** One window: A makes `count` changes; both instances' clients wait for every one. */
async function latencyWindow(a: Server, instances: Instance[], first: number, count: number, intervalMs: number) {
  for (const { client } of instances) await client.request({ type: 'arm', first, count });
  const timeoutMs = count * intervalMs + 30_000;
  const done = Promise.all(instances.map(({ client }) => client.nextComplete(timeoutMs)));
  const burst = await a.request<BurstResult>({ type: 'burst', first, count, intervalMs });
  const completed = await done;
  const windows: WindowResult[] = [];
  for (const { client } of instances) {
    windows.push(await client.request<WindowResult>({ type: 'collect', published: burst.published }));
  }
  return { burst, completed, windows };
}

/** Single changes until both instances' subscribers all get one: every subscription is live. */
async function untilLive(a: Server, instances: Instance[], next: () => number): Promise<number> {
  for (let attempt = 1; attempt <= PROBE_ATTEMPTS; attempt++) {
    const { windows } = await latencyWindow(a, instances, next(), 1, 0);
    if (windows.every((window) => window.received === window.expected && window.expected > 0 && !window.errors))
      return attempt;
    await delay(200);
  }
  throw new Error(`not every subscription got a change after ${PROBE_ATTEMPTS} probes`);
}

interface LoopRep {
  side: 'single' | 'cluster';
  made: number;
  seconds: number;
  /** Changes made ÷ time until the store applied the last, per store. */
  rates: Record<string, number>;
  /** Server CPU from the loop's start until the store caught up, ÷ changes made, per server. */
  cpuMsPerChange: Record<string, number>;
  /** Time from the loop's end until the store applied its last change, per store. */
  lagMs: Record<string, number>;
  /** The stores' TASK_CHANGED events of the bench tasks ÷ changes made (read-backs coalesce). */
  eventsPerChange: Record<string, number>;
  /** Origin server CPU over the loop ÷ wall time. */
  originBusy: number;
  redis?: ReturnType<typeof counterDelta> & { foreignActive: string[] };
  /** The cluster servers' own Redis traffic (counted in the processes). */
  traffic?: ReturnType<typeof trafficDelta>;
  machineBusyCores: number;
}

/** Redis commands and round trips of the server processes `servers` so far, summed. */
async function trafficOf(servers: Server[]): Promise<RedisTraffic> {
  const sum: RedisTraffic = { commands: {}, writes: 0 };
  for (const server of servers) {
    const traffic = await server.request<RedisTraffic | null>({ type: 'redisTraffic' });
    if (!traffic) continue;
    sum.writes += traffic.writes;
    for (const [command, count] of Object.entries(traffic.commands))
      sum.commands[command] = (sum.commands[command] ?? 0) + count;
  }
  return sum;
}

/** The servers' own traffic between two samples, in counterDelta's shape (`reads`: their round trips). */
function trafficDelta(before: RedisTraffic, after: RedisTraffic): { calls: Record<string, number>; reads: number } {
  const calls: Record<string, number> = {};
  for (const [command, count] of Object.entries(after.commands)) {
    const delta = count - (before.commands[command] ?? 0);
    if (delta > 0) calls[command] = delta;
  }
  return { calls, reads: after.writes - before.writes };
}

/** One closed loop on `origin`, timed until every store in `stores` has applied its last change. */
async function loopRep(
  side: LoopRep['side'],
  origin: Server,
  stores: Record<string, Server>,
  durationMs: number,
  redis: Redis | null,
  cluster: Server[],
): Promise<LoopRep> {
  const pids = cluster.flatMap((server) => (server.pid === undefined ? [] : [server.pid]));
  const cpu0: Record<string, CpuSample> = {};
  for (const [name, server] of Object.entries(stores)) cpu0[name] = await server.request<CpuSample>({ type: 'track' });
  const machine0 = machineCpu();
  const wall0 = performance.now();
  const before: RedisCounters | null = redis ? await redisCounters(redis) : null;
  const trafficBefore = await trafficOf(cluster);
  const loop = await origin.request<LoopResult>({ type: 'loop', durationMs });
  const caught: Record<string, CaughtUpResult> = {};
  for (const [name, server] of Object.entries(stores)) {
    caught[name] = await server.request<CaughtUpResult>({
      type: 'caughtUp',
      targets: loop.targets,
      timeoutMs: 30_000,
    });
    if (!caught[name].reached) throw new Error(`${name} did not apply every change within 30 s of the loop's end`);
  }
  const trafficAfter = await trafficOf(cluster);
  const after = redis ? await redisCounters(redis) : null;
  const wall = (performance.now() - wall0) / 1000;
  const machine1 = machineCpu();
  const rates: Record<string, number> = {};
  const eventsPerChange: Record<string, number> = {};
  const lagMs: Record<string, number> = {};
  const cpuMsPerChange: Record<string, number> = {};
  for (const [name, result] of Object.entries(caught)) {
    cpuMsPerChange[name] = round((result.cpu.cpuMicros - (cpu0[name]?.cpuMicros ?? Number.NaN)) / 1000 / loop.made, 4);
    lagMs[name] = round(result.reachedAt - loop.endedAt, 2);
    rates[name] = loop.made / ((result.reachedAt - loop.startedAt) / 1000);
    eventsPerChange[name] = round(result.events / loop.made, 3);
  }
  const cpuMicros = loop.cpu.end.cpuMicros - loop.cpu.start.cpuMicros;
  return {
    side,
    made: loop.made,
    seconds: round((loop.endedAt - loop.startedAt) / 1000, 3),
    rates,
    lagMs,
    cpuMsPerChange,
    eventsPerChange,
    originBusy: round(cpuMicros / 1000 / (loop.cpu.end.wallMs - loop.cpu.start.wallMs), 3),
    ...(redis && before && after
      ? {
          redis: {
            ...counterDelta(before, after),
            foreignActive: await foreignActiveClients(redis, pids, Math.ceil(wall) + 1),
          },
        }
      : {}),
    ...(cluster.length ? { traffic: trafficDelta(trafficBefore, trafficAfter) } : {}),
    machineBusyCores: machine0 && machine1 ? round((machine1.busyMs - machine0.busyMs) / 1000 / wall, 2) : Number.NaN,
  };
}

/** Redis calls per change, per command and in all, over several counter deltas. */
function perChange(deltas: { calls: Record<string, number>; reads: number }[], changes: number) {
  const calls: Record<string, number> = {};
  let reads = 0;
  for (const delta of deltas) {
    reads += delta.reads;
    for (const [command, count] of Object.entries(delta.calls)) calls[command] = (calls[command] ?? 0) + count;
  }
  const per = Object.fromEntries(
    Object.entries(calls)
      .sort(([, x], [, y]) => y - x)
      .map(([command, count]) => [command, round(count / changes, 3)]),
  );
  const total = round(Object.values(calls).reduce((sum, count) => sum + count, 0) / changes, 3);
  return { perCommand: per, total, reads: round(reads / changes, 3), changes };
}

const formatPerChange = (figures: ReturnType<typeof perChange>, trips: string) =>
  `${Object.entries(figures.perCommand)
    .map(([command, value]) => `${command} ${value}`)
    .join(
      ', ',
    )}; total ${figures.total} commands, ${figures.reads} ${trips} per change over ${figures.changes} changes`;
const SERVER_WIDE_TRIPS = 'client reads (Redis total_reads_processed, ≈ round trips)';
const OWN_TRIPS = 'round trips (socket writes: a pipeline or a lone command each)';

export async function clusterBench(options: ClusterOptions): Promise<BenchResult[]> {
  const log = options.log ?? (() => {});
  const children: Child<never>[] = [];
  const launch = <R extends { id: number; type: string }>(
    entry: string,
    name: string,
    core: number,
    env: Record<string, string>,
    fds: number,
  ) =>
    Child.launch<R>(entry, { name, core, env, fds }).then((child) => {
      children.push(child as unknown as Child<never>);
      return child;
    });
  const databases: BenchDatabase[] = [];
  const prefix = uniqueRedisPrefix('cluster');
  const redis = new Redis(BENCH_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const loadBefore = load();
  if (options.cpuProfDir) mkdirSync(options.cpuProfDir, { recursive: true });
  try {
    await redis.connect();
    const clusterDb = await createBenchDatabase('bench_cluster');
    databases.push(clusterDb);
    const singleDb = await createBenchDatabase('bench_cluster');
    databases.push(singleDb);
    log(`  databases ${clusterDb.name} (cluster), ${singleDb.name} (single); Redis prefix ${prefix}; load ${load()}`);

    const perInstance = Math.floor(options.subscribers / 2);
    const fds = perInstance + 1024;
    const clusterEnv = (name: string, role: string) => ({
      DATABASE_URL: clusterDb.url,
      REDIS_URL: BENCH_REDIS_URL,
      REDIS_PREFIX: prefix,
      INSTANCE_NAME: `bench-${name}`,
      BENCH_ROLE: role,
    });
    const a = await launch<ClusterServerRequest>(SERVER_ENTRY, 'server A', 0, clusterEnv('a', 'origin'), fds);
    const b = await launch<ClusterServerRequest>(SERVER_ENTRY, 'server B', 1, clusterEnv('b', 'follower'), fds);
    const instances: Instance[] = [];
    for (const [name, server, core] of [
      ['A', a, 1],
      ['B', b, 0],
    ] as const) {
      const client = await launch<ClientRequest>(CLIENT_ENTRY, `client of ${name}`, core, {}, fds);
      instances.push({ name, server, client, latenciesMs: [], reps: [], errors: 0, errorSamples: [] });
    }
    await a.request({ type: 'setup', tasks: 1 });
    for (const instance of instances) {
      instance.connect = await instance.client.request<ConnectResult>({
        type: 'connect',
        url: instance.server.ready.url ?? '',
        count: perInstance,
        concurrency: options.connectConcurrency ?? 50,
        transport: 'ws',
      });
      if (instance.connect.failed) noteError(instance, `${instance.connect.failed} connections failed`);
    }
    let index = 1;
    const probes = await untilLive(a, instances, () => index++);
    log(`  ${perInstance} subscribers on each instance live after ${probes} probe(s); load ${load()}`);

    // Latency: one warm-up window, then the measured ones.
    const { events, intervalMs } = options.latency;
    const latencyRedis: ReturnType<typeof counterDelta>[] = [];
    const latencyTraffic: ReturnType<typeof trafficDelta>[] = [];
    let latencyForeign: string[] = [];
    let latencyChanges = 0;
    let latencyBusy = 0;
    for (let rep = 0; rep <= options.latency.reps; rep++) {
      const first = index;
      index += events;
      const machine0 = machineCpu();
      const wall0 = performance.now();
      const before = await redisCounters(redis);
      const trafficBefore = await trafficOf([a, b]);
      const { burst, completed, windows } = await latencyWindow(a, instances, first, events, intervalMs);
      const trafficAfter = await trafficOf([a, b]);
      const after = await redisCounters(redis);
      const machine1 = machineCpu();
      const wall = (performance.now() - wall0) / 1000;
      if (rep === 0) continue; // warm-up
      latencyRedis.push(counterDelta(before, after));
      latencyTraffic.push(trafficDelta(trafficBefore, trafficAfter));
      latencyChanges += events;
      latencyForeign = [
        ...new Set([
          ...latencyForeign,
          ...(await foreignActiveClients(
            redis,
            [a.pid, b.pid].filter((pid): pid is number => pid !== undefined),
            Math.ceil(wall) + 1,
          )),
        ]),
      ];
      if (machine0 && machine1) latencyBusy = Math.max(latencyBusy, (machine1.busyMs - machine0.busyMs) / 1000 / wall);
      for (const [k, instance] of instances.entries()) {
        const window = windows[k] as WindowResult;
        const missing = window.expected - window.received;
        if (!completed[k] || missing > 0) noteError(instance, `${missing} of ${window.expected} frames missing`);
        instance.errors += window.errors;
        for (const sample of window.errorSamples) noteError(instance, sample);
        instance.latenciesMs.push(...window.latenciesMs);
        instance.reps.push({
          p50Ms: round(percentile(window.latenciesMs, 50), 3),
          p99Ms: round(percentile(window.latenciesMs, 99), 3),
        });
      }
      const [same, other] = instances as [Instance, Instance];
      log(
        `  latency rep ${rep}: same p50/p99 ${ms(same.reps.at(-1)?.p50Ms ?? Number.NaN)} / ${ms(same.reps.at(-1)?.p99Ms ?? Number.NaN)}, other ${ms(other.reps.at(-1)?.p50Ms ?? Number.NaN)} / ${ms(other.reps.at(-1)?.p99Ms ?? Number.NaN)}; timer lag max ${ms(burst.maxTimerLagMs)}; load ${load()}`,
      );
    }
    for (const { client } of instances) await client.request({ type: 'close' });

    // Throughput: S (one process) and the cluster, interleaved, no subscribers.
    const single = await launch<ClusterServerRequest>(
      SERVER_ENTRY,
      'single server',
      0,
      { DATABASE_URL: singleDb.url, BENCH_ROLE: 'origin' },
      1024,
    );
    const { tasks, durationMs, reps } = options.throughput;
    await a.request({ type: 'setup', tasks });
    await single.request({ type: 'setup', tasks });
    const loops: LoopRep[] = [];
    for (let rep = 0; rep <= reps; rep++) {
      const loopMs = rep === 0 ? WARMUP_LOOP_MS : durationMs;
      const profiled = rep > 0 && options.cpuProfDir ? options.cpuProfDir : null;
      const profile = async (servers: Record<string, Server>, action: 'start' | 'stop') => {
        for (const [name, server] of Object.entries(servers)) {
          if (action === 'start') await server.request({ type: 'profile', action });
          else {
            const file = path.join(profiled ?? '', `cluster-${name}-${rep}-${Date.now()}.cpuprofile`);
            await server.request({ type: 'profile', action, file });
            log(`  CPU profile of server ${name} over loop ${rep}: ${file}`);
          }
        }
      };
      if (profiled) await profile({ S: single }, 'start');
      const baseline = await loopRep('single', single, { S: single }, loopMs, null, []);
      if (profiled) await profile({ S: single }, 'stop');
      if (profiled) await profile({ A: a, B: b }, 'start');
      const subject = await loopRep('cluster', a, { B: b, A: a }, loopMs, redis, [a, b]);
      if (profiled) await profile({ A: a, B: b }, 'stop');
      if (rep === 0) continue;
      loops.push(baseline, subject);
      log(
        `  throughput rep ${rep}: single ${perSecond(baseline.rates.S ?? Number.NaN)}, cluster on B ${perSecond(subject.rates.B ?? Number.NaN)} (on A ${perSecond(subject.rates.A ?? Number.NaN)}); load ${load()}`,
      );
    }

    // Figures.
    const [same, other] = instances as [Instance, Instance];
    const latency = (instance: Instance) => ({
      p50: percentile(instance.latenciesMs, 50),
      p90: percentile(instance.latenciesMs, 90),
      p99: percentile(instance.latenciesMs, 99),
      max: percentile(instance.latenciesMs, 100),
      samples: instance.latenciesMs.length,
    });
    const sameLatency = latency(same);
    const otherLatency = latency(other);
    const latencyRatio = (otherLatency.p99 - TARGETS.latencySlackMs) / sameLatency.p99;
    const latencyErrors = same.errors + other.errors;
    const latencyOk = meetsTarget(latencyRatio, { op: '<=', value: TARGETS.latencyFactor });

    const baselines = loops.filter((rep) => rep.side === 'single');
    const subjects = loops.filter((rep) => rep.side === 'cluster');
    const singleRate = median(baselines.map((rep) => rep.rates.S ?? Number.NaN));
    const clusterRateB = median(subjects.map((rep) => rep.rates.B ?? Number.NaN));
    const clusterRateA = median(subjects.map((rep) => rep.rates.A ?? Number.NaN));
    const throughputRatio = clusterRateB / singleRate;
    const throughputOk = meetsTarget(throughputRatio, { op: '>=', value: TARGETS.throughput });
    const loopRedis = perChange(
      subjects.flatMap((rep) => (rep.redis ? [rep.redis] : [])),
      subjects.reduce((sum, rep) => sum + rep.made, 0),
    );
    const loopTraffic = perChange(
      subjects.flatMap((rep) => (rep.traffic ? [rep.traffic] : [])),
      subjects.reduce((sum, rep) => sum + rep.made, 0),
    );
    const windowRedis = perChange(latencyRedis, latencyChanges);
    const windowTraffic = perChange(latencyTraffic, latencyChanges);
    const loopForeign = [...new Set(subjects.flatMap((rep) => rep.redis?.foreignActive ?? []))];
    const loadAfter = load();

    const machineNote = `Machine: ${os.availableParallelism()} cores shared with other work; load average (1/5/15 min) ${loadBefore} before, ${loadAfter} after; busiest measured latency window kept ${latencyBusy.toFixed(2)} cores busy machine-wide; the throughput loops ${subjects.map((rep) => rep.machineBusyCores.toFixed(2)).join(', ')} (cluster) and ${baselines.map((rep) => rep.machineBusyCores.toFixed(2)).join(', ')} (single).`;
    const redisNote = (foreign: string[]) =>
      foreign.length
        ? `Redis counters are server-wide: ${foreign.length} other client(s) were active meanwhile (${foreign.slice(0, 6).join(', ')}${foreign.length > 6 ? ', …' : ''}), so the per-change figures include their commands (an upper bound).`
        : 'Redis counters are server-wide; no other client was active meanwhile.';
    const pinning = canPin()
      ? 'Pinned crosswise with taskset: A and the client of B on core 0, B and the client of A on core 1, the single server on core 0; PostgreSQL and Redis unpinned.'
      : 'No core pinning was possible.';
    const errorSamples = [...same.errorSamples, ...other.errorSamples];

    const latencyResult: BenchResult = {
      name: 'cluster-latency',
      title: 'cluster mode: change → receipt p99 for a subscriber on the other instance vs the same instance',
      description: `${options.subscribers} graphql-ws \`runtimeEvents\` subscribers, half on instance A, half on instance B (two server processes, one PostgreSQL database, one Redis change log); A commits a task's progress and announces it (a progress report's path) ${(1000 / intervalMs).toFixed(0)} times a second. Target: other-instance p99 ≤ ${TARGETS.latencyFactor} × same-instance p99 + ${TARGETS.latencySlackMs} ms, i.e. the ratio (other p99 − ${TARGETS.latencySlackMs} ms) ÷ same p99 ≤ ${TARGETS.latencyFactor}.`,
      subject: {
        label: `change → receipt p99, subscribers on the other instance (B)`,
        value: otherLatency.p99,
        unit: 'ms',
      },
      baseline: {
        label: `change → receipt p99, subscribers on the same instance (A)`,
        value: sameLatency.p99,
        unit: 'ms',
      },
      ratio: latencyRatio,
      target: { op: '<=', value: TARGETS.latencyFactor },
      pass: latencyErrors === 0 && latencyOk,
      errors: latencyErrors,
      metrics: {
        [`same instance (A) p50 / p90 / p99 / max, ${sameLatency.samples} receipts`]: `${ms(sameLatency.p50)} / ${ms(sameLatency.p90)} / **${ms(sameLatency.p99)}** / ${ms(sameLatency.max)}`,
        [`other instance (B) p50 / p90 / p99 / max, ${otherLatency.samples} receipts`]: `${ms(otherLatency.p50)} / ${ms(otherLatency.p90)} / **${ms(otherLatency.p99)}** / ${ms(otherLatency.max)}`,
        [`other p99 vs 1.1 × same p99 + 1 ms`]: `${ms(otherLatency.p99)} vs ${ms(TARGETS.latencyFactor * sameLatency.p99 + TARGETS.latencySlackMs)} — ${latencyOk ? 'met' : 'MISSED'}`,
        'other ÷ same: p50 / p99': `${(otherLatency.p50 / sameLatency.p50).toFixed(3)} / ${(otherLatency.p99 / sameLatency.p99).toFixed(3)}`,
        'per window p99, same / other': same.reps.map((rep, k) => `${rep.p99Ms} / ${other.reps[k]?.p99Ms}`).join('; '),
        windows: `${options.latency.reps} measured (+1 warm-up) of ${events} changes ${intervalMs} ms apart`,
        'connect + subscribe, A / B': `${Math.round(same.connect?.ms ?? Number.NaN)} ms / ${Math.round(other.connect?.ms ?? Number.NaN)} ms`,
        'Redis per change during the latency windows, A + B own (counted in the processes)': formatPerChange(
          windowTraffic,
          OWN_TRIPS,
        ),
        'Redis per change during the latency windows, server-wide INFO': formatPerChange(
          windowRedis,
          SERVER_WIDE_TRIPS,
        ),
        'load average before / after': `${loadBefore} / ${loadAfter}`,
      },
      notes: [
        "Each change: A commits the bench task's `progress` (= the change's index) on its own database driver (`raiseProgress`, the statement a progress report runs, sent as the engine sends it) and announces it with `ChangeFeed.task`, stamped just before the commit (epoch ms, performance.timeOrigin + performance.now(), agrees across processes to < 0.1 ms). A's collector reads the row back and appends it to the Redis change log; both A and B apply it from the log to their runtime stores, whose subscriptions deliver it. Receipt is stamped by the load client as the frame is read.",
        pinning,
        machineNote,
        redisNote(latencyForeign),
        ...(errorSamples.length ? [`ERRORS: ${errorSamples.join(' | ')}`] : []),
      ],
      details: {
        settings: options,
        targets: TARGETS,
        same: { ...sameLatency, reps: same.reps, connect: same.connect },
        other: { ...otherLatency, reps: other.reps, connect: other.connect },
        redis: windowRedis,
        traffic: windowTraffic,
        foreign: latencyForeign,
      },
    };

    const throughputResult: BenchResult = {
      name: 'cluster-throughput',
      title: 'cluster mode: changes/s through the Redis change log ÷ single process',
      description: `A closed loop of the same change (commit a task's progress, announce it; ${tasks} tasks, one worker each) for ${durationMs / 1000} s on instance A of a two-instance cluster, changes made ÷ time until instance B's runtime store applied the last of them, against the same loop on a single-process server (no REDIS_URL, PostgreSQL too) until its own store applied them. Target ≥ ${TARGETS.throughput}. Also: Redis commands per change.`,
      subject: {
        label: 'cluster: changes/s applied on the other instance (B), median',
        value: clusterRateB,
        unit: 'changes/s',
      },
      baseline: {
        label: 'single process: changes/s applied to its store, median',
        value: singleRate,
        unit: 'changes/s',
      },
      ratio: throughputRatio,
      target: { op: '>=', value: TARGETS.throughput },
      pass: throughputOk,
      errors: 0,
      metrics: {
        'cluster changes/s applied on B / on A; single': `${perSecond(clusterRateB)} / ${perSecond(clusterRateA)}; ${perSecond(singleRate)}`,
        'per rep, single / cluster (B)': baselines
          .map((rep, k) => `${perSecond(rep.rates.S ?? Number.NaN)} / ${perSecond(subjects[k]?.rates.B ?? Number.NaN)}`)
          .join('; '),
        'changes made/s during the loop (before catching up), single / cluster': `${perSecond(median(baselines.map((rep) => rep.made / rep.seconds)))} / ${perSecond(median(subjects.map((rep) => rep.made / rep.seconds)))}`,
        "store's catch-up after the loop's end, single / B / A": `${ms(median(baselines.map((rep) => rep.lagMs.S ?? Number.NaN)))} / ${ms(median(subjects.map((rep) => rep.lagMs.B ?? Number.NaN)))} / ${ms(median(subjects.map((rep) => rep.lagMs.A ?? Number.NaN)))}`,
        'store events per change (read-backs coalesce), single / B / A': `${median(baselines.map((rep) => rep.eventsPerChange.S ?? Number.NaN))} / ${median(subjects.map((rep) => rep.eventsPerChange.B ?? Number.NaN))} / ${median(subjects.map((rep) => rep.eventsPerChange.A ?? Number.NaN))}`,
        'server CPU per change (loop start → caught up), single / A / B': `${ms(median(baselines.map((rep) => rep.cpuMsPerChange.S ?? Number.NaN)))} / ${ms(median(subjects.map((rep) => rep.cpuMsPerChange.A ?? Number.NaN)))} / ${ms(median(subjects.map((rep) => rep.cpuMsPerChange.B ?? Number.NaN)))}`,
        'origin server CPU busy during the loop, single / A': `${median(baselines.map((rep) => rep.originBusy))} / ${median(subjects.map((rep) => rep.originBusy))}`,
        '**Redis per change (cluster loops), A + B own (counted in the processes)**': formatPerChange(
          loopTraffic,
          OWN_TRIPS,
        ),
        'Redis per change (cluster loops), server-wide INFO commandstats': formatPerChange(
          loopRedis,
          SERVER_WIDE_TRIPS,
        ),
        'load average before / after': `${loadBefore} / ${loadAfter}`,
      },
      notes: [
        'The loop runs in the origin server process: each worker awaits its commit, announces, and goes on with the next progress of its own task; changes made while a read-back is in flight are read back together (the store shows the latest row), so the rate counts changes the store has caught up with, not store events (reported apart). No subscribers are connected during the loops.',
        "Redis figures, two ways, both ÷ changes made, from before each cluster loop until B and A applied everything: (1) A's and B's own traffic, counted inside the two server processes (every command ioredis sends, pipelined ones included, and every write to a socket connected to Redis: ioredis writes a whole pipeline at once, each other command alone, so writes = round trips); exact, unaffected by other Redis users. (2) Redis's server-wide INFO commandstats calls and total_reads_processed, as the issue asks: these include every other client of the same Redis. Both include the appends (evalsha of the append script), the blocking reads (xread), the event recording (xadd to <prefix>events) and the leader lease.",
        pinning,
        machineNote,
        redisNote(loopForeign),
        ...(options.cpuProfDir
          ? [
              `PROFILED RUN: the servers ran the V8 sampling profiler during the measured loops (profiles in ${options.cpuProfDir}); use an unprofiled run for the figures.`,
            ]
          : []),
      ],
      details: {
        settings: options,
        targets: TARGETS,
        loops,
        redis: loopRedis,
        traffic: loopTraffic,
        foreign: loopForeign,
      },
    };
    return [latencyResult, throughputResult];
  } finally {
    await Promise.all(children.map((child) => child.stop().catch(() => child.kill())));
    if (redis.status === 'ready') {
      await deleteRedisPrefix(redis, prefix).catch(() => {});
      await redis.quit().catch(() => redis.disconnect());
    } else redis.disconnect();
    for (const database of databases)
      await database.drop().catch((error) => log(`  could not drop ${database.name}: ${error}`));
  }
}
