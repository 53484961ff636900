import type { OutboxMessageRow } from '../db/models.js';
import { redactSecrets } from '../platform/redact.js';
import { builder } from './builder.js';
import { PaymentNotificationRef } from './payments.js';

export const DeliveryStatusEnum = builder.enumType('DeliveryStatus', {
  description: 'Where an outbound message (a webhook delivery or a payment push) stands.',
  values: {
    PENDING: {
      description: 'Not delivered yet: waiting for its first attempt or for the next retry (`nextAttemptAt`).',
    },
    DELIVERED: { description: 'The receiver answered 2xx.' },
    DEAD: { description: 'Every allowed attempt failed (OUTBOX_MAX_ATTEMPTS), or it can no longer be sent: given up.' },
  },
});

/** One outbound message of the outbox, as its sender sees it (never its body or its signature). */
export const DeliveryRef = builder.objectRef<OutboxMessageRow>('Delivery').implement({
  description:
    'One outbound message (a webhook delivery or a payment push) and its attempts: retried with exponential backoff until delivered or dead.',
  fields: (t) => ({
    id: t.id({ description: 'The message id (the outbox row).', resolve: (message) => String(message.id) }),
    topic: t.exposeString('topic', {
      description: 'What it reports (sent as `X-Event-Topic`), e.g. `task.finished` or `market_payment`.',
    }),
    idempotencyKey: t.exposeString('idempotencyKey', {
      description: 'Sent as `Idempotency-Key` with every attempt: the receiver tells retries apart by it.',
    }),
    status: t.field({
      type: DeliveryStatusEnum,
      description: 'Pending, delivered or dead.',
      resolve: (message) => message.status as 'PENDING' | 'DELIVERED' | 'DEAD',
    }),
    attempts: t.exposeInt('attempts', { description: 'Attempts made so far (one in flight included).' }),
    lastStatusCode: t.exposeInt('lastStatusCode', {
      nullable: true,
      description: "The receiver's HTTP status at the last attempt; null when it did not answer.",
    }),
    lastError: t.string({
      nullable: true,
      description:
        'Why the last attempt failed (at most 500 characters, with a short excerpt of the answer); null once delivered.',
      resolve: (message) => (message.lastError === null ? null : redactSecrets(message.lastError)),
    }),
    nextAttemptAt: t.field({
      type: 'DateTime',
      nullable: true,
      description:
        'When the next attempt is due; while an attempt is in flight, when the message is tried again should that attempt never report. Null once delivered or dead.',
      // In flight, the lock's end: on PostgreSQL a claim leaves nextAttemptAt as it was (claimDueMessages).
      resolve: ({ status, nextAttemptAt, lockedUntil }) =>
        status !== 'PENDING' ? null : lockedUntil && lockedUntil > nextAttemptAt ? lockedUntil : nextAttemptAt,
    }),
    deliveredAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the receiver accepted it.',
      resolve: (message) => message.deliveredAt,
    }),
    createdAt: t.field({ type: 'DateTime', description: 'When it was written.', resolve: (m) => m.createdAt }),
  }),
});

builder.objectField(PaymentNotificationRef, 'delivery', (t) =>
  t.field({
    type: DeliveryRef,
    nullable: true,
    description:
      'Its delivery to the configured push URL; null when it was not sent (no push URL configured), or when its record was removed after OUTBOX_RETENTION_DAYS (7 days by default; the push itself is kept HISTORY_RETENTION_DAYS).',
    resolve: (notification, _args, ctx) => ctx.loaders.notificationDelivery.load(notification.id),
  }),
);
