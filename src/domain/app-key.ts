/**
 * The identity of one app of one user: (user, source, app name). Tasks and app-state rows meet
 * on it; `Task.activeKey` stores it while a task is active, which is what makes "one active task
 * per app" a unique index.
 */
export interface AppKey {
  userId: string;
  sourceId: string;
  appName: string;
}

export function appKeyString({ userId, sourceId, appName }: AppKey): string {
  return `${userId}/${sourceId}/${appName}`;
}
