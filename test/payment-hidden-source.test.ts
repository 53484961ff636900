import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import {
  PaymentDetailQuery,
  PurchaseAppMutation,
  RestorePurchaseMutation,
  SubmitSignatureMutation,
} from './support/operations.js';
import { type PaymentWorld, startPaymentWorld, success } from './support/payments.js';
import { REMOTE_SOURCE } from './support/seed.js';
import { dataOf, execute, TOKENS } from './support/server.js';
import { rawRequest } from './support/untyped.js';

/**
 * A remote source the admin no longer offers (an inactive remote) does not exist for anyone else:
 * a restore there restores only a purchase the buyer began there, and otherwise answers what
 * purchaseApp answers, creating and pushing nothing; paymentStatus there tells none of its apps
 * from the ones it does not have (the reviewer's probe: NOT_FOUND for a missing app, null or a
 * price for a present one, "free" for a free one).
 */

const databases = await availableDatabases();
const ADD = `mutation ($input: AddMarketSourceInput!) { addMarketSource(input: $input) { __typename } }`;
const SELECT = `mutation ($input: SelectMarketSourceInput!) { selectMarketSource(input: $input) { __typename } }`;
const BOUGHT = 'hidden-bought';
const PAID = 'hidden-paid';
const FREE = 'hidden-free';
const MISSING = 'hidden-missing';

describe.each(databases)('purchases from a source hidden from the buyer, on %s', (kind) => {
  let world: PaymentWorld;
  const as = { token: TOKENS.alice };
  let boughtId: string;

  beforeAll(async () => {
    world = await startPaymentWorld(kind, { wallet: true, secret: 'payment-push-secret-hidden-source' });
    const { server, seeder } = world;
    await seeder.catalogApp({ name: BOUGHT, price: '9.99' });
    await seeder.catalogApp({ name: PAID, price: '4.99' });
    await seeder.catalogApp({ name: FREE });
    // Alice began buying one app while the source was the active one.
    const bought = await execute(
      server,
      PurchaseAppMutation,
      { input: { sourceId: REMOTE_SOURCE, appId: BOUGHT } },
      as,
    );
    boughtId = success(dataOf(bought).purchaseApp).id;
    // Then the admin selected another remote: market.olares is inactive, offered to admins only.
    const admin = { token: TOKENS.ops };
    const source = { sourceId: 'home.market', title: 'Home', baseUrl: 'http://127.0.0.1:47099' };
    const added = await rawRequest(server, { query: ADD, variables: { input: source } }, admin);
    expect(added.text).toContain('"__typename":"AddMarketSourceSuccess"');
    const input = { sourceId: 'home.market', nsfw: false };
    const selected = await rawRequest(server, { query: SELECT, variables: { input } }, admin);
    expect(selected.text).toContain('"__typename":"SelectMarketSourceSuccess"');
  }, 60_000);
  afterAll(() => world?.stop());

  const restore = async (appId: string) =>
    dataOf(await execute(world.server, RestorePurchaseMutation, { input: { sourceId: REMOTE_SOURCE, appId } }, as))
      .restorePurchase;
  const purchase = async (appId: string) =>
    dataOf(await execute(world.server, PurchaseAppMutation, { input: { sourceId: REMOTE_SOURCE, appId } }, as))
      .purchaseApp;
  const statusAnswer = async (appId: string, token: string = TOKENS.alice) => {
    const response = await execute(world.server, PaymentDetailQuery, { sourceId: REMOTE_SOURCE, appId }, { token });
    return {
      data: response.data?.paymentStatus ?? null,
      errors: response.errors?.map((error) => ({
        code: error.extensions?.code,
        message: error.message.replace(appId, '<app>'),
      })),
    };
  };
  /** Alice's payments of an app, and her pushes (every push is a row of its payment, written with the change). */
  const rowsOf = async (appId: string) => {
    const db = world.seeder.db;
    const payments = await db.payment.count({ where: { userId: 'alice', appId } });
    return { payments, pushes: await db.paymentNotification.count({ where: { userId: 'alice' } }) };
  };

  test('a restore of an app never bought there is NOT_FOUND as purchaseApp is, paid, free or missing alike, creating and pushing nothing', async () => {
    const before = await rowsOf(PAID);
    for (const appId of [PAID, FREE, MISSING]) {
      const expected = { __typename: 'NotFoundError', code: 'NOT_FOUND' };
      const message = `App ${appId} is not in the catalogue of ${REMOTE_SOURCE}`;
      expect(await purchase(appId)).toEqual({ ...expected, message });
      expect(await restore(appId), appId).toEqual({ ...expected, message });
      expect(await rowsOf(appId), appId).toEqual({ payments: 0, pushes: before.pushes });
    }
  });

  test('a purchase begun there before the switch is still restored, and carried on', async () => {
    const restored = success(await restore(BOUGHT));
    expect(restored.id).toBe(boughtId);
    expect((await rowsOf(BOUGHT)).payments).toBe(1);
    const productId = `${BOUGHT}-license`;
    const signed = await execute(
      world.server,
      SubmitSignatureMutation,
      { input: { productId, appId: BOUGHT, jws: 'eyJhbGciOiJFUzI1NiJ9.hidden.U0lHTg' } },
      as,
    );
    expect(success(dataOf(signed).submitSignature).id).toBe(boughtId);
  });

  test('paymentStatus answers alike for an app the hidden source has and one it has not, and reads the buyer own payment', async () => {
    const missing = await statusAnswer(MISSING);
    expect(missing).toEqual({
      data: null,
      errors: [{ code: 'NOT_FOUND', message: `App <app> is not in the catalogue of source ${REMOTE_SOURCE}` }],
    });
    expect(await statusAnswer(PAID)).toEqual(missing);
    expect(await statusAnswer(FREE)).toEqual(missing);
    expect((await statusAnswer(BOUGHT)).data).toMatchObject({ id: boughtId, userId: 'alice' });
    // An admin is offered the inactive remote: its apps read as on any offered source.
    expect(await statusAnswer(PAID, TOKENS.ops)).toEqual({ data: null, errors: undefined });
    expect((await statusAnswer(MISSING, TOKENS.ops)).errors?.[0]?.code).toBe('NOT_FOUND');
  });
});
