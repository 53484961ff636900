import type { Db } from '../db/client.js';
import type { Prisma } from '../db/models.js';
import { insertOutboxMessages, type OUTBOUND_KINDS } from '../db/outbox-sql.js';

/**
 * Writing a message for a receiver outside the server: a row of the outbox, in the caller's
 * transaction when it has one, so the message exists exactly when the change it reports
 * committed. The outbox worker (outbox-worker.ts) delivers it; nothing here talks to the network.
 */

/** What a message is; the worker claims them in this list's order. */
export type OutboundKind = (typeof OUTBOUND_KINDS)[number];

export interface OutboundMessage {
  kind: OutboundKind;
  /** What it reports, e.g. `market_payment` or `task.finished`; sent as the X-Event-Topic header. */
  topic: string;
  /** Where it goes, when that is fixed for good (a webhook's URL never changes). */
  url?: string;
  /**
   * Or the receiver it goes to, whose URL is read from the configuration at each attempt (see
   * PushDestinations): a payment push, whose URL an operator may change (a token in it, say).
   */
  destination?: PushDestination;
  /** The JSON document sent: serialised once here, so every attempt sends (and signs) the same bytes. */
  body: unknown;
  /** Stable for one message through every attempt; a second message with the same key is not written. */
  idempotencyKey: string;
  /** The PaymentNotification this message delivers (kind payment). */
  notificationId?: number;
  /** The webhook it goes to (kind webhook). */
  webhookId?: string;
  /** What a webhook message announces a value of (see lastKeysOfSubjects). */
  subject?: string;
}

/** The receivers of payment pushes: the buyer's signing wallet (LarePass) and Market frontend. */
export type PushDestination = 'wallet' | 'frontend';

/**
 * The URL of each push receiver as this process is configured (PAYMENT_WALLET_PUSH_URL,
 * PAYMENT_FRONTEND_PUSH_URL); null: not set.
 */
export type PushDestinations = { readonly [Destination in PushDestination]: string | null };

/** A database client or the transaction client of `$transaction(async (tx) => …)`. */
export type DbWriter = Db | Prisma.TransactionClient;

/**
 * Writes the messages, due now. A message whose idempotency key is already in the outbox is
 * skipped (the first one stands; `INSERT … ON CONFLICT DO NOTHING`, so two instances racing on a
 * key both succeed), so a change announced twice — by two instances, or again after a restart —
 * is delivered once. Returns how many were written.
 */
export async function enqueueOutbound(db: DbWriter, messages: OutboundMessage[], now = new Date()): Promise<number> {
  if (messages.length === 0) return 0;
  const count = await insertOutboxMessages(
    db,
    messages.map((message) => ({
      kind: message.kind,
      topic: message.topic,
      url: message.url ?? null,
      destination: message.destination ?? null,
      body: JSON.stringify(message.body),
      idempotencyKey: message.idempotencyKey,
      notificationId: message.notificationId ?? null,
      webhookId: message.webhookId ?? null,
      subject: message.subject ?? null,
    })),
    now,
  );
  if (count > 0) notifyOutbound();
  return count;
}

const enqueueListeners = new Set<() => void>();

/**
 * Tells this process's outbox worker that messages are waiting, so it delivers them now instead of
 * at its next poll (OUTBOX_POLL_INTERVAL_MS). `enqueueOutbound` calls it itself; a caller that
 * enqueued inside a transaction calls it again after the commit, since a worker woken before the
 * commit does not see the rows yet.
 */
export function notifyOutbound(): void {
  for (const listener of enqueueListeners) listener();
}

/** Calls `listener` on every notifyOutbound(); returns the function that stops that. */
export function onOutboundEnqueued(listener: () => void): () => void {
  enqueueListeners.add(listener);
  return () => enqueueListeners.delete(listener);
}

const removalListeners = new Set<(webhookId: string) => void>();

/**
 * Tells this process's outbox worker that a webhook was removed (its messages deleted): the ones
 * it claimed ahead and holds in memory are dropped, not sent later with the removed secret.
 */
export function notifyWebhookRemoved(webhookId: string): void {
  for (const listener of removalListeners) listener(webhookId);
}

/** Calls `listener` on every notifyWebhookRemoved(); returns the function that stops that. */
export function onWebhookRemoved(listener: (webhookId: string) => void): () => void {
  removalListeners.add(listener);
  return () => removalListeners.delete(listener);
}
