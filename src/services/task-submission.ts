import { z } from 'zod';
import type { Viewer } from '../auth/viewer.js';
import type { Db } from '../db/client.js';
import { type DriverSql, driverSqlOf, type SqlRunner } from '../db/driver-sql.js';
import {
  findActiveTasks,
  findAppState,
  findAppStatesNamed,
  insertTask,
  isUniqueViolation,
  upsertAppStateForTask,
} from '../db/hot-path-sql.js';
import type { AppRow, TaskRow } from '../db/models.js';
import {
  APP_NAME,
  APP_NAME_RULE,
  type AppKey,
  appKeyString,
  MAX_APP_NAME_LENGTH,
  MAX_SOURCE_ID_LENGTH,
} from '../domain/app-key.js';
import { isCancelFailure, isFailedFirstInstall } from '../domain/app-stage.js';
import { compareVersions } from '../domain/catalogue-version.js';
import { ConflictError, InvalidStateError, ValidationError } from '../domain/errors.js';
import { type OperationType, RESERVED_ENV_NAMES, type TaskMetadata } from '../domain/operations.js';
import { lengthAlone, trimmed } from '../domain/parse-input.js';
import { newTaskId, type TaskType } from '../domain/tasks.js';
import { byText } from '../domain/text-order.js';
import type { ChangeFeed } from '../events/change-feed.js';
import { assertWithinActiveLimit } from './active-task-limit.js';
import type { HistoryEntry, HistoryService } from './history-service.js';

/** The fields every operation's input has. */
export const commonOperationFields = {
  sourceId: trimmed('sourceId', MAX_SOURCE_ID_LENGTH),
  appName: trimmed('appName', MAX_APP_NAME_LENGTH).regex(APP_NAME, `appName ${APP_NAME_RULE}`),
  idempotencyKey: trimmed('idempotencyKey', 128).nullish(),
};

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/; // after envNameLength, which stops there
const envNameLength = lengthAlone('env names must be at most 128 characters');
const RESERVED_ENV_MESSAGE = `${[...RESERVED_ENV_NAMES].join(', ')} is set by the server (a paid app's credential)`;

/** Orders a list keyed by unique names: the app service takes envs (and a clone's entrances) as a set by name. */
export const byName = (a: { name: string }, b: { name: string }) => byText(a.name, b.name);

/**
 * The envs an install, upgrade or clone takes. Names the server sets itself (the purchase
 * credential) are refused: the app service would get the user's value next to the server's, and
 * an app reading the first of two would run on a forged credential. Ordered by name, so one set
 * of envs is one request however it was sent (requestDigest).
 */
export const operationEnvs = z
  .array(
    z.object({
      name: z
        .string()
        .trim()
        .max(128, envNameLength)
        .regex(ENV_NAME, 'env names are letters, digits and _, not starting with a digit')
        .refine((name) => !RESERVED_ENV_NAMES.has(name), RESERVED_ENV_MESSAGE),
      value: z.string().max(4096, 'env values must be at most 4096 characters').nullish(),
      valueFrom: z.string().trim().max(128, envNameLength).regex(ENV_NAME, 'valueFrom must name an env var').nullish(),
    }),
  )
  .max(100, 'at most 100 envs')
  .nullish()
  .transform((list) => list ?? [])
  .refine((list) => new Set(list.map((env) => env.name)).size === list.length, 'env names must be unique')
  .transform((list) => [...list].sort(byName));

