import { randomUUID } from 'node:crypto';
import { type AppService, AppServiceError, type AppStateEvent } from '../adapters/app-service/port.js';
import type { Db } from '../db/client.js';
import { type DatabaseClock, databaseClockOf } from '../db/database-clock.js';
import { driverSqlOf } from '../db/driver-sql.js';
import { claimPendingTasks } from '../db/hot-path-sql.js';
import type { HistoryRow, TaskRow } from '../db/models.js';
import { UpstreamError } from '../domain/errors.js';
import { isOperationType } from '../domain/operations.js';
import { isTerminal, type TerminalStatus } from '../domain/tasks.js';
import type { ChangeFeed, TaskChanged } from '../events/change-feed.js';
import type { Logger } from '../platform/logger.js';
import { RepeatedFailure } from '../platform/repeated-failure.js';
import type { HistoryService } from '../services/history-service.js';
import type { TaskRunner } from '../services/task-submission.js';
import { applyListedState, type RowAsRead, receiveReport } from './app-state-reports.js';
import { execute } from './dispatch.js';
import { type EndDetails, type EngineContext, type TaskEngineOptions, TrackedTasks } from './engine-context.js';
import { followAdopted, handOver, heartbeat, recoverAbandoned } from './leases.js';
import { RepairLoop } from './repair-loop.js';
import { finishTask, forgetEndedElsewhere, historyEntry } from './task-end.js';

/**
 * Runs tasks against the app service. Tasks are rows first: a worker claims a PENDING one, users
 * taking turns (claimPendingTasks), with a conditional update (so instances sharing a database
 * never run a task twice), asks the app service to start it, and the task then follows the app
 * service's state events until they end it. One active task per app is guaranteed by the database
 * (`Task.activeKey`).
 *
 * Its parts: dispatch.ts sends a claimed task, app-state-reports.ts applies the app service's
 * reports, task-end.ts writes a task's end, leases.ts keeps and recovers leases, and
 * repair-loop.ts retries the writes the database refused, and start-retry.ts puts a task the app
 * service did not take back to wait.
 *
 * HANDOVER: a graceful stop hands the running tasks over (leases.ts): they stay RUNNING without a
 * worker, and any instance (this one after a restart, or another sharing the database) adopts
 * them on its next poll and follows them to their end by their op id; a dead instance's tasks are
 * adopted the same way once their lease expires. Only a task the app service has no record of
 * fails ("lost: …"): nothing would ever report its end, and it is never sent twice. One whose
 * request may still be open (no op id yet) is not judged so before that request's timeout.
 *
 * DATABASE FAULTS: no write that fails leaves a task stuck. A task that was not sent yet goes
 * back to PENDING; a task whose end could not be written gives up its worker at once, and the
 * repair loop writes the end (and the report that ended it) once the database answers again;
 * a state report that could not be applied is reported as such (the intake answers 503, so the
 * app service sends it again). Claiming retries on the poll interval. Until then the heartbeat
 * keeps the lease of every task this instance still answers for, so none is taken for abandoned.
 *
 * LOCK ORDER: every transaction that writes both a task and its app's state row writes the task
 * first: the mutation (OperationService.insert), the op id and progress transactions (dispatch.ts,
 * app-state-reports.ts), and finish (which only learns the app from the task it ends). On
 * PostgreSQL two transactions taking the two row locks in opposite orders deadlock and one is
 * aborted: a progress report committing while a timeout or cancel ends the task would lose the
 * end and leave the task RUNNING (test/engine-lock-order.test.ts).
 */
export class TaskEngine implements TaskRunner {
  /** Identifies this process's workers on the rows they claim. */
  readonly instanceId = randomUUID();
  private readonly tracked = new TrackedTasks();
  private readonly ctx: EngineContext;
  private readonly repairs: RepairLoop;
  private readonly claimFailures: RepeatedFailure;
  private readonly recoveryFailures: RepeatedFailure;
  private readonly heartbeatFailures: RepeatedFailure;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | null = null;
  private recovering: Promise<void> | null = null;
  /** Sends in progress (claimed task → app service → op id recorded): a stop waits for them. */
  private readonly sending = new Set<Promise<void>>();
  private pollTimer: NodeJS.Timeout | undefined;
  private pumping: Promise<void> | null = null;
  private pumpAgain = false;
  private stopped = true;
  /** Claims when a task waiting to be sent again is due (start-retry.ts); the poll would, later. */
  private readonly wakeTimers = new Set<NodeJS.Timeout>();
  private readonly counts = { startRetries: 0 };

