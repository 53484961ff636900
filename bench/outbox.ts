/**
 * The outbox of issue 14 ("Benchmark"):
 *
 *  1. outbox-throughput[-pg]: deliveries/s of the outbox worker to a local receiver ÷ raw undici
 *     POSTs of the same bodies to the same receiver, in the same run (target ≥ 0.5), on SQLite and
 *     (when it answers) PostgreSQL. The receiver (bench/outbox-receiver.ts) is a keep-alive HTTP
 *     server in a child process that answers 200 at once. Per repetition: `messages` webhook-sized
 *     bodies are enqueued (not timed) into the provider's migrated database (one database and
 *     client for every repetition, emptied before each, as a server keeps one client); timed: an
 *     OutboxWorker (the server's, OUTBOX_CONCURRENCY deliveries at once) from start until it has
 *     reported every message's record committed and one query has found them all DELIVERED —
 *     claims, signatures, POSTs and the recording writes included.
 *     Baseline: the same bodies POSTed with undici's `request` over a keep-alive Agent, the same
 *     number at once, nothing else. Repetitions alternate, after two full-size warm-up runs of each.
 *  2. outbox-request-path: what webhooks add to a task completion at the request path. A server
 *     (buildApp, simulated app service at full speed) installs `installs` apps with 10 matching
 *     webhooks registered and with none; timed: the engine's handling of each install's final
 *     state report (the call that completes the task: TaskEngine.onAppState, from the report to
 *     its promise settling, the feed's announcement included). Added latency = median with
 *     webhooks − median without (target ≤ 1 ms: baseline = the 1 ms budget). Also reported: the
 *     dispatcher's synchronous part (WebhookDispatcher.accept) per change, with 10 webhooks.
 */

import { Agent, request } from 'undici';
import { buildApp } from '../src/app/build-app.js';
import { createPrismaClient, type Db, prepareDatabase } from '../src/db/client.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logger.js';
import { enqueueOutbound, type OutboundMessage } from '../src/services/outbox-messages.js';
import { OutboxWorker } from '../src/services/outbox-worker.js';
import { checkPostgres, createTestDatabase } from '../test/support/databases.js';
import { seed } from '../test/support/seed.js';
import { Child } from './lib/fanout-parent.js';
import { type BenchResult, meetsTarget } from './lib/report.js';
import { median, percentile, round } from './lib/stats.js';
import type { OutboxReceiverRequest } from './outbox-receiver.js';

export interface OutboxBenchOptions {
  messages: number;
  reps: number;
  /** Deliveries in flight at once, both sides (OUTBOX_CONCURRENCY). */
  concurrency: number;
  installs: number;
  log: (line: string) => void;
}

const RECEIVER_ENTRY = new URL('./outbox-receiver.ts', import.meta.url).href;
const silent = createLogger('silent');
const WARM_UP_RUNS = 2;

/**
 * This process's CPU (user + system, µs) since `since`: the sender's cost per message, which the
 * machine's load moves far less than the rates (the receiver is another process; PostgreSQL's
 * server is not counted).
 */
function cpuMicros(since: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(since);
  return user + system;
}

/** A webhook delivery's body of the usual size (a finished task). */
function bodies(count: number): string[] {
  return Array.from({ length: count }, (_, index) =>
    JSON.stringify({
      event: 'TASK_FINISHED',
      webhookId: 'wh_bench',
      occurredAt: new Date().toISOString(),
      task: {
        id: `task-${index}`,
        type: 'INSTALL',
        status: 'COMPLETED',
        app: { userId: 'alice', sourceId: 'market.olares', appName: `app-${index}` },
        user: 'alice',
        version: '1.0.0',
        error: null,
        result: { operation: 'install', opId: `op-${index}`, response: { code: 200, message: 'success' } },
      },
    }),
  );
}

/**
 * Seconds for the outbox worker to deliver `count` messages enqueued into `db` (emptied first, not
 * timed). One database and client serve every repetition of a provider, as one serves a server
 * for its whole life: a fresh client per repetition would time its warm-up.
 */
export async function outboxRun(db: Db, url: string, count: number, concurrency: number, rep: number) {
  await db.outboxMessage.deleteMany();
  const messages: OutboundMessage[] = bodies(count).map((body, index) => ({
    kind: 'payment',
    topic: 'task.finished',
    url,
    body: JSON.parse(body),
    idempotencyKey: `bench:${rep}:${index}`,
  }));
  for (let at = 0; at < messages.length; at += 500) await enqueueOutbound(db, messages.slice(at, at + 500));
  // The worker reports each message once its record committed (onSettled): the run ends with the
  // last of them, and the database is asked once then (polling it would add up to a poll
  // interval to every run and its queries to the worker's load).
  let settled = 0;
  let allSettled: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    allSettled = resolve;
  });
  const worker = new OutboxWorker(
    db,
    {
      concurrency,
      maxAttempts: 10,
      backoffBaseMs: 1000,
      backoffMaxMs: 60_000,
      attemptTimeoutMs: 10_000,
      pollIntervalMs: 1000,
    },
    'bench-signing-secret-0123456789',
    silent,
    async () => {
      if (++settled === count) allSettled();
    },
  );
  const cpu = process.cpuUsage();
  const started = performance.now();
  worker.start();
  await done;
  const [counts] = await db.$queryRaw<{ delivered: number | bigint }[]>`
    SELECT COUNT(*) AS "delivered" FROM "OutboxMessage" WHERE "status" = 'DELIVERED'`;
  const seconds = (performance.now() - started) / 1000;
  const cpuUs = cpuMicros(cpu) / count;
  await worker.stop();
  // What the database does not show as delivered (dead, or anything else) is an error.
  return { seconds, cpuUs, errors: count - Number(counts?.delivered ?? 0) };
}

