/**
 * G10, the soak: subscribe/unsubscribe churn and mutations for a long while, then the server's
 * heap after a forced GC ÷ its heap after a forced GC before the churn; target ≤ 1.05, and nothing
 * left behind (connections, SSE streams, cohorts, subscriptions, runtime-store listeners).
 *
 * Subject: the real server (buildApp) in a child process (soak-server.ts, `--expose-gc`) over a
 * fresh migrated SQLite file with the demo data, local development mode. This process runs:
 * - `concurrency` closed-loop client slots, each opening one client after another, so at most
 *   that many are alive at once. A client is a graphql-ws connection (one to three
 *   subscriptions; closed gracefully, or some unsubscribed and others started mid-life, or its
 *   socket terminated mid-stream), a graphql-sse client on /graphql/stream (disposed), or a raw
 *   SSE request whose socket is reset mid-stream. Each lives a random short time. They subscribe
 *   to taskUpdated, appUpdated, runtimeEvents (with and without a filter and `since`),
 *   runtimeSnapshot and historyAdded.
 * - paced mutations over HTTP (installApp, uninstallApp, cancelTask on the free demo apps), so
 *   events really flow. A ConflictError or InvalidStateError answer is an expected outcome of
 *   racing mutations; any other failure is an error.
 *
 * Warm-up: the same churn and mutations until the runtime store has emitted at least its event
 * buffer's worth of events (the ring buffer is full, so its growth is not taken for a leak), then
 * every client is closed, the server is let settle (no subscription state, the task engine idle)
 * and the baseline heap is read. After the soak the same settle, then the heap again.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient as createSseClient } from 'graphql-sse';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { REMOTE_SOURCE } from '../src/db/default-sources.js';
import { migrateDatabase } from '../src/db/migrate.js';
import { Child } from './lib/fanout-parent.js';
import { type BenchResult, meetsTarget } from './lib/report.js';
import { round } from './lib/stats.js';
import type { SoakReadyDetail, SoakRequest, SoakStats } from './soak-server.js';

export interface SoakOptions {
  /** How long the measured churn runs. */
  durationMs: number;
  /** Clients alive at most at once. @default 200 */
  concurrency?: number;
  /** Shortest and longest life of one client. @default [200, 8000] */
  lifetimeMs?: [number, number];
  /**
   * RUNTIME_EVENT_BUFFER of the server. The warm-up runs until the buffer is full; at the default
   * 10,000 that took longer than 5 minutes on the shared 2-core machine (5,581 events in 300 s at
   * 20 mutations/s asked, about 4/s answered), so the soak uses a smaller one. @default 1000
   */
  eventBuffer?: number;
  /** Mutations started per second. @default 20 */
  mutationsPerSecond?: number;
  /** Directory for a V8 CPU profile of the server process (`--cpu-prof`), if wanted. */
  cpuProfDir?: string;
  /** Heap samples (after a forced GC) taken during the soak, for the trend. @default 10 */
  heapSamples?: number;
  log?: (line: string) => void;
}

export const SOAK_TARGET = 1.05;

const SERVER_ENTRY_URL = new URL('./soak-server.ts', import.meta.url).href;
/** How long the server may take to drop every subscription and finish its tasks once the load stops. */
const SETTLE_TIMEOUT_MS = 60_000;
const SETTLE_POLL_MS = 50;
/** The warm-up gives up (an error) if the store's event buffer is not full by then. */
const WARMUP_TIMEOUT_MS = 300_000;
const MUTATIONS_IN_FLIGHT = 4;
const MAX_ERROR_SAMPLES = 8;
const MB = 1024 * 1024;

/** The free apps of the bundled catalogue (what `market.olares` offers without MARKET_SOURCE_URL). */
const FREE_APPS = Object.values(
  (JSON.parse(readFileSync(new URL('../catalogue/bundled.json', import.meta.url), 'utf8')) as BundledCatalogue).details,
)
  .filter((app) => !app.price)
  .map((app) => ({ appName: app.name, version: app.version }));

