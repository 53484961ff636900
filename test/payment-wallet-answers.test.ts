import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import type { FakeDeveloperService } from './support/fake-developer-service.js';
import type { FakeReceiver } from './support/fake-receiver.js';
import {
  PaymentDetailQuery,
  PurchaseAppMutation,
  RestorePurchaseMutation,
  SignatureCallbackMutation,
  StartFrontendPaymentMutation,
  SubmitPaymentTransactionMutation,
  SubmitSignatureMutation,
} from './support/operations.js';
import { type PaymentWorld, startPaymentWorld, success } from './support/payments.js';
import { REMOTE_SOURCE, type Seeder } from './support/seed.js';
import { dataOf, execute, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * What the buyer's wallet says when its answers come late or several at once (the outbox delivers
 * every push at least once, so the wallet may answer a push twice, or an old one late): the
 * signature the buyer paid with stays, and the frontend is asked to pay once. And a signature the
 * wallet held already, about which the developer could not be asked: never one to pay with.
 */

const databases = await availableDatabases();
const NEW_SIGNATURE = 'eyJhbGciOiJFUzI1NiJ9.paid-with.TkVXU0lH';
const OLD_SIGNATURE = 'eyJhbGciOiJFUzI1NiJ9.held-before.T0xEU0lH';

describe.each(databases)('wallet answers on %s', (kind) => {
  let world: PaymentWorld;
  let server: TestServer;
  let seeder: Seeder;
  let developer: FakeDeveloperService;
  let frontend: FakeReceiver;
  beforeAll(async () => {
    world = await startPaymentWorld(kind, { wallet: false, secret: 'payment-push-secret-wallet-answers' });
    ({ server, seeder, developer, frontend } = world);
  });
  afterAll(() => world?.stop());

  /**
   * The statuses the frontend received about an app, in the order they were pushed (the number
   * in the Idempotency-Key, as receivers order them), once `count` of them arrived.
   */
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

  const as = { token: TOKENS.alice };
  const paymentOf = async (appId: string) =>
    dataOf(await execute(server, PaymentDetailQuery, { sourceId: REMOTE_SOURCE, appId }, as)).paymentStatus;
  const walletAnswers = async (productId: string, signed: boolean, jws?: string) =>
    success(
      dataOf(await execute(server, SignatureCallbackMutation, { input: { productId, signed, jws: jws ?? null } }, as))
        .signatureCallback,
    );

  test('a late wallet answer after paying neither replaces nor drops the signature paid with; a restore asks the developer about that one', async () => {
    const appId = 'late-after-paying';
    const productId = `${appId}-license`;
    const product = { sourceId: REMOTE_SOURCE, appId, productId };
    await seeder.catalogApp({ name: appId, versions: ['1.0.0'], price: '9.99' });
    developer.setBehaviour({ respond: 'json', body: { code: 1501 } }); // no record, until the round ends
    success(
      dataOf(await execute(server, PurchaseAppMutation, { input: { sourceId: REMOTE_SOURCE, appId } }, as)).purchaseApp,
    );
    success(
      dataOf(await execute(server, SubmitSignatureMutation, { input: { productId, jws: NEW_SIGNATURE } }, as))
        .submitSignature,
    );
    success(dataOf(await execute(server, StartFrontendPaymentMutation, { input: product }, as)).startFrontendPayment);
    const txHash = '0xfeedbeef';
    success(
      dataOf(await execute(server, SubmitPaymentTransactionMutation, { input: { ...product, txHash } }, as))
        .submitPaymentTransaction,
    );
    const noRecord = await waitFor(async () => {
      const payment = await paymentOf(appId);
      return payment?.developerSync === 'completed' ? payment : undefined;
    }, 'the polling round to end');
    expect(noRecord).toMatchObject({
      status: 'SIGNATURE_NO_RECORD',
      signatureStatus: 'error_no_record',
      paymentStatus: 'frontend_completed',
    });
    const queries = developer.requests.length;
    const pushes = noRecord.notifications.length;

    // The answers to the first question (does the wallet hold a signature?), arriving late.
    expect(await walletAnswers(productId, true, OLD_SIGNATURE)).toMatchObject({ status: 'SIGNATURE_NO_RECORD' });
    expect(await walletAnswers(productId, false)).toMatchObject({
      status: 'SIGNATURE_NO_RECORD',
      signatureStatus: 'error_no_record',
    });
    const after = await paymentOf(appId);
    expect(after).toMatchObject({ status: 'SIGNATURE_NO_RECORD', signatureStatus: 'error_no_record', txHash });
    expect(after?.notifications).toHaveLength(pushes); // no sign request, no frontend push
    expect(developer.requests).toHaveLength(queries); // nobody asked about the old signature
    const row = await server.app.db.payment.findFirstOrThrow({ where: { userId: 'alice', appId } });
    expect(row.jws).toBe(NEW_SIGNATURE);

    // The payment was found since: a restore asks about the signature paid with, not for a new one.
    developer.setBehaviour({ respond: 'grant', vc: 'vc-late-after-paying' });
    const restored = success(
      dataOf(await execute(server, RestorePurchaseMutation, { input: { sourceId: REMOTE_SOURCE, appId } }, as))
        .restorePurchase,
    );
    expect(restored.developerSync).toBe('in_progress');
    await waitFor(async () => ((await paymentOf(appId))?.status === 'PURCHASED' ? true : undefined), 'the purchase');
    const asked = developer.requests.slice(queries).map((request) => (request.body as { jws?: string }).jws);
    expect(asked).toEqual([NEW_SIGNATURE]);
  });

  test('the wallet returning the signature several times at once asks the frontend to pay once', async () => {
    const appId = 'signed-at-once';
    const productId = `${appId}-license`;
    await seeder.catalogApp({ name: appId, versions: ['1.0.0'], price: '9.99' });
    success(
      dataOf(await execute(server, PurchaseAppMutation, { input: { sourceId: REMOTE_SOURCE, appId } }, as)).purchaseApp,
    );
    const answers = await Promise.all(
      Array.from({ length: 8 }, () =>
        execute(server, SubmitSignatureMutation, { input: { productId, jws: NEW_SIGNATURE } }, as),
      ),
    );
    for (const answer of answers) expect(success(dataOf(answer).submitSignature).status).toBe('PAYMENT_REQUIRED');
    const payment = await paymentOf(appId);
    expect(payment).toMatchObject({ status: 'PAYMENT_REQUIRED', signatureStatus: 'required_and_signed' });
    const asked = payment?.notifications.filter((push) => push.status === 'payment_required') ?? [];
    expect(asked).toHaveLength(1);
  });

  test('a credential query failing after the wallet answers signed is asked again; its grant buys, and the frontend hears each step', async () => {
    const appId = 'held-then-granted';
    const productId = `${appId}-license`;
    await seeder.catalogApp({ name: appId, versions: ['1.0.0'], price: '9.99' });
    success(
      dataOf(await execute(server, PurchaseAppMutation, { input: { sourceId: REMOTE_SOURCE, appId } }, as)).purchaseApp,
    );
    developer.setBehaviour({
      respond: 'sequence',
      steps: [
        { respond: 'http-error', status: 503 },
        { respond: 'grant', vc: 'vc-held-then-granted' },
      ],
    });
    const queries = developer.requests.length;

    // The wallet held a signature; the developer cannot be asked about it right now.
    const answered = await walletAnswers(productId, true, OLD_SIGNATURE);
    expect(answered).toMatchObject({
      status: 'SYNCING',
      developerSync: 'in_progress',
      signatureStatus: 'required_and_signed',
    });
    const bought = await waitFor(async () => {
      const payment = await paymentOf(appId);
      return payment?.status === 'PURCHASED' ? payment : undefined;
    }, 'the purchase');
    expect(bought).toMatchObject({ developerSync: 'completed', paymentStatus: 'developer_confirmed' });
    const asked = developer.requests.slice(queries).map((request) => (request.body as { jws?: string }).jws);
    expect(asked).toEqual([OLD_SIGNATURE, OLD_SIGNATURE]);
    expect(await pushedToFrontend(appId, 3)).toEqual(['signature_required', 'syncing', 'purchased']);
  });

  test('a credential query failing every time after the wallet answers signed ends NOT_BUY, never asking to pay; Buy asks the developer again', async () => {
    const appId = 'held-never-answered';
    const productId = `${appId}-license`;
    await seeder.catalogApp({ name: appId, versions: ['1.0.0'], price: '9.99' });
    success(
      dataOf(await execute(server, PurchaseAppMutation, { input: { sourceId: REMOTE_SOURCE, appId } }, as)).purchaseApp,
    );
    // A bad answer, then a 5xx for every attempt after it.
    developer.setBehaviour({
      respond: 'sequence',
      steps: [{ respond: 'garbage' }, { respond: 'http-error', status: 502 }],
    });
    const queries = developer.requests.length;

    expect(await walletAnswers(productId, true, OLD_SIGNATURE)).toMatchObject({ status: 'SYNCING' });
    const gaveUp = await waitFor(async () => {
      const payment = await paymentOf(appId);
      return payment?.developerSync === 'failed' ? payment : undefined;
    }, 'the polling round to give up');
    // Not bought as far as anyone knows, the signature kept: the buyer may have paid with it.
    expect(gaveUp).toMatchObject({
      status: 'NOT_BUY',
      signatureStatus: 'required_and_signed',
      paymentStatus: 'not_evaluated',
    });
    expect(developer.requests.length - queries).toBe(2); // PAYMENT_POLL_ATTEMPTS, the first query included
    expect(await pushedToFrontend(appId, 3)).toEqual(['signature_required', 'syncing', 'not_buy']);

    // Buy on it asks the developer again, not the buyer to pay; this time it answers.
    developer.setBehaviour({ respond: 'grant', vc: 'vc-held-never-answered' });
    const again = success(
      dataOf(await execute(server, PurchaseAppMutation, { input: { sourceId: REMOTE_SOURCE, appId } }, as)).purchaseApp,
    );
    expect(again).toMatchObject({ status: 'SYNCING', developerSync: 'in_progress' });
    await waitFor(async () => ((await paymentOf(appId))?.status === 'PURCHASED' ? true : undefined), 'the purchase');
    expect(await pushedToFrontend(appId, 5)).toEqual([
      'signature_required',
      'syncing',
      'not_buy',
      'syncing',
      'purchased',
    ]);
    const recorded = (await paymentOf(appId))?.notifications.map((push) => push.status) ?? [];
    expect(recorded).not.toContain('payment_required');
  });
});
