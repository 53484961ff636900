import { z } from 'zod';
import { canSee, type Viewer } from '../auth/viewer.js';
import type { Db } from '../db/client.js';
import { findAppState, insertTask, isUniqueViolation, upsertAppStateForTask } from '../db/hot-path-sql.js';
import type { AppRow, CatalogAppRow, TaskRow } from '../db/models.js';
import { type AppKey, appKeyString } from '../domain/app-key.js';
import { ConflictError, InvalidStateError, NotFoundError, ValidationError } from '../domain/errors.js';
import { cloneName, type OperationType, readMetadata, type TaskMetadata } from '../domain/operations.js';
import { parseInput } from '../domain/parse-input.js';
import { derivePaymentStatus } from '../domain/payment-status.js';
import { newTaskId, type TaskType } from '../domain/tasks.js';
import type { ChangeFeed } from '../events/change-feed.js';
import type { CatalogService } from './catalog-service.js';
import type { HistoryService } from './history-service.js';

const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

const trimmed = (label: string, max: number) =>
  z.string().trim().min(1, `${label} must not be empty`).max(max, `${label} must be at most ${max} characters`);

const envs = z
  .array(
    z.object({
      name: z.string().trim().regex(ENV_NAME, 'env names are letters, digits and _, not starting with a digit'),
      value: z.string().max(4096, 'env values must be at most 4096 characters').nullish(),
      valueFrom: z.string().trim().regex(ENV_NAME, 'valueFrom must name an env var').nullish(),
    }),
  )
  .max(100, 'at most 100 envs')
  .nullish()
  .transform((list) => list ?? [])
  .refine((list) => new Set(list.map((env) => env.name)).size === list.length, 'env names must be unique');

const common = {
  sourceId: trimmed('sourceId', 64),
  appName: trimmed('appName', 128).regex(APP_NAME, 'appName may contain letters, digits, ".", "_" and "-"'),
  idempotencyKey: trimmed('idempotencyKey', 128).nullish(),
};

const installInput = z.object({ ...common, version: trimmed('version', 64), envs });
const uninstallInput = z.object({
  ...common,
  version: trimmed('version', 64).nullish(),
  all: z.boolean().nullish(),
  deleteData: z.boolean().nullish(),
});
const cloneInput = z.object({
  ...common,
  title: trimmed('title', 64),
  envs,
  entrances: z
    .array(z.object({ name: trimmed('entrance name', 64), title: trimmed('entrance title', 64) }))
    .max(20)
    .nullish()
    .transform((list) => list ?? []),
});

/** Task ids are `YYYYMMDDhhmmss-` + 10 characters (see newTaskId); anything much longer is not one. */
const taskRef = z.object({
  taskId: z.string().min(1, 'taskId must not be empty').max(64, 'taskId must be at most 64 characters'),
});

export type InstallInput = z.input<typeof installInput>;
export type UninstallInput = z.input<typeof uninstallInput>;
export type CloneInput = z.input<typeof cloneInput>;

/** A validated request, as the task (and app-state row) it becomes. */
interface TaskRequest {
  type: OperationType;
  key: AppKey;
  version: string | null;
  metadata: TaskMetadata;
  idempotencyKey: string | null;
  retryOfTaskId?: string;
  /** Fields for a new app-state row (first install, clone). */
  app: { cfgType: string; title: string | null; rawAppName?: string };
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
}

/**
 * What users ask the app service to do: validates the request, checks it against the catalogue
 * and the app's state, and persists it as a PENDING task (with the app's state row and a history
 * record, in one transaction) before the task engine is told. A refused request changes nothing.
 */
export class OperationService {
  constructor(
    private readonly db: Db,
    private readonly catalog: CatalogService,
    private readonly history: HistoryService,
    private readonly feed: ChangeFeed,
    private readonly engine: TaskRunner,
  ) {}

