import type { Db } from '../db/client.js';
import { clipUnits } from '../domain/text-length.js';
import type { ChangeFeed } from '../events/change-feed.js';
import { redactSecrets } from '../platform/redact.js';
import type { HistoryService } from './history-service.js';

/** A payment push the outbox worker finished with: delivered, or given up on (DEAD). */
export interface PaymentDelivery {
  /** The PaymentNotification the outbox message delivered. */
  notificationId: number;
  topic: string;
  status: 'DELIVERED' | 'DEAD';
  attempts: number;
  lastError?: string | null;
}

/** Enough of a delivery error to act on in a history line. */
const MAX_ERROR_LENGTH = 200;

const RECEIVER = { larepass: 'wallet', frontend: 'frontend' } as const;

/**
 * Records the end of a payment push's delivery as a PAYMENT history record of the buyer, beside
 * the payment's milestones ("payment of comfyui: sign request delivered to the wallet"), and
 * announces it and the payment. A push whose notification no longer exists records nothing. The error is the
 * worker's (an HTTP status, a timeout, a receiver's answer); it is cut short and has the
 * payment's secrets and secret-shaped text redacted, as any upstream text is before it is stored.
 */
export async function recordPaymentDelivery(
  deps: {
    db: Pick<Db, 'paymentNotification' | 'payment' | 'historyRecord'>;
    history: HistoryService;
    feed: ChangeFeed;
  },
  delivery: PaymentDelivery,
): Promise<void> {
  const notification = await deps.db.paymentNotification.findUnique({ where: { id: delivery.notificationId } });
  if (!notification) return;
  const payment = await deps.db.payment.findUnique({ where: { id: notification.paymentId } });
  if (!payment) return;
  const receiver = RECEIVER[notification.channel as keyof typeof RECEIVER] ?? notification.channel;
  const what = pushName(notification.topic, notification.status);
  // A receiver may quote the body back, and the credential push's body carries the credential.
  const error = delivery.lastError
    ? clipUnits(redactSecrets(delivery.lastError, [payment.vc, payment.jws]), MAX_ERROR_LENGTH)
    : null;
  const message =
    delivery.status === 'DELIVERED'
      ? `payment of ${payment.appName}: ${what} delivered to the ${receiver}`
      : `payment of ${payment.appName}: ${what} not delivered to the ${receiver} after ${delivery.attempts} attempts${error ? ` (${error})` : ''}`;
  const records = await deps.history.record([
    {
      type: 'PAYMENT',
      message,
      app: payment.appName,
      userId: payment.userId,
      time: new Date(),
      extended: {
        paymentId: payment.id,
        productId: payment.productId,
        notificationId: notification.id,
        topic: delivery.topic,
        delivery: delivery.status,
        attempts: delivery.attempts,
        ...(error ? { lastError: error } : {}),
      },
    },
  ]);
  deps.feed.history(records);
  // The payment too: its pushes' delivery (`notifications { delivery }`) moved, which is news to a
  // `paymentUpdated` subscriber waiting for a push to arrive or to be given up on.
  deps.feed.payment({
    paymentId: payment.id,
    userId: payment.userId,
    sourceId: payment.sourceId,
    appId: payment.appId,
  });
}

function pushName(topic: string, status: string | null): string {
  switch (topic) {
    case 'market_payment':
      return 'sign request';
    case 'fetch_payment_signature':
      return 'signature query';
    case 'save_payment_vc':
      return 'credential';
    default:
      return `status update "${status ?? topic}"`;
  }
}
