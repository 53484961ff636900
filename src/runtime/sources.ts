import { DISK_FULL, isDiskFull } from '../db/availability.js';
import type { Db } from '../db/client.js';
import type { DiskFullWatch } from '../db/disk-full.js';
import type { ProcessPresence } from '../db/process-presence.js';
import { LOW_DISK_BYTES, type SqliteFile } from '../db/sqlite-file.js';
import type { AppServiceReads, StatusCorrectionStatus } from '../engine/status-correction.js';
import type { TaskEngine } from '../engine/task-engine.js';
import type { LeadershipStatus } from '../events/leader-lease.js';
import type { ChangeLogStatus } from '../events/redis-log-types.js';
import type { JobStatus } from '../platform/periodic-job.js';
import type { SourceSyncStatus } from '../services/catalogue-sync.js';
import { component, jobComponent, NOT_STARTED, overdueRun } from './components.js';
import { differingSettings } from './instance-sweep.js';
import type { PollSource } from './state-collector.js';
import type { ComponentStatus } from './state-store.js';

/** The cluster change log as the `pubsub` component reads it. */
export interface ChangeLogStatusSource {
  status(): ChangeLogStatus;
}

/** What the `database` component checks besides a trivial query (null where it does not apply). */
export interface DatabaseChecks {
  provider: string;
  /** SQLite: whether the file is still the one opened, and the space left for its writes. */
  file: SqliteFile | null;
  /** Without REDIS_URL: whether another server process uses the database too. */
  presence: ProcessPresence | null;
  /** Told of the beat's outcome: a write at every check (see DiskFullWatch). */
  diskFull?: Pick<DiskFullWatch, 'observe' | 'wrote'>;
}

/** `database`: answers a trivial query, and how fast; then what DatabaseChecks adds, the worst first. */
export function databaseSource(db: Db, { provider, file, presence, diskFull: watch }: DatabaseChecks): PollSource {
  return {
    name: 'database',
    async collect() {
      const started = performance.now();
      await db.$queryRawUnsafe('SELECT 1');
      const latencyMs = Math.round((performance.now() - started) * 10) / 10;
      const problem = (await file?.problem()) ?? null;
      // The presence row is a write: refused once the file is gone or replaced (SqliteFile).
      const [freeBytes, others] = await Promise.all([
        file?.freeBytes() ?? null,
        problem === null ? beatUnlessFull(presence, watch) : 0,
      ]);
      const shared =
        others !== null && others > 0
          ? `${others} other server process(es) use this database without REDIS_URL: each shows only its own changes live (several instances need PostgreSQL and REDIS_URL; on SQLite, run one)`
          : null;
      const low = freeBytes !== null && freeBytes < LOW_DISK_BYTES;
      const full = low
        ? `${freeBytes} bytes free on the database file's filesystem: writes fail when it is full`
        : null;
      const diskFull = others === null ? `${DISK_FULL} (${freeBytes ?? '?'} bytes free on its filesystem)` : null;
      const message = problem ?? diskFull ?? shared ?? full;
      const metrics = {
        provider,
        latencyMs,
        ...(file ? { file: file.filePath } : {}),
        ...(freeBytes !== null ? { freeBytes } : {}),
        ...(presence && others !== null ? { otherProcesses: others } : {}),
      };
      const state = message === null ? 'RUNNING' : 'ERROR';
      return [{ name: 'database', healthy: message === null, state, message, metrics }];
    },
  };
}

/**
 * How many other processes use the database (ProcessPresence), or null when the disk had no room
 * for this one's row: with 0 bytes free the whole check failed on that write, and the component
 * showed "database unavailable" without the free space, the cause only in a collector warning.
 */
async function beatUnlessFull(
  presence: ProcessPresence | null,
  diskFull: DatabaseChecks['diskFull'],
): Promise<number | null> {
  if (!presence) return 0;
  try {
    const others = await presence.beat();
    diskFull?.wrote();
    return others;
  } catch (error) {
    if (diskFull ? diskFull.observe(error) : isDiskFull(error)) return null;
    throw error;
  }
}

/**
 * The `database` component as a non-admin sees it: its state and message, not where the SQLite
 * file lies nor how much room its filesystem has (the host's business, as `/readiness` keeps it).
 */
export function databaseForUsers(component: ComponentStatus): ComponentStatus {
  const { file: _file, freeBytes: _freeBytes, ...metrics } = component.metrics;
  return { ...component, metrics };
}

