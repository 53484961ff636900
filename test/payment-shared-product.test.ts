import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import { type FakeDeveloperService, startFakeDeveloperService } from './support/fake-developer-service.js';
import {
  PaymentDetailQuery,
  PurchaseAppMutation,
  SignatureCallbackMutation,
  StartFrontendPaymentMutation,
  SubmitPaymentTransactionMutation,
  SubmitSignatureMutation,
} from './support/operations.js';
import { REMOTE_SOURCE, type Seeder, startSeededServer } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * Two apps of one source sold under one product id, by different developers: the wallet's answers
 * name the app the request was for, and a signature never reaches the other app's developer.
 */

const databases = await availableDatabases();
const PRODUCT = 'shared-license';
const SIGNATURE_A = 'eyJhbGciOiJFUzI1NiJ9.for-twin-a.U0lHQQ';

describe.each(databases)('apps sharing a product id on %s', (kind) => {
  let server: TestServer;
  let seeder: Seeder;
  let developer: FakeDeveloperService;
  beforeAll(async () => {
    developer = await startFakeDeveloperService();
    ({ server, seed: seeder } = await startSeededServer(kind, {
      preseed: (seed) => seed.remoteSource(),
      env: { ...AUTH_ENV, DEVELOPER_SERVICE_URL_TEMPLATE: developer.urlTemplate, PAYMENT_POLL_INTERVAL_MS: '20' },
    }));
  });
  afterAll(async () => {
    await server?.stop();
    await developer?.stop();
  });

  const as = { token: TOKENS.alice };
  const paymentOf = async (appId: string) =>
    dataOf(await execute(server, PaymentDetailQuery, { sourceId: REMOTE_SOURCE, appId }, as)).paymentStatus;

  /** A paid app of the remote source sold as PRODUCT by `developerName`. */
  async function twin(appId: string, developerName: string) {
    const app = await seeder.catalogApp({ name: appId, price: '9.99' });
    const price = app.price as { paid: Record<string, unknown> };
    await server.app.db.catalogApp.update({
      where: { id: app.id },
      data: { price: { ...price, developer: developerName, paid: { ...price.paid, product_id: PRODUCT } } },
    });
  }

  async function buy(appId: string) {
    const result = dataOf(
      await execute(server, PurchaseAppMutation, { input: { sourceId: REMOTE_SOURCE, appId } }, as),
    ).purchaseApp;
    expect(result.__typename).toBe('PurchaseAppSuccess');
  }

  test('a signature answered for one app is stored on that app and reaches only its developer', async () => {
    await twin('twin-a', 'dev-a');
    await twin('twin-b', 'dev-b');
    await buy('twin-a');
    await buy('twin-b');

    // Each request tells the wallet which payment its answer is for.
    const signRequest = (await paymentOf('twin-a'))?.notifications.find((push) => push.topic === 'market_payment');
    expect((signRequest?.payload as { sign?: unknown } | undefined)?.sign).toMatchObject({
      callback_mutation: 'submitSignature',
      callback_input: { productId: PRODUCT, appId: 'twin-a' },
    });

    // A wallet naming only the product cannot say which of the two it signed: refused, nothing stored.
    const ambiguous = dataOf(
      await execute(server, SubmitSignatureMutation, { input: { productId: PRODUCT, jws: SIGNATURE_A } }, as),
    ).submitSignature;
    expect(ambiguous).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION' });
    expect((ambiguous as { message: string }).message).toContain('name the app (appId)');
    const unanswered = dataOf(
      await execute(server, SignatureCallbackMutation, { input: { productId: PRODUCT, signed: false } }, as),
    ).signatureCallback;
    expect(unanswered).toMatchObject({ __typename: 'ValidationError' });
    expect(await paymentOf('twin-b')).toMatchObject({ status: 'SIGNATURE_REQUIRED', larePassSync: 'in_progress' });

    const signed = dataOf(
      await execute(
        server,
        SubmitSignatureMutation,
        { input: { productId: PRODUCT, appId: 'twin-a', jws: SIGNATURE_A } },
        as,
      ),
    ).submitSignature;
    expect(signed).toMatchObject({ __typename: 'SubmitSignatureSuccess', payment: { status: 'PAYMENT_REQUIRED' } });
    expect(await paymentOf('twin-b')).toMatchObject({ status: 'SIGNATURE_REQUIRED' });

    const product = { sourceId: REMOTE_SOURCE, appId: 'twin-a', productId: PRODUCT };
    await execute(server, StartFrontendPaymentMutation, { input: product }, as);
    await execute(server, SubmitPaymentTransactionMutation, { input: { ...product, txHash: '0xa1' } }, as);
    await waitFor(
      async () => ((await paymentOf('twin-a'))?.status === 'PURCHASED' ? true : undefined),
      'twin-a bought',
    );
    expect(developer.requests.map((request) => request.developer)).toEqual(['dev-a']);
    expect(await paymentOf('twin-b')).toMatchObject({ status: 'SIGNATURE_REQUIRED' });

    // twin-b can still be bought, with its own signature and developer.
    const signedB = dataOf(
      await execute(
        server,
        SubmitSignatureMutation,
        { input: { productId: PRODUCT, appId: 'twin-b', jws: 'eyJhbGciOiJFUzI1NiJ9.for-twin-b.U0lHQg' } },
        as,
      ),
    ).submitSignature;
    expect(signedB).toMatchObject({ payment: { status: 'PAYMENT_REQUIRED' } });
  });
});
