import type { ChartRepoCollection, ChartRepoStatus } from '../adapters/chart-repo/port.js';
import type { RuntimeTaskRow } from '../db/models.js';
import { type AppKey, appKeyString } from '../domain/app-key.js';
import { ComponentPushes } from './component-pushes.js';
import { FinishedTasks } from './finished-tasks.js';
import { countSummary, RuntimeTally, type TalliedSummary } from './runtime-tally.js';
import { type RuntimeApp, SnapshotScope } from './snapshot-scope.js';
import { IndexedRows } from './store-index.js';

export { type RuntimeApp, type SnapshotFilter, SnapshotScope } from './snapshot-scope.js';

/**
 * The runtime state held in memory: apps with their derived stage, tasks
 * (active plus the most recent finished), components and chart-repo status. Every change gets
 * the next sequence number and goes into a bounded buffer, so a client that reconnects with the
 * last sequence it saw can be sent exactly what it missed — or told to resync.
 */

export type ComponentState = 'RUNNING' | 'DEGRADED' | 'STOPPED' | 'ERROR' | 'DISABLED';

export interface ComponentStatus {
  name: string;
  healthy: boolean;
  state: ComponentState;
  message: string | null;
  lastCheck: Date;
  metrics: Record<string, unknown>;
}

export type RuntimeEventKind =
  | 'APP_CHANGED'
  | 'APP_REMOVED'
  | 'TASK_CHANGED'
  | 'TASK_REMOVED'
  | 'COMPONENT_CHANGED'
  | 'COMPONENT_REMOVED'
  | 'CHART_REPO_CHANGED'
  | 'RESYNC';

/** An app that is gone: its key and the id of the row it had. */
export type RemovedAppKey = AppKey & { id: number };

export interface RuntimeEvent {
  sequence: number;
  kind: RuntimeEventKind;
  at: Date;
  app?: RuntimeApp;
  /**
   * Key of an app that is gone (APP_REMOVED), with the row id it had: the store only tells of an
   * app it held, so the id is the one its APP_CHANGED events and `App.id` carried, whichever
   * path removed it (an uninstall's end, a status correction, a change log entry of any release).
   */
  appKey?: RemovedAppKey;
  task?: RuntimeTaskRow;
  component?: ComponentStatus;
  /** Name of a component that left the runtime (COMPONENT_REMOVED). */
  componentName?: string;
  /** The status over every call (CHART_REPO_CHANGED); a user is shown their own from `chartRepoChange`. */
  chartRepo?: ChartRepoStatus;
  /** The chart repo before and after the change, per user too (CHART_REPO_CHANGED). */
  chartRepoChange?: { before: ChartRepoCollection | null; after: ChartRepoCollection };
}

/** The counts of a runtime view: its apps and tasks (TalliedSummary), and the healthy components. */
export type RuntimeSummary = TalliedSummary & { activeComponents: number };

export interface Snapshot {
  sequence: number;
  generatedAt: Date;
  summary: RuntimeSummary;
  apps: RuntimeApp[];
  tasks: RuntimeTaskRow[];
  components: ComponentStatus[];
  chartRepo: ChartRepoStatus | null;
}

const ACTIVE: readonly string[] = ['PENDING', 'RUNNING'];

const EVERYTHING = new SnapshotScope();

/** Whether two chart repo statuses say the same (lastUpdate moves every collect; alone it is no change). */
export function sameChartRepo(a: ChartRepoStatus | null, b: ChartRepoStatus | null): boolean {
  if (a === null || b === null) return a === b;
  return JSON.stringify({ ...a, lastUpdate: null }) === JSON.stringify({ ...b, lastUpdate: null });
}

export interface StateStoreOptions {
  bufferSize: number;
  recentFinishedTasks: number;
  firstSequence?: number;
  /**
   * A component whose metrics alone changed is pushed at most this often (0: never; its metrics
   * are still read on demand by `components` and `runtimeSnapshot`). A change of its state, health
   * or message is pushed at once. @default 0
   */
  componentMetricsPushMs?: number;
  /** @default Date.now */
  now?: () => number;
}

