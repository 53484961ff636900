import { randomUUID } from 'node:crypto';
import { type AppService, AppServiceError, type AppStateEvent } from '../adapters/app-service/port.js';
import type { Db } from '../db/client.js';
import {
  applyReportedState,
  claimPendingTasks,
  endTask,
  isUniqueViolation,
  markDispatched,
  type ReportedState,
  raiseProgress,
  setAppOperation,
  setInstalledVersion,
  setTaskOpId,
} from '../db/hot-path-sql.js';
import type { HistoryRow, Prisma, TaskRow } from '../db/models.js';
import { appKeyString } from '../domain/app-key.js';
import { UpstreamError } from '../domain/errors.js';
import type { OperationRequest } from '../domain/operations.js';
import { isOperationType, readMetadata } from '../domain/operations.js';
import type { TaskStatus } from '../domain/tasks.js';
import type { ChangeFeed } from '../events/change-feed.js';
import type { Logger } from '../platform/logger.js';
import type { HistoryEntry, HistoryService } from '../services/history-service.js';

type Terminal = Extract<TaskStatus, 'COMPLETED' | 'FAILED' | 'CANCELED'>;

export interface TaskEngineOptions {
  concurrency: number;
  timeoutMs: number;
  /** How often to look for pending tasks nobody told us about (e.g. created by another instance). */
  pollIntervalMs: number;
  /** A RUNNING task whose worker has not renewed its heartbeat for this long is taken over. */
  leaseMs: number;
}

/** Progress (0–100) a task has reached when the app service reports a state. */
function progressOf(state: string, progressText: string | null | undefined): number | null {
  const s = state.toLowerCase();
  if (s === 'pending') return 5;
  if (s === 'downloading') {
    const percent = Math.min(100, Math.max(0, Number(progressText) || 0));
    return Math.round(10 + percent / 2); // 10..60
  }
  if (s === 'installing' || s === 'upgrading' || s === 'uninstalling') return 70;
  if (s === 'initializing') return 85;
  return null;
}

/** What a reported state means for the task of the matching type, if it ends it. */
function outcomeOf(taskType: string, state: string): Terminal | null {
  const s = state.toLowerCase();
  if (s.includes('failed')) return 'FAILED';
  if (s.endsWith('canceled') || s.endsWith('cancelled')) return 'CANCELED';
  if (taskType === 'UNINSTALL') return s === 'uninstalled' ? 'COMPLETED' : null;
  return s === 'running' ? 'COMPLETED' : null;
}

/** Whether a report is about this running task: not about another operation, nor from before it started. */
function concerns(task: TaskRow, event: AppStateEvent): boolean {
  return (
    task.status === 'RUNNING' &&
    !(event.opId && task.opId && event.opId !== task.opId) &&
    !(task.startedAt && event.createTime < task.startedAt)
  );
}

const HISTORY_ON_END: Record<Terminal, (type: string) => HistoryEntry['type']> = {
  COMPLETED: (type) => (type === 'UNINSTALL' ? 'system' : 'SYSTEM_INSTALL_SUCCEED'),
  FAILED: (type) => (type === 'UNINSTALL' ? 'system' : 'SYSTEM_INSTALL_FAILED'),
  CANCELED: () => 'ACTION_CANCEL',
};

type EndDetails = { error?: string; result?: Prisma.InputJsonValue };

/**
 * A write about one of this instance's tasks that the database could not take: its end (with the
 * report that ended it, if one did), or its release back to PENDING when it was never sent. The
 * task no longer holds a worker; the repair loop retries the write until it lands.
 */
type Owed =
  | { kind: 'end'; task: TaskRow; status: Terminal; details: EndDetails; report?: AppStateEvent }
  | { kind: 'requeue'; task: TaskRow };

/** The repair loop's first retry comes after this long; each round that still fails doubles it. */
const REPAIR_FIRST_DELAY_MS = 200;
/** Its longest pause: after the database returns, owed writes land within about this long. */
const REPAIR_MAX_DELAY_MS = 2000;

