/** What the app service's state reports mean for a task: pure rules, no database. */

import type { AppStateEvent } from '../adapters/app-service/port.js';
import type { ReportedState } from '../db/hot-path-sql.js';
import type { Prisma, TaskRow } from '../db/models.js';
import { isAcceptance } from '../domain/task-result.js';
import type { TerminalStatus } from '../domain/tasks.js';
import type { EndDetails } from './engine-context.js';

/** Progress (0–100) a task has reached when the app service reports a state. */
export function progressOf(state: string, progressText: string | null | undefined): number | null {
  const s = state.toLowerCase();
  if (s === 'pending') return 5;
  if (s === 'downloading') {
    const percent = Math.min(100, Math.max(0, Number(progressText) || 0));
    return Math.round(10 + percent / 2); // 10..60
  }
  if (s === 'stopping' || s === 'resuming') return 50;
  if (s === 'installing' || s === 'upgrading' || s === 'uninstalling') return 70;
  if (s === 'initializing') return 85;
  return null;
}

const TIMED_OUT = 'timed out: ';

/** Why a task its timeout failed (dispatch.ts) failed. */
export function timedOutError(timeoutMs: number): string {
  return `${TIMED_OUT}the app service did not finish within ${timeoutMs} ms (TASK_TIMEOUT_MS)`;
}

/** Whether a task ended by its timeout: unlike any other end, its operation may still go on at the app service. */
export function endedByTimeout(task: { status: string; error: string | null }): boolean {
  return task.status === 'FAILED' && (task.error?.startsWith(TIMED_OUT) ?? false);
}

/** What a reported state means for the task of the matching type, if it ends it. */
export function outcomeOf(taskType: string, state: string): TerminalStatus | null {
  const s = state.toLowerCase();
  if (s.includes('failed')) return 'FAILED';
  if (s.endsWith('canceled') || s.endsWith('cancelled')) return 'CANCELED';
  if (taskType === 'UNINSTALL') return s === 'uninstalled' ? 'COMPLETED' : null;
  if (taskType === 'STOP') return s === 'stopped' ? 'COMPLETED' : null;
  return s === 'running' ? 'COMPLETED' : null;
}

/**
 * Whether a report is about this running task. The op ids decide when both are known, whatever the
 * clocks say (an app service whose clock ran 3 s behind had every task's own reports ignored
 * until TASK_TIMEOUT_MS failed it). A report naming an operation while the app service has not yet
 * accepted the task is not its: a routine report carrying the app's previous op id completed an
 * upgrade it had not even accepted. (This task's own report outrunning the acceptance ends it at
 * the acceptance: dispatch.ts.) Otherwise, a report from before the task started is not about it.
 */
export function concerns(task: TaskRow, event: AppStateEvent): boolean {
  if (task.status !== 'RUNNING') return false;
  if (event.opId && task.opId) return event.opId === task.opId;
  if (event.opId && !acceptedResult(task)) return false;
  if (event.opId && answeredWithoutOpId(task) && event.opType) {
    return event.opType.toLowerCase() === task.type.toLowerCase();
  }
  return !(task.startedAt && event.createTime < task.startedAt);
}

/**
 * A stop or resume: the app service accepts them without an op id, and its reports of them carry
 * one, so neither op ids nor (with its clock behind) times told this task's reports from older
 * ones: each was ignored and the app stayed STOPPING until status correction ended the task. A
 * report of the same operation is taken as this one's; an older one's report (a late duplicate of
 * the previous stop) is older than what the app's row holds, which refuses it, and only a report
 * the row takes ends a task (app-state-reports.ts). A report naming another operation type is
 * never this task's, however recent: a `stopped` of an upgrade completed a stop and gave it the
 * upgrade's op id.
 */
function answeredWithoutOpId(task: TaskRow): boolean {
  return !task.opId && (task.type === 'STOP' || task.type === 'RESUME');
}

/**
 * What an ending report says about the task: the app service's reason for a failure or cancel, and
 * the task's result as it ends. The result the task got when the app service accepted it (kept on
 * the task in memory, see dispatch.ts) goes along with its op id, so an end that overtakes the write
 * of that result still leaves both on the task, the result saying how the operation ended.
 */
export function endDetails(task: TaskRow, event: AppStateEvent, outcome: TerminalStatus): EndDetails {
  const reason = [event.reason, event.message]
    .filter(Boolean)
    .filter((v, i, all) => all.indexOf(v) === i)
    .join(': ');
  let error: string | undefined;
  if (outcome === 'FAILED') {
    error = `${task.type.toLowerCase()} of ${task.appName} failed on the app service (${event.state})${reason ? `: ${reason}` : ''}`;
  } else if (outcome === 'CANCELED' && reason) {
    error = reason;
  }
  const accepted = acceptedResult(task);
  const result = accepted && endedResult(accepted, outcome, error);
  const opId = task.opId ?? event.opId;
  return { ...(error ? { error } : {}), ...(result ? { result } : {}), ...(opId ? { opId } : {}), reported: true };
}

/** The result written when the app service accepted an operation, saying how the task then ended. */
export function endedResult(
  accepted: Prisma.InputJsonObject,
  outcome: TerminalStatus,
  error: string | null | undefined,
): Prisma.InputJsonObject {
  return {
    ...accepted,
    ...(outcome === 'COMPLETED' ? {} : { status: outcome === 'FAILED' ? 'failed' : 'canceled' }),
    ...(error ? { error } : {}),
  };
}

/** The result written when the app service accepted the task's operation, if the task holds it. */
export function acceptedResult(task: TaskRow): Prisma.InputJsonObject | null {
  return isAcceptance(task.result) ? (task.result as Prisma.InputJsonObject) : null;
}

/**
 * What the app service's list says of an app's installed chart (version, title, configuration
 * type): a row status correction creates holds it, and a row without the installed version, or on
 * another one, takes it (status-correction.ts), so that the app can be stopped, upgraded and
 * uninstalled through the API at the version the app service runs.
 */
export function listedChart(event: AppStateEvent): { installedVersion?: string; title?: string; cfgType?: string } {
  return {
    ...(event.listedVersion ? { installedVersion: event.listedVersion } : {}),
    ...(event.listedTitle ? { title: event.listedTitle } : {}),
    ...(event.listedCfgType ? { cfgType: event.listedCfgType } : {}),
  };
}

/** An event as the app's state row stores it. */
export function reportedState(event: AppStateEvent): ReportedState {
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
    entrances: event.entrances ?? null,
  };
}