/** The finished tasks the runtime state keeps, the most recent (a start or a resync loads as many). */
export const RECENT_FINISHED_TASKS = 100;

/** The columns the store indexes: every equals or oneOf condition of the two filters of snapshot-scope.ts. */
const KEY_INDEXES = [{ column: 'userId' }, { column: 'sourceId' }, { column: 'appName' }];
const APP_INDEXES = [...KEY_INDEXES, { column: 'stage', derived: true }, { column: 'health', derived: true }];
const TASK_INDEXES = [...KEY_INDEXES, { column: 'status' }, { column: 'type' }];

export class StateStore {
  /** By app key, in the order keys were first added (a replaced app keeps its place). */
  private readonly apps = new IndexedRows<RuntimeApp>(APP_INDEXES);
  /** By taskId, in the order keys were first added. */
  private readonly tasks = new IndexedRows<RuntimeTaskRow>(TASK_INDEXES);
  private readonly components = new Map<string, ComponentStatus>();
  /** The finished tasks held: the oldest are dropped when there are too many. */
  private readonly finished = new FinishedTasks();
  /** Running counts of the apps and tasks above, for summaries that do not depend on the fleet's size. */
  private readonly tally = new RuntimeTally();
  private chartRepo: ChartRepoCollection | null = null;
  private sequence: number;
  /**
   * Moves with every change of what a snapshot shows, including those that make no event (a
   * component's metrics, the chart repo's lastUpdate) and a sequence moved without one (cluster
   * mode): results computed from the store are cached per revision (platform/versioned-lru.ts).
   */
  private changes = 0;
  /**
   * The last sequence not in the buffer: every event after it is. Sequences need not be
   * consecutive (in cluster mode each change log entry brings its own range; see applyAt).
   */
  private floor: number;
  /** The last `bufferSize` events, oldest first. */
  private readonly buffer: RuntimeEvent[] = [];
  private readonly listeners = new Set<(event: RuntimeEvent) => void>();
  /** Which component statuses become events. */
  private readonly componentPushes: ComponentPushes;

  constructor(private readonly options: StateStoreOptions) {
    // Sequences start from the start time in microseconds, so a later process (or a restarted
    // one) numbers above an earlier one: a client's `since` from another process is never taken
    // for a position in this one's stream (it gets RESYNC). Stays exact in a double for centuries.
    this.sequence = options.firstSequence ?? Date.now() * 1000;
    this.floor = this.sequence;
    this.componentPushes = new ComponentPushes(options.componentMetricsPushMs ?? 0);
  }

  /**
   * Cluster mode, once the state is loaded: events continue from the change log's position, so that
   * every instance numbers the same change alike. What loading emitted no client has seen.
   */
  startAt(sequence: number): void {
    if (this.listeners.size > 0) throw new Error('the runtime store has listeners already');
    this.buffer.length = 0;
    this.sequence = sequence;
    this.floor = sequence;
    this.changes += 1;
  }

  /**
   * Cluster mode, after startAt: the cluster's events up to this position (RedisEventHistory), so
   * that a client can resume here with a `since` from before this instance started. History only.
   */
  replay(events: RuntimeEvent[]): void {
    const kept = events.filter((event) => event.sequence <= this.sequence).slice(-this.options.bufferSize);
    // A RESYNC kept there marks where an instance forgot what it emitted (forgetUpTo): nothing
    // before it is resumed from.
    const mark = kept.findLastIndex((event) => event.kind === 'RESYNC');
    const usable = kept.slice(mark + 1);
    const oldest = usable[0];
    if (!oldest || this.buffer.length > 0) return;
    this.buffer.push(...usable);
    // Every event after the one before the oldest kept is here (sequences are not consecutive,
    // so a `since` between two kept events resumes too).
    this.floor = kept[mark]?.sequence ?? oldest.sequence - 1;
  }