interface BundledCatalogue {
  details: Record<string, { name: string; version: string; price?: unknown }>;
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;
const randomBetween = (min: number, max: number) => min + Math.random() * (max - min);
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ── the server child ────────────────────────────────────────────────────────────────────────

type SoakServer = Child<SoakRequest>;

/** The soak server, ready: its URL and the runtime event buffer it runs with. */
async function startSoakServer(
  databaseUrl: string,
  maxConnectionsPerUser: number,
  eventBuffer: number,
  cpuProfDir: string | undefined,
): Promise<{ server: SoakServer; url: string } & SoakReadyDetail> {
  const server = await Child.launch<SoakRequest>(SERVER_ENTRY_URL, {
    name: 'the soak server',
    execArgv: ['--expose-gc', ...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [])],
    env: {
      DATABASE_URL: databaseUrl,
      SOAK_MAX_CONNECTIONS_PER_USER: String(maxConnectionsPerUser),
      SOAK_EVENT_BUFFER: String(eventBuffer),
    },
  });
  const { url, detail } = server.ready;
  if (!url || !detail) throw new Error('the soak server sent no url');
  return { server, url, ...(detail as unknown as SoakReadyDetail) };
}

const statsOf = (server: SoakServer) => server.request<SoakStats>({ type: 'stats' });
const collectGarbageIn = (server: SoakServer) => server.request<NodeJS.MemoryUsage>({ type: 'gc' });

// ── what happened ───────────────────────────────────────────────────────────────────────────

class Tally {
  clients = 0;
  subscriptions = 0;
  /** Subscriptions that received at least one result. */
  answered = 0;
  events = 0;
  abruptDrops = 0;
  mutations = 0;
  mutationOutcomes: Record<string, number> = {};
  alive = 0;
  peakAlive = 0;
  /** Clients whose connection the server has not yet answered (graphql-ws ack, SSE response headers). */
  handshaking = 0;
  errors = 0;
  readonly errorKinds: Record<string, number> = {};
  readonly errorSamples: string[] = [];
  /** The newest runtime sequence a client saw: what `since` subscriptions resume from. */
  lastSequence = 0;

  error(kind: string, detail: string): void {
    this.errors++;
    this.errorKinds[kind] = (this.errorKinds[kind] ?? 0) + 1;
    if (this.errorSamples.length < MAX_ERROR_SAMPLES) this.errorSamples.push(`${kind}: ${detail.slice(0, 300)}`);
  }

  outcome(kind: string): void {
    this.mutations++;
    this.mutationOutcomes[kind] = (this.mutationOutcomes[kind] ?? 0) + 1;
  }

  clientOpened(): void {
    this.clients++;
    this.alive++;
    this.peakAlive = Math.max(this.peakAlive, this.alive);
  }

  clientEnded(): void {
    this.alive--;
  }
}

// ── the subscriptions ───────────────────────────────────────────────────────────────────────

interface SubscriptionCase {
  name: string;
  query: string;
  variables(tally: Tally): Record<string, unknown>;
}

const TASK_UPDATED = `subscription SoakTasks($filter: TaskFilter) {
  taskUpdated(filter: $filter) { taskId appName status type progress }
}`;
const APP_UPDATED = `subscription SoakApps($filter: AppFilter) {
  appUpdated(filter: $filter) { appName sourceId stage health installedVersion }
}`;
const RUNTIME_EVENTS = `subscription SoakEvents($filter: SnapshotFilter, $since: Float) {
  runtimeEvents(filter: $filter, since: $since) {
    sequence kind app { appName stage health } task { taskId status progress } summary { totalApps runningTasks }
  }
}`;
const RUNTIME_SNAPSHOT = `subscription SoakSnapshot($filter: SnapshotFilter) {
  runtimeSnapshot(filter: $filter) {
    sequence summary { totalApps totalTasks runningTasks } apps { appName stage } tasks { taskId status }
  }
}`;
const HISTORY_ADDED = `subscription SoakHistory($filter: HistoryFilter) {
  historyAdded(filter: $filter) { id type app message time }
}`;

const anyApp = () => pick(FREE_APPS).appName;

