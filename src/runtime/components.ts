import type { ChartRepoStatus } from '../adapters/chart-repo/port.js';
import type { JobStatus } from '../platform/periodic-job.js';
import type { ComponentState, ComponentStatus, StateStore } from './state-store.js';

/** A component's status as a source reports it (the collector stamps `lastCheck`). */
export function component(
  name: string,
  state: ComponentState,
  metrics: Record<string, unknown>,
  message: string | null = null,
): Omit<ComponentStatus, 'lastCheck'> {
  return { name, healthy: state === 'RUNNING' || state === 'DISABLED', state, message, metrics };
}

/** What a job that has not run yet on this instance says. */
export const NOT_STARTED = 'not started';

/**
 * Whether `status` says only that its job has not run here yet, while the runtime holds a report
 * of it (the last leader's): on every leader change the cluster's jobs (and the app service they
 * judge) showed STOPPED for a collect cycle, two events to every subscriber, with nothing stopped.
 */
export function notRunYet(status: Pick<ComponentStatus, 'name' | 'message' | 'state'>, store: StateStore): boolean {
  return status.state === 'STOPPED' && status.message === NOT_STARTED && store.component(status.name) !== undefined;
}

/** A periodic job as a component: running while its last run succeeded. */
export function jobComponent(name: string, status: JobStatus | null): Omit<ComponentStatus, 'lastCheck'> {
  if (!status) return component(name, 'STOPPED', {}, NOT_STARTED);
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
