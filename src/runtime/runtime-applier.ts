import type { AppRow, RuntimeTaskRow } from '../db/models.js';
import { type AppKey, appKeyString } from '../domain/app-key.js';
import { deriveStage } from '../domain/app-stage.js';
import { type SweepOrder, sweepInstances } from './instance-sweep.js';
import type { RuntimeChange } from './runtime-change.js';
import type { RuntimeApp, StateStore } from './state-store.js';

/**
 * Applies runtime changes to the store: rows read back (deriving each app's stage from its active
 * task), component statuses, the chart repo. In one process the collector hands it its changes at
 * once; in cluster mode every instance hands it every instance's changes in the log's order, so it
 * decides alike everywhere from what the store holds.
 */
export class RuntimeApplier {
  /**
   * The active task of each app by app key, as last put into the store: what an app's stage is
   * derived from, found without scanning every task the store holds on each change.
   */
  private readonly activeByApp = new Map<string, RuntimeTaskRow>();

  constructor(private readonly store: StateStore) {}

  /** The state as loaded at start: tasks first, then the apps (their stages depend on the tasks). */
  loadTasks(tasks: RuntimeTaskRow[]): void {
    for (const task of tasks) this.putTask(task);
  }

  loadApps(apps: AppRow[]): void {
    this.store.loadApps(apps.map((app) => this.withStage(app)));
  }

  /**
   * Returns the instances a sweep order found gone (for the log). A kind this version does not
   * know (an entry of a newer version's instance, during a rolling deploy) is left alone: guessing
   * at it could corrupt the store.
   */
  apply(change: RuntimeChange): string[] {
    if (change.kind === 'rows') this.applyRows(change.tasks, change.appKeys, change.apps);
    else if (change.kind === 'chartRepo') this.store.setChartRepo(change.status, change.byUser);
    else if (change.kind === 'components') {
      for (const status of change.components) this.store.putComponent(status);
      if (change.sweep) return this.applySweep(change.sweep);
    }
    return [];
  }

  private applySweep(order: SweepOrder): string[] {
    const { silenced, silencedInstances, removed } = sweepInstances(this.store.allComponents(), order);
    for (const status of silenced) this.store.putComponent(status);
    for (const name of removed) this.store.removeComponent(name);
    return silencedInstances;
  }

  /**
   * Tasks and app rows as read back; an app asked for but not read has no row any more. Applied
   * in the order given (the log's, in cluster mode): a row that arrives after a newer read of it
   * (two instances reading one row and appending the other way round) is corrected by the
   * collector's confirming read (StateCollector.confirmOwn), not guessed from row times, which the
   * instances' transactions take before they commit. A row read again unchanged is not put again.
   */
  private applyRows(tasks: RuntimeTaskRow[], appKeys: AppKey[], apps: AppRow[]): void {
    // An app's stage depends on its active task, so it is derived after the tasks are in.
    for (const task of tasks) {
      const held = this.store.task(task.taskId);
      if (!held || !sameRow(held, task)) this.putTask(task);
    }
    const rows = new Map(apps.map((row) => [appKeyString(row), row]));
    for (const key of appKeys) {
      const row = rows.get(appKeyString(key));
      if (!row) {
        this.store.removeApp(key);
        continue;
      }
      const held = this.store.app(key);
      const app = this.withStage(row);
      if (!held || !sameRow({ ...held, derived: null }, { ...app, derived: null }) || !sameStage(held, app)) {
        this.store.putApp(app);
      }
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
      if (!sameStage(app, updated)) this.store.putApp(updated);
    }
  }

  /** Puts a task into the store, keeping activeByApp in step with it. */
  private putTask(task: RuntimeTaskRow): void {
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

function sameStage(a: RuntimeApp, b: RuntimeApp): boolean {
  return a.derived.stage === b.derived.stage && a.derived.health === b.derived.health;
}

/**
 * Whether two reads of a row are the same version. A change announced twice (or read back after
 * the next one was already committed, which merges the two) is read again unchanged: putting it
 * again would push every subscriber an event that says nothing new.
 */
function sameRow<Row extends object>(a: Row, b: Row): boolean {
  for (const key of Object.keys(a) as (keyof Row)[]) {
    const [x, y] = [a[key], b[key]];
    if (x === y) continue;
    if (
      x instanceof Date && y instanceof Date ? x.getTime() !== y.getTime() : JSON.stringify(x) !== JSON.stringify(y)
    ) {
      return false;
    }
  }
  return true;
}
