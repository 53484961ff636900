import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import type { FakeDeveloperService } from './support/fake-developer-service.js';
import type { FakeReceiver } from './support/fake-receiver.js';
import {
  HistoryQuery,
  PaymentDetailQuery,
  PurchaseAppMutation,
  RestorePurchaseMutation,
  SubmitSignatureMutation,
} from './support/operations.js';
import { type PaymentWorld, startPaymentWorld, success } from './support/payments.js';
import { REMOTE_SOURCE, type Seeder } from './support/seed.js';
import { dataOf, execute, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * "Restore purchase" when no signature is held: the wallet is asked to sign, and the signature it
 * returns is the buyer's proof of a purchase made before, so it goes to the developer (SYNCING)
 * before anyone asks the buyer to pay; the signature a Buy asks for is still a purchase of its own.
 */

const databases = await availableDatabases();
const SIGNED = 'eyJhbGciOiJFUzI1NiJ9.restore-signs.UkVTVE9SRQ';
const RESIGNED = 'eyJhbGciOiJFUzI1NiJ9.restore-signs-again.QUdBSU4';

describe.each(databases)('a restore that has the wallet sign, on %s', (kind) => {
  let world: PaymentWorld;
  let server: TestServer;
  let seeder: Seeder;
  let developer: FakeDeveloperService;
  let frontend: FakeReceiver;
  let wallet: FakeReceiver;
  beforeAll(async () => {
    world = await startPaymentWorld(kind, { wallet: true, secret: 'payment-push-secret-restore-signing' });
    ({ server, seeder, developer, frontend } = world);
    wallet = world.wallet as FakeReceiver;
  });
  afterAll(() => world?.stop());

  const as = { token: TOKENS.alice };
  const paymentOf = async (appId: string) =>
    dataOf(await execute(server, PaymentDetailQuery, { sourceId: REMOTE_SOURCE, appId }, as)).paymentStatus;
  const statusOf = async (appId: string) => (await paymentOf(appId))?.status;
  const restore = async (appId: string) =>
    success(
      dataOf(await execute(server, RestorePurchaseMutation, { input: { sourceId: REMOTE_SOURCE, appId } }, as))
        .restorePurchase,
    );
  const buy = async (appId: string) =>
    success(
      dataOf(await execute(server, PurchaseAppMutation, { input: { sourceId: REMOTE_SOURCE, appId } }, as)).purchaseApp,
    );

  /**
   * The wallet answers the `count`-th sign request about `appId` it received: with the callback
   * input the request names and a signature (no transaction hash).
   */
  const walletSigns = async (appId: string, count: number, jws: string) => {
    const request = await waitFor(async () => {
      const requests = wallet.received(
        (delivery) =>
          delivery.topic === 'market_payment' && JSON.parse(delivery.body).sign.callback_input.appId === appId,
      );
      return requests.length >= count ? requests[count - 1] : undefined;
    }, `sign request ${count} about ${appId} at the wallet`);
    const input = JSON.parse(request?.body ?? '{}').sign.callback_input as { productId: string; appId: string };
    return success(
      dataOf(await execute(server, SubmitSignatureMutation, { input: { ...input, jws } }, as)).submitSignature,
    );
  };

  /** The statuses pushed to the frontend about `appId`, in push order, once `count` arrived. */
  const pushedToFrontend = (appId: string, count: number) =>
    waitFor(async () => {
      const pushes = frontend
        .received((delivery) => JSON.parse(delivery.body).extensions?.app_id === appId)
        .map((delivery) => ({
          order: Number(delivery.key.split(':')[1]),
          status: JSON.parse(delivery.body).extensions.status as string,
        }));
      if (pushes.length < count) return undefined;
      return pushes.sort((a, b) => a.order - b.order).map((push) => push.status);
    }, `${count} pushes about ${appId} at the frontend`);
  /** The signatures the developer was asked about since `from` requests. */
  const askedSince = (from: number) =>
    developer.requests.slice(from).map((request) => (request.body as { jws?: string }).jws);

  test('the signature answering a restore sign request goes to the developer (SYNCING), and its grant buys', async () => {
    const appId = 'restore-signs-granted';
    await seeder.catalogApp({ name: appId, versions: ['1.0.0'], price: '9.99' });
    developer.setBehaviour({ respond: 'grant', vc: 'vc-restore-signs-granted' });
    const queries = developer.requests.length;

    expect(await restore(appId)).toMatchObject({ signatureStatus: 'required' });
    expect(await walletSigns(appId, 1, SIGNED)).toMatchObject({ status: 'SYNCING' });
    await waitFor(async () => ((await statusOf(appId)) === 'PURCHASED' ? true : undefined), 'the purchase');
    expect(askedSince(queries)).toEqual([SIGNED]);
    expect(await pushedToFrontend(appId, 3)).toEqual(['signature_required', 'syncing', 'purchased']);
    // Nor did the status pass through PAYMENT_REQUIRED between the signature and the developer's query.
    const history = dataOf(await execute(server, HistoryQuery, { filter: { app: appId }, first: 50 }, as)).history;
    const statuses = history.edges
      .map((edge) => (edge.node.extended as { status?: string } | null)?.status)
      .filter((status) => status !== undefined)
      .reverse();
    expect(statuses).toEqual(['NOTIFICATION_SENT', 'SYNCING', 'PURCHASED']); // created asking, never NOT_BUY first
  });

  test('no record of the restored purchase ends as a restore of a held signature does: pay again, then Buy asks to pay', async () => {
    const appId = 'restore-signs-no-record';
    await seeder.catalogApp({ name: appId, versions: ['1.0.0'], price: '9.99' });
    developer.setBehaviour({ respond: 'json', body: { code: 1501 } });
    const queries = developer.requests.length;

    await restore(appId);
    expect(await walletSigns(appId, 1, SIGNED)).toMatchObject({ status: 'SYNCING' });
    const answered = await waitFor(async () => {
      const payment = await paymentOf(appId);
      return payment?.developerSync === 'completed' ? payment : undefined;
    }, 'the polling round to end');
    expect(answered).toMatchObject({ status: 'PAYMENT_RETRY_REQUIRED', signatureStatus: 'error_no_record' });
    expect(askedSince(queries)).toEqual([SIGNED, SIGNED]); // PAYMENT_POLL_ATTEMPTS
    expect(await pushedToFrontend(appId, 3)).toEqual(['signature_required', 'syncing', 'payment_retry_required']);

    // Not found: a purchase to make with that signature.
    expect(await buy(appId)).toMatchObject({ status: 'PAYMENT_REQUIRED', signatureStatus: 'required_and_signed' });
    expect(await pushedToFrontend(appId, 4)).toContain('payment_required');
  });

  test('a developer that cannot be asked about the restored purchase leaves it NOT_BUY, never asking to pay', async () => {
    const appId = 'restore-signs-unreachable';
    await seeder.catalogApp({ name: appId, versions: ['1.0.0'], price: '9.99' });
    developer.setBehaviour({ respond: 'http-error', status: 502 });
    const queries = developer.requests.length;

    await restore(appId);
    expect(await walletSigns(appId, 1, SIGNED)).toMatchObject({ status: 'SYNCING' });
    const gaveUp = await waitFor(async () => {
      const payment = await paymentOf(appId);
      return payment?.developerSync === 'failed' ? payment : undefined;
    }, 'the polling round to give up');
    expect(gaveUp).toMatchObject({ status: 'NOT_BUY', signatureStatus: 'required_and_signed' });
    expect(askedSince(queries)).toEqual([SIGNED, SIGNED]);
    expect(await pushedToFrontend(appId, 3)).toEqual(['signature_required', 'syncing', 'not_buy']);
    expect(gaveUp?.notifications.map((push) => push.status)).not.toContain('payment_required');
  });

  test('after a restored signature is refused, the signature Buy has the wallet make is one to pay for', async () => {
    const appId = 'restore-signs-refused';
    await seeder.catalogApp({ name: appId, versions: ['1.0.0'], price: '9.99' });
    developer.setBehaviour({ respond: 'json', body: { code: 1604 } });
    let queries = developer.requests.length;

    await restore(appId);
    await walletSigns(appId, 1, SIGNED);
    await waitFor(
      async () => ((await statusOf(appId)) === 'SIGNATURE_NEED_RESIGN' ? true : undefined),
      'the refusal of the restored signature',
    );
    expect(askedSince(queries)).toEqual([SIGNED]);

    // Buy: the new signature is a purchase of its own, to pay for; the developer is not asked.
    queries = developer.requests.length;
    expect(await buy(appId)).toMatchObject({ signatureStatus: 'required' });
    expect(await walletSigns(appId, 2, RESIGNED)).toMatchObject({ status: 'PAYMENT_REQUIRED' });
    expect(await walletSigns(appId, 2, RESIGNED)).toMatchObject({ status: 'PAYMENT_REQUIRED' }); // answered twice
    expect(await paymentOf(appId)).toMatchObject({ status: 'PAYMENT_REQUIRED', developerSync: 'completed' });
    expect(askedSince(queries)).toEqual([]);
  });

  /**
   * Once every push about `appId` written so far (Payment.notifications) reached the frontend: the
   * `payment_required` pushes it received, one per push written (a retried delivery counts once).
   */
  const paymentRequestsAtFrontend = async (appId: string) => {
    const written = (await paymentOf(appId))?.notifications.filter((push) => push.channel === 'frontend') ?? [];
    return waitFor(async () => {
      const byKey = new Map(
        frontend
          .received((delivery) => JSON.parse(delivery.body).extensions?.app_id === appId)
          .map((delivery) => [delivery.key, JSON.parse(delivery.body)] as const),
      );
      if (byKey.size < written.length) return undefined;
      return [...byKey.values()].filter((body) => body.extensions.status === 'payment_required');
    }, `the ${written.length} pushes about ${appId} at the frontend`);
  };
  const paymentData = (amount: string) => ({
    product: [{ product_id: expect.stringMatching(/-license$/) }],
    token_info: [{ chain: 'optimism', token_symbol: 'USDC', token_amount: amount, receive_wallet: '0x01' }],
  });

  test('Buy after a refused restored signature: its signature brings the frontend one payment_required push, with the payment data', async () => {
    const appId = 'restore-refused-then-buy';
    await seeder.catalogApp({ name: appId, versions: ['1.0.0'], price: '9.99' });
    developer.setBehaviour({ respond: 'json', body: { code: 1604 } });

    await restore(appId);
    await walletSigns(appId, 1, SIGNED);
    await waitFor(
      async () => ((await statusOf(appId)) === 'SIGNATURE_NEED_RESIGN' ? true : undefined),
      'the refusal of the restored signature',
    );
    await buy(appId);
    expect(await walletSigns(appId, 2, RESIGNED)).toMatchObject({ status: 'PAYMENT_REQUIRED' });
    expect(await walletSigns(appId, 2, RESIGNED)).toMatchObject({ status: 'PAYMENT_REQUIRED' }); // answered twice
    const requests = await paymentRequestsAtFrontend(appId);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.extensions_obj.payment_data).toMatchObject(paymentData('9.99'));
  });

  test('Buy after a restore sign request the wallet left unanswered: its signature brings the frontend one payment_required push, at the current price', async () => {
    const appId = 'restore-unanswered-then-buy';
    await seeder.catalogApp({ name: appId, versions: ['1.0.0'], price: '9.99' });
    developer.setBehaviour({ respond: 'grant', vc: 'vc-never-asked' });
    const queries = developer.requests.length;

    expect(await restore(appId)).toMatchObject({ status: 'NOTIFICATION_SENT' });
    // The wallet never answers; a Buy 5 s later asks it again (the request's time set back as if
    // those seconds had passed), at the price the catalogue says by then.
    const row = await server.app.db.payment.findFirstOrThrow({ where: { userId: 'alice', appId } });
    await server.app.db.paymentNotification.updateMany({
      where: { paymentId: row.id, topic: 'market_payment' },
      data: { createdAt: new Date(Date.now() - 6_000) },
    });
    const app = await server.app.db.catalogApp.findFirstOrThrow({ where: { appId } });
    const price = app.price as { paid: { price: { product_price: string }[] } };
    price.paid.price[0] = { ...price.paid.price[0], product_price: '12.50' };
    await server.app.db.catalogApp.update({ where: { id: app.id }, data: { price } });
    expect(await buy(appId)).toMatchObject({ signatureStatus: 'required' });

    expect(await walletSigns(appId, 2, SIGNED)).toMatchObject({ status: 'PAYMENT_REQUIRED' });
    expect(await walletSigns(appId, 2, SIGNED)).toMatchObject({ status: 'PAYMENT_REQUIRED' }); // answered twice
    const requests = await paymentRequestsAtFrontend(appId);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.extensions_obj.payment_data).toMatchObject(paymentData('12.50'));
    expect(askedSince(queries)).toEqual([]);
  });

  test('a restore asked again after its signature was refused has the new signature checked too', async () => {
    const appId = 'restore-signs-twice';
    await seeder.catalogApp({ name: appId, versions: ['1.0.0'], price: '9.99' });
    developer.setBehaviour({ respond: 'json', body: { code: 1604 } });
    const queries = developer.requests.length;

    await restore(appId);
    await walletSigns(appId, 1, SIGNED);
    await waitFor(
      async () => ((await statusOf(appId)) === 'SIGNATURE_NEED_RESIGN' ? true : undefined),
      'the refusal of the restored signature',
    );
    developer.setBehaviour({ respond: 'grant', vc: 'vc-restore-signs-twice' });
    expect(await restore(appId)).toMatchObject({ signatureStatus: 'required' });
    expect(await walletSigns(appId, 2, RESIGNED)).toMatchObject({ status: 'SYNCING' });
    await waitFor(async () => ((await statusOf(appId)) === 'PURCHASED' ? true : undefined), 'the purchase');
    expect(askedSince(queries)).toEqual([SIGNED, RESIGNED]);
  });

  test('a Buy signature is asked to be paid for, answered twice, with no developer query', async () => {
    const appId = 'buy-signs';
    await seeder.catalogApp({ name: appId, versions: ['1.0.0'], price: '9.99' });
    developer.setBehaviour({ respond: 'grant', vc: 'vc-never-asked' });
    const queries = developer.requests.length;

    expect(await buy(appId)).toMatchObject({ status: 'SIGNATURE_REQUIRED' });
    expect(await walletSigns(appId, 1, SIGNED)).toMatchObject({ status: 'PAYMENT_REQUIRED' });
    expect(await walletSigns(appId, 1, SIGNED)).toMatchObject({ status: 'PAYMENT_REQUIRED' });
    expect(await pushedToFrontend(appId, 2)).toEqual(['signature_required', 'payment_required']);
    expect(await paymentOf(appId)).toMatchObject({ status: 'PAYMENT_REQUIRED', developerSync: 'not_started' });
    expect(askedSince(queries)).toEqual([]);
  });
});
