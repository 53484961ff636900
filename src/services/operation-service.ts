import { z } from 'zod';
import { canSee, type Viewer } from '../auth/viewer.js';
import type { Db } from '../db/client.js';
import { type DriverSql, driverSqlOf, type SqlRunner } from '../db/driver-sql.js';
import { findAppState } from '../db/hot-path-sql.js';
import type { CatalogAppRow, TaskRow } from '../db/models.js';
import { type AppKey, catalogueNameOf, MAX_APP_NAME_LENGTH } from '../domain/app-key.js';
import { InvalidStateError, NotFoundError, UpstreamError, ValidationError } from '../domain/errors.js';
import { cloneName, imagesOfEntry, readMetadata } from '../domain/operations.js';
import { parseInput, shownText, trimmed } from '../domain/parse-input.js';
import { derivePaymentStatus } from '../domain/payment-status.js';
import { isAcceptance } from '../domain/task-result.js';
import { MAX_TASK_ID_LENGTH } from '../domain/tasks.js';
import { clipUnits } from '../domain/text-length.js';
import type { ChangeFeed } from '../events/change-feed.js';
import type { CatalogService } from './catalog-service.js';
import { assertEntrancesOf } from './clone-entrances.js';
import type { HistoryService } from './history-service.js';
import { LifecycleService } from './lifecycle-service.js';
import { purchaseOfApp } from './payment-service.js';
import { requestDigest } from './request-digest.js';
import {
  byName,
  commonOperationFields as common,
  operationEnvs as envs,
  type TaskRunner,
  TaskSubmission,
} from './task-submission.js';

const installInput = z.object({ ...common, version: trimmed('version', 64), envs });
const uninstallInput = z.object({
  ...common,
  version: trimmed('version', 64).nullish(),
  // Defaults applied here, once: the task's metadata and the request's digest read the same values.
  all: z
    .boolean()
    .nullish()
    .transform((all) => all ?? false),
  deleteData: z
    .boolean()
    .nullish()
    .transform((deleteData) => deleteData ?? false),
});
const cloneInput = z.object({
  ...common,
  title: shownText('title', 64),
  envs,
  entrances: z
    .array(z.object({ name: trimmed('entrance name', 64), title: shownText('entrance title', 64) }))
    .max(20)
    .nullish()
    .transform((list) => list ?? [])
    // Two titles for one entrance: the clone's name (a hash of the request) depended on their order.
    .refine(
      (list) => new Set(list.map((entrance) => entrance.name)).size === list.length,
      'entrance names must be unique',
    )
    .transform((list) => [...list].sort(byName)),
});

const taskRef = z.object({
  taskId: z
    .string()
    .min(1, 'taskId must not be empty')
    .max(MAX_TASK_ID_LENGTH, `taskId must be at most ${MAX_TASK_ID_LENGTH} characters`),
});

/** Versions an unknown version's NOT_FOUND lists, the newest: an entry may list thousands (a 110 KB message was seen). */
const LISTED_VERSIONS = 20;

/**
 * The images an operation at `version` sends: the catalogue entry's, which describe its current
 * version only. An older version's are not known (an entry keeps no images per version): none,
 * rather than the newest version's names, which the app service would report progress for.
 */
function imagesFor(app: CatalogAppRow, version: string) {
  return version === app.version ? imagesOfEntry(app.entry) : [];
}

export type InstallInput = z.input<typeof installInput>;
export type UninstallInput = z.input<typeof uninstallInput>;
export type CloneInput = z.input<typeof cloneInput>;

/**
 * What users ask the app service to do: validates the request, checks it against the catalogue
 * and the app's state, and persists it as a PENDING task (with the app's state row and a history
 * record, in one transaction) before the task engine is told. A refused request changes nothing.
 */
export class OperationService {
  private readonly submission: TaskSubmission;
  /** The app-state reads of every request, on the driver (db/driver-sql.ts). */
  private readonly sql: DriverSql;

  constructor(
    private readonly db: Db,
    private readonly catalog: CatalogService,
    private readonly history: HistoryService,
    private readonly feed: ChangeFeed,
    private readonly engine: TaskRunner,
    /** Retries stop and resume tasks. */
    private readonly lifecycle: LifecycleService = new LifecycleService(db, history, feed, engine),
  ) {
    this.submission = new TaskSubmission(db, history, feed, engine);
    this.sql = driverSqlOf(db);
  }

