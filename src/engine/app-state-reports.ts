import type { AppStateEvent } from '../adapters/app-service/port.js';
import { failureMessage, isDatabaseUnavailable } from '../db/availability.js';
import type { SqlRunner } from '../db/driver-sql.js';
import { applyReportedState, isUniqueViolation, type RowRead, raiseProgress } from '../db/hot-path-sql.js';
import type { TaskRow } from '../db/models.js';
import { appKeyString } from '../domain/app-key.js';
import { TERMINAL_STATUSES } from '../domain/tasks.js';
import { removedSince, uninstalledMessage } from './app-removals.js';
import type { EngineContext } from './engine-context.js';
import {
  acceptedResult,
  concerns,
  endDetails,
  endedByTimeout,
  listedChart,
  outcomeOf,
  progressOf,
  reportedState,
} from './report-rules.js';
import { finishTask, forgetEndedElsewhere } from './task-end.js';

/** Takes one app-service state report (see TaskEngine.onAppState); false when the database could not. */
export async function receiveReport(ctx: EngineContext, event: AppStateEvent): Promise<boolean> {
  try {
    await applyReport(ctx, event);
    return true;
  } catch (error) {
    const supervised = ctx.tracked.supervised(appKeyString(event));
    // The database away is no fault of the report or the code: a warning, without the driver's stack.
    const away = isDatabaseUnavailable(error);
    ctx.logger[away ? 'warn' : 'error'](
      {
        ...(away ? { error: failureMessage(error) } : { err: error }),
        app: event.appName,
        userId: event.userId,
        state: event.state,
      },
      'could not apply an app-service state event',
    );
    const outcome = supervised && concerns(supervised, event) ? outcomeOf(supervised.type, event.state) : null;
    if (supervised && outcome) {
      const details = endDetails(supervised, event, outcome);
      ctx.owe({ kind: 'end', task: supervised, status: outcome, details, report: event }, error);
    }
    return false;
  }
}

/**
 * The app's state row as status correction read it, before it asked for the list: its `updatedAt`,
 * or null when it had none. A listed state goes only onto that row, unchanged since (null: only
 * into a new row): a row changed since (a report, an operation accepted, the row gone) is not the
 * one the list was compared with, and the next run judges it again. `ownState`: the row holds a
 * failure this server wrote itself, which the listed state replaces at the row's own time
 * (correction-rules.ts, heldOwnFailure).
 */
export type RowAsRead = RowRead | null;

/**
 * A state the app service's list shows (status correction), applied as its state reports are: the
 * app's row as read (`asRead`) takes it unless it holds a newer one or this very one (same time:
 * another run wrote it, see applyReportedState), and it may end the app's task. True when the row
 * took it; throws when the database fails (the next correction tries again).
 */
export function applyListedState(ctx: EngineContext, event: AppStateEvent, asRead: RowAsRead): Promise<boolean> {
  return applyReport(ctx, event, asRead);
}

/**
 * The task a report is matched against: the app's task running here, as this instance knows it
 * (its op id may not be written yet), when the report concerns it; else the app's active task as
 * the database has it. The one here may have ended on another instance, which received its final
 * report: then it is no longer the app's active task, and is forgotten (forgetEndedElsewhere).
 * Matched on, it made every report of the app's next task go ignored.
 */
async function reportedTask(ctx: EngineContext, event: AppStateEvent): Promise<TaskRow | null> {
  const activeKey = appKeyString(event);
  const supervised = ctx.tracked.supervised(activeKey);
  if (supervised && concerns(supervised, event)) return supervised;
  const active = await ctx.db.task.findUnique({ where: { activeKey } });
  if (!supervised || active?.taskId === supervised.taskId) return supervised ?? active;
  forgetEndedElsewhere(ctx, [supervised.taskId]);
  return ctx.tracked.supervised(activeKey) ?? active;
}

/**
 * Applies a report to the app's state row and its task (see receiveReport); true when the row took
 * it, false when it holds a newer one (or, listed: the same, or it changed since `asRead`). Throws
 * when the database fails.
 */
async function applyReport(ctx: EngineContext, event: AppStateEvent, asRead?: RowAsRead): Promise<boolean> {
  const { feed } = ctx;
  const listed = asRead !== undefined;
  const task = await reportedTask(ctx, event);
  const concerned = task !== null && concerns(task, event);
  const outcome = concerned ? outcomeOf(task.type, event.state) : null;
  const progress = concerned ? progressOf(event.state, event.progress) : null;
  if (task && concerned && !outcome && progress !== null && progress > task.progress) {
    // The common case, one commit: the task's progress, then the app's state (LOCK ORDER on
    // TaskEngine). Progress is monotonic (a late or repeated report never moves it back).
    const now = ctx.clock.date();
    const applied = await ctx.sql.$transaction(async (tx) => {
      await raiseProgress(tx, task.taskId, progress, now);
      return updateStateRow(tx, event, now, asRead);
    });
    task.progress = progress;
    const took = applied > 0 || (await createUnlessRead(ctx, event, asRead));
    if (took) feed.app(event);
    feed.task(task);
    return took;
  }
  if (!concerned && !listed && (await reportsEndedOperation(ctx, event))) return false;
  if (!(await applyToStateRow(ctx, event, asRead))) return false;
  feed.app(event);
  const ending = concerned ? task : task && (await acceptedMeanwhile(ctx, task, event));
  const end = ending && outcomeOf(ending.type, event.state);
  if (ending && end) await finishTask(ctx, ending.taskId, end, endDetails(ending, event, end));
  else if (!task && event.state.toLowerCase() === 'uninstalled') await removeUninstalled(ctx, event);
  return true;
}

