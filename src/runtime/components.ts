import type { ChartRepoStatus } from '../adapters/chart-repo/port.js';
import type { JobStatus } from '../platform/periodic-job.js';
import type { ComponentState, ComponentStatus } from './state-store.js';

/** A component's status as a source reports it (the collector stamps `lastCheck`). */
export function component(
  name: string,
  state: ComponentState,
  metrics: Record<string, unknown>,
  message: string | null = null,
): Omit<ComponentStatus, 'lastCheck'> {
  return { name, healthy: state === 'RUNNING' || state === 'DISABLED', state, message, metrics };
}

/** A periodic job as a component: running while its last run succeeded. */
export function jobComponent(name: string, status: JobStatus | null): Omit<ComponentStatus, 'lastCheck'> {
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

/** The chart repo as a component, from what a collection found. */
export function chartRepoComponent(status: ChartRepoStatus): Omit<ComponentStatus, 'lastCheck'> {
  return component(
    'chart_repo',
    status.reachable ? 'RUNNING' : 'ERROR',
    {
      apps: Array.isArray(status.apps) ? status.apps.length : 0,
      lastUpdate: status.lastUpdate?.toISOString() ?? null,
    },
    status.lastError,
  );
}

/** An instance's own components as it leaves: the others keep them, and would say RUNNING for good. */
/** A process's own component in cluster mode is `<component>@<instance>`; the cluster's, and all in one process, are not. */
export function instanceComponentName(name: string, instance: string | undefined): string {
  return instance ? `${name}@${instance}` : name;
}

export function stoppedComponents(names: Iterable<string>): ComponentStatus[] {
  const lastCheck = new Date();
  return [...names].map((name) => ({ ...component(name, 'STOPPED', {}, 'instance stopped'), lastCheck }));
}
