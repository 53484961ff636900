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

/**
 * The longest source id and app name (or catalogue app id) an argument may name, as operations
 * and purchases take them (task-submission.ts, purchase-service.ts); a market source's own id is at
 * most 50. Nothing longer can match, and a refusal naming the bound answers instead of a lookup
 * whose NOT_FOUND would echo 16,384 characters of each back.
 */
export const MAX_SOURCE_ID_ARGUMENT = 64;
export const MAX_APP_NAME_ARGUMENT = 128;

export function appKeyString({ userId, sourceId, appName }: AppKey): string {
  return `${userId}/${sourceId}/${appName}`;
}
