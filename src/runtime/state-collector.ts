import type { ChartRepo } from '../adapters/chart-repo/port.js';
import { failureMessage } from '../db/availability.js';
import type { Db } from '../db/client.js';
import { type DriverSql, driverSqlOf } from '../db/driver-sql.js';
import { findAppStates } from '../db/hot-path-sql.js';
import { activeRuntimeTasks, appStatePages, latestFinishedRuntimeTasks, runtimeTasks } from '../db/state-reads.js';
import { type AppKey, appKeyString } from '../domain/app-key.js';
import type { EventBus } from '../events/change-feed.js';
import type { Logger } from '../platform/logger.js';
import { joinCluster } from './cluster-join.js';
import { chartRepoComponent, component, instanceComponentName, notRunYet, stoppedComponents } from './components.js';
import type { SweepOrder } from './instance-sweep.js';
import { LastWriters } from './last-writers.js';
import { RuntimeApplier } from './runtime-applier.js';
import { eventBound, type RuntimeChange, type RuntimeEntries, type RuntimeLog } from './runtime-change.js';
import { SourceChecks } from './source-checks.js';
import { type ComponentStatus, RECENT_FINISHED_TASKS, type StateStore } from './state-store.js';
import { StoreBarrier } from './store-barrier.js';
import { takeFirst } from './take-first.js';

/** Most tasks, and most apps, one read-back statement asks for (each costs bound parameters). */
const READ_BATCH = 200;

/** One poll-only source: it reports components (and may update the store itself). */
export interface PollSource {
  name: string;
  /**
   * `cluster`: what it reports is the cluster's, not this process's (a job only the leader runs):
   * in cluster mode only the leader collects it, and shows it without the `@<instance>` suffix.
   * @default process
   */
  scope?: 'process' | 'cluster';
  collect(): Promise<Omit<ComponentStatus, 'lastCheck'>[]>;
}

export interface CollectorOptions {
  intervalMs: number;
  /** A source that has not answered after this long counts as failed for this cycle. */
  sourceTimeoutMs: number;
  /** Told what the store holds of the announced changes, for read-your-writes (store-barrier.ts). */
  barrier?: StoreBarrier;
}

/**
 * Cluster mode: the collector's changes go through the change log, and it applies every
 * instance's changes as they come back from it, with their sequences.
 */
export interface CollectorCluster {
  log: RuntimeLog;
  entries: RuntimeEntries;
  /** This instance's name: its components are shown as `<component>@<instance>`. */
  instance: string;
  /**
   * Whether this instance leads: only the leader collects the `cluster` sources and the chart
   * repo, and a new leader collects at once.
   */
  leader: { readonly isLeader: boolean; onChange(listener: (leading: boolean) => void): () => void };
  /** RUNTIME_EVENT_BUFFER: the most events taken over from the cluster at start. */
  eventBuffer: number;
  /** Settings every instance must share, shown on its `collector` (differingSettings compares them). */
  settings: Record<string, number>;
  /** INSTANCE_SILENCE_MS and STOPPED_COMPONENT_RETENTION_MS, for the leader's sweep orders. */
  sweep: Omit<SweepOrder, 'at'>;
  /** The database's clock (DatabaseClock): `lastCheck` and sweep orders' `at` are compared across instances. */
  clock: { now(): number };
}

/**
 * Fills the StateStore. Internal changes (the task engine, app-state events, mutations) are
 * announced on the event bus, and the collector reads the changed rows back (see refreshStale).
 * Poll-only sources (component health, chart repo) are collected at start and every
 * `intervalMs`, each isolated: one that fails, hangs or returns garbage shows as an unhealthy
 * component and never stops the others.
 */
export class StateCollector {
  private timer: NodeJS.Timeout | undefined;
  private stopFollowingLeader = () => {};
  private readonly listening: (() => void)[] = [];
  /** The resyncs asked for, in order (see queueResync). */
  private resyncing: Promise<void> = Promise.resolve();
  private cycle: Promise<void> | null = null;
  private lastCycle: { at: Date; durationMs: number; errors: Record<string, string> } | null = null;
  private readonly checks: SourceChecks;
  /** Each poll source's last run: how long it took and whether it answered (read by the metrics). */
  readonly sourceRuns = new Map<string, { seconds: number; ok: boolean }>();
  /**
   * Announced changes not read back yet, by task id and by app key string, each with when it was
   * first announced (0: unknown), which its read-back carries (RuntimeChange `notedAt`).
   */
  private readonly staleTasks = new Map<string, { taskId: string; noted: number }>();
  private readonly staleApps = new Map<string, { key: AppKey; noted: number }>();
  /** The read-back loop while it runs. */
  private refreshing: Promise<void> | null = null;
  /** Read-backs wait for the initial load: it may have read older rows than they would. */
  private loaded = false;
  private readonly applier: RuntimeApplier;
  private readonly sql: DriverSql; // read-backs and the load at start: on the driver (db/driver-sql.ts)
  private readonly lastWriters = new LastWriters();
  /** This instance's own components by their plain names (cluster mode), told STOPPED at stop(). */
  private readonly ownComponents = new Set<string>();
  private readonly barrier: StoreBarrier;

