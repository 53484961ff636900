import type { Db } from '../db/client.js';
import type { AppKey } from '../domain/app-key.js';

/**
 * An app's state row goes when the app is gone: by a task of ours (a completed uninstall, a
 * canceled first install), or without one, on the app service's word (an `uninstalled` report,
 * an app its full list no longer shows), with a `system` history record. The row's time goes
 * with it, so the removal itself says when: a late or repeated report from before it (an app
 * service resending after a 503, events out of order) must not bring the app back.
 */

// The messages below are also how removedSince finds the records: built here only, they stay in
// step (records written under an earlier wording are no longer found, which only lets a late
// report of before them through).

/** The history message of an app the app service reported uninstalled, with no task of ours. */
export function uninstalledMessage(appName: string): string {
  return `${appName} was uninstalled on the app service`;
}

/** The history message of an app status correction removed: the app service's list no longer shows it. */
export function goneFromListMessage(appName: string, lastState: string): string {
  return `${goneFromListPrefix(appName)} (last state ${lastState || '(none)'})`;
}

function goneFromListPrefix(appName: string): string {
  return `${appName} is gone from the app service: removed`;
}

/** Whether the app's row was removed at or after `time` (so that a report of then is stale). */
export async function removedSince(db: Db, app: AppKey, time: Date): Promise<boolean> {
  const byTask = await db.task.findFirst({
    where: {
      ...app,
      completedAt: { gte: time },
      OR: [
        { type: 'UNINSTALL', status: 'COMPLETED' },
        { type: { in: ['INSTALL', 'CLONE'] }, status: 'CANCELED' },
      ],
    },
    select: { id: true },
  });
  if (byTask) return true;
  // The records name the user and app; the source is in their data (a user's app names of two
  // sources rarely clash, and a clash only keeps a stale-looking report out).
  const byAppService = await db.historyRecord.findFirst({
    where: {
      userId: app.userId,
      app: app.appName,
      type: 'system',
      time: { gte: time },
      OR: [{ message: uninstalledMessage(app.appName) }, { message: { startsWith: goneFromListPrefix(app.appName) } }],
    },
    select: { id: true },
  });
  return byAppService !== null;
}
