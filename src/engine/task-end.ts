import type { SqlRunner } from '../db/driver-sql.js';
import {
  deleteAppStateRow,
  endTask,
  findAppState,
  setAppStateFailure,
  setInstalledVersion,
  setTaskResult,
} from '../db/hot-path-sql.js';
import type { HistoryRow, TaskRow } from '../db/models.js';
import type { TerminalStatus } from '../domain/tasks.js';
import { clipUnits } from '../domain/text-length.js';
import type { HistoryEntry, HistoryService } from '../services/history-service.js';
import type { EndDetails, EngineContext } from './engine-context.js';

/** The original's SYSTEM_INSTALL_* types are about installs; other operations end as `system` records. */
const INSTALL_LIKE = new Set(['INSTALL', 'UPGRADE', 'CLONE']);
const HISTORY_ON_END: Record<TerminalStatus, (type: string) => HistoryEntry['type']> = {
  COMPLETED: (type) => (INSTALL_LIKE.has(type) ? 'SYSTEM_INSTALL_SUCCEED' : 'system'),
  FAILED: (type) => (INSTALL_LIKE.has(type) ? 'SYSTEM_INSTALL_FAILED' : 'system'),
  CANCELED: () => 'ACTION_CANCEL',
};

/** A history record about a task, with the task's columns as its extended data. */
export function historyEntry(task: TaskRow, type: HistoryEntry['type'], message: string): HistoryEntry {
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

/**
 * Ends a RUNNING task (once: a conditional update), and in the same transaction its app's row
 * and the history record. Completed installs record the installed version; a completed
 * uninstall removes the app's row. False when the task had already ended.
 */
export async function finishTask(
  ctx: EngineContext,
  taskId: string,
  status: TerminalStatus,
  details: EndDetails = {},
): Promise<boolean> {
  const now = ctx.clock.date();
  const ended = await ctx.sql.$transaction((tx) => writeEnd(ctx.history, tx, taskId, status, details, now));
  // Only once that committed: should it fail, the caller still answers for the task (see endOwnTask).
  ctx.tracked.forget(taskId);
  if (ended) {
    ctx.feed.task(ended.task);
    ctx.feed.app(ended.task);
    ctx.feed.history(ended.records);
    const { appName: app, userId, error } = ended.task;
    // Why it failed, as Task.error says it. The adapters redacted it before it was stored; as `err`
    // it goes through the logger's error serializer too, which cleans every error text it logs.
    ctx.logger.info({ taskId, status, app, userId, ...(error ? { err: error } : {}) }, 'task ended');
  }
  ctx.notify(); // a worker is free
  return ended !== null;
}

/**
 * ENDED ELSEWHERE: the one place where this instance stops supervising tasks of its own that
 * another instance ended (it received the task's final state report, or ran its cancel or status
 * correction): only the instance that writes an end forgets the task by itself (finishTask). Kept,
 * such a task was still the app's task here: the next task of the app had every state report
 * matched against it and ignored (RUNNING until TASK_TIMEOUT_MS failed it, an app service's cancel
 * never seen), and it held a worker (TASK_CONCURRENCY) until the heartbeat found it ended. What
 * finds them: the task's ended row announced through the cluster's change log
 * (TaskEngine.onTaskChanged), the claim or adoption of another task of the same app (the database
 * gives an app's active key to one task at a time), a report that is not the task's while the
 * app's active task is another (app-state-reports.ts), and at the latest the heartbeat (leases.ts).
 */
export function forgetEndedElsewhere(ctx: EngineContext, taskIds: Iterable<string>): void {
  let freed = false;
  for (const taskId of taskIds) {
    if (!ctx.tracked.has(taskId)) continue;
    ctx.tracked.forget(taskId);
    freed = true;
    ctx.logger.debug({ taskId }, 'stopped supervising a task that ended elsewhere');
  }
  if (freed) ctx.notify(); // a worker is free
}

/** Ends a task of this instance; if the database cannot take the end now, the task is owed it. */
export async function endOwnTask(
  ctx: EngineContext,
  task: TaskRow,
  status: TerminalStatus,
  details: EndDetails,
): Promise<void> {
  try {
    await finishTask(ctx, task.taskId, status, { opId: task.opId, ...details });
  } catch (error) {
    ctx.owe({ kind: 'end', task, status, details }, error);
  }
}

/** The end's writes, in one transaction: the task, its app's row, the history record. */
async function writeEnd(
  history: HistoryService,
  tx: SqlRunner,
  taskId: string,
  status: TerminalStatus,
  details: EndDetails,
  now: Date,
): Promise<{ task: TaskRow; records: HistoryRow[] } | null> {
  const task = await endTask(tx, taskId, {
    status,
    now,
    ...(status === 'COMPLETED' ? { progress: 100 } : {}),
    ...(details.error ? { error: clipUnits(details.error, 2000) } : {}),
    ...(details.result ? { result: details.result } : {}),
    ...(details.opId ? { opId: details.opId } : {}),
  });
  if (!task) return null;
  if (status !== 'COMPLETED' && !details.result) await markResultUnsuccessful(tx, task, status, now);
  await updateAppOnEnd(tx, task, status, now, details);
  const records = await history.recordOne(
    historyEntry(
      task,
      HISTORY_ON_END[status](task.type),
      `${task.type.toLowerCase()} ${task.appName} ${status === 'COMPLETED' ? 'completed' : status.toLowerCase()}`,
    ),
    tx,
  );
  return { task, records };
}

/**
 * The result written when the app service accepted the operation says `success`; an operation that
 * then failed or was canceled on the app service says so instead, with the reason. Only on those
 * rarer ends: a completion keeps the result as written, without another statement.
 */
async function markResultUnsuccessful(tx: SqlRunner, task: TaskRow, status: TerminalStatus, now: Date) {
  const result = task.result;
  if (typeof result !== 'object' || result === null || Array.isArray(result) || result.status !== 'success') return;
  const updated = {
    ...result,
    status: status === 'CANCELED' ? 'canceled' : 'failed',
    ...(task.error ? { error: task.error } : {}),
  };
  await setTaskResult(tx, task.taskId, updated, now);
  task.result = updated;
}

async function updateAppOnEnd(
  tx: SqlRunner,
  task: TaskRow,
  status: TerminalStatus,
  now: Date,
  { error, reported: byReport }: EndDetails,
) {
  const key = { userId: task.userId, sourceId: task.sourceId, appName: task.appName };
  if (status === 'COMPLETED' && task.type !== 'UNINSTALL') {
    // The common end, without reading the row first.
    if (task.version) await setInstalledVersion(tx, key, task.version, now);
    return;
  }
  const row = await findAppState(tx, key);
  if (!row) return;
  if (status === 'COMPLETED') {
    await deleteAppStateRow(tx, row.id); // a completed uninstall
    return;
  }
  const neverInstalled = !row.installedVersion;
  if (status === 'CANCELED' && neverInstalled && task.type !== 'UNINSTALL') {
    await deleteAppStateRow(tx, row.id); // a canceled first install leaves nothing behind
    return;
  }
  if (status === 'FAILED') {
    // Unless the app service reported the failure, it never saw the operation fail (it refused it,
    // or timed out). A stop or resume that failed so changed nothing on the app: it keeps its state
    // (a running app is still running, and can be stopped again). Other operations show the
    // failure, at the time of the app service's last report: status correction's next run puts back
    // the state the app service still lists at that time, keeping the reason (heldOwnFailure in
    // correction-rules.ts). The reason is this task's either way: one written by an earlier failure
    // stayed, through every later one.
    const reason = clipUnits(error ?? 'failed', 200);
    const reported = row.state.toLowerCase().includes('failed');
    // The app service's own report of this operation's failure keeps its reason, in full. Not a
    // failure the row held from before (a retry that then timed out kept the first failure's
    // reason: the row names the new op id from the acceptance on, so the op ids could not tell).
    if (reported && byReport) return;
    const keepsState = reported || ((task.type === 'STOP' || task.type === 'RESUME') && !underway(task, row.state));
    await setAppStateFailure(
      tx,
      row.id,
      { state: keepsState ? null : `${task.type.toLowerCase()}Failed`, reason },
      now,
    );
  }
}

/**
 * Whether the app's state says its stop or resume had begun (`stopping`, `resuming`): a task that
 * then fails unreported (lost with its instance, timed out) leaves the app in neither its old state
 * nor its new one, and nothing would ever report it further. Kept, the app showed RESUMING with no
 * task for good; it shows the failure instead (`resumeFailed`), from which it can be resumed again.
 */
function underway(task: TaskRow, state: string): boolean {
  return state.toLowerCase() === (task.type === 'STOP' ? 'stopping' : 'resuming');
}