  constructor(
    db: Db,
    private readonly appService: AppService,
    history: HistoryService,
    feed: ChangeFeed,
    private readonly logger: Logger,
    private readonly options: TaskEngineOptions,
    /** Leases are stamped and judged on it (see DatabaseClock); shared with the process's other users. */
    clock: DatabaseClock = databaseClockOf(db),
  ) {
    const { instanceId, tracked } = this;
    this.ctx = {
      db,
      sql: driverSqlOf(db),
      clock,
      appService,
      history,
      feed,
      logger,
      options,
      instanceId,
      tracked,
      adoptedLookupFailures: new RepeatedFailure(
        logger,
        'task engine: asking the app service about adopted tasks',
        'warn',
      ),
      stopped: () => this.stopped,
      notify: () => this.notify(),
      wakeAfter: (delayMs) => this.wakeAfter(delayMs),
      counts: this.counts,
      owe: (owed, error) => this.repairs.owe(owed, error),
      oweAcceptance: (acceptance, error) => this.repairs.oweAcceptance(acceptance, error),
    };
    this.repairs = new RepairLoop(this.ctx);
    this.claimFailures = new RepeatedFailure(logger, 'task engine: claiming tasks');
    this.recoveryFailures = new RepeatedFailure(logger, 'task engine: recovery of abandoned tasks');
    // Logged at every beat (TASK_LEASE_MS / 3), an outage wrote an error with a stack every few
    // seconds and nothing when it ended.
    this.heartbeatFailures = new RepeatedFailure(logger, 'task engine: heartbeat');
  }

  /**
   * Adopts what a stopped or dead worker left running, then starts taking tasks. The app service
   * is asked about the adopted tasks in the background: a slow app service does not hold up the start.
   */
  async start(): Promise<void> {
    this.stopped = false;
    await this.ctx.clock.sync();
    await recoverAbandoned(this.ctx);
    void this.recover();
    // Also the retry of a claim that failed (database away): a failed pump ends, the next tick starts another.
    // And the adoption of the tasks a stopping instance handed over, which need not wait for a lease.
    this.pollTimer = setInterval(() => {
      void this.recover();
      this.notify();
    }, this.options.pollIntervalMs);
    this.pollTimer.unref();
    this.heartbeatTimer = setInterval(
      () => {
        // One beat at a time: while the database is away, a beat can take as long as the pool's connect timeout.
        this.beating ??= heartbeat(this.ctx)
          .then(() => {
            this.heartbeatFailures.succeeded();
            return this.recover();
          })
          .catch((error) => this.heartbeatFailures.failed(error))
          .finally(() => {
            this.beating = null;
          });
      },
      Math.max(50, Math.floor(this.options.leaseMs / 3)),
    );
    this.heartbeatTimer.unref();
    this.notify();
  }

