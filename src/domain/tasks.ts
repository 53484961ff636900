import { randomBytes } from 'node:crypto';

/** What a task does, and where it is in its life. */

export const TASK_TYPES = ['INSTALL', 'UNINSTALL', 'UPGRADE', 'CLONE', 'CANCEL', 'STOP', 'RESUME'] as const;
export type TaskType = (typeof TASK_TYPES)[number];
export const TASK_STATUSES = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELED'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** The statuses a task ends in; once in one, it never changes again. */
export const TERMINAL_STATUSES = ['COMPLETED', 'FAILED', 'CANCELED'] as const satisfies readonly TaskStatus[];
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

/**
 * Which status a task may move to from each one. The engine's conditional SQL writes enforce these
 * moves (src/db/hot-path-sql.ts, src/engine/task-end.ts); this table states them in one place.
 * - PENDING → RUNNING: a worker claims it.
 * - PENDING → CANCELED: its owner cancels it before a worker took it.
 * - PENDING → FAILED: rare; an end retried after a database fault lands on a task that another
 *   instance had meanwhile put back in the queue (ending accepts a task pending or running).
 * - RUNNING → COMPLETED / FAILED / CANCELED: the app service reports the end, refuses the
 *   operation, does not finish in time, or confirms a cancel; a task whose worker died after
 *   sending it fails.
 * - RUNNING → PENDING: the task goes back to the queue because it was never sent to the app
 *   service (its worker died, or the database failed, before it was sent), so it may run again.
 * - Terminal statuses are final: a retry is a new task.
 */
export const TASK_TRANSITIONS: { readonly [From in TaskStatus]: readonly TaskStatus[] } = {
  PENDING: ['RUNNING', 'CANCELED', 'FAILED'],
  RUNNING: ['COMPLETED', 'FAILED', 'CANCELED', 'PENDING'],
  COMPLETED: [],
  FAILED: [],
  CANCELED: [],
};

/** Whether a task in status `from` may move to `to`. */
export function canTaskMoveTo(from: TaskStatus, to: TaskStatus): boolean {
  return TASK_TRANSITIONS[from].includes(to);
}

/** A status no task leaves (a row's status column is a string, hence the check that it is one). */
export function isTerminal(status: string): status is TerminalStatus {
  return isTaskStatus(status) && TASK_TRANSITIONS[status].length === 0;
}

function isTaskStatus(value: string): value is TaskStatus {
  return (TASK_STATUSES as readonly string[]).includes(value);
}

function isTaskType(value: string): value is TaskType {
  return (TASK_TYPES as readonly string[]).includes(value);
}

/** A status column as the domain type; the database holds no other values. */
export function taskStatusOf(value: string): TaskStatus {
  if (!isTaskStatus(value)) throw new Error(`unknown task status ${value}`);
  return value;
}

/** A type column as the domain type; the database holds no other values. */
export function taskTypeOf(value: string): TaskType {
  if (!isTaskType(value)) throw new Error(`unknown task type ${value}`);
  return value;
}

/** Longest task id an argument may name: ids are 25 characters (newTaskId), anything much longer is not one. */
export const MAX_TASK_ID_LENGTH = 64;

/** `YYYYMMDDhhmmss-` + 10 random base-36 characters: sortable by eye, unguessable. */
export function newTaskId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const random = BigInt(`0x${randomBytes(8).toString('hex')}`)
    .toString(36)
    .padStart(10, '0')
    .slice(-10);
  return `${stamp}-${random}`;
}
