import type { AppServiceExtras } from '../adapters/app-service/factory.js';
import type { AppEntrance, AppStateEvent } from '../adapters/app-service/port.js';
import type { Db } from '../db/client.js';
import { driverSqlOf } from '../db/driver-sql.js';
import { findAppState } from '../db/hot-path-sql.js';
import { allActiveTasks, allAppStates } from '../db/state-reads.js';
import { type AppKey, appKeyString } from '../domain/app-key.js';

/**
 * The apps of the simulated app service's cluster as the stored app states hold them, as it would
 * list them, read at every listing. Without them, a comparison of the stored states with its list
 * (status correction) would find every app of an earlier run, or of another instance, gone.
 */
export async function storedClusterApps(db: Db): Promise<AppStateEvent[]> {
  const sql = driverSqlOf(db);
  const [stored, active] = await Promise.all([allAppStates(sql), allActiveTasks(sql)]);
  // Every stored app is in the cluster as stored (a failed install stays listed in its failed
  // state, as the real app service keeps it), but a first install in flight: its operation adds it.
  const inFlight = new Set(active.map((task) => task.activeKey));
  const rows = stored.filter((row) => row.installedVersion !== null || !inFlight.has(appKeyString(row)));
  return rows.map((row) => ({
    userId: row.userId,
    sourceId: row.sourceId,
    appName: row.appName,
    rawAppName: row.rawAppName,
    opId: row.opId,
    opType: row.opType,
    // '' is an operation accepted but not reported on yet: the app itself still runs.
    state: row.state === '' ? 'running' : row.state,
    progress: row.progress,
    reason: row.reason,
    message: row.message,
    createTime: row.eventTime,
    ...(Array.isArray(row.entrances) ? { entrances: row.entrances as unknown as AppEntrance[] } : {}),
  }));
}

/**
 * Whether the stored state says the app is installed (an installed version), as the simulated app
 * service asks when an install starts: the row of that one app.
 */
export async function installedBefore(db: Db, key: AppKey): Promise<boolean> {
  const row = await findAppState(driverSqlOf(db), key);
  return row?.installedVersion != null;
}

/**
 * The entrances the stored state holds for an app (null when none are stored), as the simulated
 * app service asks when an operation starts on an app it has not reported on itself.
 */
export async function storedEntrances(db: Db, key: AppKey): Promise<AppEntrance[] | null> {
  const row = await findAppState(driverSqlOf(db), key);
  return Array.isArray(row?.entrances) ? (row.entrances as unknown as AppEntrance[]) : null;
}

/** The simulated app service's view of the stored states: the whole list at every listing, one row at every operation. */
export function storedApps(db: Db): AppServiceExtras {
  return {
    storedApps: () => storedClusterApps(db),
    installedBefore: (key) => installedBefore(db, key),
    storedEntrances: (key) => storedEntrances(db, key),
  };
}