  async install(viewer: Viewer, rawInput: InstallInput, retryOfTaskId?: string): Promise<TaskRow> {
    const input = parseInput(installInput, rawInput);
    const key = { userId: viewer.userId, sourceId: input.sourceId, appName: input.appName };
    const digest = requestDigest('INSTALL', input);
    const existing = await this.submission.replay(viewer, input.idempotencyKey, 'INSTALL', key, digest);
    if (existing) return existing;
    const app = await this.catalogueVersion(viewer, input.sourceId, input.appName, input.version);
    const admits = (db: SqlRunner) => this.submission.assertInstallable(key, db);
    await admits(this.sql);
    await this.assertPurchased(viewer, app);
    return this.submission.create({
      type: 'INSTALL',
      key,
      version: input.version,
      metadata: {
        cfgType: app.cfgType,
        envs: input.envs,
        appId: app.appId,
        ...(app.paid ? { paid: true } : {}),
        images: imagesFor(app, input.version),
      },
      idempotencyKey: input.idempotencyKey ?? null,
      requestDigest: digest,
      app: { cfgType: app.cfgType, title: app.title },
      admits,
      ...(retryOfTaskId ? { retryOfTaskId } : {}),
    });
  }

  async upgrade(viewer: Viewer, rawInput: InstallInput, retryOfTaskId?: string): Promise<TaskRow> {
    const input = parseInput(installInput, rawInput);
    const key = { userId: viewer.userId, sourceId: input.sourceId, appName: input.appName };
    const digest = requestDigest('UPGRADE', input);
    const existing = await this.submission.replay(viewer, input.idempotencyKey, 'UPGRADE', key, digest);
    if (existing) return existing;
    const admits = (db: SqlRunner) => this.submission.upgradableRow(key, input.version, db);
    const row = await admits(this.sql).catch((refusal: unknown) => this.submission.conflictOr(key, refusal));
    // A clone upgrades along its original's catalogue entry. An installed app upgrades from its
    // own source even once that is no longer the active one (its catalogue is still synced).
    const app = await this.catalogueVersion(null, input.sourceId, catalogueNameOf(row), input.version);
    return this.submission.create({
      type: 'UPGRADE',
      key,
      version: input.version,
      metadata: { cfgType: app.cfgType, envs: input.envs, appId: app.appId, images: imagesFor(app, input.version) },
      idempotencyKey: input.idempotencyKey ?? null,
      requestDigest: digest,
      app: { cfgType: app.cfgType, title: app.title },
      admits,
      ...(retryOfTaskId ? { retryOfTaskId } : {}),
    });
  }

  async uninstall(viewer: Viewer, rawInput: UninstallInput, retryOfTaskId?: string): Promise<TaskRow> {
    const input = parseInput(uninstallInput, rawInput);
    const key = { userId: viewer.userId, sourceId: input.sourceId, appName: input.appName };
    const digest = requestDigest('UNINSTALL', input);
    const existing = await this.submission.replay(viewer, input.idempotencyKey, 'UNINSTALL', key, digest);
    if (existing) return existing;
    const admits = (db: SqlRunner) => this.submission.uninstallableRow(key, input.version, db);
    const row = await admits(this.sql).catch((refusal: unknown) => this.submission.conflictOr(key, refusal));
    return this.submission.create({
      type: 'UNINSTALL',
      key,
      version: row.installedVersion,
      metadata: {
        cfgType: row.cfgType ?? 'app',
        envs: [],
        uninstall: { all: input.all, deleteData: input.deleteData },
      },
      idempotencyKey: input.idempotencyKey ?? null,
      requestDigest: digest,
      app: { cfgType: row.cfgType ?? 'app', title: row.title },
      admits,
      builtOn: row,
      ...(retryOfTaskId ? { retryOfTaskId } : {}),
    });
  }

