import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { productTermsOf, termsFromSignBody, termsToWire } from '../src/domain/payment-terms.js';
import { graphql } from './gql/index.js';
import { availableDatabases } from './support/databases.js';
import { PurchaseAppMutation, SubmitSignatureMutation } from './support/operations.js';
import { REMOTE_SOURCE, seed, startSeededServer } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, type TestServer, TOKENS } from './support/server.js';

/**
 * The payment data a wallet and a frontend act on: what to pay (amount, token, chain, receiving
 * wallet) from the catalogue's price config, the sign request's callback URL and the product's
 * credential manifest, on the payment's GraphQL fields and in its pushes.
 */

const databases = await availableDatabases();
const PUBLIC_BASE_URL = 'https://market.example.com/store';
const USDC_ON_OPTIMISM = '0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85';

/** A price config as a market source serves it: one complete price with token details, one plain, one unpayable. */
function priceConfig(productId: string, amount = '9.99') {
  return {
    developer: 'acme-studio',
    paid: {
      product_id: productId,
      price: [
        {
          chain: 'optimism',
          token_symbol: 'USDC',
          token_contract: USDC_ON_OPTIMISM,
          token_decimals: 6,
          receive_wallet: '0x1111111111111111111111111111111111111111',
          product_price: amount,
        },
        {
          chain: 'eth',
          token_symbol: 'USDT',
          receive_wallet: '0x2222222222222222222222222222222222222222',
          product_price: 12.5,
        },
        // No receiving wallet: nobody can pay this one, so it is not offered.
        { chain: 'bsc', token_symbol: 'USDT', product_price: '9.99' },
      ],
      description: [
        { lang: 'zh-CN', title: '工作室许可', description: '一次性购买' },
        { lang: 'en-US', title: 'Studio licence', description: 'One-time purchase' },
      ],
    },
  };
}

const PaymentTermsQuery = graphql(`
  query PaymentTerms($sourceId: String!, $appId: String!) {
    paymentStatus(sourceId: $sourceId, appId: $appId) {
      productId
      status
      price { amount chain receivingWallet token { symbol contract decimals icon } }
      product {
        productId type title description developer
        prices { amount chain receivingWallet token { symbol contract decimals } }
      }
      notifications { channel topic status payload }
    }
  }
`);

type Notification = { channel: string; topic: string; status: string | null; payload: unknown };
type SignPush = {
  sign: {
    callback_url: string;
    callback_mutation: string;
    is_resign?: boolean;
    sign_body: {
      product_id: string;
      application_verifiable_credential: { productId: string };
      product_credential_manifest: {
        id: string;
        spec_version: string;
        issuer: { id: string };
        output_descriptors: { id: string; name: string }[];
        presentation_definition: { input_descriptors: { id: string }[] };
      };
      product: { product_id: string; developer: string; price: Record<string, unknown>[] };
    };
  };
  user: string;
  topic: string;
};

function pushOf(notifications: Notification[], topic: string): SignPush {
  const found = notifications.filter((n) => n.topic === topic).at(-1);
  if (!found) throw new Error(`no ${topic} push in ${JSON.stringify(notifications)}`);
  return found.payload as SignPush;
}

describe('payment terms from a price config', () => {
  test('a product is found by its id among the paid block and the in-app products; unpayable prices are left out', () => {
    const config = {
      developer: 'acme',
      paid: priceConfig('app-license').paid,
      products: [
        {
          product_id: 'credits-100',
          type: 'consumable',
          price: [
            {
              chain: 'optimism',
              token_symbol: 'USDC',
              receive_wallet: '0x33',
              product_price: '1.00',
              token_decimals: '6',
            },
          ],
        },
      ],
    };
    expect(productTermsOf(config, 'credits-100')).toEqual({
      productId: 'credits-100',
      type: 'consumable',
      developer: 'acme',
      title: null,
      description: null,
      prices: [
        {
          chain: 'optimism',
          tokenSymbol: 'USDC',
          tokenContract: null,
          tokenDecimals: 6,
          tokenIcon: null,
          amount: '1.00',
          receiveWallet: '0x33',
        },
      ],
    });
    const paid = productTermsOf(config, 'app-license');
    expect(paid?.title).toBe('Studio licence');
    expect(paid?.prices.map((p) => `${p.amount} ${p.tokenSymbol} on ${p.chain}`)).toEqual([
      '9.99 USDC on optimism',
      '12.5 USDT on eth',
    ]);
    // A product id that fell back to the app id names the paid block.
    expect(productTermsOf(config, 'some-app')?.prices).toHaveLength(2);
    expect(productTermsOf({ developer: 'acme', products: [] }, 'x')).toBeNull();
    expect(productTermsOf(null, 'x')).toBeNull();
  });

  test('terms written into a sign body read back the same', () => {
    const terms = productTermsOf(priceConfig('app-license'), 'app-license');
    expect(terms).not.toBeNull();
    expect(termsFromSignBody({ product: termsToWire(terms as never) })).toEqual(terms);
    expect(termsFromSignBody({ product_credential_manifest: 'manifest:old' })).toBeNull();
  });
});

