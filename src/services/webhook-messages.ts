import type { AppRow, PaymentRow, TaskRow, WebhookRow } from '../db/models.js';
import type { LastMessage } from '../db/outbox-sql.js';
import { type AppKey, appKeyString } from '../domain/app-key.js';
import type { AppChanged, PaymentChanged, TaskChanged } from '../events/change-feed.js';
import { redactSecretsIn } from '../platform/redact.js';
import type { OutboundMessage } from './outbox-messages.js';
import { type WebhookEvent, webhookEvents } from './webhook-service.js';

/**
 * What the webhook dispatcher (webhook-dispatcher.ts) writes: the changes it takes, the messages
 * it makes of them and which webhooks a change concerns. Pure: nothing here reads or writes.
 */

/** A committed change, as the bus announces it; a task's row may come along (the catch-up read it). */
export type Change =
  | { kind: 'task'; event: TaskChanged; row?: TaskRow }
  | { kind: 'app'; event: AppChanged }
  | { kind: 'payment'; event: PaymentChanged };

/** A change the catch-up found in the database (webhook-catch-up.ts), with when it was made. */
export type FoundChange = Change & { at: Date };

const TOPIC_OF: Record<WebhookEvent, string> = {
  TASK_FINISHED: 'task.finished',
  APP_STATE_CHANGED: 'app.state_changed',
  PAYMENT_STATUS_CHANGED: 'payment.status_changed',
};

const EVENT_OF = { task: 'TASK_FINISHED', app: 'APP_STATE_CHANGED', payment: 'PAYMENT_STATUS_CHANGED' } as const;

/**
 * Where a message stands among its subject's: `at`, when its change was made (the row's last
 * write, a task's end), sent as `occurredAt`; `sequence`, what a receiver orders a subject's
 * messages by (see `nextSequence`).
 */
export interface Order {
  at: Date;
  sequence: number;
}

/** A webhook's last message about a subject: the value it announced and its `sequence`. */
export interface Announced {
  value: string;
  sequence: number;
}

/**
 * The `sequence` of a webhook's next message about a subject: its change's time in milliseconds,
 * raised to one more than the previous message's when not above it. Strictly increasing per
 * webhook and subject, where the time alone is not: a task's end moves an app's stage with no
 * write of its row (stopped/STOPPING, then stopped/STOPPED, at one time), and two writes can share
 * a millisecond.
 */
export function nextSequence(at: Date, previous: Announced | undefined): number {
  return previous === undefined ? at.getTime() : Math.max(at.getTime(), previous.sequence + 1);
}

/**
 * What a stored message announced (found by lastKeysOfSubjects): its value from its key
 * (`<prefix><value>:<time>`), its `sequence` from its body; one written before `sequence` existed
 * counts its change's time (the key's last part).
 */
export function announcedIn(stored: LastMessage, prefix: string): Announced {
  const [value = '', time] = stored.idempotencyKey.slice(prefix.length).split(':');
  let sequence: unknown;
  try {
    sequence = (JSON.parse(stored.body) as { sequence?: unknown }).sequence;
  } catch {
    sequence = undefined;
  }
  return { value, sequence: typeof sequence === 'number' ? sequence : Number(time) || 0 };
}

/** The message to `webhook` about `change` (its part of the idempotency key), with `resource` in its body. */
export function webhookMessage(
  webhook: WebhookRow,
  event: WebhookEvent,
  change: string,
  resource: object,
  { at, sequence }: Order,
): OutboundMessage {
  return {
    kind: 'webhook',
    topic: TOPIC_OF[event],
    url: webhook.url,
    webhookId: webhook.webhookId,
    idempotencyKey: `webhook:${webhook.webhookId}:${change}`,
    body: { event, webhookId: webhook.webhookId, occurredAt: at.toISOString(), sequence, ...resource },
  };
}

/** A finished task's TASK_FINISHED messages to the webhooks whose filters it matches. */
export function taskFinishedMessages(task: TaskRow, webhooks: readonly WebhookRow[]): OutboundMessage[] {
  const resource = {
    task: {
      id: task.taskId,
      type: task.type,
      status: task.status,
      app: { userId: task.userId, sourceId: task.sourceId, appName: task.appName },
      user: task.userId,
      version: task.version,
      error: task.error,
      result: redactSecretsIn(task.result),
      completedAt: task.completedAt?.toISOString() ?? null,
    },
  };
  // A task is announced once, at its end: its sequence is that time.
  const at = task.completedAt ?? task.updatedAt;
  const order = { at, sequence: at.getTime() };
  const change = `task:${task.taskId}:${task.status}`;
  return webhooks
    .filter((webhook) => filtersMatch(webhook, task))
    .map((webhook) => webhookMessage(webhook, 'TASK_FINISHED', change, resource, order));
}

/** A payment's resource in a PAYMENT_STATUS_CHANGED body, with its visible `status`. */
export function paymentResource(payment: PaymentRow, status: string): object {
  return {
    payment: {
      id: payment.id,
      status,
      productId: payment.productId,
      app: { userId: payment.userId, sourceId: payment.sourceId, appId: payment.appId, appName: payment.appName },
    },
  };
}

/** Whether the webhook wants this kind of event and its filters do not rule the change out (payments: appName is checked on the row). */
export function couldMatch(webhook: WebhookRow, change: Change): boolean {
  if (!webhookEvents(webhook).includes(EVENT_OF[change.kind])) return false;
  const { event } = change;
  if (webhook.userId !== null && webhook.userId !== event.userId) return false;
  if (webhook.sourceId !== null && webhook.sourceId !== event.sourceId) return false;
  return change.kind === 'payment' || webhook.appName === null || webhook.appName === change.event.appName;
}

export function filtersMatch(webhook: WebhookRow, row: AppKey): boolean {
  return (
    (webhook.userId === null || webhook.userId === row.userId) &&
    (webhook.sourceId === null || webhook.sourceId === row.sourceId) &&
    (webhook.appName === null || webhook.appName === row.appName)
  );
}

export function keyOf({ userId, sourceId, appName }: AppKey): AppKey {
  return { userId, sourceId, appName };
}

/** What an app's or a payment's messages announce a value of (OutboundMessage's `subject`); a task's id. */
export function subjectOf(change: Change): string {
  if (change.kind === 'task') return `task:${change.event.taskId}`;
  return change.kind === 'app' ? `app:${appKeyString(change.event)}` : `payment:${change.event.paymentId}`;
}

/** A change as the log names it: ids only (what the bus carries), never a webhook's URL or secret. */
export function changeForLog(change: Change & { at?: Date }): { kind: string; subject: string; at?: string } {
  const named = { kind: change.kind, subject: subjectOf(change) };
  return change.at ? { ...named, at: change.at.toISOString() } : named;
}

/** A page the catch-up handed over: settled with the messages it wrote once all are in the outbox. */
export interface FoundPage {
  changes: readonly FoundChange[];
  resolve: (written: number) => void;
  reject: (error: unknown) => void;
}

/** A change with the webhooks it may concern (and `at`, for one the catch-up found). */
export interface Wanted {
  change: Change;
  webhooks: WebhookRow[];
}

/** What a batch's changes need of the database, read together (by task id, app key, payment id). */
export interface BatchRows {
  tasks: Map<string, TaskRow>;
  apps: Map<string, AppRow>;
  activeTasks: Map<string, { type: string; status: string }>;
  payments: Map<number, PaymentRow>;
  /** The newest message of each (webhook, subject) to look up (its key and body): see `changedOnly`. */
  lastKeys: Map<string, LastMessage>;
}
