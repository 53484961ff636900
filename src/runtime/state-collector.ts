import type { ChartRepo } from '../adapters/chart-repo/port.js';
import type { Db } from '../db/client.js';
import { findAppStates, findTasks } from '../db/hot-path-sql.js';
import type { AppRow, TaskRow } from '../db/models.js';
import { type AppKey, appKeyString } from '../domain/app-key.js';
import { deriveStage } from '../domain/app-stage.js';
import type { EventBus } from '../events/change-feed.js';
import type { Logger } from '../platform/logger.js';
import type { JobStatus } from '../platform/periodic-job.js';
import { eventBound, type RuntimeChange, type RuntimeEntries, type RuntimeLog } from './runtime-change.js';
import type { ComponentState, ComponentStatus, RuntimeApp, StateStore } from './state-store.js';

/** How many finished tasks the store loads at start (it keeps the most recent ones). */
const RECENT_FINISHED_AT_START = 100;

/** Most tasks, and most apps, one read-back statement asks for (each costs bound parameters). */
const READ_BATCH = 200;

/** One poll-only source: it reports components (and may update the store itself). */
export interface PollSource {
  name: string;
  collect(): Promise<Omit<ComponentStatus, 'lastCheck'>[]>;
}

export interface CollectorOptions {
  intervalMs: number;
  /** A source that has not answered after this long counts as failed for this cycle. */
  sourceTimeoutMs: number;
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
}

/** How long the removal of an app is remembered, to refuse a stale row of it read before. */
const TOMBSTONE_MS = 10 * 60_000;

function component(
  name: string,
  state: ComponentState,
  metrics: Record<string, unknown>,
  message: string | null = null,
) {
  return { name, healthy: state === 'RUNNING' || state === 'DISABLED', state, message, metrics };
}

