/**
 * A fleet for the read-path benchmarks (snapshot.ts: G2/G3; g4b.ts), written with the raw driver
 * (better-sqlite3) into a freshly migrated SQLite file BEFORE the server starts, so the server
 * loads it as it would load a production database at start-up.
 *
 * Shape, deterministic for a given size: `apps` AppState rows over ceil(apps / 2000) users (so a
 * full user holds 2,000 apps), spread over the 4 demo market sources, each app name belonging to
 * one source (`fleet-app-<j>` for a user's j-th app, source j mod 4). Stages, by app:
 * - 1.5 % installing (`downloading`/`installing`, with a RUNNING INSTALL task),
 * - 0.5 % upgrading (`upgrading`, with a RUNNING UPGRADE task)       → 2 % active tasks,
 * - 3 % failed (`installFailed` with a reason, and the FAILED INSTALL task that failed),
 * - 4 % stopped, the rest running; 10 % of the running ones with the COMPLETED task that last
 *   touched them (so ~12 % finished tasks; the store keeps only the most recent 100 of those).
 *
 * The active tasks are RUNNING under another (fictitious) engine instance whose heartbeat is fresh:
 * with a lease longer than the benchmark (the server is started with a long TASK_LEASE_MS) the
 * server's own engine leaves them alone, so the store holds a stable fleet while it is measured;
 * PENDING tasks would be claimed and run at start-up, changing the fleet under the measurement.
 *
 * Optionally `installApps` catalogue entries `bench-install-<i>` (source market.olares) that no
 * one has installed, for benchmarks that send installApp mutations (g4b).
 */
import Database from 'better-sqlite3';
import { sqliteFilePath } from '../../src/db/client.js';
import { DEFAULT_SOURCES } from '../../src/db/default-sources.js';
import { newTaskId } from '../../src/domain/tasks.js';

export const APPS_PER_USER = 2000;
export const FLEET_SOURCES = DEFAULT_SOURCES.map((source) => source.sourceId);
export const INSTALL_SOURCE = 'market.olares';
export const INSTALL_VERSION = '1.0.0';
export const INSTALL_APP_PREFIX = 'bench-install-';
export const FOREIGN_WORKER = 'bench-seed-other-instance';

export const fleetUser = (index: number) => `fleet-user-${String(index).padStart(4, '0')}`;
export const fleetAppName = (index: number) => `fleet-app-${String(index).padStart(4, '0')}`;
export const installAppName = (index: number) => `${INSTALL_APP_PREFIX}${index}`;

export interface FleetOptions {
  apps: number;
  /** Catalogue entries for installApp mutations. @default 0 */
  installApps?: number;
}

export interface FleetSummary {
  apps: number;
  users: string[];
  /** A user holding the most apps (min(apps, 2000)). */
  busiestUser: string;
  busiestUserApps: number;
  byState: Record<string, number>;
  activeTasks: number;
  finishedTasks: number;
  catalogApps: number;
  /** Wall time of the writes (transaction included). */
  ms: number;
}

/** Prisma's own text form of a DateTime on SQLite (see src/db/hot-path-sql.ts). */
const sqliteDate = (date: Date) => date.toISOString().replace('Z', '+00:00');

type Kind = 'installing' | 'upgrading' | 'failed' | 'stopped' | 'running';

/** The stage of app `n` of the fleet: a fixed pattern per 200 apps, so every user gets the same mix. */
function kindOf(n: number): Kind {
  const slot = n % 200;
  if (slot < 3) return 'installing'; // 1.5 %
  if (slot < 4) return 'upgrading'; // 0.5 %
  if (slot < 10) return 'failed'; // 3 %
  if (slot < 18) return 'stopped'; // 4 %
  return 'running';
}

