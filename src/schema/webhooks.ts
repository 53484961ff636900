import { createContextCache } from '@pothos/core';
import DataLoader from 'dataloader';
import { MAX_USER_ID_LENGTH } from '../auth/user-id.js';
import type { OutboxMessageRow, WebhookRow } from '../db/models.js';
import { MAX_APP_NAME_LENGTH, MAX_SOURCE_ID_LENGTH } from '../domain/app-key.js';
import {
  DEFAULT_RECENT_DELIVERIES,
  MAX_RECENT_DELIVERIES,
  type WebhookRegistration,
  webhookEvents,
} from '../services/webhook-service.js';
import { builder, type Context } from './builder.js';
import { assumedListSize } from './connections.js';
import { DeliveryRef } from './deliveries.js';
import { MUTATION_ERRORS, mutationResult } from './errors.js';

const WebhookEventEnum = builder.enumType('WebhookEvent', {
  description: 'A runtime event a webhook receives.',
  values: {
    TASK_FINISHED: { description: 'A task reached COMPLETED, FAILED or CANCELED (topic `task.finished`).' },
    APP_STATE_CHANGED: { description: "An app's state changed (topic `app.state_changed`)." },
    PAYMENT_STATUS_CHANGED: { description: "A payment's status changed (topic `payment.status_changed`)." },
  },
});

type DeliveriesRequest = { webhookId: string; last: number | null };

/** Each webhook's latest deliveries, the webhooks of one request asking with the same `last` together. */
const recentDeliveries = createContextCache(
  (ctx: Context) =>
    new DataLoader<DeliveriesRequest, OutboxMessageRow[], string>(
      async (requests) => {
        // One batch per distinct `last` (usually one): never a query per webhook. A `last` the
        // service refuses fails the fields that asked for it, not the others.
        const answers = new Map<DeliveriesRequest, OutboxMessageRow[] | Error>();
        for (const last of new Set(requests.map((request) => request.last))) {
          const asking = requests.filter((request) => request.last === last);
          const found = await ctx.services.webhooks
            .recentDeliveries(
              asking.map((request) => request.webhookId),
              last,
            )
            .catch((error: Error) => error);
          for (const [index, request] of asking.entries()) {
            answers.set(request, found instanceof Error ? found : (found[index] ?? []));
          }
        }
        return requests.map((request) => answers.get(request) ?? []);
      },
      { cache: false, cacheKeyFn: (request) => `${request.webhookId}:${request.last}` },
    ),
);

const WebhookRef = builder.objectRef<WebhookRow>('Webhook').implement({
  description:
    'A receiver of runtime events: every matching event is POSTed to its URL, signed with its secret (`X-Signature`), retried until delivered.',
  fields: (t) => ({
    webhookId: t.exposeString('webhookId', { description: 'Its id, for removeWebhook.' }),
    url: t.exposeString('url', { description: 'Where the deliveries go.' }),
    events: t.field({
      type: [WebhookEventEnum],
      description: 'The events it receives.',
      resolve: (webhook) => webhookEvents(webhook),
    }),
    userId: t.exposeString('userId', { nullable: true, description: "Only this user's events; null: everyone's." }),
    sourceId: t.exposeString('sourceId', { nullable: true, description: "Only this source's apps; null: any." }),
    appName: t.exposeString('appName', { nullable: true, description: 'Only this app; null: any.' }),
    createdBy: t.exposeString('createdBy', { description: 'The admin who added it.' }),
    createdAt: t.field({
      type: 'DateTime',
      description: 'When it was added.',
      resolve: (webhook) => webhook.createdAt,
    }),
    deliveries: t.field({
      type: [DeliveryRef],
      description:
        'Its latest deliveries, newest first. Delivered and dead ones are kept OUTBOX_RETENTION_DAYS (7 by default) after their last change; pending ones until they end.',
      args: {
        last: t.arg.int({
          defaultValue: DEFAULT_RECENT_DELIVERIES,
          description: `How many, 0 to ${MAX_RECENT_DELIVERIES} (default ${DEFAULT_RECENT_DELIVERIES}).`,
        }),
      },
      resolve: (webhook, { last }, ctx) =>
        recentDeliveries(ctx).load({ webhookId: webhook.webhookId, last: last ?? null }),
    }),
  }),
});