/** A validated request, as the task (and app-state row) it becomes. */
export interface TaskRequest {
  type: OperationType;
  key: AppKey;
  version: string | null;
  metadata: TaskMetadata;
  idempotencyKey: string | null;
  /** requestDigest of the request, with its idempotencyKey; null without one. */
  requestDigest: string | null;
  retryOfTaskId?: string;
  /** Fields for a new app-state row (first install, clone). */
  app: { cfgType: string; title: string | null; rawAppName?: string };
  /**
   * The app-state rule the request was accepted under (INVALID_STATE when it no longer holds), run
   * again in the task's transaction once its insert holds the app's active-task slot. The caller's
   * check ran while the app's previous task could still be active: that task's end (and the row
   * it changes) may commit between the check and the insert, the insert on PostgreSQL waiting on
   * the slot's unique index until it does. Read after the insert, the row is the one that end left
   * (SQLite runs one writer at a time; PostgreSQL reads committed rows per statement), so a repeated
   * request gets the answer a later request would, not a second task. So it is the operation's
   * whole app-state rule, the function its caller ran first (assertInstallable, upgradableRow,
   * uninstallableRow, a clone's and a stop's or resume's own), not part of it. It resolves with
   * the row it judged, which `builtOn` is compared with.
   */
  admits?: (db: SqlRunner) => Promise<AppRow | undefined | void>;
  /**
   * The app's row the request took its version and cfgType from (a stop, resume or uninstall sends
   * the installed ones), read before the insert like the caller's check. An upgrade that ended in
   * between left the app at another version, and the task was accepted with the one it replaced: a
   * completed stop wrote that back as the app's installed version. Compared with the row `admits`
   * read after the insert: CONFLICT when they differ, and the request sent again reads the app as
   * it is.
   */
  builtOn?: Pick<AppRow, 'installedVersion' | 'cfgType'>;
}

/**
 * What operations need from the task engine (src/engine/task-engine.ts implements it; the engine
 * sits above the services, so they know it only by this shape).
 */
export interface TaskRunner {
  /** Something may be pending: take it now instead of at the next poll. */
  notify(): void;
  /** Ends a task unless it already ended; false when another writer ended it first. */
  finish(taskId: string, status: 'CANCELED', details: { error?: string }): Promise<boolean>;
  /** Asks the app service to cancel the running operation of a task. */
  requestCancel(task: TaskRow): Promise<void>;
  /** The database's clock (DatabaseClock): a task's times are compared across instances. */
  readonly clock: { date(): Date };
  /** MAX_ACTIVE_TASKS_PER_USER: pending and running tasks one user may have (see TaskSubmission.insert). */
  readonly maxActivePerUser: number;
}

/**
 * The history type of the record a new task writes. The original's vocabulary has ACTION_* types
 * for install, upgrade and uninstall only; stop and resume are its generic `action`.
 */
function actionType(type: OperationType): HistoryEntry['type'] {
  if (type === 'CLONE') return 'ACTION_INSTALL';
  if (type === 'STOP' || type === 'RESUME') return 'action';
  return `ACTION_${type}`;
}

/** INVALID_STATE for an operation on an app with no installed version. */
function notInstalled(key: AppKey, operation: string, row: AppRow | null): InvalidStateError {
  // Listed (stage FAILED): "not installed" alone read as if the app were not there at all.
  const failed = row && isFailedFirstInstall(row.state) ? row.state : null;
  if (!failed)
    return new InvalidStateError(`${key.appName} is not installed from ${key.sourceId}, so it cannot ${operation}`);
  const what = `${key.appName} from ${key.sourceId} has no installed version (its install ended ${failed})`;
  return new InvalidStateError(`${what}, so it cannot ${operation}: install it again`);
}

/**
 * How every operation becomes a task: an idempotent request is replayed, an accepted one is
 * persisted as PENDING (with the app's state row and a history record, in one transaction) before
 * the task engine is told, and a second active task for the same app is a CONFLICT.
 */
export class TaskSubmission {
  /** The reads every submission makes, on the driver (db/driver-sql.ts). */
  private readonly sql: DriverSql;

  constructor(
    private readonly db: Db,
    private readonly history: HistoryService,
    private readonly feed: ChangeFeed,
    private readonly engine: TaskRunner,
  ) {
    this.sql = driverSqlOf(db);
  }

  /**
   * The original task of a repeated request (same user, same idempotency key); VALIDATION when the
   * key was used for another request. Tasks written before requests had a digest compare by type
   * and app only.
   */
  async replay(
    viewer: Viewer,
    idempotencyKey: string | null | undefined,
    type: TaskType,
    key: AppKey,
    digest: string | null,
  ) {
    if (!idempotencyKey) return null;
    const task = await this.db.task.findUnique({
      where: { userId_idempotencyKey: { userId: viewer.userId, idempotencyKey } },
    });
    if (!task) return null;
    const sameRequest = task.requestDigest === null || task.requestDigest === digest;
    if (task.type !== type || appKeyString(task) !== appKeyString(key) || !sameRequest) {
      throw new ValidationError(`idempotencyKey "${idempotencyKey}" was already used for another request`, [
        { path: 'idempotencyKey', message: 'used for another request' },
      ]);
    }
    return task;
  }

