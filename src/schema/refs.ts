import type { AppRow, CatalogView, HistoryRow, MarketSourceRow, PaymentRow, TaskView } from '../db/models.js';
import { APP_STAGES, HEALTHS } from '../domain/app-stage.js';
import { PAYMENT_STATUSES } from '../domain/payment-status.js';
import { TASK_STATUSES, TASK_TYPES } from '../domain/tasks.js';
import { builder } from './builder.js';

// Type references shared across domain files (App ↔ Task refer to each other); each domain file
// implements its own. Enums live here because several domains' filters use them.

export const AppRef = builder.objectRef<AppRow>('App');
/** What the schema's Task reads: the columns a `tasks` page has (TaskView); a full row is one too. */
export const TaskRef = builder.objectRef<TaskView>('Task');
export const PaymentRef = builder.objectRef<PaymentRow>('Payment');
export const HistoryRecordRef = builder.objectRef<HistoryRow>('HistoryRecord');
export const MarketSourceRef = builder.objectRef<MarketSourceRow>('MarketSource');
/** What the schema's CatalogApp reads: a catalogue page's row with its entry (CatalogView); a full row is one too. */
export const CatalogAppRef = builder.objectRef<CatalogView>('CatalogApp');

function values<T extends string>(names: readonly T[], describe: Record<T, string>) {
  return Object.fromEntries(names.map((name) => [name, { description: describe[name] }])) as Record<
    T,
    { description: string }
  >;
}

export const AppStageEnum = builder.enumType('AppStage', {
  description: 'What an app is doing now, derived from its app-service state and active task.',
  values: values(APP_STAGES, {
    UNKNOWN: 'Not known yet.',
    FETCHING: 'Images or data are being downloaded.',
    HYDRATING: "The market is preparing the app's chart.",
    INSTALLING: 'Being installed (or cloned).',
    RUNNING: 'Installed and running.',
    UPGRADING: 'Being upgraded to another version.',
    UNINSTALLING: 'Being removed.',
    FAILED: 'The last operation failed or was canceled.',
    STOPPED: 'Installed but stopped.',
    STOPPING: 'Being stopped (stopApp).',
    RESUMING: 'Being started again after a stop (resumeApp).',
  }),
});

export const HealthEnum = builder.enumType('Health', {
  description: 'Health of an app or component.',
  values: values(HEALTHS, {
    HEALTHY: 'Working as expected.',
    UNHEALTHY: 'Failed or stopped.',
    UNKNOWN: 'In transition; not known yet.',
  }),
});

export const TaskTypeEnum = builder.enumType('TaskType', {
  description: 'Kind of operation a task performs.',
  values: values(TASK_TYPES, {
    INSTALL: 'Install an app from the catalogue.',
    UNINSTALL: 'Remove an installed app.',
    UPGRADE: 'Move an installed app to a newer version.',
    CLONE: 'Install a second instance of an installed app under a new name.',
    CANCEL: 'Cancel an operation in progress.',
    STOP: 'Stop (suspend) a running app; it keeps its data and can be resumed.',
    RESUME: 'Start a stopped app again.',
  }),
});

export const TaskStatusEnum = builder.enumType('TaskStatus', {
  description: 'Lifecycle status of a task.',
  values: values(TASK_STATUSES, {
    PENDING: 'Accepted and waiting for a worker.',
    RUNNING: 'The app service is working on it.',
    COMPLETED: 'Finished successfully on the app service.',
    FAILED: 'Failed; `error` says why.',
    CANCELED: 'Canceled before it finished.',
  }),
});

export const PaymentStatusEnum = builder.enumType('PaymentStatus', {
  description: 'Purchase status of a paid app as a frontend shows it.',
  values: values(PAYMENT_STATUSES, {
    FREE: 'The app is free.',
    NOT_BUY: 'Paid app, not bought.',
    NOT_EVALUATED: 'Not evaluated yet.',
    SYNCING: 'Checking for an existing purchase.',
    SIGNATURE_REQUIRED: 'The user must sign the purchase in LarePass.',
    SIGNATURE_NO_RECORD: 'The developer has no record of this purchase.',
    SIGNATURE_NEED_RESIGN: 'The signature must be made again.',
    PAYMENT_REQUIRED: 'Signed; the user must pay.',
    PAYMENT_RETRY_REQUIRED: 'The payment was not found; pay again.',
    NOTIFICATION_SENT: 'The payment request was sent to the user.',
    PAYMENT_FRONTEND_STARTED: 'The user is paying.',
    WAITING_DEVELOPER_CONFIRMATION: "Paid; waiting for the developer's credential.",
    PURCHASED: 'Bought; the credential is held.',
  }),
});