/**
 * Runs tasks against the app service. Tasks are rows first: a worker claims the oldest PENDING
 * one with a conditional update (so instances sharing a database never run a task twice), asks
 * the app service to start it, and the task then follows the app service's state events until
 * they end it. One active task per app is guaranteed by the database (`Task.activeKey`).
 *
 * DATABASE FAULTS: no write that fails leaves a task stuck. A task that was not sent yet goes
 * back to PENDING; a task whose end could not be written gives up its worker at once, and the
 * repair loop writes the end (and the report that ended it) once the database answers again;
 * a state report that could not be applied is reported as such (the intake answers 503, so the
 * app service sends it again). Claiming retries on the poll interval. Until then the heartbeat
 * keeps the lease of every task this instance still answers for, so none is taken for abandoned.
 *
 * LOCK ORDER: every transaction that writes both a task and its app's state row writes the task
 * first: the mutation (OperationService.create), the op id and progress transactions here, and
 * finish (which only learns the app from the task it ends). On PostgreSQL two transactions
 * taking the two row locks in opposite orders deadlock and one is aborted: a progress report
 * committing while a timeout or cancel ends the task would lose the end and leave the task
 * RUNNING (test/engine-lock-order.test.ts).
 */
export class TaskEngine {
  /** Identifies this process's workers on the rows they claim. */
  readonly instanceId = randomUUID();
  /** Tasks this instance's workers run, by task id (also answers state events without a query). */
  private readonly inFlight = new Map<string, TaskRow>();
  /** Writes the database could not take yet, by task id (see Owed); the repair loop retries them. */
  private readonly owed = new Map<string, Owed>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | null = null;
  private readonly timeouts = new Map<string, NodeJS.Timeout>();
  private pollTimer: NodeJS.Timeout | undefined;
  private pumping: Promise<void> | null = null;
  private pumpAgain = false;
  private repairTimer: NodeJS.Timeout | undefined;
  private repairing: Promise<void> | null = null;
  private repairDelayMs = REPAIR_FIRST_DELAY_MS;
  private stopped = true;

  constructor(
    private readonly db: Db,
    private readonly appService: AppService,
    private readonly history: HistoryService,
    private readonly feed: ChangeFeed,
    private readonly logger: Logger,
    private readonly options: TaskEngineOptions,
  ) {}