  /** `bus`: this instance's own announcements (in cluster mode the others' come as runtime changes). */
  constructor(
    private readonly db: Db,
    private readonly store: StateStore,
    private readonly bus: EventBus,
    private readonly sources: PollSource[],
    private readonly chartRepo: ChartRepo | null,
    private readonly logger: Logger,
    private readonly options: CollectorOptions,
    private readonly cluster: CollectorCluster | null = null,
  ) {
    this.applier = new RuntimeApplier(store);
    this.checks = new SourceChecks(options.sourceTimeoutMs, logger);
    this.sql = driverSqlOf(db);
    this.barrier = options.barrier ?? new StoreBarrier();
  }

  async start(): Promise<void> {
    // Listening before the load: a change committed while it runs is read back after it.
    const failed = (error: unknown) => this.logger.error({ err: error }, 'could not take a change announcement');
    this.listening.push(
      this.bus.listen('task:updated', (event) => this.noteStale(event.taskId, null), failed),
      this.bus.listen('app:updated', (event) => this.noteStale(null, event), failed),
      this.bus.listen('runtime:resync', (event) => this.queueResync(event.reason), failed),
    );
    await this.loadInitialState();
    this.loaded = true;
    if (this.cluster) {
      const { store, applier, logger } = this;
      const applied = this.applied.bind(this);
      await joinCluster({ ...this.cluster, store, applier, logger, loadedAt: Date.now(), applied });
    }
    this.scheduleRefresh();
    await this.collect();
    this.timer = setInterval(() => void this.collect(), this.options.intervalMs);
    this.timer.unref();
    this.stopFollowingLeader =
      this.cluster?.leader.onChange((leading) => {
        if (leading) void this.collect();
      }) ?? (() => {});
  }

  /** Cluster mode: after an entry is applied, what follows for this instance (see joinCluster). */
  private applied(change: RuntimeChange, own: boolean, gone: string[]): void {
    // Logged by the leader whose order found them gone.
    if (own) for (const instance of gone) this.logger.warn({ instance }, 'instance not heard from');
    if (change.kind === 'rows') this.confirmOwn(change, own);
    if (own) this.barrier.returned(change);
  }

  /** Cluster mode: reads this instance's rows again when another instance's entry came between (LastWriters). */
  private confirmOwn({ tasks, appKeys }: Extract<RuntimeChange, { kind: 'rows' }>, own: boolean): void {
    const keys = new Map(appKeys.map((key) => [`app ${appKeyString(key)}`, key]));
    const again = this.lastWriters.note([...tasks.map(({ taskId }) => `task ${taskId}`), ...keys.keys()], own);
    // Noted now, though the row may have moved earlier: the instance that moved it reads it back
    // too, and its entry carries when (cluster-join.ts).
    for (const row of again) {
      const key = keys.get(row);
      this.markStale(key ? null : row.slice('task '.length), key ?? null);
    }
    if (again.length > 0) this.scheduleRefresh();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.stopFollowingLeader();
    for (const stop of this.listening.splice(0)) stop();
    await this.resyncing;
    while (this.refreshing) await this.refreshing;
    await this.cycle;
    // The other instances keep this one's components: they would say RUNNING for good.
    if (this.ownComponents.size) this.publishComponents(stoppedComponents(this.ownComponents, this.checkedAt()));
  }

  /** One poll cycle over every source, at most one at a time. */
  collect(): Promise<void> {
    this.cycle ??= this.runCycle().finally(() => {
      this.cycle = null;
    });
    return this.cycle;
  }

