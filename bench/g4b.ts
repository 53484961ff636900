/**
 * G4b of issue 11: the cost of a change must not grow with the store or with the dashboards
 * watching it. Accepted `installApp` mutations per second at a 100k-app fleet with
 *   (a) no `runtimeEvents` subscriber,
 *   (b) one admin dashboard (unfiltered `runtimeEvents`, which sees every event), and
 *   (c) 1,000 per-user dashboards: 1,000 distinct users, so 1,000 cohorts,
 * reported as b ÷ a (target ≥ 0.8) and c ÷ a (target ≥ 0.5).
 *
 * Subject: the real server (snapshot-server.ts, `buildApp`, DEMO_DATA=0) over a fleet seeded with
 * the raw driver (bench/lib/seed-fleet.ts) plus catalogue entries for the installs, pinned to
 * core 0; this process (load and dashboards) pinned to core 1. Authentication is the gateway
 * header, so each request and each WebSocket names its user. The installs are spread round-robin
 * over the same users as the per-user dashboards (in every scenario, so all three do identical
 * work): in (c) every dashboard receives the events of its own user's installs, in (b) the admin
 * receives them all. Dashboards are real graphql-ws clients (`createClient` over `ws`) that
 * receive, parse and tally every event; the events each should have seen are checked after the
 * engine has drained (a task accepted but never seen by the dashboard that should show it is an
 * error).
 *
 * Load: closed-loop keep-alive HTTP clients (as install-rate.ts), each install its own catalogue
 * app. Repetitions are interleaved (the scenario order rotates each repetition) after a warm-up,
 * and the engine's backlog is drained after every window so each starts on a quiet server; the
 * dashboards of a scenario connect before its window (the server is asked over IPC until it holds
 * every subscription) and leave after it.
 */
import http from 'node:http';
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { CpuSample } from './lib/fanout-protocol.js';
import { INSTALL_MUTATION } from './lib/install-protocol.js';
import { type BenchResult, meetsTarget } from './lib/report.js';
import { fleetUser, INSTALL_SOURCE, INSTALL_VERSION, installAppName } from './lib/seed-fleet.js';
import { median, percentile, round, runClosedLoop } from './lib/stats.js';
import { CLIENT_CORE, type FleetServer, fleetDatabase, launchFleetServer, pinSelf, postGraphQL } from './snapshot.js';
import { ADMIN_USER, type ServerDrain, USER_HEADER } from './snapshot-server.js';

export interface G4bOptions {
  apps: number;
  /** Per-user dashboards of scenario (c), one user each. */
  dashboards: number;
  /** Closed-loop install clients. */
  concurrency: number;
  warmup: number;
  /** Installs per measured window. */
  perRep: number;
  reps: number;
  log?: (line: string) => void;
}

const TARGETS = { one: 0.8, many: 0.5 } as const;
const DRAIN_TIMEOUT_MS = 300_000;
/** How long dashboards may take, after the drain, to show the last accepted tasks. */
const DELIVERY_TIMEOUT_MS = 30_000;
const MAX_SAMPLES = 5;

/** What a dashboard shows of each change: the event, its summary, the app's stage, the task's progress. */
const DASHBOARD_SUBSCRIPTION = `subscription BenchDashboard {
  runtimeEvents {
    sequence kind
    summary { totalApps healthyApps unhealthyApps totalTasks pendingTasks runningTasks failedTasks }
    app { userId sourceId appName stage health }
    task { taskId userId appName status progress }
  }
}`;

type Scenario = 'none' | 'one' | 'many';

interface Window {
  scenario: Scenario;
  perSecond: number;
  ok: number;
  errors: number;
  wallMs: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuMicrosPerInstall: number;
  /** This process (load + dashboards) CPU ÷ wall time of the window: near 1 would mean the load side limits. */
  clientCpuShare: number;
  drain: ServerDrain;
  dashboards: number;
  cohorts: number;
  /** Events received by all dashboards during the window and the drain. */
  events: number;
  /** Accepted tasks the dashboard that should show them never showed. */
  unseenTasks: number;
  resyncs: number;
}