  /**
   * A clone of the app's chart under another name. A clone of a clone is one of its chart (its
   * rawAppName): sent with the clone's name as the chart, the app service was asked for a chart
   * that does not exist, and the catalogue, images and credential were lost. Like an install, it
   * needs the chart in the catalogue and, for a paid app, the purchase.
   */
  async clone(viewer: Viewer, rawInput: CloneInput, retryOfTaskId?: string): Promise<TaskRow> {
    const input = parseInput(cloneInput, rawInput);
    const of = { userId: viewer.userId, sourceId: input.sourceId, appName: input.appName };
    // Read before the replay: the clone's name comes from the chart. A repeated request finds its
    // task though the app it cloned is gone since.
    const originalRow = await findAppState(this.sql, of);
    const chart = catalogueNameOf({ appName: input.appName, rawAppName: originalRow?.rawAppName });
    const { name, requestHash } = cloneName({ ...input, appName: chart });
    const key = { ...of, appName: name };
    const digest = requestDigest('CLONE', input);
    const existing = await this.submission.replay(viewer, input.idempotencyKey, 'CLONE', key, digest);
    if (existing) return existing;
    this.submission.installed(originalRow, of, 'clone');
    if (name.length > MAX_APP_NAME_LENGTH) {
      const message = `a clone's name is its chart's and 6 characters: ${name.length} in all, at most ${MAX_APP_NAME_LENGTH}`;
      throw new ValidationError(message, [{ path: 'appName', message }]);
    }
    const entry = await this.catalog.findApp(input.sourceId, chart);
    if (!entry) throw new NotFoundError(`App ${chart} is not in the catalogue of ${input.sourceId}`);
    const admits = (db: SqlRunner) => this.cloneable({ of, clone: key, chart, entry, entrances: input.entrances }, db);
    const original = await admits(this.sql);
    await this.assertPurchased(viewer, entry);
    return this.submission.create({
      type: 'CLONE',
      key,
      version: original.installedVersion,
      metadata: {
        cfgType: original.cfgType ?? 'app',
        envs: input.envs,
        clone: { rawAppName: chart, title: input.title, requestHash, entrances: input.entrances },
        images: imagesFor(entry, original.installedVersion),
        // A clone of a paid app runs under the buyer's credential too (dispatch.ts sends it).
        ...(entry.paid ? { appId: entry.appId, paid: true } : {}),
      },
      idempotencyKey: input.idempotencyKey ?? null,
      requestDigest: digest,
      app: { cfgType: original.cfgType ?? 'app', title: input.title, rawAppName: chart },
      admits,
      ...(retryOfTaskId ? { retryOfTaskId } : {}),
    });
  }

  /**
   * A clone's app-state rule, on the rows `db` reads: the original installed, with the entrances
   * asked for, and no clone of these settings installed yet. Its task holds the clone's slot (its
   * name), so run again inside its transaction (TaskRequest.admits) it reads the clone's row as
   * the clone's previous task left it.
   */
  private async cloneable(
    request: { of: AppKey; clone: AppKey; chart: string; entry: CatalogAppRow; entrances: { name: string }[] },
    db: SqlRunner,
  ) {
    const original = await this.submission.installedRow(request.of, 'clone', db);
    assertEntrancesOf(request.chart, request.entry, original, request.entrances);
    if ((await findAppState(db, request.clone))?.installedVersion) {
      throw new InvalidStateError(
        `A clone of ${request.chart} with these settings already exists (${request.clone.appName})`,
      );
    }
    return original;
  }

  /**
   * Cancels a pending task at once; asks the app service to cancel a running one, once it has
   * accepted the task's operation. Its cancel names the app, not the operation: sent while the
   * operation's send was still unanswered, it reached the app service first, was answered for
   * nothing, and the install it was meant for then ran to completion. Refused until then (the
   * send lasts at most APP_SERVICE_TIMEOUT_MS): the task's update tells when to ask again.
   */
  async cancel(viewer: Viewer, taskId: string): Promise<TaskRow> {
    const task = await this.ownTask(viewer, taskId);
    if (task.status === 'PENDING') {
      if (await this.engine.finish(task.taskId, 'CANCELED', { error: `canceled by ${viewer.userId}` })) {
        return (await this.db.task.findUnique({ where: { taskId } })) as TaskRow;
      }
    }
    const current = (await this.db.task.findUnique({ where: { taskId } })) as TaskRow;
    if (current.status !== 'RUNNING') {
      throw new InvalidStateError(`Task ${taskId} is already ${current.status} and cannot be canceled`);
    }
    if (!isAcceptance(current.result)) {
      throw new InvalidStateError(
        `Task ${taskId} is being sent to the app service, which has not accepted its ${current.type.toLowerCase()} of ${current.appName} yet: cancel it again once it has (the task then has its result)`,
      );
    }
    // The request first: the app service may end the task before its answer (the simulated one
    // does, within the call), and its end came before the request in the history.
    const what = `cancel ${current.type.toLowerCase()} ${current.appName}`;
    await this.recordCancel(current, viewer, `${what} requested`);
    try {
      await this.engine.requestCancel(current);
    } catch (error) {
      const reason = error instanceof UpstreamError ? `: ${clipUnits(error.message, 500)}` : '';
      await this.recordCancel(current, viewer, `${what} failed${reason}`);
      throw error;
    }
    return (await this.db.task.findUnique({ where: { taskId } })) as TaskRow;
  }