  /**
   * Cluster mode: the events up to `sequence` may not be the ones the other instances emitted
   * there (cluster-join.ts: this instance had loaded a change they applied only then). A `since`
   * before it gets RESYNC from now on; a RESYNC event at `sequence` reaches the listeners (it takes
   * no sequence of its own and stays out of the buffer), and event-stream.ts hands it to the
   * streams that resumed from before it.
   */
  forgetUpTo(sequence: number): void {
    if (sequence <= this.floor) return;
    this.floor = sequence;
    let dropped = 0;
    while (dropped < this.buffer.length && (this.buffer[dropped] as RuntimeEvent).sequence <= sequence) dropped += 1;
    this.buffer.splice(0, dropped);
    this.sequence = Math.max(this.sequence, sequence);
    this.changes += 1;
    const event: RuntimeEvent = { sequence, kind: 'RESYNC', at: new Date() };
    for (const listener of this.listeners) listener(event);
  }

  /**
   * Applies one change log entry (cluster mode): the events it causes take the sequences from
   * `first` on, and the store stands at `last` afterwards, the same position on every instance
   * whichever events it emitted. The range is reserved for the most events the change can cause.
   */
  applyAt(first: number, last: number, apply: () => void): void {
    if (first - 1 > this.sequence) this.sequence = first - 1;
    apply();
    if (this.sequence > last) {
      process.emitWarning(`a change log entry caused more events than its range (${first}–${last}) holds`);
    }
    this.sequence = Math.max(this.sequence, last);
    this.changes += 1;
  }

  get lastSequence(): number {
    return this.sequence;
  }

  /** The store's revision: equal revisions mean equal snapshots (but for `generatedAt`). */
  get revision(): number {
    return this.changes;
  }

  /** Listeners now registered with onEvent: a soak checks that subscriptions leave none behind. */
  get listenerCount(): number {
    return this.listeners.size;
  }