const AddWebhookSuccessRef = builder.objectRef<WebhookRegistration>('AddWebhookSuccess').implement({
  description: 'The webhook was added. Keep its secret now: it is never shown again.',
  fields: (t) => ({
    webhook: t.field({ type: WebhookRef, description: 'The new webhook.', resolve: (added) => added.webhook }),
    secret: t.exposeString('secret', {
      description:
        'The HMAC-SHA256 key its deliveries are signed with (`X-Signature: t=<unix s>,v1=<hex HMAC of "<t>.<body>">`). Shown only here.',
    }),
  }),
});

const AddWebhookInput = builder.inputType('AddWebhookInput', {
  description: 'A receiver of runtime events.',
  fields: (t) => ({
    url: t.string({
      required: true,
      description: 'Absolute http(s) URL without credentials, at most 2048 characters; redirects are not followed.',
    }),
    events: t.field({
      type: [WebhookEventEnum],
      required: true,
      description: 'The events it receives (at least one).',
    }),
    userId: t.string({
      description: `Only this user's events: a user id (at most ${MAX_USER_ID_LENGTH} ASCII letters, digits, _ . @ : -; not system).`,
    }),
    sourceId: t.string({
      description: `Only this market source's apps: a source id (at most ${MAX_SOURCE_ID_LENGTH} letters, digits, . _ -).`,
    }),
    appName: t.string({
      description: `Only this app: an app name (at most ${MAX_APP_NAME_LENGTH} letters, digits, . _ -, starting with a letter or digit).`,
    }),
  }),
});

const RemoveWebhookInput = builder.inputType('RemoveWebhookInput', {
  description: 'The webhook to remove.',
  fields: (t) => ({ webhookId: t.string({ required: true, description: 'Its id.' }) }),
});

const RedeliverWebhookDeliveryInput = builder.inputType('RedeliverWebhookDeliveryInput', {
  description: 'The dead webhook delivery to send again.',
  fields: (t) => ({
    deliveryId: t.id({ required: true, description: 'Its id (`Delivery.id`, from `webhooks { deliveries }`).' }),
  }),
});

builder.queryFields((t) => ({
  webhooks: t.field({
    type: [WebhookRef],
    description:
      'Every webhook with its recent deliveries, oldest webhook first (admins only). Secrets are never shown.',
    // Up to MAX_WEBHOOKS of them, each with a page of deliveries: counted one, that page went uncounted.
    extensions: assumedListSize('maxWebhooks'),
    resolve: (_root, _args, ctx) => ctx.services.webhooks.list(ctx.viewer),
  }),
}));

builder.mutationFields((t) => ({
  addWebhook: t.field({
    type: AddWebhookSuccessRef,
    description: `Register a receiver of runtime events (admins only); the answer carries its signing secret, shown this once.`,
    errors: {
      types: MUTATION_ERRORS,
      // AddWebhookSuccess itself is the success member: the webhook and its secret side by side.
      directResult: true,
      union: {
        name: 'AddWebhookResult',
        description: 'Result of addWebhook: the webhook and its secret, or why it was refused.',
      },
    },
    args: { input: t.arg({ type: AddWebhookInput, required: true, description: 'The receiver.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.webhooks.add(ctx.viewer, input),
  }),
  removeWebhook: t.field({
    type: WebhookRef,
    description: 'Remove a webhook and its pending deliveries (admins only).',
    errors: mutationResult(
      'removeWebhook',
      { name: 'webhook', description: 'The removed webhook.' },
      'The webhook is gone; nothing more is sent to it.',
    ),
    args: { input: t.arg({ type: RemoveWebhookInput, required: true, description: 'Which webhook.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.webhooks.remove(ctx.viewer, input),
  }),
  redeliverWebhookDelivery: t.field({
    type: DeliveryRef,
    description:
      'Send a DEAD webhook delivery again (admins only): back to PENDING with its attempts reset, the same Idempotency-Key and body. INVALID_STATE when it is not DEAD, or is a payment push (use resendPaymentCredential).',
    errors: mutationResult(
      'redeliverWebhookDelivery',
      { name: 'delivery', description: 'The delivery, PENDING again.' },
      'The delivery is queued again; the outbox worker sends it as if it were new.',
    ),
    args: { input: t.arg({ type: RedeliverWebhookDeliveryInput, required: true, description: 'Which delivery.' }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.webhooks.redeliver(ctx.viewer, { deliveryId: String(input.deliveryId) }),
  }),
}));