  private async runCycle(): Promise<void> {
    const started = performance.now();
    const errors: Record<string, string> = {};
    const leads = this.cluster?.leader.isLeader ?? true;
    const sources = this.sources.filter((source) => leads || source.scope !== 'cluster');
    type Work = { name: string; scope?: PollSource['scope']; run: () => Promise<void>; boundMs?: number };
    const work: Work[] = sources.map((source) => ({
      name: source.name,
      scope: source.scope,
      run: async () => {
        const lastCheck = this.checkedAt();
        const statuses = await source.collect();
        this.publishComponents(
          statuses.map((status) => ({ ...status, lastCheck })),
          source.scope,
        );
      },
    }));
    // The chart repo is polled by the leader only.
    if (leads && this.chartRepo) {
      const probe = this.chartRepo;
      const pairs = this.userSourcePairs();
      work.push({
        name: 'chart_repo',
        scope: 'cluster',
        // Its calls are bounded by CHART_REPO_TIMEOUT_MS, not by the cycle's wait (SourceChecks.run).
        boundMs: Math.max(this.options.sourceTimeoutMs, probe.collectBoundMs(pairs.length)),
        run: async () => {
          // What the store holds: a new leader (or one that led before) keeps it through a failing poll.
          const held = this.store.chartRepoState();
          const { all: status, byUser } = await probe.collectByUser(pairs, new Date(), held);
          this.publish({ kind: 'chartRepo', status, byUser: new Map(byUser) });
          this.publishComponent(chartRepoComponent(status), 'cluster');
        },
      });
    } else if (leads) {
      this.publishComponent(component('chart_repo', 'DISABLED', {}, 'CHART_REPO_URL is not set'), 'cluster');
    }
    await Promise.all(
      work.map(async ({ name, scope, run, boundMs }) => {
        const began = performance.now();
        const ran = (ok: boolean): void => {
          this.sourceRuns.set(name, { seconds: (performance.now() - began) / 1000, ok });
        };
        try {
          // Recorded when it answers, which may be after this cycle stopped waiting for it.
          await this.checks.run(name, () => run().then(() => ran(true)), boundMs);
        } catch (error) {
          errors[name] = failureMessage(error); // the component shows the gist; the log is SourceChecks'
          this.publishComponent(component(name, 'ERROR', {}, errors[name]), scope);
          ran(false);
        }
      }),
    );
    // Every instance applies the order where it stands in the log (instance-sweep.ts).
    if (leads && this.cluster) {
      const sweep = { at: this.checkedAt().getTime(), ...this.cluster.sweep };
      this.publish({ kind: 'components', components: [], sweep });
    }
    this.lastCycle = { at: this.checkedAt(), durationMs: Math.round(performance.now() - started), errors };
    const failed = Object.keys(errors).sort(); // in one order: each cycle's finishing order changed the message
    this.publishComponent(
      component(
        'collector',
        failed.length ? 'DEGRADED' : 'RUNNING',
        {
          lastCycleAt: this.lastCycle.at.toISOString(),
          lastCycleMs: this.lastCycle.durationMs,
          intervalMs: this.options.intervalMs,
          sources: this.sources.length + 1,
          errors,
          sequence: this.store.lastSequence,
          ...(this.cluster ? { settings: this.cluster.settings } : {}),
        },
        failed.length ? `sources failing: ${failed.join(', ')}` : null,
      ),
    );
  }

  /** Now, as components are stamped: in cluster mode on the clock every instance shares (CollectorCluster.clock). */
  private checkedAt(): Date {
    return new Date(this.cluster ? this.cluster.clock.now() : Date.now());
  }

  private userSourcePairs(): { userId: string; sourceId: string }[] {
    const pairs = new Map<string, { userId: string; sourceId: string }>();
    for (const app of this.store.snapshot().apps)
      pairs.set(`${app.userId}/${app.sourceId}`, { userId: app.userId, sourceId: app.sourceId });
    return [...pairs.values()];
  }

  /** Tasks first (an app's stage depends on its active task), then the apps a page at a time (state-reads.ts). */
  private async loadInitialState(): Promise<void> {
    const [active, recent] = await Promise.all([
      activeRuntimeTasks(this.sql),
      latestFinishedRuntimeTasks(this.sql, RECENT_FINISHED_TASKS),
    ]);
    this.applier.loadTasks([...recent.reverse(), ...active]);
    for await (const apps of appStatePages(this.sql)) this.applier.loadApps(apps);
  }

  /** An announcement named a task or an app: it is read back (and a mutation's answer waits for that). */
  private noteStale(taskId: string | null, app: AppKey | null): void {
    this.markStale(taskId, app);
    this.barrier.note();
    this.scheduleRefresh();
  }

  /** Marks a task or an app to read back, keeping when it was first announced (`noted`: now). */
  private markStale(taskId: string | null, app: AppKey | null, noted = Date.now()): void {
    if (taskId !== null) {
      this.staleTasks.set(taskId, { taskId, noted: Math.min(noted, this.staleTasks.get(taskId)?.noted ?? noted) });
    }
    if (app === null) return;
    const key = { userId: app.userId, sourceId: app.sourceId, appName: app.appName };
    const id = appKeyString(key);
    this.staleApps.set(id, { key, noted: Math.min(noted, this.staleApps.get(id)?.noted ?? noted) });
  }

  /** Resyncs run one after the other (each reads the whole state back), the read-back after each. */
  private queueResync(reason: string): void {
    this.resyncing = this.resyncing.then(() => this.resync(reason)).then(() => this.scheduleRefresh());
  }

