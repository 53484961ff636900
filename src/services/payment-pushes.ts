import { randomUUID } from 'node:crypto';
import type { Db } from '../db/client.js';
import type { PaymentRow, Prisma } from '../db/models.js';
import type { PaymentStatus } from '../domain/payment-status.js';
import {
  type ProductTerms,
  productCredentialManifest,
  productTermsOf,
  termsFromSignBody,
  termsToWire,
  tokenInfoOf,
} from '../domain/payment-terms.js';
import { isRecord } from '../platform/json.js';
import { REDACTED } from '../platform/redact.js';
import type { OutboundMessage } from './outbox-messages.js';

/**
 * The pushes of the purchase flow (market-domain.md §4.7), shaped as their receivers expect them:
 * LarePass, the buyer's signing wallet, gets SignNotificationUpdate documents
 * (`{ sign: { callback_url, sign_body, is_resign }, user, vars, topic }`), the Market frontend
 * gets MarketSystemUpdate documents (`{ user, timestamp, notify_type: 'payment_state_update',
 * extensions, extensions_obj? }`). Each push is kept as a PaymentNotification row and, when its
 * channel has a URL, sent through the outbox.
 */

/** What the pushes name of a payment (any payment row, axes typed or not). */
type Payment = Pick<
  PaymentRow,
  'userId' | 'sourceId' | 'appId' | 'appName' | 'productId' | 'developer' | 'developerName' | 'txHash' | 'signBody'
>;

/** The status pushed to the frontend: the visible status, spelled as the frontend expects it. */
export type PushedStatus = Lowercase<PaymentStatus>;

/** A push to the buyer's frontend or signing wallet; it is recorded with the change, never dropped. */
export interface Push {
  channel: 'frontend' | 'larepass';
  topic: 'payment_state_update' | 'market_payment' | 'fetch_payment_signature' | 'save_payment_vc';
  status?: PushedStatus;
  /** What the receiver gets, exactly. */
  body: Prisma.InputJsonValue;
  /**
   * What the PaymentNotification row keeps (and the schema shows) when it must differ from the
   * body: the body with its secret redacted. Only the credential push has one.
   */
  recorded?: Prisma.InputJsonValue;
}

/** Where pushes go, and where the wallet answers. */
export interface PushTargets {
  /**
   * The URL the wallet sends its answer to (PUBLIC_BASE_URL + the GraphQL endpoint, where the
   * `submitSignature` and `signatureCallback` mutations are).
   */
  callbackUrl: string;
  /** PAYMENT_WALLET_PUSH_URL; null: LarePass pushes are kept, not sent. */
  walletUrl: string | null;
  /** PAYMENT_FRONTEND_PUSH_URL; null: frontend pushes are kept, not sent. */
  frontendUrl: string | null;
}

/**
 * The outbox message that sends a recorded push; null when its channel has no URL (kept, not sent).
 * It names its receiver, not the URL: the outbox worker reads that at each attempt, so a URL the
 * operator changed (a leaked token in it, say) applies to the pushes already queued, and no token
 * is stored with them.
 *
 * Its idempotency key is the notification's number (receivers order a payment's pushes by it) and
 * a random part: numbers restart with every database, and two deployments (or one restored from a
 * backup) pushing to one receiver sent it the same keys for different pushes, which a receiver
 * that drops a key it has seen lost. The key is stored with the message, so every retry keeps it.
 */
export function outboundFor(targets: PushTargets, push: Push, notificationId: number): OutboundMessage | null {
  const destination = push.channel === 'larepass' ? 'wallet' : 'frontend';
  if (!(destination === 'wallet' ? targets.walletUrl : targets.frontendUrl)) return null;
  return {
    kind: 'payment',
    topic: push.topic,
    destination,
    body: push.body,
    idempotencyKey: `payment:${notificationId}:${randomUUID()}`,
    notificationId,
  };
}

// ── terms ─────────────────────────────────────────────────────────────────────────────────────

/**
 * The terms of a payment's product. `signed` (what the buyer was asked to sign, kept in the sign
 * body) first, for everything after the sign request; `current` (the catalogue's price config
 * now) first, for a new sign request. Either falls back to the other: a payment written before
 * terms were kept has none signed, and an app its source dropped has none current.
 */
export async function readTerms(
  db: Pick<Db, 'catalogApp'>,
  payment: Pick<Payment, 'sourceId' | 'appId' | 'productId' | 'signBody'>,
  prefer: 'signed' | 'current',
): Promise<ProductTerms | null> {
  const signed = () => termsFromSignBody(payment.signBody);
  const current = async () => {
    const app = await db.catalogApp.findUnique({
      where: { sourceId_appId: { sourceId: payment.sourceId, appId: payment.appId } },
      select: { price: true },
    });
    return productTermsOf(app?.price, payment.productId);
  };
  return prefer === 'signed' ? (signed() ?? (await current())) : ((await current()) ?? signed());
}

// ── the wallet (LarePass) ─────────────────────────────────────────────────────────────────────

