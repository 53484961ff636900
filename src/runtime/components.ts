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

/** A run that goes on longer than its job's interval, within these bounds, is overdue (overdueRun). */
const OVERDUE_RUN_MS = { min: 5_000, max: 30_000 };

/**
 * Why a job's run in progress is overdue, or null: it has gone on for longer than the job's
 * interval (at least OVERDUE_RUN_MS.min, at most .max). A first run that hung (an app service that
 * accepts and never answers, for the whole APP_SERVICE_TIMEOUT_MS) had no result to judge by and
 * showed RUNNING and healthy. The message names when it started, so it does not change every cycle.
 */
export function overdueRun(status: JobStatus, what = 'run', now = Date.now()): string | null {
  if (!status.running || !status.lastStartedAt) return null;
  const bound = Math.min(Math.max(status.intervalMs, OVERDUE_RUN_MS.min), OVERDUE_RUN_MS.max);
  if (now - status.lastStartedAt.getTime() <= bound) return null;
  const since = status.lastStartedAt.toISOString();
  return `${status.runs === 0 ? 'first ' : ''}${what} still in progress after more than ${bound / 1000} s (since ${since})`;
}

/** A periodic job as a component: running while its last run succeeded, DEGRADED while a run is overdue. */
export function jobComponent(
  name: string,
  status: JobStatus | null,
  what?: string,
): Omit<ComponentStatus, 'lastCheck'> {
  if (!status) return component(name, 'STOPPED', {}, NOT_STARTED);
  const overdue = overdueRun(status, what);
  return component(
    name,
    status.lastError ? 'ERROR' : overdue ? 'DEGRADED' : 'RUNNING',
    {
      runs: status.runs,
      intervalMs: status.intervalMs,
      lastRunAt: status.lastStartedAt?.toISOString() ?? null,
      lastDurationMs: status.lastDurationMs,
    },
    status.lastError ?? overdue,
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

/** A process's own component in cluster mode is `<component>@<instance>`; the cluster's, and all in one process, are not. */
export function instanceComponentName(name: string, instance: string | undefined): string {
  return instance ? `${name}@${instance}` : name;
}

/** An instance's own components as it leaves: the others keep them, and would say RUNNING for good. */
export function stoppedComponents(names: Iterable<string>, lastCheck: Date): ComponentStatus[] {
  return [...names].map((name) => ({ ...component(name, 'STOPPED', {}, 'instance stopped'), lastCheck }));
}