  async installedRow(
    key: AppKey,
    operation: string,
    db: SqlRunner = this.sql,
  ): Promise<AppRow & { installedVersion: string }> {
    return this.installed(await findAppState(db, key), key, operation);
  }

  /**
   * INVALID_STATE when the app is installed (a first install that failed may be installed again),
   * or installed from another source: the app service runs one app of a name per user, and an
   * uninstall from one source removed the other's app (its events name their source).
   */
  async assertInstallable(key: AppKey, db: SqlRunner = this.sql): Promise<void> {
    const rows = await findAppStatesNamed(db, key.userId, key.appName);
    const row = rows.find((other) => other.sourceId === key.sourceId);
    if (row?.installedVersion && !isFailedFirstInstall(row.state)) {
      throw new InvalidStateError(
        `${key.appName} is already installed (version ${row.installedVersion}); use upgradeApp to change its version`,
      );
    }
    const elsewhere = rows.find(
      (other) => other.sourceId !== key.sourceId && (other.installedVersion || !isFailedFirstInstall(other.state)),
    );
    if (elsewhere) {
      throw new InvalidStateError(
        `${key.appName} is already installed from ${elsewhere.sourceId}, and a user has one app of a name: uninstall it there first`,
      );
    }
  }

  /** The app's row, read by the caller, if it is installed; INVALID_STATE otherwise. */
  installed(row: AppRow | null, key: AppKey, operation: string): AppRow & { installedVersion: string } {
    if (!row?.installedVersion) throw notInstalled(key, operation, row);
    return row as AppRow & { installedVersion: string };
  }

  /**
   * The row of an app that can be upgraded to `version`: an installed one at an older version. An
   * upgrade to an older one, or to the installed one written otherwise (`1.2` for `1.2.0`, another
   * `+build` of it), was sent as an upgrade and recorded as a completed one. Versions the
   * catalogue's rules cannot order (`latest`) are sent as asked.
   */
  async upgradableRow(key: AppKey, version: string, db: SqlRunner = this.sql) {
    const row = await this.installedRow(key, 'upgrade', db);
    const same = row.installedVersion === version;
    const order = same ? 0 : compareVersions(version, row.installedVersion);
    if (order === 0) {
      const asked = same ? '' : `, the same as ${version}`;
      throw new InvalidStateError(`${key.appName} is already at version ${row.installedVersion}${asked}`);
    }
    if (order === -1) {
      throw new InvalidStateError(
        `${key.appName} is at version ${row.installedVersion}, newer than ${version}: upgradeApp does not downgrade`,
      );
    }
    return row;
  }

  /**
   * The row of an app that can be uninstalled (at `version`, when asked for one): an installed one,
   * or one whose first install the app service's cancel took over and could not undo
   * (`installingCancelFailed`): from there the app service only cancels again or uninstalls, so
   * refused here, what it left stayed for good.
   */
  async uninstallableRow(key: AppKey, version: string | null | undefined, db: SqlRunner = this.sql): Promise<AppRow> {
    const row = await findAppState(db, key);
    if (!row || !(row.installedVersion || isCancelFailure(row.state))) throw notInstalled(key, 'uninstall', row);
    if (version && version !== row.installedVersion) {
      throw new InvalidStateError(
        row.installedVersion
          ? `${key.appName} is installed at version ${row.installedVersion}, not ${version}`
          : `${key.appName} has no installed version (its install did not complete), so not ${version}`,
      );
    }
    return row;
  }

  /** CONFLICT when the app already has a pending or running task (the unique index decides races). */
  async assertNoActiveTask(key: AppKey): Promise<void> {
    const [active] = await findActiveTasks(this.sql, [appKeyString(key)]);
    if (active) throw this.conflict(key, active);
  }

