import type { CatalogApp, Task } from '../generated/prisma-sqlite/client.js';

// Row types of the data model, shared by both providers' clients (see Db in client.ts).
export type {
  AppState as AppRow,
  CatalogApp as CatalogAppRow,
  HistoryRecord as HistoryRow,
  MarketSource as MarketSourceRow,
  OutboxMessage as OutboxMessageRow,
  Payment as PaymentRow,
  PaymentNotification as PaymentNotificationRow,
  Prisma,
  Task as TaskRow,
  Webhook as WebhookRow,
} from '../generated/prisma-sqlite/client.js';

/**
 * The columns of a task that the API shows (GraphQL `Task`), all a `tasks` page reads: not the
 * engine's own (metadata, lease, idempotency and active keys, dispatch time). Measured on SQLite,
 * a page of 21 tasks read in 67–71 µs with these against 108–117 µs with every column.
 */
export const TASK_VIEW_COLUMNS = [
  'id',
  'taskId',
  'type',
  'status',
  'progress',
  'userId',
  'sourceId',
  'appName',
  'version',
  'opId',
  'error',
  'message',
  'result',
  'createdAt',
  'startedAt',
  'completedAt',
  'retryOfTaskId',
] as const satisfies readonly (keyof Task)[];

/** A task as the API shows it: what the schema's `Task` may read (a full row is one too). */
export type TaskView = Pick<Task, (typeof TASK_VIEW_COLUMNS)[number]>;

/**
 * The columns of a task the runtime state holds (runtime/state-store.ts): the API's, and `updatedAt`
 * (market_runtime_event_lag_seconds measures from it). Not `metadata`: it holds the envs a user
 * sent (100 of up to 4,096 characters, ~410 KB a task), and with a copy in each event the store's
 * replay buffer kept, a few users' installs filled the heap (1.1 GB after GC).
 */
export const RUNTIME_TASK_COLUMNS = [...TASK_VIEW_COLUMNS, 'updatedAt'] as const satisfies readonly (keyof Task)[];

type RuntimeTaskColumn = (typeof RUNTIME_TASK_COLUMNS)[number];

/** A task as the runtime state holds it (RUNTIME_TASK_COLUMNS). Unlike TaskView, a full row is not one: tsc refuses it. */
export type RuntimeTaskRow = Pick<Task, RuntimeTaskColumn> & {
  readonly [Column in Exclude<keyof Task, RuntimeTaskColumn>]?: never;
};

/** The runtime's columns of a task (an instance of another version may send them all, see runtime-change.ts). */
export function runtimeTaskOf(task: Pick<Task, RuntimeTaskColumn>): RuntimeTaskRow {
  const held: Partial<Record<RuntimeTaskColumn, unknown>> = {};
  for (const column of RUNTIME_TASK_COLUMNS) held[column] = task[column];
  return held as RuntimeTaskRow;
}

/**
 * The columns of a catalogue page (GraphQL `CatalogApp`), but its entry, which pages take from
 * CatalogEntries: not the search text, the summary's fingerprint or the row's own times. Measured
 * on SQLite, 21 rows of the bundled catalogue read in 47–50 µs with these against 71–73 µs with
 * every column but the entry.
 */
export const CATALOG_VIEW_COLUMNS = [
  'id',
  'sourceId',
  'appId',
  'name',
  'version',
  'versions',
  'cfgType',
  'title',
  'description',
  'paid',
  'price',
  'entryRevision',
] as const satisfies readonly (keyof CatalogApp)[];

/** A catalogue row as a page reads it (CATALOG_VIEW_COLUMNS). */
export type CatalogListRow = Pick<CatalogApp, (typeof CATALOG_VIEW_COLUMNS)[number]>;

/** A catalogue app as the API shows it: a page's row with its entry (a full row is one too). */
export type CatalogView = CatalogListRow & Pick<CatalogApp, 'entry'>;

/** Writes SQL NULL into a Json column (plain `null` is not allowed there, `undefined` means "unchanged"). */
export { DbNull } from '../generated/prisma-sqlite/internal/prismaNamespace.js';