describe.each(databases)('payment data on %s', (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    ({ server } = await startSeededServer(kind, {
      preseed: (seeder) => seeder.remoteSource(),
      env: { ...AUTH_ENV, PUBLIC_BASE_URL, PAYMENT_POLL_INTERVAL_MS: '50', PAYMENT_POLL_ATTEMPTS: '3' },
    }));
  });
  afterAll(() => server?.stop());

  /** A paid catalogue app whose price config is priceConfig(`<name>-license`). */
  async function paidApp(name: string, amount?: string) {
    await seed(server.app.db).catalogApp({ name, versions: ['1.0.0'], price: '1.00' });
    await server.app.db.catalogApp.update({
      where: { sourceId_appId: { sourceId: REMOTE_SOURCE, appId: name } },
      data: { price: priceConfig(`${name}-license`, amount) },
    });
  }

  const terms = async (appId: string, token: string = TOKENS.alice) =>
    dataOf(await execute(server, PaymentTermsQuery, { sourceId: REMOTE_SOURCE, appId }, { token })).paymentStatus;

  const purchase = async (appId: string) =>
    dataOf(
      await execute(
        server,
        PurchaseAppMutation,
        { input: { sourceId: REMOTE_SOURCE, appId } },
        { token: TOKENS.alice },
      ),
    ).purchaseApp;

  test('after Buy, the payment shows what to pay: amount, token with its contract and decimals, chain and receiving wallet', async () => {
    await paidApp('studio');
    expect((await purchase('studio')).__typename).toBe('PurchaseAppSuccess');
    const payment = await terms('studio');
    expect(payment?.price).toEqual({
      amount: '9.99',
      chain: 'optimism',
      receivingWallet: '0x1111111111111111111111111111111111111111',
      token: { symbol: 'USDC', contract: USDC_ON_OPTIMISM, decimals: 6, icon: null },
    });
    expect(payment?.product).toEqual({
      productId: 'studio-license',
      type: null,
      title: 'Studio licence',
      description: 'One-time purchase',
      developer: 'acme-studio',
      prices: [
        {
          amount: '9.99',
          chain: 'optimism',
          receivingWallet: '0x1111111111111111111111111111111111111111',
          token: { symbol: 'USDC', contract: USDC_ON_OPTIMISM, decimals: 6 },
        },
        {
          amount: '12.5',
          chain: 'eth',
          receivingWallet: '0x2222222222222222222222222222222222222222',
          token: { symbol: 'USDT', contract: null, decimals: null },
        },
      ],
    });
  });

  test('the sign request asks the wallet to answer at the GraphQL endpoint under PUBLIC_BASE_URL, with the product credential manifest and the terms', async () => {
    await paidApp('sketch');
    await purchase('sketch');
    const notifications = (await terms('sketch'))?.notifications ?? [];
    const sign = pushOf(notifications, 'market_payment');
    expect(sign).toMatchObject({
      user: 'alice',
      topic: 'market_payment',
      sign: {
        callback_url: `${PUBLIC_BASE_URL}/graphql`,
        callback_mutation: 'submitSignature',
        is_resign: false,
        sign_body: {
          product_id: 'sketch-license',
          application_verifiable_credential: { productId: 'sketch-license' },
          product: {
            product_id: 'sketch-license',
            developer: 'acme-studio',
            price: [
              {
                chain: 'optimism',
                token_symbol: 'USDC',
                token_contract: USDC_ON_OPTIMISM,
                token_decimals: 6,
                product_price: '9.99',
                receive_wallet: '0x1111111111111111111111111111111111111111',
              },
              { chain: 'eth', token_symbol: 'USDT', product_price: '12.5' },
            ],
          },
        },
      },
    });
    const manifest = sign.sign.sign_body.product_credential_manifest;
    expect(manifest).toMatchObject({
      id: `urn:olares-market:${REMOTE_SOURCE}:sketch:sketch-license`,
      spec_version: 'https://identity.foundation/credential-manifest/spec/v1.0.0/',
      // the simulated developer service's DID of the developer the price config names
      issuer: { id: 'did:key:sim-acme-studio' },
      output_descriptors: [{ id: 'sketch-license-licence', name: 'Studio licence' }],
      presentation_definition: { input_descriptors: [{ id: 'productId' }] },
    });
    expect(JSON.stringify(notifications)).not.toMatch(/manifest:|placeholder/);

    // The question for an existing signature is answered on the same endpoint, by signatureCallback.
    expect(pushOf(notifications, 'fetch_payment_signature').sign).toMatchObject({
      callback_url: `${PUBLIC_BASE_URL}/graphql`,
      callback_mutation: 'signatureCallback',
      sign_body: { product_id: 'sketch-license', product_credential_manifest: { id: manifest.id } },
    });
  });

  test('once signed, the frontend is asked to pay with payment data: the developer, the product and every way to pay', async () => {
    await paidApp('mixer');
    await purchase('mixer');
    const signed = dataOf(
      await execute(
        server,
        SubmitSignatureMutation,
        { input: { productId: 'mixer-license', jws: 'eyJhbGciOiJFZERTQSJ9.mixer.c2ln' } },
        { token: TOKENS.alice },
      ),
    ).submitSignature;
    expect(signed).toMatchObject({ payment: { status: 'PAYMENT_REQUIRED' } });
    const notifications = (await terms('mixer'))?.notifications ?? [];
    const required = notifications.find((n) => n.status === 'payment_required');
    expect(required?.payload).toMatchObject({
      user: 'alice',
      notify_type: 'payment_state_update',
      extensions: { app_id: 'mixer', app_name: 'mixer', source_id: REMOTE_SOURCE, status: 'payment_required' },
      extensions_obj: {
        payment_data: {
          to: 'did:key:sim-acme-studio',
          product: [{ product_id: 'mixer-license' }],
          price_config: { product_id: 'mixer-license' },
          token_info: [
            {
              chain: 'optimism',
              token_symbol: 'USDC',
              token_decimals: 6,
              token_contract: USDC_ON_OPTIMISM,
              token_amount: '9.99',
              receive_wallet: '0x1111111111111111111111111111111111111111',
            },
            {
              chain: 'eth',
              token_symbol: 'USDT',
              token_decimals: null,
              token_amount: '12.5',
              receive_wallet: '0x2222222222222222222222222222222222222222',
            },
          ],
        },
      },
    });
  });

  test('a payment keeps the price its buyer was asked to sign when the catalogue changes the price later', async () => {
    await paidApp('tuner', '5.00');
    await purchase('tuner');
    await server.app.db.catalogApp.update({
      where: { sourceId_appId: { sourceId: REMOTE_SOURCE, appId: 'tuner' } },
      data: { price: priceConfig('tuner-license', '50.00') },
    });
    expect((await terms('tuner'))?.price?.amount).toBe('5.00');
  });

  test("a payment written before terms were kept shows the catalogue's price for its product", async () => {
    await paidApp('legacy');
    await seed(server.app.db).user('bob').payment({ appId: 'legacy', status: 'signed' });
    const payment = await terms('legacy', TOKENS.bob);
    expect(payment?.productId).toBe('legacy-license');
    expect(payment?.price).toMatchObject({ amount: '9.99', chain: 'optimism', token: { symbol: 'USDC' } });
  });
});