const CASES: SubscriptionCase[] = [
  { name: 'taskUpdated', query: TASK_UPDATED, variables: () => ({}) },
  { name: 'taskUpdated(appName)', query: TASK_UPDATED, variables: () => ({ filter: { appName: anyApp() } }) },
  {
    name: 'taskUpdated(status)',
    query: TASK_UPDATED,
    variables: () => ({ filter: { status: ['RUNNING', 'COMPLETED', 'CANCELED'] } }),
  },
  { name: 'appUpdated', query: APP_UPDATED, variables: () => ({}) },
  { name: 'appUpdated(appName)', query: APP_UPDATED, variables: () => ({ filter: { appName: anyApp() } }) },
  { name: 'runtimeEvents', query: RUNTIME_EVENTS, variables: () => ({}) },
  { name: 'runtimeEvents(appName)', query: RUNTIME_EVENTS, variables: () => ({ filter: { appName: anyApp() } }) },
  {
    name: 'runtimeEvents(taskStatus)',
    query: RUNTIME_EVENTS,
    variables: () => ({ filter: { taskStatus: ['RUNNING'] } }),
  },
  // Resuming from a sequence seen shortly before: a replay from the buffer, then live events.
  {
    name: 'runtimeEvents(since)',
    query: RUNTIME_EVENTS,
    variables: (tally) => (tally.lastSequence ? { since: tally.lastSequence } : {}),
  },
  {
    name: 'runtimeEvents(appName, since)',
    query: RUNTIME_EVENTS,
    variables: (tally) => ({
      filter: { appName: anyApp() },
      ...(tally.lastSequence ? { since: tally.lastSequence } : {}),
    }),
  },
  // A sequence from before this process: the answer is RESYNC, then live events.
  { name: 'runtimeEvents(stale since)', query: RUNTIME_EVENTS, variables: () => ({ since: 1 }) },
  { name: 'runtimeSnapshot', query: RUNTIME_SNAPSHOT, variables: () => ({}) },
  { name: 'runtimeSnapshot(appName)', query: RUNTIME_SNAPSHOT, variables: () => ({ filter: { appName: anyApp() } }) },
  { name: 'historyAdded', query: HISTORY_ADDED, variables: () => ({}) },
  { name: 'historyAdded(app)', query: HISTORY_ADDED, variables: () => ({ filter: { app: anyApp() } }) },
];

interface ResultLike {
  data?: Record<string, { sequence?: number } | null> | null;
  errors?: readonly { message?: string; extensions?: { code?: string } }[];
}

/** One result of a subscription: counted, its errors counted, its sequence remembered. */
function received(tally: Tally, name: string, result: ResultLike, first: boolean): void {
  tally.events++;
  if (first) tally.answered++;
  if (result.errors?.length) {
    const [error] = result.errors;
    tally.error(`result error (${name})`, `${error?.extensions?.code ?? ''} ${error?.message ?? ''}`);
    return;
  }
  const sequence = result.data?.runtimeEvents?.sequence ?? result.data?.runtimeSnapshot?.sequence;
  if (typeof sequence === 'number' && sequence > tally.lastSequence) tally.lastSequence = sequence;
}

// ── the clients ─────────────────────────────────────────────────────────────────────────────

interface ClientContext {
  url: string;
  tally: Tally;
  lifetimeMs: [number, number];
}

type WsEnding = 'graceful' | 'resubscribe' | 'terminate';