/** Seconds for raw undici POSTs of the same bodies, `concurrency` at once. */
export async function rawRun(url: string, count: number, concurrency: number) {
  const agent = new Agent({ keepAliveTimeout: 30_000 });
  const all = bodies(count);
  let next = 0;
  let errors = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let index = next++; index < all.length; index = next++) {
        const response = await request(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: all[index] as string,
          dispatcher: agent,
        });
        await response.body.dump();
        if (response.statusCode !== 200) errors++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpuUs = cpuMicros(cpu) / count;
  await agent.close();
  return { seconds, cpuUs, errors };
}

export async function throughput(kind: 'sqlite' | 'postgresql', url: string, options: OutboxBenchOptions) {
  const { messages, reps, concurrency, log } = options;
  const database = await createTestDatabase(kind);
  const db = createPrismaClient(database.url);
  await prepareDatabase(db, database.url);
  // Warm-up, both sides, twice: either side's rate still climbs on its second full-size run (V8
  // tiering up undici's and the driver's paths; measured 4.1k → 8.9k → 18.6k raw POSTs/s and
  // 2.8k → 5.3k → 6.3k deliveries/s over the first three runs of 3,000).
  for (let warmUp = 1; warmUp <= WARM_UP_RUNS; warmUp++) {
    await outboxRun(db, url, messages, concurrency, -warmUp);
    await rawRun(url, messages, concurrency);
  }
  const outbox: number[] = [];
  const raw: number[] = [];
  const outboxCpu: number[] = [];
  const rawCpu: number[] = [];
  let errors = 0;
  for (let rep = 0; rep < reps; rep++) {
    const a = await outboxRun(db, url, messages, concurrency, rep);
    const b = await rawRun(url, messages, concurrency);
    errors += a.errors + b.errors;
    outbox.push(messages / a.seconds);
    raw.push(messages / b.seconds);
    outboxCpu.push(a.cpuUs);
    rawCpu.push(b.cpuUs);
    log(
      `  ${kind} rep ${rep + 1}: outbox ${round(messages / a.seconds, 0)}/s, raw ${round(messages / b.seconds, 0)}/s; ` +
        `CPU ${round(a.cpuUs, 1)} µs/delivery, ${round(b.cpuUs, 1)} µs/POST`,
    );
  }
  await db.$disconnect();
  await database.drop();
  const subject = median(outbox);
  const baseline = median(raw);
  const ratio = subject / baseline;
  const target = { op: '>=' as const, value: 0.5 };
  return {
    name: kind === 'sqlite' ? 'outbox-throughput' : 'outbox-throughput-pg',
    title: `Outbox deliveries/s ÷ raw POSTs/s (${kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'})`,
    description:
      'Deliveries per second of the outbox worker (claim, sign, POST, record) to a local keep-alive receiver ÷ raw undici POSTs of the same bodies to it, the same number at once.',
    subject: { label: 'outbox deliveries/s', value: round(subject, 0), unit: '/s' },
    baseline: { label: 'raw POSTs/s', value: round(baseline, 0), unit: '/s' },
    ratio: round(ratio, 3),
    target,
    pass: meetsTarget(ratio, target) && errors === 0,
    errors,
    metrics: {
      messages: String(messages),
      concurrency: String(concurrency),
      'outbox /s per rep': outbox.map((v) => round(v, 0)).join(', '),
      'raw /s per rep': raw.map((v) => round(v, 0)).join(', '),
      'sender CPU µs per delivery, per rep': outboxCpu.map((v) => round(v, 1)).join(', '),
      'sender CPU µs per raw POST, per rep': rawCpu.map((v) => round(v, 1)).join(', '),
    },
    notes: [],
    details: { outbox, raw, outboxCpu, rawCpu, messages, reps, concurrency },
  } satisfies BenchResult;
}

