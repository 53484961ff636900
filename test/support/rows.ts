import type { Db } from '../../src/db/client.js';
import { insertTask, upsertAppStateForTask } from '../../src/db/hot-path-sql.js';
import { type AppKey, appKeyString } from '../../src/domain/app-key.js';

/**
 * A PENDING install of `key` at version 1.70.1 with its app state row, written as the mutation
 * writes them: for tests that drive the engine or the collector without going through the API.
 */
export async function createPendingInstall(db: Db, key: AppKey, taskId: string, at = new Date()) {
  const [task] = await insertTask(db, {
    taskId,
    type: 'INSTALL',
    ...key,
    version: '1.70.1',
    metadata: { cfgType: 'app', envs: [] },
    idempotencyKey: null,
    activeKey: appKeyString(key),
    retryOfTaskId: null,
    createdAt: at,
  });
  await upsertAppStateForTask(db, {
    ...key,
    opType: 'install',
    targetVersion: '1.70.1',
    cfgType: 'app',
    title: key.appName,
    rawAppName: null,
    now: at,
  });
  if (!task) throw new Error(`task ${taskId} was not written`);
  return task;
}

/** Catalogue apps of the demo data that no demo user has installed, each with a version it has. */
export const UNINSTALLED_APPS = [
  { appName: 'n8n', version: '1.70.1' },
  { appName: 'ghost', version: '5.104.2' },
  { appName: 'wordpress', version: '6.7.1' },
  { appName: 'mastodon', version: '4.3.2' },
  { appName: 'excalidraw', version: '0.17.6' },
  { appName: 'stirling-pdf', version: '0.36.6' },
  { appName: 'minio', version: '2024.11.7' },
  { appName: 'redis', version: '7.4.1' },
  { appName: 'photoprism', version: '240915' },
] as const;

/** Catalogue apps the dashboard tests install and uninstall over and over, for a stream of runtime events. */
export const CHURN_APPS = [
  ['grafana', '11.4.0'],
  ['uptime-kuma', '1.23.16'],
  ['syncthing', '1.28.1'],
  ['navidrome', '0.53.3'],
  ['gitea', '1.22.4'],
  ['code-server', '4.95.3'],
  ['audiobookshelf', '2.17.5'],
  ['minio', '2024.11.7'],
] as const;