  private async recordCancel(task: TaskRow, viewer: Viewer, message: string): Promise<void> {
    const records = await this.history.record([
      {
        type: 'ACTION_CANCEL',
        message,
        app: task.appName,
        userId: task.userId,
        time: new Date(),
        extended: { taskId: task.taskId, requestedBy: viewer.userId },
      },
    ]);
    this.feed.history(records);
  }

  /** Re-submits a failed or canceled task with the same parameters, linked to it. */
  async retry(viewer: Viewer, taskId: string): Promise<TaskRow> {
    const task = await this.ownTask(viewer, taskId);
    if (task.status !== 'FAILED' && task.status !== 'CANCELED') {
      throw new InvalidStateError(`Only FAILED or CANCELED tasks can be retried; task ${taskId} is ${task.status}`);
    }
    // The retry acts as the task's owner, even when an admin asks for it.
    const owner: Viewer = { userId: task.userId, isAdmin: false };
    const metadata = readMetadata(task.metadata);
    const base = { sourceId: task.sourceId, appName: task.appName, envs: metadata.envs };
    switch (task.type) {
      case 'INSTALL':
        return this.install(owner, { ...base, version: task.version ?? '' }, taskId);
      case 'UPGRADE':
        return this.upgrade(owner, { ...base, version: task.version ?? '' }, taskId);
      case 'UNINSTALL':
        return this.uninstall(owner, { ...base, ...metadata.uninstall }, taskId);
      case 'CLONE':
        return this.clone(
          owner,
          {
            ...base,
            appName: metadata.clone?.rawAppName ?? task.appName,
            title: metadata.clone?.title ?? task.appName,
            entrances: metadata.clone?.entrances ?? [],
          },
          taskId,
        );
      case 'STOP':
        return this.lifecycle.stop(owner, base, taskId);
      case 'RESUME':
        return this.lifecycle.resume(owner, base, taskId);
      default:
        throw new InvalidStateError(`Tasks of type ${task.type} cannot be retried`);
    }
  }

  /**
   * The task, when the viewer may act on it. Someone else's task is NOT_FOUND with the same
   * message as an unknown id, as reads answer null for it: the answer must not tell which task
   * ids exist.
   */
  private async ownTask(viewer: Viewer, taskId: string): Promise<TaskRow> {
    parseInput(taskRef, { taskId });
    const task = await this.db.task.findUnique({ where: { taskId } });
    if (!task || !canSee(viewer, task.userId)) throw new NotFoundError(`Task ${taskId} does not exist`);
    return task;
  }

  /** The catalogue entry of a version; `viewer`: for a new app, from a source the viewer is offered. */
  private async catalogueVersion(
    viewer: Viewer | null,
    sourceId: string,
    appName: string,
    version: string,
  ): Promise<CatalogAppRow> {
    const [sourceFound, app] = await Promise.all([
      viewer ? this.catalog.offers(viewer, sourceId) : this.catalog.sourceExists(sourceId),
      this.catalog.findApp(sourceId, appName),
    ]);
    if (!sourceFound) throw new NotFoundError(`Market source ${sourceId} does not exist`);
    if (!app) throw new NotFoundError(`App ${appName} is not in the catalogue of ${sourceId}`);
    const versions = app.versions as string[];
    if (!versions.includes(version)) {
      const more = versions.length > LISTED_VERSIONS ? `, and ${versions.length - LISTED_VERSIONS} more` : '';
      throw new NotFoundError(
        `Version ${version} of ${appName} is not in the catalogue of ${sourceId} (available: ${versions.slice(0, LISTED_VERSIONS).join(', ')}${more})`,
      );
    }
    return app;
  }

  private async assertPurchased(viewer: Viewer, app: CatalogAppRow): Promise<void> {
    if (!app.paid) return;
    const payment = await purchaseOfApp(this.db, viewer.userId, app);
    if (!payment || derivePaymentStatus(payment) !== 'PURCHASED') {
      throw new InvalidStateError(`payment required: ${app.name} is a paid app; purchase it first (purchaseApp)`);
    }
  }
}
