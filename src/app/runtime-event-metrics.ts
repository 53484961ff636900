import { Counter, Histogram, type Registry } from 'prom-client';
import type { RuntimeEvent, StateStore } from '../runtime/state-store.js';

/** The task and lag figures of /metrics that follow the runtime store's events (metrics.ts has the rest). */

const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELED']);
const TASK_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];
const LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Finished tasks remembered so that a task's end is counted once, however often it is re-read. */
const COUNTED_TASKS = 10_000;

/** Counters and histograms fed by the runtime store's events as they happen. */
export function followRuntimeEvents(registry: Registry, store: Pick<StateStore, 'onEvent'>): void {
  const registers = [registry];
  const events = new Counter({
    name: 'market_runtime_events_total',
    help: 'Runtime events emitted, by kind',
    labelNames: ['kind'],
    registers,
  });
  const lag = new Histogram({
    name: 'market_runtime_event_lag_seconds',
    help: "Time from a task row's last write to its runtime event (the collector's read-back delay)",
    buckets: LAG_BUCKETS,
    registers,
  });
  const finished = new Counter({
    name: 'market_tasks_finished_total',
    help: 'Tasks that reached a terminal status, by type and status',
    labelNames: ['type', 'status'],
    registers,
  });
  const durations = new Histogram({
    name: 'market_task_duration_seconds',
    help: 'Time from a task starting to its end, by type and terminal status',
    labelNames: ['type', 'status'],
    buckets: TASK_BUCKETS,
    registers,
  });
  const counted = new Set<string>();
  // What the store loads at start (recent finished tasks) ended before: neither a new end nor a lag.
  const since = Date.now();
  store.onEvent((event: RuntimeEvent) => {
    // A store's RESYNC (StateStore.forgetUpTo) is a mark for its streams, not an event it emitted.
    if (event.kind === 'RESYNC') return;
    events.inc({ kind: event.kind });
    const task = event.task;
    if (event.kind !== 'TASK_CHANGED' || !task || !task.updatedAt || task.updatedAt.getTime() < since) return;
    lag.observe(Math.max(0, event.at.getTime() - task.updatedAt.getTime()) / 1000);
    if (!TERMINAL.has(task.status) || counted.has(task.taskId)) return;
    counted.add(task.taskId);
    if (counted.size > COUNTED_TASKS) counted.delete(counted.values().next().value as string);
    const labels = { type: task.type, status: task.status };
    finished.inc(labels);
    const from = task.startedAt ?? task.createdAt;
    if (task.completedAt && from) durations.observe(labels, (task.completedAt.getTime() - from.getTime()) / 1000);
  });
}