  async install(viewer: Viewer, rawInput: InstallInput, retryOfTaskId?: string): Promise<TaskRow> {
    const input = parseInput(installInput, rawInput);
    const key = { userId: viewer.userId, sourceId: input.sourceId, appName: input.appName };
    const existing = await this.replay(viewer, input.idempotencyKey, 'INSTALL', key);
    if (existing) return existing;
    const app = await this.catalogueVersion(input.sourceId, input.appName, input.version);
    const row = await findAppState(this.db, key);
    if (row?.installedVersion && !row.state.toLowerCase().includes('failed')) {
      throw new InvalidStateError(
        `${input.appName} is already installed (version ${row.installedVersion}); use upgradeApp to change its version`,
      );
    }
    await this.assertPurchased(viewer, app);
    return this.create({
      type: 'INSTALL',
      key,
      version: input.version,
      metadata: { cfgType: app.cfgType, envs: input.envs, appId: app.appId, ...(app.paid ? { paid: true } : {}) },
      idempotencyKey: input.idempotencyKey ?? null,
      app: { cfgType: app.cfgType, title: app.title },
      ...(retryOfTaskId ? { retryOfTaskId } : {}),
    });
  }

  async upgrade(viewer: Viewer, rawInput: InstallInput, retryOfTaskId?: string): Promise<TaskRow> {
    const input = parseInput(installInput, rawInput);
    const key = { userId: viewer.userId, sourceId: input.sourceId, appName: input.appName };
    const existing = await this.replay(viewer, input.idempotencyKey, 'UPGRADE', key);
    if (existing) return existing;
    const row = await this.installedRow(key, 'upgrade');
    // A clone upgrades along its original's catalogue entry.
    const app = await this.catalogueVersion(input.sourceId, row.rawAppName ?? input.appName, input.version);
    if (row.installedVersion === input.version) {
      throw new InvalidStateError(`${input.appName} is already at version ${input.version}`);
    }
    return this.create({
      type: 'UPGRADE',
      key,
      version: input.version,
      metadata: { cfgType: app.cfgType, envs: input.envs, appId: app.appId },
      idempotencyKey: input.idempotencyKey ?? null,
      app: { cfgType: app.cfgType, title: app.title },
      ...(retryOfTaskId ? { retryOfTaskId } : {}),
    });
  }

  async uninstall(viewer: Viewer, rawInput: UninstallInput, retryOfTaskId?: string): Promise<TaskRow> {
    const input = parseInput(uninstallInput, rawInput);
    const key = { userId: viewer.userId, sourceId: input.sourceId, appName: input.appName };
    const existing = await this.replay(viewer, input.idempotencyKey, 'UNINSTALL', key);
    if (existing) return existing;
    const row = await this.installedRow(key, 'uninstall');
    if (input.version && input.version !== row.installedVersion) {
      throw new InvalidStateError(
        `${input.appName} is installed at version ${row.installedVersion}, not ${input.version}`,
      );
    }
    return this.create({
      type: 'UNINSTALL',
      key,
      version: row.installedVersion,
      metadata: {
        cfgType: row.cfgType ?? 'app',
        envs: [],
        uninstall: { all: input.all ?? false, deleteData: input.deleteData ?? false },
      },
      idempotencyKey: input.idempotencyKey ?? null,
      app: { cfgType: row.cfgType ?? 'app', title: row.title },
      ...(retryOfTaskId ? { retryOfTaskId } : {}),
    });
  }

  async clone(viewer: Viewer, rawInput: CloneInput, retryOfTaskId?: string): Promise<TaskRow> {
    const input = parseInput(cloneInput, rawInput);
    const { name, requestHash } = cloneName(input);
    const key = { userId: viewer.userId, sourceId: input.sourceId, appName: name };
    const existing = await this.replay(viewer, input.idempotencyKey, 'CLONE', key);
    if (existing) return existing;
    const original = await this.installedRow({ ...key, appName: input.appName }, 'clone');
    const cloneRow = await findAppState(this.db, key);
    if (cloneRow?.installedVersion) {
      throw new InvalidStateError(`A clone of ${input.appName} with these settings already exists (${name})`);
    }
    return this.create({
      type: 'CLONE',
      key,
      version: original.installedVersion,
      metadata: {
        cfgType: original.cfgType ?? 'app',
        envs: input.envs,
        clone: { rawAppName: input.appName, title: input.title, requestHash, entrances: input.entrances },
      },
      idempotencyKey: input.idempotencyKey ?? null,
      app: { cfgType: original.cfgType ?? 'app', title: input.title, rawAppName: input.appName },
      ...(retryOfTaskId ? { retryOfTaskId } : {}),
    });
  }