  /**
   * For a request its app's row refused (not installed): a CONFLICT naming the app's active task
   * if it has one, else `refusal`. A first install in progress has no installed version yet, and
   * another operation in progress is a CONFLICT (README), not a refusal as not installed.
   */
  async conflictOr(key: AppKey, refusal: unknown): Promise<never> {
    await this.assertNoActiveTask(key);
    throw refusal;
  }

  async create(request: TaskRequest): Promise<TaskRow> {
    try {
      return await this.insert(request, this.engine.clock.date());
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      return this.lostRace(request);
    }
  }

  /** Writes the accepted request, then announces it and tells the engine. */
  private async insert(request: TaskRequest, now: Date): Promise<TaskRow> {
    const taskId = newTaskId(now);
    // One transaction on the driver: the task, its app's state row and the history record commit
    // together or not at all. Raw SQL (db/hot-path-sql.ts): every install runs these.
    const { task, records } = await this.sql.$transaction(async (tx) => {
      const [task] = await insertTask(tx, {
        taskId,
        type: request.type,
        ...request.key,
        version: request.version,
        metadata: request.metadata,
        idempotencyKey: request.idempotencyKey,
        requestDigest: request.requestDigest,
        activeKey: appKeyString(request.key),
        retryOfTaskId: request.retryOfTaskId ?? null,
        createdAt: now,
      });
      // After the insert, before the row is written (an uninstall's end deleted it): see `admits`.
      const admitted = await request.admits?.(tx);
      assertUnchanged(request, admitted);
      // After the request's own checks: a request refused for what it asks says so, not that the user is at the limit.
      await assertWithinActiveLimit(tx, request.key.userId, this.engine.maxActivePerUser);
      await upsertAppStateForTask(tx, {
        ...request.key,
        opType: request.type.toLowerCase(),
        targetVersion: request.version,
        cfgType: request.app.cfgType,
        title: request.app.title,
        rawAppName: request.app.rawAppName ?? null,
        now,
      });
      const records = await this.history.recordOne(
        {
          type: actionType(request.type),
          message: `${request.type.toLowerCase()} ${request.key.appName}`,
          app: request.key.appName,
          userId: request.key.userId,
          time: now,
          extended: {
            taskId,
            taskType: request.type,
            status: 'PENDING',
            version: request.version,
            retryOf: request.retryOfTaskId ?? null,
          },
        },
        tx,
      );
      return { task, records };
    });
    if (!task) throw new Error(`task ${taskId} was not written`);
    this.feed.task(task);
    this.feed.app(request.key);
    this.feed.history(records);
    this.engine.notify();
    return task;
  }

  /** A unique index refused the task: the same idempotent request won, or another active task for this app. */
  private async lostRace(request: TaskRequest): Promise<TaskRow> {
    const owner = { userId: request.key.userId, isAdmin: false };
    const replayed = await this.replay(owner, request.idempotencyKey, request.type, request.key, request.requestDigest);
    if (replayed) return replayed;
    const [active] = await findActiveTasks(this.sql, [appKeyString(request.key)]);
    throw this.conflict(request.key, active ?? null);
  }

  private conflict(key: AppKey, active: TaskRow | null): ConflictError {
    return new ConflictError(
      `${key.appName} already has an active task${active ? ` (${active.taskId}, ${active.type} ${active.status})` : ''}; wait for it or cancel it`,
    );
  }
}

/**
 * CONFLICT when the app's row, as the request's `admits` read it in the task's transaction, no
 * longer has what the request was built on (TaskRequest.builtOn).
 */
function assertUnchanged(request: TaskRequest, row: AppRow | undefined | void): void {
  const built = request.builtOn;
  if (!built) return;
  if (row && row.installedVersion === built.installedVersion && row.cfgType === built.cfgType) return;
  const was = built.installedVersion ?? 'none';
  const is = row?.installedVersion ?? 'none';
  throw new ConflictError(
    `${request.key.appName} changed while this ${request.type.toLowerCase()} was accepted (installed version ${was} when read, ${is} now); send it again`,
  );
}