/**
 * A step of an operation under way (`downloading`, `installing`…) naming the op id of a task of
 * ours that has ended, and its operation with it: a late report (an app service sending it again
 * with a new createTime), which the row would take by its time and show the app back in that step,
 * with no task to move it on, until the app service reported again. Not applied; an end of that
 * operation still is (it corrects the row as before), and so is a step of one whose task timed
 * out, which the app service may still be running. Status correction's list is the app service's
 * present state, taken as it is.
 */
async function reportsEndedOperation(ctx: EngineContext, event: AppStateEvent): Promise<boolean> {
  if (!event.opId || progressOf(event.state, event.progress) === null) return false;
  const ended = await ctx.db.task.findFirst({
    where: {
      userId: event.userId,
      sourceId: event.sourceId,
      appName: event.appName,
      opId: event.opId,
      status: { in: [...TERMINAL_STATUSES] },
    },
    select: { taskId: true, status: true, error: true },
  });
  if (!ended || endedByTimeout(ended)) return false;
  ctx.logger.info(
    { app: event.appName, userId: event.userId, opId: event.opId, state: event.state, taskId: ended.taskId },
    `ignored a late state event: the task of its operation has ended (${ended.status})`,
  );
  return true;
}

/**
 * A report naming an operation, for a task not yet accepted when the report was judged: the
 * acceptance may have been written since, before the report reached the app's row (the acceptance
 * then found the row following the old operation, see dispatch.ts, and no one would end the task).
 * The task as it is now, if the report is its own after all.
 */
async function acceptedMeanwhile(ctx: EngineContext, task: TaskRow, event: AppStateEvent): Promise<TaskRow | null> {
  if (!event.opId || task.opId || acceptedResult(task)) return null;
  const now = await ctx.db.task.findUnique({ where: { taskId: task.taskId } });
  return now && concerns(now, event) ? now : null;
}

/**
 * The app service says an app with no task of ours is gone (an uninstall that ended after its
 * task timed out, one made outside the market): its row goes, as a completed uninstall's does,
 * with a `system` record. Kept, it showed the app as installed, so installApp refused it.
 */
async function removeUninstalled(ctx: EngineContext, event: AppStateEvent): Promise<void> {
  const key = { userId: event.userId, sourceId: event.sourceId, appName: event.appName };
  const message = uninstalledMessage(event.appName);
  // At the app service's time of the uninstall: what a late report's time is compared with (app-removals.ts).
  const time = event.createTime;
  const entry = { type: 'system' as const, message, app: event.appName, userId: event.userId, time };
  const records = await ctx.db.$transaction(async (tx) => {
    // Unless a newer report, or an operation of ours, came meanwhile.
    const { count } = await tx.appState.deleteMany({
      where: { ...key, state: event.state, eventTime: event.createTime },
    });
    return count === 0 ? null : await ctx.history.record([{ ...entry, extended: { sourceId: event.sourceId } }], tx);
  });
  if (!records) return;
  ctx.feed.app(event);
  ctx.feed.history(records);
}

/** Writes the event into the app's state row unless the row already has a newer one (listed: see applyReport). */
export async function applyToStateRow(ctx: EngineContext, event: AppStateEvent, asRead?: RowAsRead): Promise<boolean> {
  const count = await updateStateRow(ctx.sql, event, ctx.clock.date(), asRead);
  return count > 0 || createUnlessRead(ctx, event, asRead);
}

/** The update of the app's row (listed: of the row as read only, and none where none was read). */
function updateStateRow(db: SqlRunner, event: AppStateEvent, now: Date, asRead?: RowAsRead): Promise<number> {
  if (asRead === null) return Promise.resolve(0);
  return applyReportedState(db, reportedState(event), now, asRead ?? undefined);
}

/** A new row when no row took the event: a report's, or a listed state's where no row was read. */
function createUnlessRead(ctx: EngineContext, event: AppStateEvent, asRead?: RowAsRead): Promise<boolean> {
  if (asRead) return Promise.resolve(false); // the row read changed or went since: judged again
  return createStateRow(ctx, event, asRead === null);
}

/**
 * An app we had no row for (installed outside the market, or reconciled): create it, unless the
 * event is older than the removal of the app's row (app-removals.ts): a late or repeated event of
 * before it would otherwise bring the app back. One status correction creates (`listed`) holds the
 * listed chart (listedChart).
 */
async function createStateRow({ db }: EngineContext, event: AppStateEvent, listed = false): Promise<boolean> {
  const key = { userId: event.userId, sourceId: event.sourceId, appName: event.appName };
  if (await db.appState.findFirst({ where: key })) return false; // we hold a newer state
  if (event.state.toLowerCase() === 'uninstalled') return false; // nothing to remove
  if (await removedSince(db, key, event.createTime)) return false;
  try {
    const { entrances, ...state } = reportedState(event);
    const chart = listed ? listedChart(event) : {};
    await db.appState.create({
      data: { ...state, ...chart, ...(entrances ? { entrances: [...entrances] as object[] } : {}) },
    });
    return true;
  } catch (error) {
    if (isUniqueViolation(error)) return false; // created concurrently by a newer event
    throw error;
  }
}