interface Outcomes {
  errors: number;
  kinds: Record<string, number>;
  samples: string[];
}

function record(outcomes: Outcomes, kind: string, detail: string): void {
  outcomes.errors += 1;
  outcomes.kinds[kind] = (outcomes.kinds[kind] ?? 0) + 1;
  if (outcomes.samples.length < MAX_SAMPLES) outcomes.samples.push(`${kind}: ${detail.slice(0, 300)}`);
}

interface DashboardEvent {
  kind?: string;
  task?: { taskId?: string } | null;
}

/** A set of live dashboards: graphql-ws clients, each one user, tallying every task id it is shown. */
class Dashboards {
  readonly clients: Client[] = [];
  /** Task ids shown, per user. */
  readonly seen = new Map<string, Set<string>>();
  events = 0;
  resyncs = 0;
  private onEvent: (() => void) | null = null;

  constructor(
    private readonly url: URL,
    private readonly outcomes: Outcomes,
  ) {}

  /** Connects one client per user, `batch` handshakes at a time, each subscribed to the dashboard. */
  async open(users: string[], batch = 100): Promise<void> {
    for (let start = 0; start < users.length; start += batch) {
      await Promise.all(users.slice(start, start + batch).map((user) => this.openOne(user)));
    }
  }

  private openOne(user: string): Promise<void> {
    const headers = { [USER_HEADER]: user };
    // The gateway header travels on the upgrade request, where the server reads it.
    class GatewaySocket extends WebSocket {
      constructor(address: string, protocols?: string | string[]) {
        super(address, protocols, { headers });
      }
    }
    const seen = new Set<string>();
    this.seen.set(user, seen);
    return new Promise((resolve, reject) => {
      const client = createClient({
        url: `ws://${this.url.host}/graphql`,
        webSocketImpl: GatewaySocket,
        retryAttempts: 0,
        lazy: false,
        onNonLazyError: (error) => reject(error),
        on: { connected: () => resolve() },
      });
      this.clients.push(client);
      client.subscribe<{ runtimeEvents: DashboardEvent }>(
        { query: DASHBOARD_SUBSCRIPTION },
        {
          next: (result) => {
            this.events += 1;
            if (result.errors?.length) record(this.outcomes, 'subscription error', JSON.stringify(result.errors));
            const event = result.data?.runtimeEvents;
            if (event?.kind === 'RESYNC') this.resyncs += 1;
            const taskId = event?.task?.taskId;
            if (taskId) seen.add(taskId);
            this.onEvent?.();
          },
          error: (error) => record(this.outcomes, 'subscription failed', String(error)),
          complete: () => {},
        },
      );
    });
  }

  /** Resolves once every (user, taskId) in `expected` was shown to that user's dashboard, or after `timeoutMs`. */
  async waitForTasks(expected: Map<string, string[]>, timeoutMs: number): Promise<number> {
    const unseen = () => {
      let missing = 0;
      for (const [user, taskIds] of expected) {
        const seen = this.seen.get(user);
        for (const taskId of taskIds) if (!seen?.has(taskId)) missing += 1;
      }
      return missing;
    };
    if (unseen() === 0) return 0;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.onEvent = null;
        resolve(unseen());
      }, timeoutMs);
      this.onEvent = () => {
        if (unseen() > 0) return;
        clearTimeout(timer);
        this.onEvent = null;
        resolve(0);
      };
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.splice(0).map((client) => client.dispose()));
  }
}

interface Subscriptions {
  connections: number;
  cohorts: number;
  subscriptions: number;
}