  /**
   * A graceful stop: takes nothing new, lets the sends in progress finish (so every task it hands
   * over has its op id; they last at most the app service's timeout), then hands its tasks over
   * to the instances that remain, or to its own restart (see HANDOVER above). `deadline` (ms since
   * the epoch) bounds the wait for sends in progress, so a hanging app service cannot hold a
   * shutdown beyond its budget: a send still open then is handed over without its op id, and its
   * adopter finds the operation by its app, which a first install is not listed under until the
   * app service has taken the request: not lost until that request's timeout has passed (leases.ts).
   */
  async stop(deadline = Number.POSITIVE_INFINITY): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearInterval(this.heartbeatTimer);
    for (const timer of this.wakeTimers) clearTimeout(timer);
    this.wakeTimers.clear();
    this.tracked.clearTimeouts();
    await Promise.all([this.pumping, this.repairs.stop(), this.beating, this.recovering]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.sending),
      new Promise((resolve) => {
        if (Number.isFinite(deadline)) timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      }),
    ]);
    clearTimeout(timer);
    await handOver(this.ctx);
    this.tracked.clearTimeouts(); // of tasks adopted meanwhile, should the handover have failed
    await this.appService.close();
  }

  /** One recovery round at a time: adopt what nobody follows, then ask the app service about it. */
  private recover(): Promise<void> {
    this.recovering ??= recoverAbandoned(this.ctx)
      .then(() => followAdopted(this.ctx))
      .then(
        () => this.recoveryFailures.succeeded(),
        (error) => this.recoveryFailures.failed(error),
      )
      .finally(() => {
        this.recovering = null;
      });
    return this.recovering;
  }

  /** Resolves once the claiming in progress (if any) is done: every free worker has its task. */
  async settled(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  /** The database's clock (DatabaseClock), which the engine's times are on. */
  get clock(): DatabaseClock {
    return this.ctx.clock;
  }

  /** How far this machine's clock is ahead of the database's (null: SQLite, or not measured yet). */
  get machineClockLeadMs(): number | null {
    return this.ctx.clock.machineLeadMs;
  }

  /** MAX_ACTIVE_TASKS_PER_USER, for the submissions (TaskRunner). */
  get maxActivePerUser(): number {
    return this.options.maxActivePerUser;
  }

  /** Counts for health reporting. */
  get running(): number {
    return this.tracked.inFlight.size;
  }

  /** Starts the app service did not take that this instance put back to wait (start-retry.ts), for /metrics. */
  get startRetries(): number {
    return this.counts.startRetries;
  }

  private wakeAfter(delayMs: number): void {
    if (this.stopped) return;
    // A little after: a timer may fire a millisecond early, and the claim would find nothing due yet.
    const timer = setTimeout(() => {
      this.wakeTimers.delete(timer);
      this.notify();
    }, delayMs + 5);
    timer.unref();
    this.wakeTimers.add(timer);
  }

  /** Something may be pending: take as many tasks as there are free workers. */
  notify(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = this.pump()
      .then(
        () => this.claimFailures.succeeded(),
        (error) => this.claimFailures.failed(error),
      )
      .finally(() => {
        this.pumping = null;
        if (this.pumpAgain) {
          this.pumpAgain = false;
          this.notify();
        }
      });
  }

  private async pump(): Promise<void> {
    const { sql, history, feed, tracked } = this.ctx;
    while (!this.stopped && tracked.inFlight.size < this.options.concurrency) {
      // One statement claims what the free workers can take (see claimPendingTasks).
      const free = this.options.concurrency - tracked.inFlight.size;
      const claimed = await claimPendingTasks(sql, this.instanceId, this.ctx.clock.date(), free);
      if (claimed.length === 0) return; // nothing pending (or other instances took it first)
      for (const task of claimed) {
        forgetEndedElsewhere(this.ctx, tracked.othersOfApp(task));
        tracked.inFlight.set(task.taskId, task);
        feed.task(task);
      }
      let records: HistoryRow[];
      try {
        // One commit for all the start records, so they are written all or none.
        records = await sql.$transaction(async (tx) => {
          const written: HistoryRow[] = [];
          // A task sent again (start-retry.ts) was recorded started at its first send.
          for (const task of claimed.filter(({ startAttempts }) => startAttempts === 0)) {
            const started = historyEntry(task, 'action', `${task.type.toLowerCase()} ${task.appName} started`);
            written.push(...(await history.recordOne(started, tx)));
          }
          return written;
        });
      } catch (error) {
        // Never sent: each goes back to PENDING.
        for (const task of claimed) this.repairs.owe({ kind: 'requeue', task }, error);
        return;
      }
      feed.history(records);
      for (const task of claimed) {
        const sending = execute(this.ctx, task)
          .catch((error) =>
            this.logger.error({ err: error, taskId: task.taskId }, 'task execution failed unexpectedly'),
          )
          .finally(() => this.sending.delete(sending));
        this.sending.add(sending);
      }
    }
  }

  /**
   * An app-service state report. Newer than what we have → the app's state row takes it, and the
   * app's active task moves on (progress, or its end). Older ones change nothing.
   *
   * True once the report is applied (or found older than the app's state), false when the
   * database could not take it: the sender should send it again. Should it end a task of this
   * instance, the end is not lost meanwhile: the task is owed its end (see Owed).
   */
  onAppState(event: AppStateEvent): Promise<boolean> {
    return receiveReport(this.ctx, event);
  }

  /**
   * A task's change as announced on this instance's bus (in cluster mode, other instances' too):
   * one that ended a task still supervised here was written by another instance, which is now
   * followed (see forgetEndedElsewhere).
   */
  onTaskChanged({ taskId, status }: TaskChanged): void {
    if (status !== undefined && isTerminal(status)) forgetEndedElsewhere(this.ctx, [taskId]);
  }

  /**
   * A state the app service lists (status correction), applied like a state report (older than
   * the app's row, or a row changed since status correction read it: nothing changes), possibly
   * ending the app's task. True when the row took it; throws when the database fails.
   */
  applyListedState(event: AppStateEvent, asRead: RowAsRead): Promise<boolean> {
    return applyListedState(this.ctx, event, asRead);
  }

  /**
   * Ends a RUNNING task (once: a conditional update), and in the same transaction its app's row
   * and the history record (see finishTask). False when the task had already ended.
   */
  finish(taskId: string, status: TerminalStatus, details: EndDetails = {}): Promise<boolean> {
    return finishTask(this.ctx, taskId, status, details);
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
}
