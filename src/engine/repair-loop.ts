import { isDatabaseUnavailable } from '../db/availability.js';
import { applyToStateRow } from './app-state-reports.js';
import { writeAcceptance } from './dispatch.js';
import type { Acceptance, EngineContext, Owed } from './engine-context.js';
import { REQUEUED } from './start-retry.js';
import { finishTask } from './task-end.js';

/** The repair loop's first retry comes after this long; each round that still fails doubles it. */
const REPAIR_FIRST_DELAY_MS = 200;
/** Its longest pause: after the database returns, owed writes land within about this long. */
const REPAIR_MAX_DELAY_MS = 2000;

/**
 * Retries the writes the database could not take (see Owed) until each lands, so no task is left
 * RUNNING by a failed write; and the acceptances it refused (see TrackedTasks.unrecorded).
 * Meanwhile the heartbeat keeps the lease of every owed task, so no other instance takes it for
 * abandoned.
 */
export class RepairLoop {
  private timer: NodeJS.Timeout | undefined;
  private repairing: Promise<void> | null = null;
  private delayMs = REPAIR_FIRST_DELAY_MS;

  constructor(private readonly ctx: EngineContext) {}

  /** The task gives up its worker now; the repair loop writes what it is owed (see Owed). */
  owe(owed: Owed, error: unknown): void {
    const { taskId } = owed.task;
    this.ctx.logger.warn({ err: error, taskId, owed: owed.kind }, 'the database failed a task write; retrying it');
    this.ctx.tracked.forget(taskId);
    this.ctx.tracked.owed.set(taskId, owed);
    this.schedule();
    this.ctx.notify(); // a worker is free
  }

  /** The task keeps its worker; the repair loop writes its acceptance (see TrackedTasks.unrecorded). */
  oweAcceptance(acceptance: Acceptance, error: unknown): void {
    const { taskId } = acceptance.task;
    this.ctx.logger.warn(
      { err: error, taskId, opId: acceptance.opId },
      'the database failed the acceptance of a task; retrying it',
    );
    this.ctx.tracked.unrecorded.set(taskId, acceptance);
    this.schedule();
  }

  /** Cancels the next round; resolves once the round in progress (if any) is done. */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.repairing;
  }

  private schedule(): void {
    const { owed, unrecorded } = this.ctx.tracked;
    if (this.ctx.stopped() || this.timer || owed.size + unrecorded.size === 0) return;
    this.timer = setTimeout(() => {
      this.repairing = this.repair().finally(() => {
        this.repairing = null;
        this.timer = undefined;
        this.schedule();
      });
    }, this.delayMs);
    this.timer.unref();
  }

  /** One round of the repair loop: every owed write once; the pause doubles while any still fails. */
  private async repair(): Promise<void> {
    const { owed, unrecorded } = this.ctx.tracked;
    const results = await Promise.allSettled([
      ...[...owed.values()].map((write) => this.settle(write)),
      ...[...unrecorded.values()].map((acceptance) => this.record(acceptance)),
    ]);
    const failing = results.some((result) => result.status === 'rejected');
    this.delayMs = failing ? Math.min(2 * this.delayMs, REPAIR_MAX_DELAY_MS) : REPAIR_FIRST_DELAY_MS;
  }

  /** Writes an acceptance; it stays owed when the database fails again. */
  private async record(acceptance: Acceptance): Promise<void> {
    const { task, opId } = acceptance;
    // A write whose commit landed though its answer was lost (a connection cut after COMMIT) is
    // not made again: the app's row holding our op id would then read as a report that came first
    // (writeAcceptance), and end the task on the app's state from before the operation.
    const row = await this.ctx.db.task.findUnique({
      where: { taskId: task.taskId },
      select: { opId: true, result: true },
    });
    if (row && row.result !== null && row.opId === opId) this.ctx.feed.task(task);
    else await writeAcceptance(this.ctx, acceptance);
    this.ctx.tracked.unrecorded.delete(task.taskId);
  }

  /** Writes what a task is owed; throws (and it stays owed) when the database fails again. */
  private async settle(owed: Owed): Promise<void> {
    const { ctx } = this;
    const { task } = owed;
    if (owed.kind === 'requeue') {
      // This worker never sent it (or the app service did not take it: its wait goes with it), so it
      // may run again: even if the write marking it sent committed.
      const { count } = await ctx.db.task.updateMany({
        where: { taskId: task.taskId, status: 'RUNNING', workerId: ctx.instanceId },
        data: { ...REQUEUED, ...owed.wait },
      });
      ctx.tracked.forget(task.taskId);
      if (count) ctx.feed.task(task);
      ctx.notify();
      return;
    }
    if (owed.report) {
      // The report that ended the task, on its app's row. A report the database refuses for good
      // must not keep the task running, so the end is written without it (the sender retries it).
      try {
        if (await applyToStateRow(ctx, owed.report)) ctx.feed.app(owed.report);
      } catch (error) {
        // The database still away: the report stays owed with the end, both tried again. Only a
        // report the database refuses for good is left out (this was logged every 2 s per task).
        if (isDatabaseUnavailable(error)) throw error;
        ctx.logger.warn({ err: error, taskId: task.taskId }, 'ending a task without the report that ended it');
      }
    }
    await finishTask(ctx, task.taskId, owed.status, owed.details);
  }
}
