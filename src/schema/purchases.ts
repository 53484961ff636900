import { MAX_JWS_LENGTH } from '../services/purchase-service.js';
import { builder } from './builder.js';
import { mutationResult } from './errors.js';
import { PaymentRef } from './refs.js';

const PurchaseAppInput = builder.inputType('PurchaseAppInput', {
  description: 'A paid app of a market source.',
  fields: (t) => ({
    sourceId: t.string({ required: true, description: 'Market source of the app.' }),
    appId: t.string({ required: true, description: 'Catalogue id of the app.' }),
  }),
});

const StartFrontendPaymentInput = builder.inputType('StartFrontendPaymentInput', {
  description: 'The frontend is about to pay.',
  fields: (t) => ({
    sourceId: t.string({ required: true, description: 'Market source of the app.' }),
    appId: t.string({ required: true, description: 'Catalogue id of the app.' }),
    productId: t.string({ required: true, description: 'Product being paid for.' }),
    frontendData: t.field({
      type: 'JSON',
      description: 'Whatever the frontend wants kept while it pays (cleared on purchase).',
    }),
  }),
});

const SubmitPaymentTransactionInput = builder.inputType('SubmitPaymentTransactionInput', {
  description: 'The frontend paid: the on-chain transaction to confirm with the developer.',
  fields: (t) => ({
    sourceId: t.string({ required: true, description: 'Market source of the app.' }),
    appId: t.string({ required: true, description: 'Catalogue id of the app.' }),
    productId: t.string({ required: true, description: 'Product paid for.' }),
    txHash: t.string({ required: true, description: 'The 0x-prefixed transaction hash.' }),
  }),
});

const SubmitSignatureInput = builder.inputType('SubmitSignatureInput', {
  description: "The signing wallet (LarePass) returns the buyer's signature of the purchase.",
  fields: (t) => ({
    productId: t.string({ required: true, description: 'Product signed for.' }),
    appId: t.string({
      description:
        'Catalogue id of the app, as the request named it (`callback_input.appId`): required when several of your purchases are of this product.',
    }),
    jws: t.string({
      required: true,
      description: `The signature: a compact JWS (three base64url segments joined by dots, header and signature not empty), at most ${MAX_JWS_LENGTH} characters. Stored, never shown again.`,
    }),
    txHash: t.string({
      description:
        'Transaction hash (0x and 1 to 128 hex digits), when the wallet already knows it; empty or blank counts as none.',
    }),
  }),
});

const SignatureCallbackInput = builder.inputType('SignatureCallbackInput', {
  description: 'The signing wallet answers whether it already holds a signature for the product.',
  fields: (t) => ({
    productId: t.string({ required: true, description: 'Product asked about.' }),
    appId: t.string({
      description:
        'Catalogue id of the app, as the request named it (`callback_input.appId`): required when several of your purchases are of this product.',
    }),
    signed: t.boolean({ required: true, description: 'Whether a signature exists.' }),
    jws: t.string({
      description: 'The existing signature, a compact JWS as in `submitSignature`; required when `signed`.',
    }),
  }),
});

const ResendPaymentCredentialInput = builder.inputType('ResendPaymentCredentialInput', {
  description: 'Send the purchase credential to the signing wallet again.',
  fields: (t) => ({
    productId: t.string({ required: true, description: 'Product bought.' }),
    appId: t.string({
      description: 'Catalogue id of the app: required when several of your purchases are of this product.',
    }),
  }),
});

const paymentResult = (name: string, successDescription: string) =>
  mutationResult(name, { name: 'payment', description: 'The payment state after the change.' }, successDescription);

builder.mutationFields((t) => ({
  purchaseApp: t.field({
    type: PaymentRef,
    description: "Buy a paid app: creates the purchase state and asks the buyer's wallet to sign.",
    errors: paymentResult('purchaseApp', 'The purchase moved on.'),
    args: { input: t.arg({ type: PurchaseAppInput, required: true, description: 'Which app.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.purchases.purchase(ctx.viewer, input),
  }),
  restorePurchase: t.field({
    type: PaymentRef,
    description:
      'Restore an earlier purchase (new device, reinstall). From a source not offered to you (an inactive remote) only a purchase you began there; anything else there is `NOT_FOUND`, as for `purchaseApp`.',
    errors: paymentResult('restorePurchase', 'The restore moved on.'),
    args: { input: t.arg({ type: PurchaseAppInput, required: true, description: 'Which app.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.purchases.restore(ctx.viewer, input),
  }),
  startFrontendPayment: t.field({
    type: PaymentRef,
    description: 'The frontend starts paying for a signed purchase.',
    errors: paymentResult('startFrontendPayment', 'The payment is marked as started.'),
    args: { input: t.arg({ type: StartFrontendPaymentInput, required: true, description: 'Which purchase.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.purchases.startFrontendPayment(ctx.viewer, input),
  }),
  submitPaymentTransaction: t.field({
    type: PaymentRef,
    description: 'The frontend paid: wait for the developer to confirm it and grant the credential.',
    errors: paymentResult('submitPaymentTransaction', 'The transaction is recorded; polling the developer started.'),
    args: {
      input: t.arg({
        type: SubmitPaymentTransactionInput,
        required: true,
        description: 'Which purchase and transaction.',
      }),
    },
    resolve: (_root, { input }, ctx) => ctx.services.purchases.submitTransaction(ctx.viewer, input),
  }),
  submitSignature: t.field({
    type: PaymentRef,
    description: "The signing wallet delivers the buyer's signature.",
    errors: paymentResult('submitSignature', 'The signature is recorded.'),
    args: { input: t.arg({ type: SubmitSignatureInput, required: true, description: 'The signature.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.purchases.submitSignature(ctx.viewer, input),
  }),
  resendPaymentCredential: t.field({
    type: PaymentRef,
    description:
      "Push the purchase credential to the buyer's signing wallet again (it is recorded in `notifications`).",
    errors: paymentResult('resendPaymentCredential', 'The credential was pushed again.'),
    args: { input: t.arg({ type: ResendPaymentCredentialInput, required: true, description: 'Which product.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.purchases.resendCredential(ctx.viewer, input),
  }),
  signatureCallback: t.field({
    type: PaymentRef,
    description: 'The signing wallet answers the question for an existing signature.',
    errors: paymentResult('signatureCallback', 'The answer is recorded.'),
    args: { input: t.arg({ type: SignatureCallbackInput, required: true, description: 'The answer.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.purchases.signatureCallback(ctx.viewer, input),
  }),
}));
