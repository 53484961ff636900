import type { ComponentStatus } from './state-store.js';

/**
 * Cluster mode: what the leader does with the components of the other instances (named
 * `<component>@<instance>`, republished by their instance every collect cycle, so their
 * `lastCheck` is the instance's last sign of life). Without it a killed instance's components
 * said RUNNING for good, and with the default INSTANCE_NAME (new at every restart) each restart
 * left a set of STOPPED ones behind in every runtime for good.
 */
export interface InstanceSweep {
  /** Components of instances not heard from for `silenceMs`, now STOPPED (their `lastCheck` kept). */
  silenced: ComponentStatus[];
  /** The instances those belong to, for the log. */
  silencedInstances: string[];
  /** Names of the components STOPPED with no sign of life for `retentionMs`: they leave the runtime. */
  removed: string[];
}

export interface SweepSettings {
  /** INSTANCE_SILENCE_MS: no component update from an instance for this long, and it counts as gone. */
  silenceMs: number;
  /** STOPPED_COMPONENT_RETENTION_MS: a gone instance's components are shown this long, then removed. */
  retentionMs: number;
}

/**
 * Decides the sweep over every component the store holds, at `now` (ms). The cluster's own
 * components (no `@`) are the leader's and `own` instance's are this one's: neither is swept. An
 * instance that was only slow (Redis away, a stalled event loop) republishes its components at its
 * next cycle, and they are RUNNING again.
 */
export function sweepInstances(
  components: Iterable<ComponentStatus>,
  own: string,
  now: number,
  { silenceMs, retentionMs }: SweepSettings,
): InstanceSweep {
  const sweep: InstanceSweep = { silenced: [], silencedInstances: [], removed: [] };
  for (const status of components) {
    const at = status.name.lastIndexOf('@');
    const instance = at < 0 ? own : status.name.slice(at + 1);
    if (instance === own) continue;
    const quietMs = now - status.lastCheck.getTime();
    if (status.state === 'STOPPED') {
      if (quietMs >= retentionMs) sweep.removed.push(status.name);
    } else if (quietMs >= silenceMs) {
      const since = status.lastCheck.toISOString();
      const message = `instance ${instance} not heard from since ${since}`;
      sweep.silenced.push({ ...status, state: 'STOPPED', healthy: false, message });
      if (!sweep.silencedInstances.includes(instance)) sweep.silencedInstances.push(instance);
    }
  }
  return sweep;
}