/** `task_engine`: queue and workers. */
export function taskEngineSource(
  db: Db,
  engine: Pick<TaskEngine, 'running' | 'instanceId' | 'machineClockLeadMs'>,
  concurrency: number,
): PollSource {
  return {
    name: 'task_engine',
    async collect() {
      const [pending, running] = await Promise.all([
        db.task.count({ where: { status: 'PENDING' } }),
        db.task.count({ where: { status: 'RUNNING' } }),
      ]);
      const lead = engine.machineClockLeadMs;
      const skewed = clockSkewMessage(lead);
      return [
        {
          name: 'task_engine',
          healthy: true,
          state: skewed ? 'DEGRADED' : 'RUNNING',
          message: skewed,
          metrics: {
            pendingTasks: pending,
            runningTasks: running,
            busyWorkers: engine.running,
            workers: concurrency,
            instanceId: engine.instanceId,
            ...(lead === null ? {} : { clockOffsetMs: lead }),
          },
        },
      ];
    },
  };
}

/**
 * How far this machine's clock may be from the database's before the task engine says so. Leases
 * and outbox locks read the database's clock whatever this one says (DatabaseClock); the instance
 * sweep, JWT times, due times and the times shown to clients still take it at its word, and NTP
 * keeps a healthy one within milliseconds.
 */
const CLOCK_SKEW_WARNING_MS = 1000;

/** Why the clock is worth a look, or null (`lead`: how far this machine's clock is ahead of the database's). */
function clockSkewMessage(lead: number | null): string | null {
  if (lead === null || Math.abs(lead) < CLOCK_SKEW_WARNING_MS) return null;
  const seconds = (Math.abs(lead) / 1000).toFixed(1);
  return `this machine's clock is ${seconds} s ${lead > 0 ? 'ahead of' : 'behind'} the database's: keep the instances' clocks in sync (NTP)`;
}

/**
 * `pubsub`: the event bus with the fan-out's connections, cohorts and subscriptions; in cluster
 * mode also the Redis change log, whose connection decides the component's health, and the
 * leader lease's own connection: DEGRADED while its claims fail (`leaseError`), since an instance
 * that cannot claim can neither lead nor take over from a dead leader.
 */
export function pubsubSource(
  subscriptions: () => Record<string, number>,
  clusterLog: ChangeLogStatusSource | null,
  leaseError: () => string | null = () => null,
): PollSource {
  return {
    name: 'pubsub',
    async collect() {
      if (!clusterLog) {
        const metrics = { kind: 'in-process', ...subscriptions() };
        return [{ name: 'pubsub', healthy: true, state: 'RUNNING', message: null, metrics }];
      }
      const { connected, lastError, ...log } = clusterLog.status();
      const lease = leaseError();
      const state = !connected ? 'ERROR' : lease ? 'DEGRADED' : 'RUNNING';
      const message = !connected
        ? `Redis unreachable: ${lastError ?? 'not connected'}`
        : lease && `Leader lease claims fail: ${lease}`;
      const metrics = { kind: 'redis', ...log, leaseError: lease, ...subscriptions() };
      return [{ name: 'pubsub', healthy: state === 'RUNNING', state, message, metrics }];
    },
  };
}

/**
 * `app_service`: the simulated one is always there (one per process); the real one is judged by
 * status correction's reads of its app list (the leader's: one per cluster), and is DEGRADED while
 * a read is overdue (overdueRun): an app service that does not answer. A run that failed on the
 * database after the read is `database`'s and `status_correction`'s to show, not this one's.
 */
export function appServiceSource(
  kind: 'simulated' | 'http',
  correction: () => JobStatus | null,
  reads: () => AppServiceReads,
): PollSource {
  return {
    name: 'app_service',
    scope: kind === 'http' ? 'cluster' : 'process',
    async collect() {
      if (kind === 'simulated') {
        return [{ name: 'app_service', healthy: true, state: 'RUNNING', message: null, metrics: { kind } }];
      }
      const job = correction();
      const { lastError, reading } = reads();
      const judged = job && { ...job, lastError, running: job.running && reading };
      const status = jobComponent('app_service', judged, 'read of the app list (status correction)');
      return [{ ...status, metrics: { kind, ...status.metrics } }];
    },
  };
}

