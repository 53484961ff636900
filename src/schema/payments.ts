import type { PaymentNotificationRow } from '../db/models.js';
import { MAX_APP_NAME_LENGTH, MAX_SOURCE_ID_LENGTH } from '../domain/app-key.js';
import { clientGone } from '../domain/operation-client.js';
import { eventOrMissed } from '../fanout/cohorts.js';
import { MAX_LISTED_NOTIFICATIONS } from '../services/payment-service.js';
import { MAX_FRONTEND_DATA_LENGTH } from '../services/purchase-service.js';
import { builder } from './builder.js';
import { assumedListSize, connectionType, costWeight, filterDescription, PLAIN_VALUE_BYTES } from './connections.js';
import { rowIdParser } from './global-id.js';
import { PaymentRef, PaymentStatusEnum } from './refs.js';

export const PaymentNotificationRef = builder.objectRef<PaymentNotificationRow>('PaymentNotification').implement({
  description: "A push to the buyer's frontend or signing wallet (LarePass).",
  fields: (t) => ({
    channel: t.exposeString('channel', { description: '`frontend` or `larepass`.' }),
    topic: t.exposeString('topic', {
      description:
        '`payment_state_update`, `market_payment` (sign request), `fetch_payment_signature` or `save_payment_vc`.',
    }),
    status: t.exposeString('status', { nullable: true, description: 'Status pushed to the frontend.' }),
    payload: t.field({
      type: 'JSON',
      description: 'What was pushed (credentials redacted).',
      resolve: (n) => n.payload,
    }),
    createdAt: t.field({ type: 'DateTime', description: 'When it was pushed.', resolve: (n) => n.createdAt }),
  }),
});

/** What `frontendData` counts in the query cost: its bound (MAX_FRONTEND_DATA_LENGTH) in plain values. */
const FRONTEND_DATA_COST = Math.ceil(MAX_FRONTEND_DATA_LENGTH / PLAIN_VALUE_BYTES);

builder.node(PaymentRef, {
  description:
    'Purchase state of one paid app product for one user. Secrets (signature, credential) are never exposed.',
  id: { resolve: (payment) => payment.id, parse: rowIdParser('Payment') },
  loadOne: (id, ctx) => ctx.services.payments.getById(ctx.viewer, id),
  fields: (t) => ({
    userId: t.exposeString('userId', { description: 'The buyer.' }),
    sourceId: t.exposeString('sourceId', { description: 'Market source of the app.' }),
    appId: t.exposeString('appId', { description: 'Catalogue id of the app.' }),
    appName: t.exposeString('appName', { description: 'App name.' }),
    productId: t.exposeString('productId', { description: 'Product bought.' }),
    status: t.field({
      type: PaymentStatusEnum,
      description: 'Status as a frontend shows it, derived from the five axes below.',
      resolve: (payment, _args, ctx) => ctx.services.payments.statusOf(payment),
    }),
    paymentNeed: t.exposeString('paymentNeed', {
      description: 'Axis 1: whether payment is needed (`required`, `not_required`, errors).',
    }),
    developerSync: t.exposeString('developerSync', {
      description: 'Axis 2: credential sync with the developer service.',
    }),
    larePassSync: t.exposeString('larePassSync', { description: 'Axis 3: signature sync with LarePass.' }),
    signatureStatus: t.exposeString('signatureStatus', { description: 'Axis 4: signature state.' }),
    paymentStatus: t.exposeString('paymentStatus', { description: 'Axis 5: payment progress.' }),
    txHash: t.exposeString('txHash', { nullable: true, description: 'On-chain transaction of the payment.' }),
    developerName: t.exposeString('developerName', {
      nullable: true,
      description: 'Developer the app is bought from.',
    }),
    frontendData: t.field({
      type: 'JSON',
      nullable: true,
      description: `What the frontend stored while paying (startFrontendPayment); cleared once purchased. Counts ${FRONTEND_DATA_COST} in the query cost.`,
      // Its bound, not its usual size: any buyer may fill it to the bound.
      extensions: costWeight(FRONTEND_DATA_COST),
      resolve: (payment) => payment.frontendData,
    }),
    notifications: t.field({
      type: [PaymentNotificationRef],
      description: `The newest ${MAX_LISTED_NOTIFICATIONS} pushes sent to the buyer's frontend and signing wallet, oldest first (secrets redacted).`,
      extensions: assumedListSize(MAX_LISTED_NOTIFICATIONS),
      resolve: (payment, _args, ctx) => ctx.services.payments.notifications(payment),
    }),
    createdAt: t.field({ type: 'DateTime', description: 'When the purchase started.', resolve: (p) => p.createdAt }),
    updatedAt: t.field({ type: 'DateTime', description: 'Last change.', resolve: (p) => p.updatedAt }),
  }),
});

const PaymentConnection = connectionType(PaymentRef, 'Payment', 'payments');

const PaymentFilterInput = builder.inputType('PaymentFilter', {
  description: filterDescription('payments'),
  fields: (t) => ({
    userId: t.string({ description: "Only this user's payments (admins only)." }),
    sourceId: t.string({ description: 'Only this market source.' }),
    appId: t.string({ description: 'Only this app.' }),
    status: t.field({ type: [PaymentStatusEnum], description: 'Only payments in one of these statuses.' }),
  }),
});

builder.subscriptionField('paymentUpdated', (t) =>
  t.field({
    type: PaymentRef,
    description: "Each change of a payment you may see (yours; everyone's for admins) that matches the filter.",
    args: { filter: t.arg({ type: PaymentFilterInput, description: 'Which payments.' }) },
    subscribe: (_root, { filter }, ctx) => ctx.services.payments.subscribe(ctx.viewer, filter ?? {}),
    resolve: (payment) => eventOrMissed(payment, 'query payments to see their current state'),
  }),
);

builder.queryFields((t) => ({
  payments: t.connection(
    {
      type: PaymentRef,
      description: "Payment states (yours, or everyone's for admins), newest first.",
      args: { filter: t.arg({ type: PaymentFilterInput, description: 'Which payments.' }) },
      resolve: (_root, { filter, ...page }, ctx) =>
        ctx.services.payments.list(ctx.viewer, filter ?? {}, page, () => clientGone(ctx)),
    },
    PaymentConnection,
  ),
  paymentStatus: t.field({
    type: PaymentRef,
    nullable: true,
    description:
      'Your payment state for an app; null for an app you never started to buy. `NOT_FOUND` for an app not in the catalogue, and for every app of a source not offered to you (an inactive remote) but one you began to buy there.',
    args: {
      sourceId: t.arg.string({
        required: true,
        description: `Market source id (at most ${MAX_SOURCE_ID_LENGTH} characters).`,
      }),
      appId: t.arg.string({
        required: true,
        description: `Catalogue app id (at most ${MAX_APP_NAME_LENGTH} characters).`,
      }),
    },
    resolve: (_root, { sourceId, appId }, ctx) => ctx.services.payments.forApp(ctx.viewer, sourceId, appId),
  }),
}));
