import type { ChartRepoStatus } from '../adapters/chart-repo/port.js';
import { type AppRow, RUNTIME_TASK_COLUMNS, type RuntimeTaskRow, runtimeTaskOf } from '../db/models.js';
import type { AppKey } from '../domain/app-key.js';
import { SWEEP_EVENT_BOUND, type SweepOrder } from './instance-sweep.js';
import type { ComponentStatus, RuntimeEvent } from './state-store.js';

/**
 * A change of the runtime state as the collector reads it, before the store applies it. In one
 * process the collector applies it at once; in cluster mode it goes through the change log, and
 * every instance applies every instance's changes in the log's order (see redis-change-log.ts).
 */
export type RuntimeChange =
  | {
      kind: 'rows';
      /** Tasks as read back. */
      tasks: RuntimeTaskRow[];
      /** The apps asked for; those missing from `apps` have no row any more. */
      appKeys: AppKey[];
      apps: AppRow[];
      /**
       * Epoch ms, the origin's clock: when the earliest of the changes it reads back was announced
       * (announcements follow their commits at once); 0 when unknown (keys a resync re-reads).
       * Absent in entries of versions before it (cluster-join.ts decides without it).
       */
      notedAt?: number;
    }
  | {
      kind: 'components';
      components: ComponentStatus[];
      /**
       * The leader's sweep of gone instances' components (instance-sweep.ts), in a `components`
       * change without components: an instance of the previous version, which took any other
       * kind for a chart repo status, does nothing with it during a rolling deploy.
       */
      sweep?: SweepOrder;
    }
  | { kind: 'chartRepo'; status: ChartRepoStatus; byUser: Map<string, ChartRepoStatus> };

/**
 * A runtime change as the change log brings it (V8's deserialization of what an instance appended).
 * An instance of an earlier version appended whole task rows, `metadata` included: during a rolling
 * deploy the runtime keeps its own columns of them, as of the rows it reads itself.
 */
export function runtimeChangeOf(value: unknown): RuntimeChange {
  const change = value as RuntimeChange;
  // This version's read-backs hold those columns only: kept as they are, the same object. An
  // instance knows its own entry coming back by it (StoreBarrier.returned): a copy of every one
  // left each read-your-writes wait to run out its time (a mutation answered a second late).
  if (change.kind !== 'rows' || change.tasks.every(hasRuntimeColumnsOnly)) return change;
  return { ...change, tasks: change.tasks.map(runtimeTaskOf) };
}

function hasRuntimeColumnsOnly(task: object): boolean {
  return Object.keys(task).length === RUNTIME_TASK_COLUMNS.length;
}

/** A runtime event as the cluster's event history keeps it (see runtimeChangeOf: an earlier version's has whole rows). */
export function runtimeEventOf(value: unknown): RuntimeEvent {
  const event = value as RuntimeEvent;
  return event.task ? { ...event, task: runtimeTaskOf(event.task) } : event;
}

/**
 * The most runtime events applying a change can cause, the sequences its log entry reserves: a
 * task changes, may move its app's stage and may push the oldest finished task out; an app
 * changes or goes; a component changes or goes; the chart repo changes.
 */
export function eventBound(change: RuntimeChange): number {
  switch (change.kind) {
    case 'rows':
      return change.tasks.length * 3 + change.appKeys.length;
    case 'components':
      return change.components.length + (change.sweep ? SWEEP_EVENT_BOUND : 0);
    case 'chartRepo':
      return 1;
  }
}

/** Where the collector sends its changes in cluster mode: the change log. */
export interface RuntimeLog {
  appendRuntime(change: RuntimeChange, events: number): void;
  /** Keeps an event the store emitted for instances that start later (see StateStore.replay). */
  recordEvent(event: RuntimeEvent): void;
  /** The events kept, oldest first, up to `sequence`: at most `count` of the latest (as stored: runtimeEventOf). */
  eventsUpTo(sequence: number, count: number): Promise<unknown[]>;
}

/** `own`: the change is this instance's (it appended the entry). */
type Apply = (change: RuntimeChange, first: number, last: number, own: boolean) => void;

/**
 * The log's runtime entries as they arrive, held until the collector has loaded the state they
 * apply to (the log is read from before the load starts, so that nothing committed meanwhile is
 * missed), then handed over in order.
 */
export class RuntimeEntries {
  private held: Parameters<Apply>[] = [];
  private apply: Apply | null = null;

  /** The sequence the log's end stood for when reading started: where the store continues from. */
  position = 0;

  deliver(...entry: Parameters<Apply>): void {
    if (this.apply) this.apply(...entry);
    else this.held.push(entry);
  }

  /** From now on entries go to `apply`; those held so far first. */
  attach(apply: Apply): void {
    for (const entry of this.held.splice(0)) apply(...entry);
    this.apply = apply;
  }
}