  /** Recovers what a dead worker left running, then starts taking tasks. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.recoverAbandoned();
    // Also the retry of a claim that failed (database away): a failed pump ends, the next tick starts another.
    this.pollTimer = setInterval(() => this.notify(), this.options.pollIntervalMs);
    this.pollTimer.unref();
    this.heartbeatTimer = setInterval(
      () => {
        // One beat at a time: while the database is away, a beat can take as long as the pool's connect timeout.
        this.beating ??= this.heartbeat()
          .then(() => this.recoverAbandoned())
          .catch((error) => this.logger.error({ err: error }, 'task engine heartbeat failed'))
          .finally(() => {
            this.beating = null;
          });
      },
      Math.max(50, Math.floor(this.options.leaseMs / 3)),
    );
    this.heartbeatTimer.unref();
    this.notify();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.repairTimer);
    for (const timer of this.timeouts.values()) clearTimeout(timer);
    this.timeouts.clear();
    await Promise.all([this.pumping, this.repairing, this.beating]);
    await this.appService.close();
  }

  /** Resolves once the claiming in progress (if any) is done: every free worker has its task. */
  async settled(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  /** Counts for health reporting. */
  get running(): number {
    return this.inFlight.size;
  }

  /** Something may be pending: take as many tasks as there are free workers. */
  notify(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = this.pump()
      .catch((error) => this.logger.error({ err: error }, 'task engine failed to claim tasks'))
      .finally(() => {
        this.pumping = null;
        if (this.pumpAgain) {
          this.pumpAgain = false;
          this.notify();
        }
      });
  }

  private async pump(): Promise<void> {
    while (!this.stopped && this.inFlight.size < this.options.concurrency) {
      // One statement claims what the free workers can take (see claimPendingTasks).
      const free = this.options.concurrency - this.inFlight.size;
      const claimed = await claimPendingTasks(this.db, this.instanceId, new Date(), free);
      if (claimed.length === 0) return; // nothing pending (or other instances took it first)
      for (const task of claimed) {
        this.inFlight.set(task.taskId, task);
        this.feed.task(task);
      }
      let records: HistoryRow[];
      try {
        // One commit for all the start records, so they are written all or none.
        const entries = claimed.map((task) =>
          this.history.recordOne(this.entry(task, 'action', `${task.type.toLowerCase()} ${task.appName} started`)),
        );
        records = (await this.db.$transaction(entries)).flat();
      } catch (error) {
        for (const task of claimed) this.requeue(task, error);
        return;
      }
      this.feed.history(records);
      for (const task of claimed) {
        void this.execute(task).catch((error) =>
          this.logger.error({ err: error, taskId: task.taskId }, 'task execution failed unexpectedly'),
        );
      }
    }
  }

  private async execute(task: TaskRow): Promise<void> {
    if (!isOperationType(task.type)) {
      return this.end(task, 'FAILED', { error: `task type ${task.type} cannot be executed` });
    }
    this.timeouts.set(
      task.taskId,
      setTimeout(() => {
        void this.end(task, 'FAILED', {
          error: `timed out: the app service did not finish within ${this.options.timeoutMs} ms (TASK_TIMEOUT_MS)`,
        });
      }, this.options.timeoutMs),
    );
    let operation: OperationRequest;
    try {
      operation = await this.operationOf(task);
      // Recorded before sending: from here on, a crash must not send it a second time. A task
      // that is no longer ours to run (canceled meanwhile) is not sent at all.
      if (!(await markDispatched(this.db, task.taskId, this.instanceId, new Date()))) return this.forget(task.taskId);
    } catch (error) {
      return this.requeue(task, error); // the database failed before anything was sent
    }
    let opId: string | null;
    try {
      ({ opId } = await this.appService.start(operation));
    } catch (error) {
      return this.end(task, 'FAILED', this.startFailure(task, error));
    }
    if (opId) await this.recordOpId(task, opId);
  }

  /** Why a task failed when the app service did not accept it. */
  private startFailure(task: TaskRow, error: unknown): EndDetails {
    if (!(error instanceof AppServiceError)) {
      this.logger.error({ err: error, taskId: task.taskId }, 'task execution failed unexpectedly');
      return { error: 'internal error while sending the operation to the app service' };
    }
    return {
      error: error.message,
      result: {
        backend_response: {
          code: error.details.code ?? error.details.status ?? null,
          message: error.message,
          data: (error.details.data ?? null) as Prisma.InputJsonValue,
        },
      },
    };
  }

  /**
   * The op id on the task's row and its app's, while the task still runs (the first events may
   * already have ended it). The task first, then its app's state row (see LOCK ORDER on the
   * class). Events are matched against the op id in memory, so a failed write only loses the
   * copy on the rows.
   */
  private async recordOpId(task: TaskRow, opId: string): Promise<void> {
    task.opId = opId;
    const now = new Date();
    try {
      await this.db.$transaction([
        setTaskOpId(this.db, task.taskId, opId, now),
        setAppOperation(this.db, task, opId, task.type.toLowerCase(), now),
      ]);
      this.feed.task(task);
    } catch (error) {
      this.logger.warn({ err: error, taskId: task.taskId, opId }, 'could not record the op id of a task');
    }
  }

  /** The request sent to the app service; a paid app gets the buyer's credential as an env. */
  private async operationOf(task: TaskRow): Promise<OperationRequest> {
    const metadata = readMetadata(task.metadata);
    const envs = [...metadata.envs];
    if (metadata.paid && metadata.appId && (task.type === 'INSTALL' || task.type === 'CLONE')) {
      const payment = await this.db.payment.findFirst({
        where: { userId: task.userId, appId: metadata.appId, vc: { not: null } },
        orderBy: { id: 'desc' },
      });
      if (payment?.vc) envs.push({ name: 'VERIFIABLE_CREDENTIAL', value: payment.vc });
    }
    return {
      type: task.type as OperationRequest['type'],
      userId: task.userId,
      sourceId: task.sourceId,
      appName: task.appName,
      version: task.version,
      cfgType: metadata.cfgType,
      envs,
      ...(metadata.clone ? { clone: metadata.clone } : {}),
      ...(metadata.uninstall ? { uninstall: metadata.uninstall } : {}),
    };
  }

  /**
   * An app-service state report. Newer than what we have → the app's state row takes it, and the
   * app's active task moves on (progress, or its end). Older ones change nothing.
   *
   * True once the report is applied (or found older than the app's state), false when the
   * database could not take it: the sender should send it again. Should it end a task of this
   * instance, the end is not lost meanwhile: the task is owed its end (see Owed).
   */
  async onAppState(event: AppStateEvent): Promise<boolean> {
    const supervised = this.supervised(appKeyString(event));
    try {
      await this.applyReport(event, supervised);
      return true;
    } catch (error) {
      this.logger.error(
        { err: error, app: event.appName, userId: event.userId, state: event.state },
        'could not apply an app-service state event',
      );
      const outcome = supervised && concerns(supervised, event) ? outcomeOf(supervised.type, event.state) : null;
      if (supervised && outcome) {
        const details = this.endDetails(supervised, event, outcome);
        this.owe({ kind: 'end', task: supervised, status: outcome, details, report: event }, error);
      }
      return false;
    }
  }

  /** Applies a report to the app's state row and its task (see onAppState); throws when the database fails. */
  private async applyReport(event: AppStateEvent, supervised: TaskRow | undefined): Promise<void> {
    const task = supervised ?? (await this.db.task.findUnique({ where: { activeKey: appKeyString(event) } }));
    const concerned = task !== null && concerns(task, event);
    const outcome = concerned ? outcomeOf(task.type, event.state) : null;
    const progress = concerned ? progressOf(event.state, event.progress) : null;
    if (task && concerned && !outcome && progress !== null && progress > task.progress) {
      // The common case, one commit: the task's progress, then the app's state (LOCK ORDER on
      // the class). Progress is monotonic (a late or repeated report never moves it back).
      const now = new Date();
      const [, applied] = await this.db.$transaction([
        raiseProgress(this.db, task.taskId, progress, now),
        applyReportedState(this.db, this.reported(event), now),
      ]);
      task.progress = progress;
      if (applied > 0 || (await this.createStateRow(event))) this.feed.app(event);
      this.feed.task(task);
      return;
    }
    const applied = await this.applyToStateRow(event);
    if (applied) this.feed.app(event);
    if (!applied || !task || !outcome) return;
    await this.finish(task.taskId, outcome, this.endDetails(task, event, outcome));
  }

  /** What an ending report says about the task: the app service's reason for a failure or cancel. */
  private endDetails(task: TaskRow, event: AppStateEvent, outcome: Terminal): { error?: string } {
    const reason = [event.reason, event.message]
      .filter(Boolean)
      .filter((v, i, all) => all.indexOf(v) === i)
      .join(': ');
    if (outcome === 'FAILED') {
      return {
        error: `${task.type.toLowerCase()} of ${task.appName} failed on the app service (${event.state})${reason ? `: ${reason}` : ''}`,
      };
    }
    return outcome === 'CANCELED' && reason ? { error: reason } : {};
  }

  /** The running task of an app among this instance's own, if it runs here. */
  private supervised(key: string): TaskRow | undefined {
    for (const task of this.inFlight.values()) if (task.activeKey === key) return task;
    return undefined;
  }

  /** An event as the app's state row stores it. */
  private reported(event: AppStateEvent): ReportedState {
    return {
      userId: event.userId,
      sourceId: event.sourceId,
      appName: event.appName,
      state: event.state,
      progress: event.progress ?? null,
      reason: event.reason ?? null,
      message: event.message ?? null,
      eventTime: event.createTime,
      opId: event.opId ?? null,
      opType: event.opType ?? null,
      rawAppName: event.rawAppName ?? null,
    };
  }

  /** Writes the event into the app's state row unless the row already has a newer one. */
  private async applyToStateRow(event: AppStateEvent): Promise<boolean> {
    const count = await applyReportedState(this.db, this.reported(event), new Date());
    return count > 0 || this.createStateRow(event);
  }

  /** An app we had no row for (installed outside the market, or reconciled): create it. */
  private async createStateRow(event: AppStateEvent): Promise<boolean> {
    const where = { userId: event.userId, sourceId: event.sourceId, appName: event.appName };
    if (await this.db.appState.findFirst({ where })) return false; // we hold a newer state
    if (event.state.toLowerCase() === 'uninstalled') return false; // nothing to remove
    try {
      await this.db.appState.create({ data: this.reported(event) });
      return true;
    } catch (error) {
      if (isUniqueViolation(error)) return false; // created concurrently by a newer event
      throw error;
    }
  }

  /**
   * Ends a RUNNING task (once: a conditional update), and in the same transaction its app's row
   * and the history record. Completed installs record the installed version; a completed
   * uninstall removes the app's row. False when the task had already ended.
   */
  async finish(taskId: string, status: Terminal, details: EndDetails = {}): Promise<boolean> {
    const now = new Date();
    const ended = await this.db.$transaction(async (tx) => {
      const task = await endTask(tx, taskId, {
        status,
        now,
        ...(status === 'COMPLETED' ? { progress: 100 } : {}),
        ...(details.error ? { error: details.error.slice(0, 2000) } : {}),
        ...(details.result ? { result: details.result } : {}),
      });
      if (!task) return null;
      await this.updateAppOnEnd(tx, task, status, now, details.error);
      const records = await this.history.recordOne(
        this.entry(
          task,
          HISTORY_ON_END[status](task.type),
          `${task.type.toLowerCase()} ${task.appName} ${status === 'COMPLETED' ? 'completed' : status.toLowerCase()}`,
        ),
        tx,
      );
      return { task, records };
    });
    // Only once that committed: should it fail, the caller still answers for the task (see end).
    this.forget(taskId);
    if (ended) {
      this.feed.task(ended.task);
      this.feed.app(ended.task);
      this.feed.history(ended.records);
      this.logger.info({ taskId, status, app: ended.task.appName, userId: ended.task.userId }, 'task ended');
    }
    this.notify(); // a worker is free
    return ended !== null;
  }

  private async updateAppOnEnd(
    tx: Prisma.TransactionClient,
    task: TaskRow,
    status: Terminal,
    now: Date,
    error: string | undefined,
  ) {
    const key = { userId: task.userId, sourceId: task.sourceId, appName: task.appName };
    if (status === 'COMPLETED' && task.type !== 'UNINSTALL') {
      // The common end, without reading the row first.
      if (task.version) await setInstalledVersion(tx, key, task.version, now);
      return;
    }
    const row = await tx.appState.findUnique({ where: { userId_sourceId_appName: key } });
    if (!row) return;
    const where = { id: row.id };
    if (status === 'COMPLETED') {
      await tx.appState.delete({ where }); // a completed uninstall
      return;
    }
    const neverInstalled = !row.installedVersion;
    if (status === 'CANCELED' && neverInstalled && task.type !== 'UNINSTALL') {
      await tx.appState.delete({ where }); // a canceled first install leaves nothing behind
      return;
    }
    if (status === 'FAILED' && !row.state.toLowerCase().includes('failed')) {
      // The app service never reported the failure (it refused the operation, or timed out):
      // show it on the app too, with the reason.
      await tx.appState.update({
        where,
        data: { state: `${task.type.toLowerCase()}Failed`, reason: (error ?? 'failed').slice(0, 200) },
      });
    }
  }

  /** Asks the app service to cancel a running task; the task ends CANCELED when it confirms. */
  async requestCancel(task: TaskRow): Promise<void> {
    if (!isOperationType(task.type)) return;
    try {
      await this.appService.cancel({
        userId: task.userId,
        sourceId: task.sourceId,
        appName: task.appName,
        type: task.type,
        opId: task.opId,
      });
    } catch (error) {
      if (error instanceof AppServiceError)
        throw new UpstreamError(`The app service could not cancel: ${error.message}`);
      throw error;
    }
  }

  /** Ends a task of this instance; if the database cannot take the end now, the task is owed it. */
  private async end(task: TaskRow, status: Terminal, details: EndDetails): Promise<void> {
    try {
      await this.finish(task.taskId, status, details);
    } catch (error) {
      this.owe({ kind: 'end', task, status, details }, error);
    }
  }

  /** A task that was never sent, and whose run the database interrupted: it goes back to PENDING. */
  private requeue(task: TaskRow, error: unknown): void {
    this.owe({ kind: 'requeue', task }, error);
  }

  /** The task gives up its worker now; the repair loop writes what it is owed (see Owed). */
  private owe(owed: Owed, error: unknown): void {
    const { taskId } = owed.task;
    this.logger.warn({ err: error, taskId, owed: owed.kind }, 'the database failed a task write; retrying it');
    this.forget(taskId);
    this.owed.set(taskId, owed);
    this.scheduleRepair();
    this.notify(); // a worker is free
  }

  private scheduleRepair(): void {
    if (this.stopped || this.repairTimer || this.owed.size === 0) return;
    this.repairTimer = setTimeout(() => {
      this.repairing = this.repair().finally(() => {
        this.repairing = null;
        this.repairTimer = undefined;
        this.scheduleRepair();
      });
    }, this.repairDelayMs);
    this.repairTimer.unref();
  }

  /** One round of the repair loop: every owed write once; the pause doubles while any still fails. */
  private async repair(): Promise<void> {
    const results = await Promise.allSettled([...this.owed.values()].map((owed) => this.settle(owed)));
    const failing = results.some((result) => result.status === 'rejected');
    this.repairDelayMs = failing ? Math.min(2 * this.repairDelayMs, REPAIR_MAX_DELAY_MS) : REPAIR_FIRST_DELAY_MS;
  }

  /** Writes what a task is owed; throws (and it stays owed) when the database fails again. */
  private async settle(owed: Owed): Promise<void> {
    const { task } = owed;
    if (owed.kind === 'requeue') {
      // This worker never sent it, so it may run again: even if the write marking it sent committed.
      const { count } = await this.db.task.updateMany({
        where: { taskId: task.taskId, status: 'RUNNING', workerId: this.instanceId },
        data: { status: 'PENDING', startedAt: null, workerId: null, heartbeatAt: null, dispatchedAt: null },
      });
      this.forget(task.taskId);
      if (count) this.feed.task(task);
      this.notify();
      return;
    }
    if (owed.report) {
      // The report that ended the task, on its app's row. A report the database refuses for good
      // must not keep the task running, so the end is written without it (the sender retries it).
      try {
        if (await this.applyToStateRow(owed.report)) this.feed.app(owed.report);
      } catch (error) {
        this.logger.warn({ err: error, taskId: task.taskId }, 'ending a task without the report that ended it');
      }
    }
    await this.finish(task.taskId, owed.status, owed.details);
  }

  /**
   * Renews the lease of the tasks this instance answers for (running, or owed a write), and
   * forgets those that ended elsewhere. Only those: a task it lost track of (e.g. claimed by a
   * statement whose answer never came) lets its lease run out and is recovered like a dead one's.
   */
  private async heartbeat(): Promise<void> {
    const taskIds = [...this.inFlight.keys(), ...this.owed.keys()];
    if (taskIds.length === 0) return;
    await this.db.task.updateMany({
      where: { taskId: { in: taskIds }, workerId: this.instanceId, status: 'RUNNING' },
      data: { heartbeatAt: new Date() },
    });
    const ended = await this.db.task.findMany({
      where: { taskId: { in: taskIds }, status: { not: 'RUNNING' } },
      select: { taskId: true },
    });
    for (const { taskId } of ended) this.forget(taskId);
  }

  /** Stops answering for a task (it ended, or is no longer this worker's). */
  private forget(taskId: string): void {
    clearTimeout(this.timeouts.get(taskId));
    this.timeouts.delete(taskId);
    this.inFlight.delete(taskId);
    this.owed.delete(taskId);
  }

  /**
   * Tasks whose worker died (crash, kill -9, lost machine): RUNNING with a heartbeat older than
   * the lease. One that was never sent to the app service goes back to PENDING and runs again;
   * one that was sent may still be running there, so it fails with reason "interrupted" rather
   * than being sent twice. Tasks of live instances are left alone, and so are this instance's
   * own after an outage longer than the lease: it still answers for them.
   */
  private async recoverAbandoned(): Promise<void> {
    const expired = new Date(Date.now() - this.options.leaseMs);
    const orphans = await this.db.task.findMany({
      where: { status: 'RUNNING', OR: [{ heartbeatAt: null }, { heartbeatAt: { lt: expired } }] },
    });
    for (const task of orphans) {
      if (this.inFlight.has(task.taskId) || this.owed.has(task.taskId)) continue;
      if (!task.dispatchedAt) {
        const { count } = await this.db.task.updateMany({
          where: { id: task.id, status: 'RUNNING', heartbeatAt: task.heartbeatAt },
          data: { status: 'PENDING', startedAt: null, workerId: null, heartbeatAt: null },
        });
        if (count) {
          this.feed.task(task);
          this.logger.warn({ taskId: task.taskId }, 'requeued a task whose worker died before sending it');
        }
      } else if (
        await this.finish(task.taskId, 'FAILED', {
          error:
            'interrupted: the server stopped while the app service was running this operation; check the app and retry the task',
        })
      ) {
        this.logger.warn({ taskId: task.taskId }, 'failed a task whose worker died while the app service ran it');
      }
    }
    if (orphans.length) this.notify();
  }

  private entry(task: TaskRow, type: HistoryEntry['type'], message: string): HistoryEntry {
    return {
      type,
      message,
      app: task.appName,
      userId: task.userId,
      time: new Date(),
      extended: {
        taskId: task.taskId,
        taskType: task.type,
        status: task.status,
        version: task.version,
        error: task.error,
      },
    };
  }
}