  /** Called for every change, after it is applied. Returns the unsubscribe function. */
  onEvent(listener: (event: RuntimeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  putApp(app: RuntimeApp): void {
    this.tally.app(this.apps.set(appKeyString(app), app), app);
    this.emit({ kind: 'APP_CHANGED', app });
  }

  /**
   * The apps read at start, put without an event each: nothing follows the store yet (its
   * listeners come after the start), and no client has seen what loading would emit (its
   * sequences are above any earlier process's, so a `since` from before gets RESYNC either way).
   */
  loadApps(apps: readonly RuntimeApp[]): void {
    if (this.listeners.size > 0) throw new Error('the runtime store has listeners already');
    for (const app of apps) this.tally.app(this.apps.set(appKeyString(app), app), app);
    this.changes += 1;
  }

  removeApp(key: AppKey): void {
    const removed = this.apps.delete(appKeyString(key));
    if (!removed) return;
    this.tally.app(removed, undefined);
    const { userId, sourceId, appName, id } = removed;
    this.emit({ kind: 'APP_REMOVED', appKey: { userId, sourceId, appName, id } });
  }

  putTask(task: RuntimeTaskRow): void {
    const before = this.tasks.set(task.taskId, task);
    this.tally.task(before, task);
    if (before && !ACTIVE.includes(before.status)) this.finished.remove(before);
    if (!ACTIVE.includes(task.status)) this.finished.add(task);
    this.emit({ kind: 'TASK_CHANGED', task });
    this.trimFinished();
  }

  putComponent(component: ComponentStatus): void {
    this.components.set(component.name, component);
    this.changes += 1;
    if (this.componentPushes.take(component, (this.options.now ?? Date.now)())) {
      this.emit({ kind: 'COMPONENT_CHANGED', component });
    }
  }

  /** A component leaves the runtime (a gone instance's, see instance-sweep.ts). */
  removeComponent(name: string): void {
    if (!this.components.delete(name)) return;
    this.changes += 1;
    this.componentPushes.forget(name);
    this.emit({ kind: 'COMPONENT_REMOVED', componentName: name });
  }

  /** A new chart repo status, with each user's own; an event when any of them says something new. */
  setChartRepo(status: ChartRepoStatus, byUser: ReadonlyMap<string, ChartRepoStatus> = new Map()): void {
    const before = this.chartRepo;
    const after: ChartRepoCollection = { all: status, byUser };
    this.chartRepo = after;
    this.changes += 1;
    const changed =
      !sameChartRepo(before?.all ?? null, status) ||
      before?.byUser.size !== byUser.size ||
      [...byUser].some(([userId, view]) => !sameChartRepo(before?.byUser.get(userId) ?? null, view));
    if (changed) this.emit({ kind: 'CHART_REPO_CHANGED', chartRepo: status, chartRepoChange: { before, after } });
  }

  /** A task the store holds (active, or among the latest finished). */
  task(taskId: string): RuntimeTaskRow | undefined {
    return this.tasks.get(taskId);
  }

  app(key: AppKey): RuntimeApp | undefined {
    return this.apps.get(appKeyString(key));
  }

  /** Pending and running tasks (they are always held), without building a snapshot. */
  activeTasks(): RuntimeTaskRow[] {
    return this.tasks.all().filter((task) => ACTIVE.includes(task.status));
  }

  component(name: string): ComponentStatus | undefined {
    return this.components.get(name);
  }

  /** Every component, by name (never filtered). */
  allComponents(): ComponentStatus[] {
    return [...this.components.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The chart repo status with each user's own; null before the first collection (or when disabled). */
  chartRepoState(): ChartRepoCollection | null {
    return this.chartRepo;
  }

  /**
   * Events after `since`, or null when the client must resync: some already left the buffer, or
   * `since` is not a position in this stream at all (ahead of it: another process's numbering).
   */
  eventsSince(since: number, limit = Number.POSITIVE_INFINITY): RuntimeEvent[] | null {
    if (since > this.sequence || since < this.floor) return null;
    if (since === this.sequence) return [];
    // The buffer is in sequence order: the first event after `since` by binary search, then a
    // slice of at most `limit` (a stream catching up reads on as its reader takes them).
    let low = 0;
    let high = this.buffer.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.buffer[middle] as RuntimeEvent).sequence > since) high = middle;
      else low = middle + 1;
    }
    return this.buffer.slice(low, low + limit);
  }

  snapshot(scope: SnapshotScope = EVERYTHING): Snapshot {
    const apps = this.apps.select(scope.apps);
    // Stable: tasks with the same id (none in practice) stay in store order, as before the indexes.
    const tasks = this.tasks.select(scope.tasks).sort((a, b) => b.id - a.id);
    const components = this.allComponents();
    return {
      sequence: this.sequence,
      generatedAt: new Date(),
      summary: { ...countSummary(apps, tasks), activeComponents: this.activeComponents() },
      apps,
      tasks,
      components,
      chartRepo: this.chartRepo?.all ?? null,
    };
  }

  /**
   * The summary over the filtered content: from the running counts when the scope is everything
   * or one user (every event of an unfiltered dashboard asks for it), else counted over the matches
   * (found through the indexes).
   */
  summary(scope: SnapshotScope = EVERYTHING): RuntimeSummary {
    if (scope.tallied) {
      return { ...this.tally.summary(scope.tallied.userId), activeComponents: this.activeComponents() };
    }
    const counted = countSummary(this.apps.select(scope.apps, false), this.tasks.select(scope.tasks, false));
    return { ...counted, activeComponents: this.activeComponents() };
  }

  private activeComponents(): number {
    let active = 0;
    for (const c of this.components.values()) if (c.healthy && c.state === 'RUNNING') active += 1;
    return active;
  }

  /** Keeps every active task and only the most recent finished ones. */
  private trimFinished(): void {
    for (const task of this.finished.trim(this.options.recentFinishedTasks)) {
      this.tally.task(task, undefined);
      this.tasks.delete(task.taskId);
      this.emit({ kind: 'TASK_REMOVED', task });
    }
  }

  private emit(partial: Omit<RuntimeEvent, 'sequence' | 'at'>): void {
    this.sequence += 1;
    this.changes += 1;
    const event: RuntimeEvent = { ...partial, sequence: this.sequence, at: new Date() };
    this.buffer.push(event);
    if (this.buffer.length > this.options.bufferSize) this.floor = (this.buffer.shift() as RuntimeEvent).sequence;
    for (const listener of this.listeners) listener(event);
  }
}
