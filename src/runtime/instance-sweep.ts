import type { ComponentStatus } from './state-store.js';

/**
 * Cluster mode: what happens to the components of instances that are gone. Each instance names
 * its own `<component>@<instance>` and republishes them every collect cycle, so their `lastCheck`
 * is the instance's last sign of life. Without a sweep a killed instance's components said RUNNING
 * for good, and with the default INSTANCE_NAME (new at every restart) each restart left a set of
 * STOPPED ones behind in every runtime for good.
 *
 * The leader puts a SweepOrder into the change log every cycle, and every instance applies it to
 * its own store where it stands in the log: so instances holding the same components decide alike
 * (the same events at the same sequences), and one holding components the leader never saw (it
 * started after they were last published) sweeps those too. Times are the order's `at` (when the
 * leader gave it) against each `lastCheck` (when the instance published it), both on the database's
 * clock (DatabaseClock): on each instance's own, the leader took an instance whose clock ran more
 * than INSTANCE_SILENCE_MS behind for gone at every cycle, and it came back at its next.
 */
export interface SweepOrder {
  /** When the leader gave it (ms since the epoch). */
  at: number;
  /** INSTANCE_SILENCE_MS: no update from an instance for this long, and it counts as gone. */
  silenceMs: number;
  /** STOPPED_COMPONENT_RETENTION_MS: how long a gone instance's STOPPED components stay. */
  retentionMs: number;
}

export interface InstanceSweep {
  /** Components of instances gone silent, now STOPPED (their `lastCheck` kept). */
  silenced: ComponentStatus[];
  /** The instances those belong to, for the log. */
  silencedInstances: string[];
  /** Names of gone instances' STOPPED components past the retention: they leave the runtime. */
  removed: string[];
}

/**
 * The most events one order may cause (its log entry reserves as many sequences): a store with
 * more to sweep does the rest at the next order.
 */
export const SWEEP_EVENT_BOUND = 1_000;

/**
 * What an order does to these components. The cluster's own components (no `@`) are the leader's
 * and are never swept. An instance counts as silent after the longer of `silenceMs` and three of
 * its own collect intervals (its `collector` component says which). A STOPPED component leaves
 * once it is past both the retention and the silence, so a live instance's own STOPPED ones stay.
 * An instance that was only slow (Redis away, a stalled event loop) republishes its components
 * at its next cycle, and they are RUNNING again.
 */
export function sweepInstances(components: readonly ComponentStatus[], order: SweepOrder): InstanceSweep {
  const sweep: InstanceSweep = { silenced: [], silencedInstances: [], removed: [] };
  const intervals = new Map<string, number>();
  for (const { name, metrics } of components) {
    if (name.startsWith('collector@') && typeof metrics.intervalMs === 'number') {
      intervals.set(name.slice('collector@'.length), metrics.intervalMs);
    }
  }
  for (const status of components) {
    if (sweep.silenced.length + sweep.removed.length >= SWEEP_EVENT_BOUND) break;
    const at = status.name.lastIndexOf('@');
    if (at < 0) continue;
    const instance = status.name.slice(at + 1);
    const silenceMs = Math.max(order.silenceMs, 3 * (intervals.get(instance) ?? 0));
    const quietMs = order.at - status.lastCheck.getTime();
    if (quietMs < silenceMs) continue;
    if (status.state !== 'STOPPED') {
      const message = `instance ${instance} not heard from since ${status.lastCheck.toISOString()}`;
      sweep.silenced.push({ ...status, state: 'STOPPED', healthy: false, message });
      if (!sweep.silencedInstances.includes(instance)) sweep.silencedInstances.push(instance);
    } else if (quietMs >= order.retentionMs) {
      sweep.removed.push(status.name);
    }
  }
  return sweep;
}

/**
 * The settings on which live instances disagree, as a message; null when they all agree. Each
 * instance shows its own on its `collector` component (`metrics.settings`). One instance's value
 * decides for all: the shortest TASK_LEASE_MS takes over the others' live tasks, the shortest
 * APP_SERVICE_TIMEOUT_MS judges lost a task another instance may still be sending, the smallest
 * RUNTIME_EVENT_BUFFER or CHANGE_LOG_RETENTION trims what every instance can resume from.
 */
export function differingSettings(components: readonly ComponentStatus[]): string | null {
  const seen = new Map<string, Map<string, string[]>>(); // setting → value → instances
  for (const { name, state, metrics } of components) {
    const settings = metrics.settings;
    if (!name.startsWith('collector@') || state === 'STOPPED' || typeof settings !== 'object' || !settings) continue;
    for (const [setting, value] of Object.entries(settings)) {
      const values = seen.get(setting) ?? new Map<string, string[]>();
      seen.set(setting, values);
      values.set(String(value), [...(values.get(String(value)) ?? []), name.slice('collector@'.length)]);
    }
  }
  const differing = [...seen].filter(([, values]) => values.size > 1);
  if (differing.length === 0) return null;
  const described = differing.map(
    ([setting, values]) =>
      `${setting}: ${[...values].map(([value, instances]) => `${value} on ${instances.sort().join(', ')}`).join(', ')}`,
  );
  return `settings differ between instances (every instance must have the same): ${described.join('; ')}`;
}