function developerOf(payment: Payment): { did: string | null; rsaPubKey: string | null } {
  const developer = isRecord(payment.developer) ? payment.developer : {};
  return {
    did: typeof developer.did === 'string' ? developer.did : null,
    rsaPubKey: typeof developer.rsaPubKey === 'string' ? developer.rsaPubKey : null,
  };
}

/**
 * What the wallet signs: the product, the application credential it applies for (with the
 * payment's transaction once known), the product's credential manifest and the terms.
 */
export function signBodyOf(payment: Payment, terms: ProductTerms | null, withTxHash: boolean): Prisma.InputJsonObject {
  return {
    product_id: payment.productId,
    application_verifiable_credential: {
      productId: payment.productId,
      ...(withTxHash && payment.txHash ? { txHash: payment.txHash } : {}),
    },
    product_credential_manifest: productCredentialManifest({
      sourceId: payment.sourceId,
      appId: payment.appId,
      appName: payment.appName,
      productId: payment.productId,
      issuer: developerOf(payment).did ?? payment.developerName ?? 'unknown',
      terms,
    }),
    ...(terms ? { product: termsToWire(terms) as Prisma.InputJsonObject } : {}),
  } as Prisma.InputJsonObject;
}

/**
 * What the wallet passes back as the callback mutation's `input`, besides its answer: the product
 * and the app, which name one payment of the buyer. A product id alone may not (a source can
 * publish two apps of different developers under one product id), and a signature applied to the
 * other app's payment would be sent to the other developer.
 */
function callbackInputOf(payment: Payment): Prisma.InputJsonObject {
  return { productId: payment.productId, appId: payment.appId };
}

function walletPush(payment: Payment, topic: Push['topic'], sign: Prisma.InputJsonObject): Push {
  return { channel: 'larepass', topic, body: { sign, user: payment.userId, vars: {}, topic } };
}

/** Asks the wallet to sign (`is_resign` when a refused signature is being replaced). */
export function signRequestPush(
  payment: Payment,
  signBody: Prisma.InputJsonObject,
  resign: boolean,
  targets: PushTargets,
) {
  return walletPush(payment, 'market_payment', {
    callback_url: targets.callbackUrl,
    callback_mutation: 'submitSignature',
    callback_input: callbackInputOf(payment),
    sign_body: signBody,
    is_resign: resign,
  });
}

/** Asks the wallet whether it already holds a signature for the product. */
export function fetchSignaturePush(payment: Payment, signBody: Prisma.InputJsonObject, targets: PushTargets) {
  return walletPush(payment, 'fetch_payment_signature', {
    callback_url: targets.callbackUrl,
    callback_mutation: 'signatureCallback',
    callback_input: callbackInputOf(payment),
    sign_body: signBody,
  });
}

/**
 * The credential for the wallet to keep. The wallet stores it, so the body sent carries it; the
 * recorded row (and so the schema, history and logs) gets it redacted.
 */
export function credentialPush(payment: Payment, vc: string): Push {
  const sign = (credential: string) => ({
    sign_body: {
      vc: credential,
      product_id: payment.productId,
      app_id: payment.appId,
      app_name: payment.appName,
      developer_name: payment.developerName,
      developer_did: developerOf(payment).did,
      tx_hash: payment.txHash,
      user_id: payment.userId,
    },
  });
  const push = walletPush(payment, 'save_payment_vc', sign(vc));
  return { ...push, recorded: walletPush(payment, 'save_payment_vc', sign(REDACTED)).body };
}

// ── the frontend ──────────────────────────────────────────────────────────────────────────────

export function frontendPush(payment: Payment, status: PushedStatus, extensionsObj?: Prisma.InputJsonObject): Push {
  return {
    channel: 'frontend',
    topic: 'payment_state_update',
    status,
    body: {
      user: payment.userId,
      timestamp: Math.floor(Date.now() / 1000),
      notify_type: 'payment_state_update',
      extensions: { app_id: payment.appId, app_name: payment.appName, source_id: payment.sourceId, status },
      ...(extensionsObj ? { extensions_obj: extensionsObj } : {}),
    },
  };
}

/**
 * Asks the frontend to pay, with the payment data it pays from (market-domain.md §4.6): to whom
 * (the developer's DID and key), which product, and on which chain, in which token, how much and
 * to which wallet. `from`, the buyer's DID, is not known to this server (the original asked a DID
 * gate) and is null.
 */
export function paymentRequiredPush(payment: Payment, terms: ProductTerms | null): Push {
  const developer = developerOf(payment);
  return frontendPush(payment, 'payment_required', {
    payment_data: {
      from: null,
      to: developer.did,
      product: [{ product_id: payment.productId }],
      ...(developer.rsaPubKey ? { rsa_public_key: developer.rsaPubKey } : {}),
      price_config: terms ? (termsToWire(terms) as Prisma.InputJsonObject) : null,
      token_info: tokenInfoOf(terms) as Prisma.InputJsonArray,
    },
  });
}
