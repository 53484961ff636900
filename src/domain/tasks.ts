/** What a task does, and where it is in its life. */

export const TASK_TYPES = ['INSTALL', 'UNINSTALL', 'UPGRADE', 'CLONE', 'CANCEL'] as const;
export type TaskType = (typeof TASK_TYPES)[number];
export const TASK_STATUSES = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELED'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