  /**
   * Cluster mode, when changes of other instances may have been missed: every app and task the
   * store holds, and every app, active task and latest finished task the database holds (what a
   * start loads), is read back as if announced. Without the latest finished, a task created and
   * finished on another instance while this one was cut off stayed missing here for good, where
   * an instance started since showed it: two stores at one sequence with different contents.
   */
  private async resync(reason: string): Promise<void> {
    this.logger.warn({ reason }, 're-reading the runtime state from the database');
    try {
      const [apps, active, recent] = await Promise.all([
        this.db.appState.findMany({ select: { userId: true, sourceId: true, appName: true } }),
        this.db.task.findMany({ where: { status: { in: ['PENDING', 'RUNNING'] } }, select: { taskId: true } }),
        latestFinishedRuntimeTasks(this.sql, RECENT_FINISHED_TASKS),
      ]);
      const { apps: heldApps, tasks: heldTasks } = this.store.snapshot();
      // When these changed is unknown (any instance may have loaded them): announced at 0.
      for (const key of [...heldApps, ...apps]) this.markStale(null, key, 0);
      for (const { taskId } of [...heldTasks, ...active, ...recent]) this.markStale(taskId, null, 0);
    } catch (error) {
      this.logger.error({ err: error }, 'could not re-read the runtime state; it catches up with the next changes');
    }
  }

  /** Starts the read-back loop unless it runs already (it takes up whatever is stale when it gets there). */
  private scheduleRefresh(): void {
    if (this.refreshing || !this.loaded || (this.staleTasks.size === 0 && this.staleApps.size === 0)) return;
    this.refreshing = this.refreshStale().finally(() => {
      this.refreshing = null;
      this.scheduleRefresh(); // marked after the loop's last look
    });
  }

  /**
   * Reads the stale tasks and apps back into the store, a batch per statement, until none is
   * left. An install announces ~18 changes of the same task and app within milliseconds; each
   * key waits here once however often it is announced, and a key announced again while it is
   * being read is stale again and read once more after. Every announcement follows its commit,
   * so the last read of a key always sees its latest committed row.
   */
  private async refreshStale(): Promise<void> {
    while (this.staleTasks.size > 0 || this.staleApps.size > 0) {
      // A commit is announced as a task and its app together, and each announcement reaches us
      // a few microtasks later: let this turn's arrive, and read them with one statement each.
      await new Promise((resolve) => setImmediate(resolve));
      const staleTasks = takeFirst(this.staleTasks, READ_BATCH);
      const staleApps = takeFirst(this.staleApps, READ_BATCH);
      const [taskIds, appKeys] = [staleTasks.map(({ taskId }) => taskId), staleApps.map(({ key }) => key)];
      const notedAt = Math.min(...[...staleTasks, ...staleApps].map(({ noted }) => noted));
      // Every change noted so far is in this read, unless some are left for the next one.
      const covers = this.staleTasks.size === 0 && this.staleApps.size === 0 ? this.barrier.generation : null;
      try {
        const [tasks, apps] = await Promise.all([runtimeTasks(this.sql, taskIds), findAppStates(this.sql, appKeys)]);
        this.publishRows({ kind: 'rows', tasks, appKeys, apps, notedAt }, covers);
      } catch (error) {
        // Logged and skipped (the next change of the task or app reads it again); waiters go on.
        this.logger.error({ err: error }, 'could not apply a change to the runtime state');
        if (covers !== null) this.barrier.applied(covers);
      }
    }
  }

  /** In one process: applied at once; in cluster mode: to the change log, and applied from there. */
  private publish(change: RuntimeChange): void {
    if (this.cluster) this.cluster.log.appendRuntime(change, eventBound(change));
    else this.applier.apply(change);
  }

  /** A read-back; `covers`: the barrier generation the store holds once it is applied (null: not all yet). */
  private publishRows(change: Extract<RuntimeChange, { kind: 'rows' }>, covers: number | null): void {
    this.publish(change);
    if (covers === null) return;
    if (this.cluster) this.barrier.sent(change, covers);
    else this.barrier.applied(covers);
  }

  /** One component, checked now. */
  private publishComponent(status: Omit<ComponentStatus, 'lastCheck'>, scope?: PollSource['scope']): void {
    this.publishComponents([{ ...status, lastCheck: this.checkedAt() }], scope);
  }

  /** In cluster mode a process's components are named `<component>@<instance>`; the cluster's are not. */
  private publishComponents(all: ComponentStatus[], scope?: PollSource['scope']): void {
    // A new leader's jobs that have not run yet leave the last leader's report of them standing.
    const components = scope === 'cluster' ? all.filter((c) => !notRunYet(c, this.store)) : all;
    const instance = scope === 'cluster' ? undefined : this.cluster?.instance;
    if (instance) for (const { name } of components) this.ownComponents.add(name);
    const named = (c: ComponentStatus) => ({ ...c, name: instanceComponentName(c.name, instance) });
    this.publish({ kind: 'components', components: instance ? components.map(named) : components });
  }
}