/** A graphql-ws connection with one to three subscriptions, ended the way `ending` says. */
async function wsClient({ url, tally, lifetimeMs }: ClientContext, ending: WsEnding): Promise<void> {
  let socket: WebSocket | undefined;
  let closing = false;
  let onClosed!: () => void;
  const closed = new Promise<void>((resolve) => {
    onClosed = resolve;
  });
  const client = createWsClient({
    url: `${url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: class extends WebSocket {
      constructor(address: string, protocols?: string | string[]) {
        super(address, protocols);
        socket = this;
      }
    },
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: () => {},
  });
  client.on('closed', (event) => {
    if (!closing) tally.error('ws closed by the server', `code ${(event as { code?: number }).code}`);
    onClosed();
  });
  tally.handshaking++;
  const connected = new Promise<void>((resolve) => client.on('connected', () => resolve()));
  void Promise.race([connected, closed]).then(() => tally.handshaking--);
  const subscribe = (subscriptionCase: SubscriptionCase) => {
    tally.subscriptions++;
    let first = true;
    return client.subscribe(
      { query: subscriptionCase.query, variables: subscriptionCase.variables(tally) },
      {
        next: (result) => {
          if (closing) return;
          received(tally, subscriptionCase.name, result as ResultLike, first);
          first = false;
        },
        error: (error) => {
          // A close of the connection reaches every subscription's sink too: the 'closed'
          // listener counts it once, as the connection's error.
          const isClose = typeof error === 'object' && error !== null && 'code' in error;
          if (!closing && !isClose) tally.error(`ws error (${subscriptionCase.name})`, JSON.stringify(error));
        },
        complete: () => {},
      },
    );
  };
  const active = Array.from({ length: 1 + Math.floor(Math.random() * 3) }, () => subscribe(pick(CASES)));
  const lifetime = randomBetween(...lifetimeMs);
  // Lives are counted from the acknowledgement, so that a slow handshake under load does not eat
  // them; half the terminated ones count from the start and may drop during the handshake.
  if (ending !== 'terminate' || Math.random() < 0.5) await Promise.race([connected, closed]);
  if (ending === 'resubscribe') {
    // Unsubscribe one mid-life (a Complete message) and start another on the same connection.
    await Promise.race([delay(lifetime / 2), closed]);
    active.shift()?.();
    active.push(subscribe(pick(CASES)));
    await Promise.race([delay(lifetime / 2), closed]);
  } else {
    await Promise.race([delay(lifetime), closed]);
  }
  closing = true;
  if (ending === 'terminate') {
    tally.abruptDrops++;
    // Destroys the TCP socket at once: no Complete, no close frame.
    socket?.terminate();
  } else {
    for (const dispose of active) dispose();
    void client.dispose();
  }
  await closed;
}

/** A graphql-sse client (distinct connections on /graphql/stream): one subscription, then disposed. */
async function sseClient({ url, tally, lifetimeMs }: ClientContext): Promise<void> {
  const subscriptionCase = pick(CASES);
  let closing = false;
  let first = true;
  let onEnded!: () => void;
  const ended = new Promise<void>((resolve) => {
    onEnded = resolve;
  });
  const client = createSseClient({ url: `${url}/graphql/stream`, retryAttempts: 0 });
  tally.subscriptions++;
  const dispose = client.subscribe(
    { query: subscriptionCase.query, variables: subscriptionCase.variables(tally) },
    {
      next: (result) => {
        if (closing) return;
        received(tally, subscriptionCase.name, result as ResultLike, first);
        first = false;
      },
      error: (error) => {
        if (!closing) tally.error(`sse error (${subscriptionCase.name})`, String(error));
        onEnded();
      },
      complete: () => {
        if (!closing) tally.error(`sse stream ended by the server (${subscriptionCase.name})`, 'complete');
        onEnded();
      },
    },
  );
  await Promise.race([delay(randomBetween(...lifetimeMs)), ended]);
  closing = true;
  dispose();
  client.dispose();
}

/**
 * A raw SSE request (graphql-sse's path, or Yoga's on /graphql) whose TCP socket is reset
 * mid-stream, sometimes before the response has even started.
 */
async function droppedSseRequest({ url, tally, lifetimeMs }: ClientContext): Promise<void> {
  const subscriptionCase = pick(CASES);
  const target = new URL(url);
  const body = JSON.stringify({ query: subscriptionCase.query, variables: subscriptionCase.variables(tally) });
  let dropping = false;
  let first = true;
  let onEnded!: () => void;
  const ended = new Promise<void>((resolve) => {
    onEnded = resolve;
  });
  tally.subscriptions++;
  const req = http.request({
    host: target.hostname,
    port: target.port,
    path: Math.random() < 0.5 ? '/graphql/stream' : '/graphql',
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
  });
  req.on('error', (error) => {
    if (!dropping) tally.error(`raw sse request (${subscriptionCase.name})`, String(error));
    onEnded();
  });
  tally.handshaking++;
  let answered = false;
  const handshakeOver = () => {
    if (!answered) tally.handshaking--;
    answered = true;
  };
  void ended.then(handshakeOver);
  req.on('response', (res) => {
    handshakeOver();
    if (res.statusCode !== 200) tally.error(`raw sse status (${subscriptionCase.name})`, String(res.statusCode));
    let pending = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      pending += chunk;
      const frames = pending.split('\n\n');
      pending = frames.pop() ?? '';
      for (const frame of frames) {
        const data = /^event: next\ndata: (.*)$/m.exec(frame)?.[1];
        if (data === undefined || dropping) continue;
        received(tally, subscriptionCase.name, JSON.parse(data) as ResultLike, first);
        first = false;
      }
    });
    res.on('error', () => {});
    res.on('close', () => {
      if (!dropping) tally.error(`raw sse stream ended by the server (${subscriptionCase.name})`, 'closed');
      onEnded();
    });
  });
  req.end(body);
  await Promise.race([delay(randomBetween(...lifetimeMs)), ended]);
  dropping = true;
  handshakeOver();
  tally.abruptDrops++;
  // A TCP reset, as a crashed client or a dropped network path leaves it.
  if (req.socket) req.socket.resetAndDestroy();
  else req.destroy();
}

/** One client of a random kind, from open to closed. */
async function oneClient(context: ClientContext): Promise<void> {
  const roll = Math.random();
  context.tally.clientOpened();
  try {
    if (roll < 0.25) await wsClient(context, 'graceful');
    else if (roll < 0.4) await wsClient(context, 'resubscribe');
    else if (roll < 0.55) await wsClient(context, 'terminate');
    else if (roll < 0.85) await sseClient(context);
    else await droppedSseRequest(context);
  } catch (error) {
    context.tally.error('client', String(error));
  } finally {
    context.tally.clientEnded();
  }
}

// ── the mutations ───────────────────────────────────────────────────────────────────────────

const PAYLOAD = (success: string) =>
  `__typename ... on ${success} { task { taskId status } } ... on Error { code message }`;
const INSTALL = `mutation SoakInstall($input: InstallAppInput!) { installApp(input: $input) { ${PAYLOAD('InstallAppSuccess')} } }`;
const UNINSTALL = `mutation SoakUninstall($input: UninstallAppInput!) { uninstallApp(input: $input) { ${PAYLOAD('UninstallAppSuccess')} } }`;
const CANCEL = `mutation SoakCancel($input: CancelTaskInput!) { cancelTask(input: $input) { ${PAYLOAD('CancelTaskSuccess')} } }`;

/** Answers of racing mutations on the same apps: expected, never errors. */
const EXPECTED_REFUSALS = new Set(['ConflictError', 'InvalidStateError']);

interface MutationPayload {
  __typename?: string;
  task?: { taskId?: string };
  code?: string;
  message?: string;
}

/** Ids of recently created tasks, for cancelTask. */
const recentTasks: string[] = [];

async function oneMutation(url: string, tally: Tally): Promise<void> {
  const roll = Math.random();
  const app = pick(FREE_APPS);
  const [field, query, input] =
    roll < 0.45 || recentTasks.length === 0
      ? ['installApp', INSTALL, { sourceId: REMOTE_SOURCE, appName: app.appName, version: app.version }]
      : roll < 0.8
        ? ['uninstallApp', UNINSTALL, { sourceId: REMOTE_SOURCE, appName: app.appName }]
        : ['cancelTask', CANCEL, { taskId: pick(recentTasks) }];
  try {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query, variables: { input } }),
    });
    const body = (await response.json()) as { data?: Record<string, MutationPayload>; errors?: { message: string }[] };
    const payload = body.data?.[field];
    if (response.status !== 200 || body.errors?.length || !payload?.__typename) {
      tally.error(`${field} http ${response.status}`, JSON.stringify(body));
    } else if (payload.__typename.endsWith('Success')) {
      tally.outcome(`${field} success`);
      if (payload.task?.taskId && field !== 'cancelTask') {
        recentTasks.push(payload.task.taskId);
        if (recentTasks.length > 50) recentTasks.shift();
      }
    } else if (EXPECTED_REFUSALS.has(payload.__typename)) {
      tally.outcome(`${field} ${payload.__typename}`);
    } else {
      tally.error(`${field} ${payload.__typename}`, `${payload.code ?? ''} ${payload.message ?? ''}`);
    }
  } catch (error) {
    tally.error(`${field} network`, String(error));
  }
}

/** Mutations at `perSecond`, at most MUTATIONS_IN_FLIGHT at once, until `done()`. */
async function mutate(url: string, tally: Tally, perSecond: number, done: () => boolean): Promise<void> {
  const intervalMs = (1000 * MUTATIONS_IN_FLIGHT) / perSecond;
  const worker = async (offset: number) => {
    let next = performance.now() + (offset * intervalMs) / MUTATIONS_IN_FLIGHT;
    while (!done()) {
      await delay(Math.max(0, next - performance.now()));
      next += intervalMs;
      if (!done()) await oneMutation(url, tally);
    }
  };
  await Promise.all(Array.from({ length: MUTATIONS_IN_FLIGHT }, (_, offset) => worker(offset)));
}

// ── phases ──────────────────────────────────────────────────────────────────────────────────

/** Churn and mutations until `done()`; resolves once every client has closed and every mutation answered. */
async function churn(
  context: ClientContext,
  concurrency: number,
  mutationsPerSecond: number,
  done: () => boolean,
): Promise<void> {
  const slot = async () => {
    while (!done()) await oneClient(context);
  };
  await Promise.all([
    ...Array.from({ length: concurrency }, slot),
    mutate(context.url, context.tally, mutationsPerSecond, done),
  ]);
}

interface Settled {
  stats: SoakStats;
  ms: number;
  /** false: the deadline passed with something still open. */
  settled: boolean;
}

/**
 * Polls the server until nothing of the churn is left (no connection, stream, cohort or
 * subscription; the store's listeners back to `listeners`) and the task engine is idle.
 */
async function settle(server: SoakServer, listeners: number): Promise<Settled> {
  const started = performance.now();
  for (;;) {
    const stats = await statsOf(server);
    const clear =
      stats.connections === 0 &&
      stats.streams === 0 &&
      stats.cohorts === 0 &&
      stats.subscriptions === 0 &&
      stats.runtimeStreams === 0 &&
      stats.listeners <= listeners &&
      stats.engineRunning === 0;
    const ms = performance.now() - started;
    if (clear || ms > SETTLE_TIMEOUT_MS) return { stats, ms, settled: clear };
    await delay(SETTLE_POLL_MS);
  }
}

/** What the churn left behind: every open thing is a leak (after the settle deadline). */
function leaks(stats: SoakStats, listenersBefore: number) {
  return {
    connections: stats.connections,
    streams: stats.streams,
    cohorts: stats.cohorts,
    subscriptions: stats.subscriptions,
    runtimeStreams: stats.runtimeStreams,
    listeners: Math.max(0, stats.listeners - listenersBefore),
  };
}

const sumOf = (record: Record<string, number>) => Object.values(record).reduce((sum, value) => sum + value, 0);
const mb = (bytes: number) => round(bytes / MB, 1);

// ── the benchmark ───────────────────────────────────────────────────────────────────────────

export async function soak(options: SoakOptions): Promise<BenchResult> {
  const log = options.log ?? (() => {});
  const concurrency = options.concurrency ?? 200;
  const lifetimeMs = options.lifetimeMs ?? [200, 8000];
  const eventBuffer = options.eventBuffer ?? 1000;
  const mutationsPerSecond = options.mutationsPerSecond ?? 20;
  const heapSamples = options.heapSamples ?? 10;
  const dir = mkdtempSync(path.join(tmpdir(), 'market-bench-soak-'));
  const databaseUrl = `file:${path.join(dir, 'soak.db')}`;
  let server: SoakServer | undefined;
  const onSignal = () => {
    server?.kill();
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await migrateDatabase(databaseUrl);
    // Twice the peak: room for sockets the server has not yet seen close, while a budget that
    // never released its slots would still run out within the first minute of churn.
    const started = await startSoakServer(databaseUrl, concurrency * 2, eventBuffer, options.cpuProfDir);
    server = started.server;
    const running = server;
    log(`  server at ${started.url}; runtime event buffer ${started.eventBuffer}`);
    const initial = await statsOf(running);

    // Warm-up: the same load until the store's ring buffer of events is full.
    const warmTally = new Tally();
    const warmStarted = performance.now();
    let warmFull = false;
    const warmWatch = (async () => {
      while (!warmFull && performance.now() - warmStarted < WARMUP_TIMEOUT_MS) {
        await delay(1000);
        const stats = await statsOf(running);
        warmFull = stats.sequence - started.firstSequence >= started.eventBuffer;
      }
    })();
    await churn({ url: started.url, tally: warmTally, lifetimeMs }, concurrency, mutationsPerSecond, () => {
      return warmFull || performance.now() - warmStarted > WARMUP_TIMEOUT_MS;
    });
    await warmWatch;
    const warmupMs = performance.now() - warmStarted;
    const warmSettle = await settle(running, initial.listeners);
    const before = await collectGarbageIn(running);
    const listenersBefore = warmSettle.stats.listeners;
    log(
      `  warm-up: ${(warmupMs / 1000).toFixed(1)} s, ${warmTally.clients} clients, ${warmTally.mutations} mutations, ${warmTally.errors} errors, ` +
        `${warmSettle.stats.sequence - started.firstSequence} runtime events; settled in ${Math.round(warmSettle.ms)} ms; heap ${mb(before.heapUsed)} MB, RSS ${mb(before.rss)} MB`,
    );

    // The soak.
    const tally = new Tally();
    const soakStarted = performance.now();
    const sequenceBefore = warmSettle.stats.sequence;
    const deadline = soakStarted + options.durationMs;
    const done = () => performance.now() >= deadline;
    const trend: { atS: number; heapMB: number; rssMB: number; subscriptions: number; open: number }[] = [];
    let peakServerOpen = 0;
    let peakServerSubscriptions = 0;
    const loopBusy: number[] = [];
    const sampler = (async () => {
      const every = options.durationMs / heapSamples;
      let nextSample = soakStarted + every;
      while (!done()) {
        await delay(Math.min(1000, Math.max(0, deadline - performance.now())));
        const stats = await statsOf(running);
        peakServerOpen = Math.max(peakServerOpen, stats.connections + stats.streams);
        peakServerSubscriptions = Math.max(peakServerSubscriptions, stats.subscriptions);
        loopBusy.push(stats.eventLoopUtilization);
        if (performance.now() >= nextSample && !done()) {
          nextSample += every;
          const memory = await collectGarbageIn(running);
          trend.push({
            atS: Math.round((performance.now() - soakStarted) / 1000),
            heapMB: mb(memory.heapUsed),
            rssMB: mb(memory.rss),
            subscriptions: stats.subscriptions,
            open: stats.connections + stats.streams,
          });
          log(
            `  ${trend.at(-1)?.atS} s: heap ${trend.at(-1)?.heapMB} MB after GC, ${stats.connections + stats.streams} open, ${stats.subscriptions} subscriptions, ${tally.alive} clients alive (${tally.handshaking} in handshake), server event loop ${Math.round(stats.eventLoopUtilization * 100)}% busy, ${tally.events} events so far`,
          );
        }
      }
    })();
    await churn({ url: started.url, tally, lifetimeMs }, concurrency, mutationsPerSecond, done);
    await sampler;
    const soakMs = performance.now() - soakStarted;
    const finalSettle = await settle(running, listenersBefore);
    const after = await collectGarbageIn(running);
    const left = leaks(finalSettle.stats, listenersBefore);
    const leaked = sumOf(left);
    log(
      `  soak: ${(soakMs / 1000).toFixed(1)} s, ${tally.clients} clients, ${tally.subscriptions} subscriptions, ${tally.events} events, ${tally.mutations} mutations, ${tally.errors} errors; ` +
        `settled in ${Math.round(finalSettle.ms)} ms; heap ${mb(after.heapUsed)} MB, RSS ${mb(after.rss)} MB`,
    );

    const ratio = after.heapUsed / before.heapUsed;
    const target = { op: '<=' as const, value: SOAK_TARGET };
    const warmupLeaked = warmSettle.settled ? 0 : sumOf(leaks(warmSettle.stats, initial.listeners));
    const errors = tally.errors + warmTally.errors + leaked + warmupLeaked + (warmFull ? 0 : 1);
    const runtimeEvents = finalSettle.stats.sequence - sequenceBefore;
    return {
      name: 'g10',
      title: 'Soak: heap after subscribe/unsubscribe churn and mutations ÷ heap before',
      description:
        'G10: a soak with subscribe/unsubscribe churn and mutations: heap after a forced GC ≤ 1.05× before, zero leaked listeners.',
      subject: { label: 'server heap used after forced GC, after the soak', value: mb(after.heapUsed), unit: 'MB' },
      baseline: { label: 'server heap used after forced GC, before the soak', value: mb(before.heapUsed), unit: 'MB' },
      ratio,
      target,
      pass: errors === 0 && meetsTarget(ratio, target),
      errors,
      metrics: {
        duration: `${options.durationMs / 1000} s of new clients and mutations, ${(soakMs / 1000).toFixed(1)} s until the last client closed (warm-up ${(warmupMs / 1000).toFixed(1)} s before it)`,
        'clients opened (graphql-ws, graphql-sse, raw SSE)': String(tally.clients),
        'subscriptions opened / answered at least once': `${tally.subscriptions} / ${tally.answered}`,
        'connections dropped abruptly (socket terminated or reset mid-stream)': String(tally.abruptDrops),
        'events received by clients': String(tally.events),
        'runtime events emitted by the store during the soak': String(runtimeEvents),
        mutations: `${tally.mutations} (${Object.entries(tally.mutationOutcomes)
          .sort()
          .map(([kind, count]) => `${kind} ${count}`)
          .join(', ')})`,
        'peak concurrent clients (client side) / open connections+streams (server, sampled each second) / subscriptions (server)': `${tally.peakAlive} / ${peakServerOpen} / ${peakServerSubscriptions}`,
        'server event loop busy during the soak (mean of 1 s samples)': `${Math.round((loopBusy.reduce((sum, value) => sum + value, 0) / Math.max(1, loopBusy.length)) * 100)}%`,
        'RSS before / after': `${mb(before.rss)} MB / ${mb(after.rss)} MB`,
        'heap total before / after': `${mb(before.heapTotal)} MB / ${mb(after.heapTotal)} MB`,
        'heap after GC during the soak (MB)': trend.map((sample) => `${sample.atS}s ${sample.heapMB}`).join(', '),
        'left behind after the soak (connections, SSE streams, cohorts, subscriptions, runtime streams, extra store listeners)': `${left.connections}, ${left.streams}, ${left.cohorts}, ${left.subscriptions}, ${left.runtimeStreams}, ${left.listeners} (store listeners ${finalSettle.stats.listeners}, before ${listenersBefore})`,
        'settle time after the load stopped': `${Math.round(finalSettle.ms)} ms${finalSettle.settled ? '' : ' (DEADLINE PASSED)'}`,
        errors: tally.errors
          ? Object.entries(tally.errorKinds)
              .map(([kind, count]) => `${kind} ${count}`)
              .join(', ')
          : '0',
        settings: `${concurrency} client slots, lifetimes ${lifetimeMs[0]}–${lifetimeMs[1]} ms, ${mutationsPerSecond} mutations/s (${MUTATIONS_IN_FLIGHT} in flight at most) on ${FREE_APPS.length} free demo apps`,
      },
      notes: [
        'Subject: the real server (buildApp) in its own process with --expose-gc, over a fresh migrated SQLite file, DEMO_DATA=1, LOG_LEVEL=silent, mutation rate limit off, SIMULATED_STEP_MS=20, MAX_CONNECTIONS_PER_USER twice the client slots (so a budget that never releases would refuse clients, counted as errors). Heap figures are process.memoryUsage().heapUsed after three forced full collections.',
        'Clients: graphql-ws connections (closed gracefully; or one subscription completed and another started mid-life; or the socket terminated without a close frame), graphql-sse clients on /graphql/stream (disposed), raw SSE requests on /graphql/stream or /graphql reset mid-stream (TCP RST). Subscriptions: taskUpdated, appUpdated, runtimeEvents (with and without a filter, with a recent and a stale `since`), runtimeSnapshot, historyAdded.',
        'Warm-up: the same load until the runtime store had emitted at least RUNTIME_EVENT_BUFFER events (its ring buffer full, so its growth is not taken for a leak), then all clients closed and the server settled before the baseline heap. After the soak the same settle (polled each 50 ms, 60 s deadline): anything still open then is a leak and counts as an error.',
        'Errors: a subscription error or a GraphQL error in a result, a stream or connection the server ended, a refused connection, a mutation answer other than success, ConflictError or InvalidStateError (those two are the expected answers of racing mutations), anything left behind.',
        ...(warmFull ? [] : [`ERROR: the warm-up did not fill the event buffer within ${WARMUP_TIMEOUT_MS / 1000} s`]),
        ...(tally.errors || warmTally.errors
          ? [
              `ERRORS: ${JSON.stringify({ soak: tally.errorKinds, warmup: warmTally.errorKinds })}; samples: ${[...tally.errorSamples, ...warmTally.errorSamples].join(' | ')}`,
            ]
          : []),
      ],
      details: {
        settings: { durationMs: options.durationMs, concurrency, lifetimeMs, mutationsPerSecond, heapSamples },
        before,
        after,
        trend,
        left,
        warmup: {
          ms: warmupMs,
          clients: warmTally.clients,
          mutations: warmTally.mutations,
          errors: warmTally.errorKinds,
          settleMs: warmSettle.ms,
          settled: warmSettle.settled,
        },
        soak: {
          clients: tally.clients,
          subscriptions: tally.subscriptions,
          answered: tally.answered,
          events: tally.events,
          abruptDrops: tally.abruptDrops,
          mutations: tally.mutationOutcomes,
          errors: tally.errorKinds,
          errorSamples: tally.errorSamples,
          settleMs: finalSettle.ms,
          finalStats: finalSettle.stats,
        },
      },
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