/** Writes the fleet into `url` (a migrated, empty SQLite file). */
export function seedFleet(url: string, options: FleetOptions): FleetSummary {
  const started = performance.now();
  const db = new Database(sqliteFilePath(url));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const now = Date.now();
  const insertSource = db.prepare(
    `INSERT INTO "MarketSource" ("sourceId", "title", "type", "baseUrl", "description", "priority", "activeRemote", "createdAt", "updatedAt")
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertCatalog = db.prepare(
    `INSERT INTO "CatalogApp" ("sourceId", "appId", "name", "version", "versions", "cfgType", "title", "description", "searchText", "entry", "createdAt", "updatedAt")
     VALUES (?, ?, ?, ?, ?, 'app', ?, ?, ?, ?, ?, ?)`,
  );
  const insertApp = db.prepare(
    `INSERT INTO "AppState" ("userId", "sourceId", "appName", "title", "cfgType", "installedVersion", "targetVersion", "state", "reason", "message", "progress", "opType", "opId", "eventTime", "createdAt", "updatedAt")
     VALUES (?, ?, ?, ?, 'app', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertTask = db.prepare(
    `INSERT INTO "Task" ("taskId", "type", "status", "userId", "sourceId", "appName", "version", "opId", "progress", "metadata", "result", "error", "activeKey", "workerId", "heartbeatAt", "dispatchedAt", "createdAt", "startedAt", "completedAt", "updatedAt")
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );

  const userCount = Math.max(1, Math.ceil(options.apps / APPS_PER_USER));
  const users = Array.from({ length: userCount }, (_, index) => fleetUser(index));
  const byState: Record<string, number> = {};
  let activeTasks = 0;
  let finishedTasks = 0;
  let catalogApps = 0;
  const stamp = sqliteDate(new Date(now));

  db.transaction(() => {
    for (const source of DEFAULT_SOURCES) {
      insertSource.run(
        source.sourceId,
        source.title,
        source.type,
        source.baseUrl,
        source.description,
        source.priority,
        source.activeRemote,
        stamp,
        stamp,
      );
    }
    const catalog = (sourceId: string, name: string) => {
      const entry = JSON.stringify({ id: name, name, appID: name, cfgType: 'app', version: INSTALL_VERSION });
      insertCatalog.run(
        sourceId,
        name,
        name,
        INSTALL_VERSION,
        JSON.stringify([INSTALL_VERSION]),
        name,
        `Catalogue entry ${name} of the benchmark fleet`,
        `${name} benchmark fleet`,
        entry,
        stamp,
        stamp,
      );
      catalogApps += 1;
    };
    for (let j = 0; j < Math.min(options.apps, APPS_PER_USER); j++) {
      catalog(FLEET_SOURCES[j % FLEET_SOURCES.length] as string, fleetAppName(j));
    }
    for (let i = 0; i < (options.installApps ?? 0); i++) catalog(INSTALL_SOURCE, installAppName(i));

    for (let n = 0; n < options.apps; n++) {
      const userId = users[Math.floor(n / APPS_PER_USER)] as string;
      const j = n % APPS_PER_USER;
      const sourceId = FLEET_SOURCES[j % FLEET_SOURCES.length] as string;
      const appName = fleetAppName(j);
      const kind = kindOf(n);
      // Spread over the last 30 days, older apps first, so "recent" means something.
      const changed = new Date(now - (options.apps - n) * ((30 * 86_400_000) / options.apps));
      const at = sqliteDate(changed);
      const state = {
        installing: n % 2 ? 'downloading' : 'installing',
        upgrading: 'upgrading',
        failed: 'installFailed',
        stopped: 'stopped',
        running: 'running',
      }[kind];
      byState[state] = (byState[state] ?? 0) + 1;
      const opType = {
        installing: 'install',
        upgrading: 'upgrade',
        failed: 'install',
        stopped: 'stop',
        running: 'install',
      }[kind];
      const installed = kind === 'installing' || kind === 'failed' ? null : '1.0.0';
      const target = kind === 'upgrading' ? '1.1.0' : '1.0.0';
      insertApp.run(
        userId,
        sourceId,
        appName,
        appName,
        installed,
        target,
        state,
        kind === 'failed' ? 'image pull failed: manifest unknown' : null,
        kind === 'failed' ? 'Back-off pulling image' : null,
        kind === 'installing' ? `${(n * 7) % 100}` : null,
        opType,
        `op-${n}`,
        at,
        at,
        at,
      );
      const key = { userId, sourceId, appName };
      if (kind === 'installing' || kind === 'upgrading') {
        insertTask.run(
          newTaskId(changed),
          kind === 'installing' ? 'INSTALL' : 'UPGRADE',
          'RUNNING',
          userId,
          sourceId,
          appName,
          target,
          `op-${n}`,
          (n * 7) % 100,
          JSON.stringify({ cfgType: 'app', envs: [], appId: appName }),
          null,
          null,
          `${key.userId}/${key.sourceId}/${key.appName}`,
          FOREIGN_WORKER,
          stamp,
          at,
          at,
          at,
          null,
          at,
        );
        activeTasks += 1;
      } else if (kind === 'failed' || n % 10 === 0) {
        const failed = kind === 'failed';
        insertTask.run(
          newTaskId(changed),
          'INSTALL',
          failed ? 'FAILED' : 'COMPLETED',
          userId,
          sourceId,
          appName,
          '1.0.0',
          `op-${n}`,
          failed ? 40 : 100,
          JSON.stringify({ cfgType: 'app', envs: [], appId: appName }),
          failed ? null : JSON.stringify({ state: 'running' }),
          failed ? 'image pull failed: manifest unknown' : null,
          null,
          FOREIGN_WORKER,
          at,
          at,
          at,
          at,
          at,
          at,
        );
        finishedTasks += 1;
      }
    }
  })();
  db.close();
  return {
    apps: options.apps,
    users,
    busiestUser: users[0] as string,
    busiestUserApps: Math.min(options.apps, APPS_PER_USER),
    byState,
    activeTasks,
    finishedTasks,
    catalogApps,
    ms: performance.now() - started,
  };
}

/**
 * The rows the server's store loads at start-up (StateCollector.loadInitialState: every app state
 * row, every active task, the 100 most recent finished ones), read with the raw driver: the
 * baseline of the start-up time. Returns the time and the row counts.
 */
export function readFleetRaw(url: string): { ms: number; apps: number; tasks: number } {
  const started = performance.now();
  const db = new Database(sqliteFilePath(url), { readonly: true });
  const apps = db.prepare('SELECT * FROM "AppState"').all();
  const active = db.prepare(`SELECT * FROM "Task" WHERE "status" IN ('PENDING', 'RUNNING')`).all();
  const recent = db
    .prepare(`SELECT * FROM "Task" WHERE "status" NOT IN ('PENDING', 'RUNNING') ORDER BY "id" DESC LIMIT 100`)
    .all();
  db.close();
  return { ms: performance.now() - started, apps: apps.length, tasks: active.length + recent.length };
}
