import type { AppService, AppStateEvent } from '../adapters/app-service/port.js';
import type { Db } from '../db/client.js';
import type { DatabaseClock } from '../db/database-clock.js';
import type { DriverSql } from '../db/driver-sql.js';
import type { Prisma, TaskRow } from '../db/models.js';
import type { TaskResultEnvelope } from '../domain/task-result.js';
import type { TerminalStatus } from '../domain/tasks.js';
import type { ChangeFeed } from '../events/change-feed.js';
import type { Logger } from '../platform/logger.js';
import type { RepeatedFailure } from '../platform/repeated-failure.js';
import type { HistoryService } from '../services/history-service.js';

export interface TaskEngineOptions {
  concurrency: number;
  timeoutMs: number;
  /** How often to look for pending tasks nobody told us about (e.g. created by another instance). */
  pollIntervalMs: number;
  /**
   * A RUNNING task whose worker has not renewed its heartbeat for this long is taken over (one
   * handed over by a graceful stop is taken over at once).
   */
  leaseMs: number;
  /**
   * MAX_ACTIVE_TASKS_PER_USER: the PENDING and RUNNING tasks one user may have; a submission over
   * it is refused (TaskSubmission). The engine only carries it to the submissions (TaskRunner).
   */
  maxActivePerUser: number;
  /** How a start the app service did not take is sent again (start-retry.ts). */
  startRetry: StartRetrySettings;
}

/** TASK_START_ATTEMPTS, TASK_START_RETRY_FIRST_MS and TASK_START_RETRY_MAX_MS (start-retry.ts). */
export interface StartRetrySettings {
  /** Sends of one task in all, the first included: 1 never sends one again. */
  attempts: number;
  /** The wait after the first refusal; it doubles with each one after. */
  firstDelayMs: number;
  /** The longest wait, also for what a `Retry-After` asks. */
  maxDelayMs: number;
}

/**
 * What an ended task keeps besides its status: why it failed, the app service's answer, and its op
 * id (known in memory before its acceptance is written, which the end may overtake).
 */
export type EndDetails = {
  error?: string;
  result?: Prisma.InputJsonValue;
  opId?: string | null;
  /** The end is the app service's report of the task's own operation (see endDetails), whose reason the app keeps. */
  reported?: boolean;
};

/**
 * A write about one of this instance's tasks that the database could not take: its end (with the
 * report that ended it, if one did), or its release back to PENDING when it was never sent. The
 * task no longer holds a worker; the repair loop retries the write until it lands.
 */
export type Owed =
  | { kind: 'end'; task: TaskRow; status: TerminalStatus; details: EndDetails; report?: AppStateEvent }
  | { kind: 'requeue'; task: TaskRow; wait?: StartWait };

/** A refused start's wait before it is sent again, as its row holds it (start-retry.ts). */
export type StartWait = { notBefore: Date; startAttempts: number; message: string };

/** The app service's acceptance of a task's operation (dispatch.ts), as its row is to hold it. */
export type Acceptance = { task: TaskRow; opId: string | null; result: TaskResultEnvelope };

/** The tasks this instance answers for: those its workers run, and those owed a write. */
export class TrackedTasks {
  /** Tasks this instance's workers run, by task id (also answers state events without a query). */
  readonly inFlight = new Map<string, TaskRow>();
  /** Writes the database could not take yet, by task id (see Owed); the repair loop retries them. */
  readonly owed = new Map<string, Owed>();
  /**
   * Tasks adopted from a stopped or dead instance that the app service has not been asked about
   * yet (see followAdopted): asked again on every recovery round until it answers.
   */
  readonly unconfirmed = new Set<string>();
  /**
   * Acceptances the database refused, by task id. The task keeps its worker (its reports are
   * matched in memory) while the repair loop writes them: until then cancelTask refuses it.
   */
  readonly unrecorded = new Map<string, Acceptance>();
  private readonly timeouts = new Map<string, NodeJS.Timeout>();

  /** Whether this instance still answers for the task (running here, or owed a write). */
  has(taskId: string): boolean {
    return this.inFlight.has(taskId) || this.owed.has(taskId);
  }

  /** The ids of every task this instance answers for. */
  ids(): string[] {
    return [...this.inFlight.keys(), ...this.owed.keys()];
  }

  /** The running task of an app among this instance's own, if it runs here. */
  supervised(activeKey: string): TaskRow | undefined {
    for (const task of this.inFlight.values()) if (task.activeKey === activeKey) return task;
    return undefined;
  }

  /**
   * The other tasks of `task`'s app running here: ended, since the database gave `task` the app's
   * active key, which a task holds until it ends (see forgetEndedElsewhere).
   */
  othersOfApp(task: TaskRow): string[] {
    const others: string[] = [];
    for (const [taskId, other] of this.inFlight) {
      if (taskId !== task.taskId && other.activeKey === task.activeKey) others.push(taskId);
    }
    return others;
  }

  /** Arms the timer that fails a task taking too long. */
  setTimeout(taskId: string, timer: NodeJS.Timeout): void {
    this.timeouts.set(taskId, timer);
  }

  clearTimeouts(): void {
    for (const timer of this.timeouts.values()) clearTimeout(timer);
    this.timeouts.clear();
  }

  /** Stops answering for a task (it ended, or is no longer this worker's). */
  forget(taskId: string): void {
    clearTimeout(this.timeouts.get(taskId));
    this.timeouts.delete(taskId);
    this.inFlight.delete(taskId);
    this.owed.delete(taskId);
    this.unconfirmed.delete(taskId);
    this.unrecorded.delete(taskId);
  }
}

/** What the parts of the task engine share: its dependencies, its tasks, and the moves any part may make. */
export interface EngineContext {
  readonly db: Db;
  /** `db`'s driver (db/driver-sql.ts): the claim, start records, dispatch, progress and end commit there. */
  readonly sql: DriverSql;
  /** The clock of leases and of the times they are compared with (see DatabaseClock). */
  readonly clock: DatabaseClock;
  readonly appService: AppService;
  readonly history: HistoryService;
  readonly feed: ChangeFeed;
  readonly logger: Logger;
  readonly options: TaskEngineOptions;
  /** Identifies this process's workers on the rows they claim. */
  readonly instanceId: string;
  readonly tracked: TrackedTasks;
  /** The app service not answering about adopted tasks, round after round (followAdopted): logged as one failure. */
  readonly adoptedLookupFailures: RepeatedFailure;
  /** True before start and after stop: nothing new is claimed or scheduled. */
  stopped(): boolean;
  /** Something may be pending, or a worker is free: claim now. */
  notify(): void;
  /** Claim once `delayMs` has passed, when a task waiting to be sent again is due (the poll would, later). */
  wakeAfter(delayMs: number): void;
  /** Figures for /metrics: starts the app service did not take that were put back to wait. */
  readonly counts: { startRetries: number };
  /** The task gives up its worker now; the repair loop writes what it is owed (see Owed). */
  owe(owed: Owed, error: unknown): void;
  /** The task runs on; the repair loop writes its acceptance (see TrackedTasks.unrecorded). */
  oweAcceptance(acceptance: Acceptance, error: unknown): void;
}