/** A periodic job as a component: running while its last run succeeded. */
export function jobComponent(name: string, status: JobStatus | null) {
  if (!status) return component(name, 'STOPPED', {}, 'not started');
  return component(
    name,
    status.lastError ? 'ERROR' : 'RUNNING',
    {
      runs: status.runs,
      intervalMs: status.intervalMs,
      lastRunAt: status.lastStartedAt?.toISOString() ?? null,
      lastDurationMs: status.lastDurationMs,
    },
    status.lastError,
  );
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
  private readonly iterators: AsyncIterator<unknown>[] = [];
  private cycle: Promise<void> | null = null;
  private lastCycle: { at: Date; durationMs: number; errors: Record<string, string> } | null = null;
  /** Announced changes not read back yet: task ids, and app keys by their string form. */
  private readonly staleTasks = new Set<string>();
  private readonly staleApps = new Map<string, AppKey>();
  /** The read-back loop while it runs. */
  private refreshing: Promise<void> | null = null;
  /** Read-backs wait for the initial load: it may have read older rows than they would. */
  private loaded = false;
  /**
   * The active task of each app by app key, as last put into the store: what an app's stage is
   * derived from, found without scanning every task the store holds on each change.
   */
  private readonly activeByApp = new Map<string, TaskRow>();
  /** Apps removed lately, by key string, with when their absence was read (see apply). */
  private readonly tombstones = new Map<string, number>();

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
  ) {}

  async start(): Promise<void> {
    // Listening before the load: a change committed while it runs is read back after it.
    this.follow(this.bus.subscribe('task:updated'), (event) => this.staleTasks.add(event.taskId));
    this.follow(this.bus.subscribe('app:updated'), (event) =>
      this.staleApps.set(appKeyString(event), {
        userId: event.userId,
        sourceId: event.sourceId,
        appName: event.appName,
      }),
    );
    this.follow(
      this.bus.subscribe('runtime:resync'),
      () => {},
      (event) => this.resync(event.reason),
    );
    await this.loadInitialState();
    this.loaded = true;
    this.cluster?.entries.attach((change, first, last) =>
      this.store.applyAt(first, last, () => this.applyChange(change)),
    );
    this.scheduleRefresh();
    await this.collect();
    this.timer = setInterval(() => void this.collect(), this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const iterator of this.iterators.splice(0)) await iterator.return?.();
    while (this.refreshing) await this.refreshing;
    await this.cycle;
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
    const work: { name: string; run: () => Promise<void> }[] = this.sources.map((source) => ({
      name: source.name,
      run: async () => {
        const lastCheck = new Date();
        this.publishComponents((await source.collect()).map((status) => ({ ...status, lastCheck })));
      },
    }));
    if (this.chartRepo) {
      const probe = this.chartRepo;
      work.push({
        name: 'chart_repo',
        run: async () => {
          const { all: status, byUser } = await probe.collectByUser(this.userSourcePairs());
          this.publish({ kind: 'chartRepo', status, byUser: new Map(byUser) });
          this.publishComponent({
            ...component(
              'chart_repo',
              status.reachable ? 'RUNNING' : 'ERROR',
              {
                apps: Array.isArray(status.apps) ? status.apps.length : 0,
                lastUpdate: status.lastUpdate?.toISOString() ?? null,
              },
              status.lastError,
            ),
            lastCheck: new Date(),
          });
        },
      });
    } else {
      this.publishComponent({
        ...component('chart_repo', 'DISABLED', {}, 'CHART_REPO_URL is not set'),
        lastCheck: new Date(),
      });
    }
    await Promise.all(
      work.map(async ({ name, run }) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            run(),
            new Promise((_, reject) => {
              timer = setTimeout(
                () => reject(new Error(`no answer within ${this.options.sourceTimeoutMs} ms`)),
                this.options.sourceTimeoutMs,
              );
            }),
          ]);
        } catch (error) {
          errors[name] = error instanceof Error ? error.message : String(error);
          this.publishComponent({ ...component(name, 'ERROR', {}, errors[name]), lastCheck: new Date() });
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    this.lastCycle = { at: new Date(), durationMs: Math.round(performance.now() - started), errors };
    const failed = Object.keys(errors);
    this.publishComponent({
      ...component(
        'collector',
        failed.length ? 'DEGRADED' : 'RUNNING',
        {
          lastCycleAt: this.lastCycle.at.toISOString(),
          lastCycleMs: this.lastCycle.durationMs,
          intervalMs: this.options.intervalMs,
          sources: this.sources.length + 1,
          errors,
          sequence: this.store.lastSequence,
        },
        failed.length ? `sources failing: ${failed.join(', ')}` : null,
      ),
      lastCheck: new Date(),
    });
  }

  private userSourcePairs(): { userId: string; sourceId: string }[] {
    const pairs = new Map<string, { userId: string; sourceId: string }>();
    for (const app of this.store.snapshot().apps)
      pairs.set(`${app.userId}/${app.sourceId}`, { userId: app.userId, sourceId: app.sourceId });
    return [...pairs.values()];
  }

  private async loadInitialState(): Promise<void> {
    const [active, recent, apps] = await Promise.all([
      this.db.task.findMany({ where: { status: { in: ['PENDING', 'RUNNING'] } } }),
      this.db.task.findMany({
        where: { status: { notIn: ['PENDING', 'RUNNING'] } },
        orderBy: { id: 'desc' },
        take: RECENT_FINISHED_AT_START,
      }),
      this.db.appState.findMany(),
    ]);
    for (const task of [...recent.reverse(), ...active]) this.putTask(task);
    for (const app of apps) this.store.putApp(this.withStage(app));
  }

  /**
   * Marks what each announcement names as stale, until stopped; the read-back follows. `then`
   * handles an event that needs more than a mark (a resync).
   */
  private follow<E>(events: AsyncIterable<E>, markStale: (event: E) => void, then?: (event: E) => Promise<void>): void {
    const iterator = events[Symbol.asyncIterator]();
    this.iterators.push(iterator);
    void (async () => {
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        markStale(next.value);
        await then?.(next.value);
        this.scheduleRefresh();
      }
    })();
  }

  /**
   * Cluster mode, when changes of other instances may have been missed: every app and task the
   * store holds, and every app and active task the database holds, is read back as if announced.
   */
  private async resync(reason: string): Promise<void> {
    this.logger.warn({ reason }, 're-reading the runtime state from the database');
    try {
      const [apps, active] = await Promise.all([
        this.db.appState.findMany({ select: { userId: true, sourceId: true, appName: true } }),
        this.db.task.findMany({ where: { status: { in: ['PENDING', 'RUNNING'] } }, select: { taskId: true } }),
      ]);
      const { apps: heldApps, tasks: heldTasks } = this.store.snapshot();
      for (const key of [...heldApps, ...apps]) {
        this.staleApps.set(appKeyString(key), { userId: key.userId, sourceId: key.sourceId, appName: key.appName });
      }
      for (const { taskId } of [...heldTasks, ...active]) this.staleTasks.add(taskId);
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
      const taskIds = takeFirst(this.staleTasks, READ_BATCH);
      const appKeys = takeFirst(this.staleApps, READ_BATCH);
      try {
        const readAt = new Date();
        const [tasks, apps] = await Promise.all([findTasks(this.db, taskIds), findAppStates(this.db, appKeys)]);
        this.publish({ kind: 'rows', tasks, appKeys, apps, readAt });
      } catch (error) {
        // As an announcement whose read fails: logged and skipped; the next change of the same
        // task or app reads it again.
        this.logger.error({ err: error }, 'could not apply a change to the runtime state');
      }
    }
  }

  /** In one process: applied at once; in cluster mode: to the change log, and applied from there. */
  private publish(change: RuntimeChange): void {
    if (this.cluster) this.cluster.log.appendRuntime(change, eventBound(change));
    else this.applyChange(change);
  }

  private publishComponent(status: ComponentStatus): void {
    this.publishComponents([status]);
  }

  private publishComponents(components: ComponentStatus[]): void {
    const instance = this.cluster?.instance;
    const named = instance ? components.map((c) => ({ ...c, name: `${c.name}@${instance}` })) : components;
    this.publish({ kind: 'components', components: named });
  }

  private applyChange(change: RuntimeChange): void {
    if (change.kind === 'rows') this.apply(change.tasks, change.appKeys, change.apps, change.readAt.getTime());
    else if (change.kind === 'components') for (const status of change.components) this.store.putComponent(status);
    else this.store.setChartRepo(change.status, change.byUser);
  }

  /**
   * Tasks and app rows as read back at `readAt`; an app asked for but not read has no row any
   * more. A row older than the one held is stale and skipped: in cluster mode two instances may
   * read the same row one after the other and still append what they read the other way round;
   * so is an app row older than the app's removal. (Row times come from the instances' clocks.)
   */
  private apply(tasks: TaskRow[], appKeys: AppKey[], apps: AppRow[], readAt: number): void {
    // An app's stage depends on its active task, so it is derived after the tasks are in.
    for (const task of tasks) {
      const held = this.store.task(task.taskId);
      if (!held || held.updatedAt <= task.updatedAt) this.putTask(task);
    }
    const rows = new Map(apps.map((row) => [appKeyString(row), row]));
    for (const key of appKeys) {
      const keyString = appKeyString(key);
      const row = rows.get(keyString);
      if (!row) {
        this.remember(keyString, readAt);
        this.store.removeApp(key);
        continue;
      }
      const held = this.store.app(key);
      const removedAt = this.tombstones.get(keyString);
      if (
        (held && held.updatedAt > row.updatedAt) ||
        (removedAt !== undefined && removedAt > row.updatedAt.getTime())
      ) {
        continue;
      }
      this.tombstones.delete(keyString);
      this.store.putApp(this.withStage(row));
    }
    // The apps of changed tasks that were not read back themselves: re-derive their stage, and
    // put them only when it moved.
    const derived = new Set(appKeys.map(appKeyString));
    for (const task of tasks) {
      const key = appKeyString(task);
      if (derived.has(key)) continue;
      derived.add(key);
      const app = this.store.app(task);
      if (!app) continue;
      const updated = this.withStage(app);
      if (updated.derived.stage !== app.derived.stage || updated.derived.health !== app.derived.health) {
        this.store.putApp(updated);
      }
    }
  }

  /** Remembers a removal, forgetting those older than TOMBSTONE_MS (the map is in insertion order). */
  private remember(keyString: string, removedAt: number): void {
    this.tombstones.delete(keyString);
    this.tombstones.set(keyString, removedAt);
    for (const [key, at] of this.tombstones) {
      if (at >= removedAt - TOMBSTONE_MS) break;
      this.tombstones.delete(key);
    }
  }

  /** Puts a task into the store, keeping activeByApp in step with it. */
  private putTask(task: TaskRow): void {
    this.store.putTask(task);
    const key = appKeyString(task);
    if (task.status === 'PENDING' || task.status === 'RUNNING') this.activeByApp.set(key, task);
    else if (this.activeByApp.get(key)?.taskId === task.taskId) this.activeByApp.delete(key);
  }

  private withStage(app: RuntimeApp | Omit<RuntimeApp, 'derived'>): RuntimeApp {
    const activeTask = this.activeByApp.get(appKeyString(app)) ?? null;
    return { ...app, derived: deriveStage({ state: app.state, progress: app.progress, activeTask }) };
  }
}

/** Removes and returns the first `limit` values of a set or map (the oldest marked). */
function takeFirst<K, V>(stale: { entries(): Iterable<[K, V]>; delete(key: K): boolean }, limit: number): V[] {
  const taken: V[] = [];
  for (const [key, value] of stale.entries()) {
    if (taken.length === limit) break;
    taken.push(value);
    stale.delete(key); // deleting the entry being visited is safe while iterating
  }
  return taken;
}