/**
 * `status_correction` (the leader's): its comparisons of the app service's list with the stored
 * states. ERROR while the last one failed (the list could not be read), DEGRADED while the one in
 * progress is overdue (overdueRun, from its job's status), STOPPED on an instance that never led.
 */
export function statusCorrectionSource(
  status: () => StatusCorrectionStatus | null,
  job: () => JobStatus | null,
): PollSource {
  return {
    name: 'status_correction',
    scope: 'cluster',
    async collect() {
      const figures = status();
      if (!figures) return [component('status_correction', 'STOPPED', {}, NOT_STARTED)];
      const { lastCheckAt, lastError, ...rest } = figures;
      const metrics = { ...rest, lastCheckAt: lastCheckAt?.toISOString() ?? null, lastError };
      const running = job();
      const overdue = running && overdueRun(running, 'comparison');
      const state = lastError ? 'ERROR' : overdue ? 'DEGRADED' : 'RUNNING';
      return [component('status_correction', state, metrics, lastError ?? overdue)];
    },
  };
}

/**
 * Periodic jobs (history cleanup, payment polling recovery) as components: the leader's. A failed
 * run's error stands until the next run, which the message says comes with the job's period:
 * `history_cleanup` said "database unavailable" for up to a minute after the database was back,
 * with nothing saying it was stale. The period, not the next run's time: that changed at every
 * failed run (an event to every dashboard each time) and, after a run longer than the period, was
 * already past.
 */
export function jobsSource(
  jobs: () => { component: string; status: JobStatus | null; metrics?: Record<string, unknown> }[],
): PollSource {
  return {
    name: 'jobs',
    scope: 'cluster',
    async collect() {
      return jobs().map(({ component, status, metrics }) => {
        const job = jobComponent(component, status);
        const retried = status?.lastError && !status.running;
        const message = retried
          ? `${job.message}; tried again at its next run (every ${seconds(status)})`
          : job.message;
        return status && metrics ? { ...job, message, metrics: { ...job.metrics, ...metrics } } : { ...job, message };
      });
    },
  };
}

/** A job's period, in seconds as people write it ("60 s", "0.5 s"). */
function seconds({ intervalMs }: JobStatus): string {
  return `${Number((intervalMs / 1000).toFixed(1))} s`;
}

/**
 * `cluster` (cluster mode): which instance leads, since when, on what lease. Only the leader
 * reports it, so there is one, and a leader that died shows as its `lastCheck` getting old.
 * DEGRADED while live instances run with different shared settings (differingSettings).
 */
export function clusterSource(
  instance: string,
  leadership: { status(): LeadershipStatus },
  components: () => readonly ComponentStatus[],
): PollSource {
  return {
    name: 'cluster',
    scope: 'cluster',
    async collect() {
      const { since, leaseMs } = leadership.status();
      const metrics = { leader: instance, since: since?.toISOString() ?? null, leaseMs };
      const differing = differingSettings(components());
      return [component('cluster', differing ? 'DEGRADED' : 'RUNNING', metrics, differing)];
    },
  };
}

/**
 * `syncer`: the market sources' syncs (the leader runs them; the figures are read from the
 * sources' rows). Its state is that of the catalogue users are served, the active remote source's:
 * RUNNING while its last sync succeeded, ERROR while it fails (the catalogue then is the last good
 * one). An inactive source's failures (one an admin tries before selecting it) show in the message
 * and figures only: they leave users' catalogue as it was, and a non-admin, who is shown the active
 * source only, saw the whole syncer DEGRADED with nothing failing.
 */
export function syncerSource(status: () => Promise<SourceSyncStatus[]>): PollSource {
  return {
    name: 'syncer',
    scope: 'cluster',
    async collect() {
      const sources = await status();
      const failing = sources.filter((source) => source.consecutiveFailures > 0);
      const state = failing.some((source) => source.active) ? 'ERROR' : 'RUNNING';
      const message = failing.map((source) => `${source.sourceId}: ${source.lastError}`).join('; ') || null;
      const iso = (date: Date | null) => date?.toISOString() ?? null;
      const metrics = {
        sources: sources.length,
        failing: failing.length,
        apps: sources.reduce((sum, source) => sum + source.appCount, 0),
        bySource: sources.map((source) => ({
          ...source,
          lastSyncAt: iso(source.lastSyncAt),
          lastAttemptAt: iso(source.lastAttemptAt),
          nextSyncAt: iso(source.nextSyncAt),
        })),
      };
      return [component('syncer', state, metrics, message)];
    },
  };
}
