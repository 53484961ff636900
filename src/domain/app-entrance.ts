import { createHash } from 'node:crypto';

/**
 * One way into an app, as the app service reports it (`entranceStatuses` of a state event, the
 * entrances of its app list, and `sharedEntrances`): what an "open" needs.
 */
export interface AppEntrance {
  name: string;
  title: string | null;
  /** Where it opens; null while the app service has not published it. */
  url: string | null;
  /** e.g. running, stopped, notReady. */
  state: string | null;
  /** public | private | internal. */
  authLevel: string | null;
  icon: string | null;
  /** default | window | iframe. */
  openMethod: string | null;
  invisible: boolean;
  /** One of the app's shared entrances (other users reach it too). */
  shared: boolean;
}

/** What an entrance shows while its app is in a state. */
export function entranceState(appState: string): string {
  if (appState === 'running') return 'running';
  if (appState === 'stopped') return 'stopped';
  return 'notReady';
}

/**
 * The app's main entrance as the simulated app service publishes it (and the demo data stores
 * it): a stable per-user, per-app host.
 */
export function simulatedEntrance(userId: string, appName: string, title: string, appState: string): AppEntrance {
  const host = createHash('sha256').update(`${userId}/${appName}`).digest('hex').slice(0, 8);
  return {
    name: appName,
    title,
    url: `https://${host}.${userId}.olares.local`,
    state: entranceState(appState),
    authLevel: 'private',
    icon: null,
    openMethod: 'default',
    invisible: false,
    shared: false,
  };
}
