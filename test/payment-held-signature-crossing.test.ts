import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import type { FakeDeveloperService } from './support/fake-developer-service.js';
import type { FakeReceiver } from './support/fake-receiver.js';
import {
  PaymentDetailQuery,
  PurchaseAppMutation,
  SignatureCallbackMutation,
  SubmitSignatureMutation,
} from './support/operations.js';
import { type PaymentWorld, startPaymentWorld, success } from './support/payments.js';
import { REMOTE_SOURCE, type Seeder } from './support/seed.js';
import { dataOf, execute, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * The first Buy asks the wallet both whether it holds a signature and to sign, so a wallet
 * holding one may answer both: the signature it held (signatureCallback, whose credential query
 * then goes out) and a new one (submitSignature) while that query is still out. The developer's
 * grant for the held signature proves the purchase all the same; its "no record" is moot.
 */

const databases = await availableDatabases();
const HELD = 'eyJhbGciOiJFUzI1NiJ9.held-on-another-device.SEVMRA';
const NEW = 'eyJhbGciOiJFUzI1NiJ9.signed-for-this-buy.TkVX';

describe.each(databases)('a held signature and a new one crossing, on %s', (kind) => {
  let world: PaymentWorld;
  let server: TestServer;
  let seeder: Seeder;
  let developer: FakeDeveloperService;
  let wallet: FakeReceiver;
  beforeAll(async () => {
    world = await startPaymentWorld(kind, { wallet: true, secret: 'payment-push-secret-held-crossing' });
    ({ server, seeder, developer } = world);
    wallet = world.wallet as FakeReceiver;
  });
  afterAll(() => world?.stop());

  const as = { token: TOKENS.alice };
  const paymentOf = async (appId: string) =>
    dataOf(await execute(server, PaymentDetailQuery, { sourceId: REMOTE_SOURCE, appId }, as)).paymentStatus;
  const askedSince = (from: number) =>
    developer.requests.slice(from).map((request) => (request.body as { jws?: string }).jws);

  /**
   * Buy; the wallet says it holds HELD and, once the developer has that query, returns NEW for the
   * sign request; then the developer answers (`release`). What each answer got, and what the
   * developer was asked.
   */
  const crossing = async (appId: string, release: () => void) => {
    const productId = `${appId}-license`;
    await seeder.catalogApp({ name: appId, versions: ['1.0.0'], price: '9.99' });
    const bought = success(
      dataOf(await execute(server, PurchaseAppMutation, { input: { sourceId: REMOTE_SOURCE, appId } }, as)).purchaseApp,
    );
    expect(bought.status).toBe('SIGNATURE_REQUIRED');
    const queries = developer.requests.length;
    const held = execute(server, SignatureCallbackMutation, { input: { productId, signed: true, jws: HELD } }, as);
    await waitFor(async () => (askedSince(queries).includes(HELD) ? true : undefined), 'the query about HELD');
    const signed = success(
      dataOf(await execute(server, SubmitSignatureMutation, { input: { productId, jws: NEW } }, as)).submitSignature,
    );
    release();
    const answered = success(dataOf(await held).signatureCallback);
    return { signed, answered, asked: askedSince(queries) };
  };

  /** A developer answer held back until `release`. */
  const heldAnswer = () => {
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    return { released, release };
  };

  test('a credential granted for the held signature after the wallet signed anew buys, and reaches the wallet', async () => {
    const appId = 'held-granted-after-new-signature';
    const vc = `vc-${appId}`;
    const query = heldAnswer();
    developer.setBehaviour({ respond: 'after', released: query.released, answer: { respond: 'grant', vc } });

    const { signed, answered, asked } = await crossing(appId, query.release);
    expect(signed.status).toBe('PAYMENT_REQUIRED');
    expect(answered).toMatchObject({ status: 'PURCHASED', developerSync: 'completed' });
    expect(asked).toEqual([HELD]);
    expect(await paymentOf(appId)).toMatchObject({ status: 'PURCHASED', paymentStatus: 'developer_confirmed' });
    const row = await server.app.db.payment.findFirstOrThrow({ where: { userId: 'alice', appId } });
    expect(row.vc).toBe(vc);
    const saved = await wallet.waitFor(
      (delivery) => delivery.topic === 'save_payment_vc' && JSON.parse(delivery.body).sign.sign_body.app_id === appId,
      `the credential of ${appId} at the wallet`,
    );
    expect(JSON.parse(saved.body).sign.sign_body.vc).toBe(vc);
  });

  test('no record of the held signature after the wallet signed anew changes nothing: the buyer pays with the new one', async () => {
    const appId = 'held-no-record-after-new-signature';
    const query = heldAnswer();
    developer.setBehaviour({
      respond: 'after',
      released: query.released,
      answer: { respond: 'json', body: { code: 1501 } },
    });

    const { signed, answered, asked } = await crossing(appId, query.release);
    expect(signed.status).toBe('PAYMENT_REQUIRED');
    expect(answered).toMatchObject({ status: 'PAYMENT_REQUIRED', signatureStatus: 'required_and_signed' });
    expect(asked).toEqual([HELD]);
    const payment = await paymentOf(appId);
    expect(payment?.status).toBe('PAYMENT_REQUIRED');
    expect(payment?.notifications.map((push) => push.status)).not.toContain('signature_no_record');
    const row = await server.app.db.payment.findFirstOrThrow({ where: { userId: 'alice', appId } });
    expect(row).toMatchObject({ jws: NEW, vc: null });
  });
});
