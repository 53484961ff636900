import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import {
  HistoryQuery,
  PaymentDetailQuery,
  PaymentUpdatedSubscription,
  PurchaseAppMutation,
  RestorePurchaseMutation,
} from './support/operations.js';
import { type PaymentWorld, startPaymentWorld, success } from './support/payments.js';
import { REMOTE_SOURCE, type Seeder } from './support/seed.js';
import { dataOf, execute, type TestServer, TOKENS } from './support/server.js';
import { type Subscription, subscribe } from './support/subscriptions.js';

/**
 * The first Buy (or restore) of an app creates its payment already asking the wallet: the first
 * state anyone sees, live or in history, is the one the request answers, never a NOT_BUY written
 * a moment before.
 */

const databases = await availableDatabases();

type Update = { paymentUpdated: { appId: string; status: string } };

describe.each(databases)('the first state of a payment, on %s', (kind) => {
  let world: PaymentWorld;
  let server: TestServer;
  let seeder: Seeder;
  let updates: Subscription<Update>;
  const as = { token: TOKENS.alice };
  beforeAll(async () => {
    world = await startPaymentWorld(kind, { wallet: false, secret: 'payment-push-secret-first-state' });
    ({ server, seeder } = world);
    updates = await subscribe(server, PaymentUpdatedSubscription, {}, { token: TOKENS.alice });
    // Live once it carries a payment of alice's: everything after that reaches it, in order.
    await seeder.catalogApp({ name: 'first-state-warm-up', versions: ['1.0.0'], price: '1.00' });
    await execute(
      server,
      PurchaseAppMutation,
      { input: { sourceId: REMOTE_SOURCE, appId: 'first-state-warm-up' } },
      as,
    );
    await updates.until((update) => update.paymentUpdated.appId === 'first-state-warm-up');
  });
  afterAll(async () => {
    await updates?.close();
    await world?.stop();
  });

  /** The statuses of alice's history records about `appId`, oldest first (not the pushes' deliveries). */
  const historyOf = async (appId: string) => {
    const history = dataOf(await execute(server, HistoryQuery, { filter: { app: appId }, first: 50 }, as)).history;
    return history.edges
      .map((edge) => (edge.node.extended as { status?: string } | null)?.status)
      .filter((status) => status !== undefined)
      .reverse();
  };

  /** The statuses published about `appId` until (and with) the first that is `status`. */
  const publishedUntil = async (appId: string, status: string) => {
    const seen = await updates.until(
      (update) => update.paymentUpdated.appId === appId && update.paymentUpdated.status === status,
    );
    return seen.filter((update) => update.paymentUpdated.appId === appId).map((update) => update.paymentUpdated.status);
  };

  test('a first Buy is SIGNATURE_REQUIRED from the start: no NOT_BUY published or in history', async () => {
    const appId = 'first-state-buy';
    await seeder.catalogApp({ name: appId, versions: ['1.0.0'], price: '9.99' });
    const bought = success(
      dataOf(await execute(server, PurchaseAppMutation, { input: { sourceId: REMOTE_SOURCE, appId } }, as)).purchaseApp,
    );
    expect(bought.status).toBe('SIGNATURE_REQUIRED');
    const published = await publishedUntil(appId, 'SIGNATURE_REQUIRED');
    expect(published).toEqual(['SIGNATURE_REQUIRED']);
    expect(await historyOf(appId)).toEqual(['SIGNATURE_REQUIRED']);
    // The wallet is still asked first whether it holds a signature, then to sign.
    const payment = dataOf(await execute(server, PaymentDetailQuery, { sourceId: REMOTE_SOURCE, appId }, as));
    expect(payment.paymentStatus?.notifications.map((push) => push.status ?? push.topic)).toEqual([
      'fetch_payment_signature',
      'market_payment',
      'signature_required',
    ]);
  });

  test('a first restore is NOTIFICATION_SENT from the start: no NOT_BUY published or in history', async () => {
    const appId = 'first-state-restore';
    await seeder.catalogApp({ name: appId, versions: ['1.0.0'], price: '9.99' });
    const restored = success(
      dataOf(await execute(server, RestorePurchaseMutation, { input: { sourceId: REMOTE_SOURCE, appId } }, as))
        .restorePurchase,
    );
    expect(restored.status).toBe('NOTIFICATION_SENT');
    expect(await publishedUntil(appId, 'NOTIFICATION_SENT')).toEqual(['NOTIFICATION_SENT']);
    expect(await historyOf(appId)).toEqual(['NOTIFICATION_SENT']);
  });
});