/** Milliseconds of each install's final state report, with `webhooks` matching webhooks registered. */
async function completionTimes(webhooks: number, receiverUrl: string, installs: number) {
  const database = await createTestDatabase('sqlite');
  const config = loadConfig({
    DATABASE_URL: database.url,
    PORT: '0',
    LOG_LEVEL: 'silent',
    DEMO_DATA: '0',
    BUNDLED_CATALOGUE_FILE: 'off',
    SIMULATED_STEP_MS: '0',
    TASK_CONCURRENCY: '1',
  });
  const app = buildApp(config, { logger: silent });
  await app.start(0);
  try {
    const seeder = seed(app.db);
    await seeder.remoteSource();
    for (let index = 0; index < installs; index++)
      await seeder.catalogApp({ name: `app${index}`, versions: ['1.0.0'] });
    const admin = { userId: 'admin', isAdmin: true };
    for (let index = 0; index < webhooks; index++) {
      await app.services.webhooks.add(admin, { url: receiverUrl, events: ['TASK_FINISHED', 'APP_STATE_CHANGED'] });
    }
    const { engine } = app.services;
    const original = engine.onAppState.bind(engine);
    const finals: number[] = [];
    engine.onAppState = async (event) => {
      const started = performance.now();
      const result = await original(event);
      if (event.state === 'running') finals.push(performance.now() - started);
      return result;
    };
    for (let index = 0; index < installs; index++) {
      const task = await app.services.operations.install(
        { userId: 'alice', isAdmin: false },
        { sourceId: 'market.olares', appName: `app${index}`, version: '1.0.0' },
      );
      for (;;) {
        const row = await app.db.task.findUnique({ where: { taskId: task.taskId }, select: { status: true } });
        if (row?.status === 'COMPLETED' || row?.status === 'FAILED') break;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    }
    await app.services.webhookDispatcher.idle();
    const enqueued = await app.db.outboxMessage.count();
    // The dispatcher's synchronous part, alone: one call per change, 10 webhooks cached.
    let acceptMs = 0;
    if (webhooks > 0) {
      const calls = 20_000;
      const started = performance.now();
      for (let index = 0; index < calls; index++) {
        app.services.webhookDispatcher.accept({
          kind: 'task',
          event: { taskId: `t${index}`, userId: 'nobody', sourceId: 'market.olares', appName: 'x' },
        });
      }
      acceptMs = (performance.now() - started) / calls;
      await app.services.webhookDispatcher.idle();
    }
    return { finals, enqueued, acceptMs };
  } finally {
    await app.stop();
    await database.drop();
  }
}

async function requestPath(receiverUrl: string, options: OutboxBenchOptions): Promise<BenchResult> {
  const { installs, log } = options;
  await completionTimes(0, receiverUrl, Math.min(installs, 20)); // warm-up
  const none = await completionTimes(0, receiverUrl, installs);
  const ten = await completionTimes(10, receiverUrl, installs);
  const added = median(ten.finals) - median(none.finals);
  log(
    `  final report: median ${round(median(none.finals), 3)} ms without webhooks, ${round(median(ten.finals), 3)} ms with 10; accept() ${round(ten.acceptMs * 1000, 2)} µs`,
  );
  const target = { op: '<=' as const, value: 1 };
  const ratio = Math.max(0, added) / 1;
  const errors = ten.enqueued >= installs * 10 ? 0 : 1;
  return {
    name: 'outbox-request-path',
    title: "Webhooks' added latency of a task completion at the request path",
    description:
      "Median time of the engine's handling of an install's final state report with 10 matching webhooks − without any, against a 1 ms budget.",
    subject: { label: 'added latency', value: round(Math.max(0, added), 3), unit: 'ms' },
    baseline: { label: 'budget', value: 1, unit: 'ms' },
    ratio: round(ratio, 3),
    target,
    pass: meetsTarget(ratio, target) && errors === 0,
    errors,
    metrics: {
      installs: String(installs),
      'final report p50 / p99, no webhooks': `${round(median(none.finals), 3)} / ${round(percentile(none.finals, 99), 3)} ms`,
      'final report p50 / p99, 10 webhooks': `${round(median(ten.finals), 3)} / ${round(percentile(ten.finals, 99), 3)} ms`,
      'dispatcher accept() per change, 10 webhooks': `${round(ten.acceptMs * 1000, 2)} µs`,
      'messages enqueued (10 webhooks)': String(ten.enqueued),
    },
    notes: errors ? ['fewer webhook messages than 10 per install were enqueued'] : [],
    details: { none: none.finals, ten: ten.finals, acceptMs: ten.acceptMs },
  };
}

export async function outboxBench(options: OutboxBenchOptions): Promise<BenchResult[]> {
  const receiver = await Child.launch<OutboxReceiverRequest>(RECEIVER_ENTRY, { name: 'outbox receiver', core: 1 });
  try {
    const url = receiver.ready.url as string;
    const results: BenchResult[] = [await throughput('sqlite', url, options)];
    if ((await checkPostgres()) === null) results.push(await throughput('postgresql', url, options));
    else options.log('  PostgreSQL does not answer: outbox-throughput-pg skipped');
    results.push(await requestPath(url, options));
    return results;
  } finally {
    await receiver.stop();
  }
}