  /** Cancels a pending task at once; asks the app service to cancel a running one. */
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
    await this.engine.requestCancel(current);
    const records = await this.history.record([
      {
        type: 'ACTION_CANCEL',
        message: `cancel ${current.type.toLowerCase()} ${current.appName} requested`,
        app: current.appName,
        userId: current.userId,
        time: new Date(),
        extended: { taskId, requestedBy: viewer.userId },
      },
    ]);
    this.feed.history(records);
    return (await this.db.task.findUnique({ where: { taskId } })) as TaskRow;
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

  /** The original task of a repeated request (same user, same idempotency key). */
  private async replay(viewer: Viewer, idempotencyKey: string | null | undefined, type: TaskType, key: AppKey) {
    if (!idempotencyKey) return null;
    const task = await this.db.task.findUnique({
      where: { userId_idempotencyKey: { userId: viewer.userId, idempotencyKey } },
    });
    if (task && (task.type !== type || appKeyString(task) !== appKeyString(key))) {
      throw new ValidationError(`idempotencyKey "${idempotencyKey}" was already used for another request`, [
        { path: 'idempotencyKey', message: 'used for another request' },
      ]);
    }
    return task;
  }

  private async catalogueVersion(sourceId: string, appName: string, version: string): Promise<CatalogAppRow> {
    const [sourceExists, app] = await Promise.all([
      this.catalog.sourceExists(sourceId),
      this.catalog.findApp(sourceId, appName),
    ]);
    if (!sourceExists) throw new NotFoundError(`Market source ${sourceId} does not exist`);
    if (!app) throw new NotFoundError(`App ${appName} is not in the catalogue of ${sourceId}`);
    if (!(app.versions as string[]).includes(version)) {
      throw new NotFoundError(
        `Version ${version} of ${appName} is not in the catalogue of ${sourceId} (available: ${(app.versions as string[]).join(', ')})`,
      );
    }
    return app;
  }

  private async installedRow(key: AppKey, operation: string): Promise<AppRow & { installedVersion: string }> {
    const row = await findAppState(this.db, key);
    if (!row?.installedVersion) {
      throw new InvalidStateError(`${key.appName} is not installed from ${key.sourceId}, so it cannot ${operation}`);
    }
    return row as AppRow & { installedVersion: string };
  }

  private async assertPurchased(viewer: Viewer, app: CatalogAppRow): Promise<void> {
    if (!app.paid) return;
    const payment = await this.db.payment.findFirst({
      where: { userId: viewer.userId, sourceId: app.sourceId, appId: app.appId },
      orderBy: { id: 'desc' },
    });
    if (!payment || derivePaymentStatus(payment) !== 'PURCHASED') {
      throw new InvalidStateError(`payment required: ${app.name} is a paid app; purchase it first (purchaseApp)`);
    }
  }

  private async create(request: TaskRequest): Promise<TaskRow> {
    try {
      return await this.insert(request, new Date());
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      return this.lostRace(request);
    }
  }

  /** Writes the accepted request, then announces it and tells the engine. */
  private async insert(request: TaskRequest, now: Date): Promise<TaskRow> {
    const taskId = newTaskId(now);
    // One batch transaction (three statements, no interactive round trips): the task, its app's
    // state row and the history record commit together or not at all. Raw SQL
    // (db/hot-path-sql.ts): every install runs these.
    const [[task], , records] = await this.db.$transaction([
      insertTask(this.db, {
        taskId,
        type: request.type,
        ...request.key,
        version: request.version,
        metadata: request.metadata,
        idempotencyKey: request.idempotencyKey,
        activeKey: appKeyString(request.key),
        retryOfTaskId: request.retryOfTaskId ?? null,
        createdAt: now,
      }),
      upsertAppStateForTask(this.db, {
        ...request.key,
        opType: request.type.toLowerCase(),
        targetVersion: request.version,
        cfgType: request.app.cfgType,
        title: request.app.title,
        rawAppName: request.app.rawAppName ?? null,
        now,
      }),
      this.history.recordOne({
        type: `ACTION_${request.type === 'CLONE' ? 'INSTALL' : request.type}`,
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
      }),
    ]);
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
    const replayed = await this.replay(owner, request.idempotencyKey, request.type, request.key);
    if (replayed) return replayed;
    const active = await this.db.task.findUnique({ where: { activeKey: appKeyString(request.key) } });
    throw new ConflictError(
      `${request.key.appName} already has an active task${active ? ` (${active.taskId}, ${active.type} ${active.status})` : ''}; wait for it or cancel it`,
    );
  }
}