/** Asks the server until it holds exactly `subscriptions` subscriptions (a condition, with a deadline). */
async function untilSubscriptions(
  server: FleetServer,
  subscriptions: number,
  timeoutMs = 60_000,
): Promise<Subscriptions> {
  const started = performance.now();
  for (;;) {
    const stats = await server.child.request<Subscriptions>({ type: 'subscriptions' });
    if (stats.subscriptions === subscriptions) return stats;
    if (performance.now() - started > timeoutMs) {
      throw new Error(`the server holds ${stats.subscriptions} subscriptions, expected ${subscriptions}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const cpuMicros = () => {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
};

export async function g4b(options: G4bOptions): Promise<BenchResult[]> {
  const log = options.log ?? (() => {});
  const { apps, dashboards, concurrency, warmup, perRep, reps } = options;
  const scenarios: Scenario[] = ['none', 'one', 'many'];
  const installs = warmup + reps * perRep * scenarios.length;
  const users = Array.from({ length: dashboards }, (_, index) => fleetUser(index));
  const restore = pinSelf(CLIENT_CORE);
  const { url: databaseUrl, fleet, cleanup } = await fleetDatabase(apps, installs);
  let server: FleetServer | undefined;
  let open: Dashboards | undefined;
  const outcomes: Outcomes = { errors: 0, kinds: {}, samples: [] };
  try {
    server = await launchFleetServer(databaseUrl, apps, dashboards + 1000);
    const running = server;
    log(
      `  ${apps} apps seeded in ${fleet.ms.toFixed(0)} ms (+${installs} catalogue apps to install); server ready in ${server.startupMs.toFixed(0)} ms`,
    );
    let nextApp = 0;

    async function install(agent: http.Agent, index: number, latencies: number[], accepted: Map<string, string[]>) {
      const user = users[index % users.length] as string;
      const appName = installAppName(index);
      const body = JSON.stringify({
        query: INSTALL_MUTATION,
        operationName: 'BenchInstall',
        variables: { input: { sourceId: INSTALL_SOURCE, appName, version: INSTALL_VERSION } },
      });
      try {
        const reply = await postGraphQL(agent, running.url, user, body);
        const result = (JSON.parse(reply.text) as { data?: { installApp?: Record<string, unknown> } }).data?.installApp;
        const task = result?.task as { taskId?: string; appName?: string } | undefined;
        if (
          reply.status !== 200 ||
          result?.__typename !== 'InstallAppSuccess' ||
          task?.appName !== appName ||
          !task.taskId
        ) {
          record(outcomes, `install ${reply.status} ${String(result?.__typename)}`, reply.text);
          return;
        }
        latencies.push(reply.ms);
        const mine = accepted.get(user) ?? [];
        mine.push(task.taskId);
        accepted.set(user, mine);
      } catch (error) {
        record(outcomes, 'network', String(error));
      }
    }

    async function runWindow(scenario: Scenario, count: number): Promise<Window> {
      const dashboardUsers = scenario === 'none' ? [] : scenario === 'one' ? [ADMIN_USER] : users;
      open = new Dashboards(running.url, outcomes);
      await open.open(dashboardUsers);
      const stats = await untilSubscriptions(running, dashboardUsers.length);
      const first = nextApp;
      nextApp += count;
      if (nextApp > installs) throw new Error(`only ${installs} catalogue apps were seeded`);
      const latencies: number[] = [];
      const accepted = new Map<string, string[]>();
      const errorsBefore = outcomes.errors;
      // Fresh keep-alive connections per window (idle sockets would meet the server's keep-alive timeout).
      const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
      const serverBefore = await running.child.request<CpuSample>({ type: 'cpu' });
      const clientBefore = cpuMicros();
      const t0 = performance.now();
      await runClosedLoop(count, concurrency, (k) => install(agent, first + k, latencies, accepted));
      const wallMs = performance.now() - t0;
      const clientUsed = cpuMicros() - clientBefore;
      const serverAfter = await running.child.request<CpuSample>({ type: 'cpu' });
      agent.destroy();
      const drain = await running.child.request<ServerDrain>({ type: 'drain', timeoutMs: DRAIN_TIMEOUT_MS });
      // Which dashboard must have shown which accepted task: the admin all, a user their own.
      const expected =
        scenario === 'none'
          ? new Map<string, string[]>()
          : scenario === 'one'
            ? new Map([[ADMIN_USER, [...accepted.values()].flat()]])
            : accepted;
      const unseenTasks = await open.waitForTasks(expected, DELIVERY_TIMEOUT_MS);
      if (unseenTasks > 0)
        record(outcomes, 'unseen tasks', `${scenario}: ${unseenTasks} accepted tasks never shown on their dashboard`);
      const ok = latencies.length;
      const window: Window = {
        scenario,
        perSecond: (ok / wallMs) * 1000,
        ok,
        errors: outcomes.errors - errorsBefore,
        wallMs: round(wallMs, 1),
        p50Ms: round(percentile(latencies, 50), 2),
        p99Ms: round(percentile(latencies, 99), 2),
        serverCpuMicrosPerInstall: round((serverAfter.cpuMicros - serverBefore.cpuMicros) / Math.max(1, ok), 1),
        clientCpuShare: round(clientUsed / 1000 / wallMs, 3),
        drain,
        dashboards: dashboardUsers.length,
        cohorts: stats.cohorts,
        events: open.events,
        unseenTasks,
        resyncs: open.resyncs,
      };
      await open.close();
      open = undefined;
      await untilSubscriptions(running, 0);
      return window;
    }

    const warm = await runWindow('none', warmup);
    log(`  warm-up: ${warm.ok}/${warmup} accepted, ${warm.perSecond.toFixed(0)}/s`);
    const windows: Window[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const order = scenarios.map((_, i) => scenarios[(i + rep) % scenarios.length] as Scenario);
      const line: string[] = [];
      for (const scenario of order) {
        const window = await runWindow(scenario, perRep);
        windows.push(window);
        line.push(
          `${scenario} ${window.perSecond.toFixed(0)}/s (p99 ${window.p99Ms} ms, ${window.events} events to ${window.dashboards} dashboards in ${window.cohorts} cohorts, drain ${window.drain.ms.toFixed(0)} ms)`,
        );
      }
      log(`  rep ${rep + 1}/${reps}: ${line.join('; ')}`);
    }
    const taskCounts = await running.child.request<Record<string, number>>({ type: 'taskCounts' });
    const notCompleted = Object.entries(taskCounts)
      .filter(([status]) => status !== 'COMPLETED')
      .reduce((sum, [, count]) => sum + count, 0);
    if (notCompleted > 0) record(outcomes, 'engine', `accepted installs not COMPLETED: ${JSON.stringify(taskCounts)}`);
    return results(windows, options, { fleetMs: fleet.ms, startupMs: server.startupMs, taskCounts, outcomes });
  } finally {
    await open?.close();
    await server?.child.stop();
    cleanup();
    restore();
  }
}

function results(
  windows: Window[],
  options: G4bOptions,
  extra: { fleetMs: number; startupMs: number; taskCounts: Record<string, number>; outcomes: Outcomes },
): BenchResult[] {
  const of = (scenario: Scenario) => windows.filter((window) => window.scenario === scenario);
  const rate = (scenario: Scenario) => median(of(scenario).map((window) => window.perSecond));
  const none = rate('none');
  const size = options.apps.toLocaleString('en-US');
  const describe = (scenario: Scenario) => {
    const list = of(scenario);
    return {
      'rates per rep': list.map((w) => `${w.perSecond.toFixed(1)}/s`).join(', '),
      'install latency p50 / p99 (median over reps)': `${median(list.map((w) => w.p50Ms)).toFixed(1)} / ${median(list.map((w) => w.p99Ms)).toFixed(1)} ms`,
      'server CPU per accepted install (median)': `${median(list.map((w) => w.serverCpuMicrosPerInstall)).toFixed(0)} µs`,
      'load-side CPU share of its core (load + dashboards, median)': median(list.map((w) => w.clientCpuShare)).toFixed(
        2,
      ),
      'engine drain after the window (median)': `${median(list.map((w) => w.drain.ms)).toFixed(0)} ms for ${median(list.map((w) => w.drain.backlog))} tasks`,
      'dashboards / cohorts / events received per window (median)': `${list[0]?.dashboards ?? 0} / ${median(list.map((w) => w.cohorts))} / ${median(list.map((w) => w.events))}`,
      'accepted tasks never shown on their dashboard / RESYNC events': `${list.reduce((s, w) => s + w.unseenTasks, 0)} / ${list.reduce((s, w) => s + w.resyncs, 0)}`,
    };
  };
  const settings = `Fleet ${size} apps; ${options.concurrency} closed-loop install clients; warm-up ${options.warmup}; ${options.reps} interleaved reps × ${options.perRep} installs per scenario (order rotating); installs round-robin over ${options.dashboards} users, so ${Math.min(options.perRep, options.dashboards)} of the per-user dashboards get their own installs' events in a window (every dashboard's cohort is still one the server must consider for every change).`;
  const notes = [
    'Subject: the real server (buildApp, DEMO_DATA=0, SIMULATED_STEP_MS=0, MUTATION_RATE_PER_S=0, gateway-header auth) in its own process pinned to core 0, over a fleet written with better-sqlite3 before start (bench/lib/seed-fleet.ts); load and dashboards in this process, pinned to core 1.',
    `Installs are spread round-robin over the ${options.dashboards} per-user dashboard users in every scenario, so the three scenarios do the same work: in (c) each user's dashboard receives its own installs' events; the admin dashboard of (b) receives every event. Dashboards subscribe to runtimeEvents with the event's summary, app and task (graphql-ws createClient over ws, each user named by the gateway header on the upgrade), parse every result and record the task ids shown; after the engine drained, every accepted task must have been shown on the dashboard that should show it (else counted as an error).`,
    'Rates: accepted installApp (InstallAppSuccess for the requested app) per second over the window, median over repetitions; the engine runs the accepted tasks during the window as in production and its backlog is drained (not timed) after each window. The load-side CPU share shows whether this process could have limited the rate (near 1.0 = saturated).',
    settings,
    ...(extra.outcomes.errors
      ? [`ERRORS: ${JSON.stringify(extra.outcomes.kinds)}; samples: ${extra.outcomes.samples.join(' | ')}`]
      : []),
  ];
  const details = {
    windows,
    fleetSeedMs: extra.fleetMs,
    startupMs: extra.startupMs,
    taskCounts: extra.taskCounts,
    errorKinds: extra.outcomes.kinds,
    errorSamples: extra.outcomes.samples,
  };
  const make = (name: string, scenario: Scenario, target: number, label: string): BenchResult => {
    const subject = rate(scenario);
    const ratio = subject / none;
    const t = { op: '>=' as const, value: target };
    const errors = extra.outcomes.errors;
    return {
      name,
      title: `Accepted installApp/s at ${size} apps with ${label} ÷ with no subscriber`,
      description: `G4b: accepted installApp/s with ${label} at 100k apps ≥ ${target}× with none (the cost of a change does not grow with the store).`,
      subject: { label: `accepted installApp/s with ${label} (median)`, value: subject, unit: 'installs/s' },
      baseline: { label: 'accepted installApp/s with no subscriber (median)', value: none, unit: 'installs/s' },
      ratio,
      target: t,
      pass: errors === 0 && meetsTarget(ratio, t),
      errors,
      metrics: {
        'CPU-time ratio (server CPU per install with none ÷ with; less sensitive to other load on the machine)': (
          median(of('none').map((w) => w.serverCpuMicrosPerInstall)) /
          median(of(scenario).map((w) => w.serverCpuMicrosPerInstall))
        ).toFixed(3),
        'per-rep ratios (same rep)': of(scenario)
          .map((window, i) => (window.perSecond / (of('none')[i]?.perSecond ?? Number.NaN)).toFixed(3))
          .join(', '),
        ...Object.fromEntries(Object.entries(describe(scenario)).map(([k, v]) => [`with: ${k}`, v])),
        ...Object.fromEntries(
          Object.entries(describe('none'))
            .slice(0, 5)
            .map(([k, v]) => [`none: ${k}`, v]),
        ),
        'engine outcome of accepted installs': Object.entries(extra.taskCounts)
          .map(([status, count]) => `${status} ${count}`)
          .join(', '),
      },
      notes,
      details,
    };
  };
  return [
    make('g4b-one', 'one', TARGETS.one, 'one admin runtimeEvents dashboard'),
    make(
      `g4b-${options.dashboards}`,
      'many',
      TARGETS.many,
      `${options.dashboards.toLocaleString('en-US')} per-user runtimeEvents dashboards`,
    ),
  ];
}
