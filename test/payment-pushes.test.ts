import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { verifySignature } from '../src/platform/signature.js';
import { graphql } from './gql/index.js';
import { availableDatabases } from './support/databases.js';
import { FakeReceiver } from './support/fake-receiver.js';
import {
  HistoryQuery,
  PurchaseAppMutation,
  SubmitPaymentTransactionMutation,
  SubmitSignatureMutation,
} from './support/operations.js';
import { REMOTE_SOURCE, seed, startSeededServer } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * Payment pushes that are really sent: each PaymentNotification row gets one outbox message to
 * its channel's URL, in the same transaction, keyed by the row; the outbox worker delivers it.
 * The credential travels to the wallet (which keeps it) and nowhere else.
 */

const databases = await availableDatabases();
const PUSH_SECRET = 'payment-push-secret-0014';
const PUBLIC_BASE_URL = 'https://market.example.com';

const PaymentPushesQuery = graphql(`
  query PaymentPushes($sourceId: String!, $appId: String!) {
    paymentStatus(sourceId: $sourceId, appId: $appId) {
      id status
      notifications { channel topic status payload }
    }
  }
`);

/** The same payment with the delivery of each push, as its buyer reads it. */
const PaymentPushDeliveriesQuery = graphql(`
  query PaymentPushDeliveries($sourceId: String!, $appId: String!) {
    paymentStatus(sourceId: $sourceId, appId: $appId) {
      id status
      notifications {
        channel topic status
        delivery { topic idempotencyKey status attempts lastStatusCode lastError nextAttemptAt deliveredAt }
      }
    }
  }
`);

const POLLING_ENV = { PAYMENT_POLL_INTERVAL_MS: '50', PAYMENT_POLL_ATTEMPTS: '5' };

async function paidApp(server: TestServer, name: string) {
  await seed(server.app.db).catalogApp({ name, versions: ['1.0.0'], price: '4.99' });
}

async function purchase(server: TestServer, appId: string) {
  const result = dataOf(
    await execute(server, PurchaseAppMutation, { input: { sourceId: REMOTE_SOURCE, appId } }, { token: TOKENS.alice }),
  ).purchaseApp;
  expect(result.__typename).toBe('PurchaseAppSuccess');
}

/** Buy, sign, pay: the simulated developer grants the credential at its second query. */
async function buyToPurchased(server: TestServer, appId: string, jws: string) {
  await purchase(server, appId);
  const productId = `${appId}-license`;
  await execute(server, SubmitSignatureMutation, { input: { productId, jws } }, { token: TOKENS.alice });
  await execute(
    server,
    SubmitPaymentTransactionMutation,
    { input: { sourceId: REMOTE_SOURCE, appId, productId, txHash: '0xfeed14' } },
    { token: TOKENS.alice },
  );
  return waitFor(async () => {
    const row = await server.app.db.payment.findFirst({ where: { userId: 'alice', appId } });
    return row?.vc ? row : undefined;
  }, `the purchase of ${appId}`);
}

/** The buyer's notification rows of one payment, oldest first, with their outbox messages. */
async function pushesOf(server: TestServer, paymentId: number) {
  const rows = await server.app.db.paymentNotification.findMany({ where: { paymentId }, orderBy: { id: 'asc' } });
  const messages = await server.app.db.outboxMessage.findMany({
    where: { notificationId: { in: rows.map((row) => row.id) } },
  });
  return { rows, messages };
}

describe.each(databases)('payment pushes on %s', (kind) => {
  describe('with the wallet and frontend push URLs set', () => {
    let server: TestServer;
    let receiver: FakeReceiver;
    beforeAll(async () => {
      receiver = await FakeReceiver.start();
      ({ server } = await startSeededServer(kind, {
        preseed: (seeder) => seeder.remoteSource(),
        env: {
          ...AUTH_ENV,
          ...POLLING_ENV,
          PUBLIC_BASE_URL,
          PAYMENT_WALLET_PUSH_URL: receiver.url('/wallet'),
          PAYMENT_FRONTEND_PUSH_URL: receiver.url('/frontend'),
          PAYMENT_PUSH_SECRET: PUSH_SECRET,
        },
      }));
    });
    afterAll(async () => {
      await server?.stop();
      await receiver?.close();
    });

    test('every push of a purchase, from Buy to the credential, is one outbox message to its channel, keyed by its notification', async () => {
      await paidApp(server, 'vault');
      const payment = await buyToPurchased(server, 'vault', 'eyJhbGciOiJFZERTQSJ9.vault.c2lnbmF0dXJl');
      const { rows, messages } = await pushesOf(server, payment.id);
      expect(rows.map((row) => `${row.channel}:${row.status ?? row.topic}`)).toEqual(
        expect.arrayContaining([
          'larepass:fetch_payment_signature',
          'larepass:market_payment',
          'frontend:signature_required',
          'frontend:payment_required',
          'frontend:waiting_developer_confirmation',
          'frontend:purchased',
          'larepass:save_payment_vc',
        ]),
      );
      expect(messages).toHaveLength(rows.length);
      for (const row of rows) {
        const sent = messages.filter((message) => message.notificationId === row.id);
        expect(sent).toHaveLength(1);
        expect(sent[0]).toMatchObject({
          kind: 'payment',
          topic: row.topic,
          url: null, // the receiver is named; its URL is read from the configuration at each attempt
          destination: row.channel === 'larepass' ? 'wallet' : 'frontend',
          idempotencyKey: expect.stringMatching(new RegExp(`^payment:${row.id}:[0-9a-f-]{36}$`)),
        });
        // What the receiver got: a delivered message's stored body is blanked (see below).
        const delivery = await receiver.waitFor((d) => d.key === sent[0]?.idempotencyKey, `the ${row.topic} push`);
        const body = JSON.parse(delivery.body);
        if (row.topic === 'save_payment_vc') {
          // The wallet keeps the credential, so it is sent; the row keeps it redacted.
          expect(body.sign.sign_body.vc).toBe(payment.vc);
          expect(row.payload).toMatchObject({ sign: { sign_body: { vc: '[redacted]', product_id: 'vault-license' } } });
          expect({ ...body, sign: { sign_body: { ...body.sign.sign_body, vc: '[redacted]' } } }).toEqual(row.payload);
        } else {
          expect(body).toEqual(row.payload);
        }
      }
      // The sign request sent tells the wallet where to answer.
      const sign = messages.find((message) => message.topic === 'market_payment');
      const signSent = receiver.received((d) => d.key === sign?.idempotencyKey)[0];
      expect(JSON.parse(signSent?.body ?? '{}').sign.callback_url).toBe(`${PUBLIC_BASE_URL}/graphql`);
      // Once delivered, the outbox keeps no copy of the credential (the notification row keeps the redacted one).
      const vcRow = rows.find((row) => row.topic === 'save_payment_vc');
      const stored = await waitFor(async () => {
        const found = await server.app.db.outboxMessage.findUnique({ where: { notificationId: vcRow?.id ?? -1 } });
        return found?.status === 'DELIVERED' ? found : undefined;
      }, 'the credential push recorded as delivered');
      expect(stored.body).toBe('{}');
    });

    test('the same transaction reported three times at once pushes waiting for the developer once', async () => {
      await paidApp(server, 'tally');
      await purchase(server, 'tally');
      const productId = 'tally-license';
      const jws = 'eyJhbGciOiJFZERTQSJ9.tally.c2lnbmF0dXJl';
      await execute(server, SubmitSignatureMutation, { input: { productId, jws } }, { token: TOKENS.alice });
      const input = { sourceId: REMOTE_SOURCE, appId: 'tally', productId, txHash: '0xbeef01' };
      const answers = await Promise.all(
        [1, 2, 3].map(() => execute(server, SubmitPaymentTransactionMutation, { input }, { token: TOKENS.alice })),
      );
      // Each is taken, or finds the purchase granted already (the developer may answer before a later one is read).
      for (const answer of answers) {
        expect(dataOf(answer).submitPaymentTransaction.__typename).toMatch(
          /^(SubmitPaymentTransactionSuccess|InvalidStateError)$/,
        );
      }
      const payment = await server.app.db.payment.findFirstOrThrow({ where: { userId: 'alice', appId: 'tally' } });
      const { rows } = await pushesOf(server, payment.id);
      expect(rows.filter((row) => row.status === 'waiting_developer_confirmation')).toHaveLength(1);
      expect(payment.txHash).toBe('0xbeef01');
    });

    test('when the outbox message of a push cannot be written, neither the push nor the change is: one transaction', async () => {
      await paidApp(server, 'atomic');
      // The fault: outbox rows already claim the next notification ids (notificationId is unique),
      // so writing the message of the next push fails inside its transaction.
      const last = await server.app.db.paymentNotification.aggregate({ _max: { id: true } });
      const next = (last._max.id ?? 0) + 1;
      await server.app.db.outboxMessage.createMany({
        data: [0, 1, 2, 3].map((offset) => ({
          kind: 'payment',
          topic: 'planted',
          url: receiver.url('/planted'),
          body: '{}',
          idempotencyKey: `planted:${next + offset}`,
          notificationId: next + offset,
          status: 'DEAD',
          nextAttemptAt: new Date(),
        })),
      });
      const refused = await execute(
        server,
        PurchaseAppMutation,
        { input: { sourceId: REMOTE_SOURCE, appId: 'atomic' } },
        { token: TOKENS.alice },
      );
      expect(refused.errors?.[0]?.message).toBe('Unexpected error.');
      // created in the transaction that asks the wallet: no payment, no push
      expect(await server.app.db.payment.findFirst({ where: { userId: 'alice', appId: 'atomic' } })).toBeNull();
      expect(await server.app.db.paymentNotification.count({ where: { userId: 'alice', id: { gte: next } } })).toBe(0);
      await server.app.db.outboxMessage.deleteMany({ where: { topic: 'planted' } });
    });

    test('a payment lists its newest 100 pushes, oldest first, however many it has (each credential resend adds one)', async () => {
      await paidApp(server, 'many-pushes');
      await purchase(server, 'many-pushes');
      const payment = await server.app.db.payment.findFirst({ where: { userId: 'alice', appId: 'many-pushes' } });
      if (!payment) throw new Error('no payment');
      await server.app.db.paymentNotification.createMany({
        data: Array.from({ length: 150 }, (_, i) => ({
          paymentId: payment.id,
          userId: 'alice',
          channel: 'larepass',
          topic: 'save_payment_vc',
          payload: { resend: i },
        })),
      });
      const { paymentStatus } = dataOf(
        await execute(
          server,
          PaymentPushesQuery,
          { sourceId: REMOTE_SOURCE, appId: 'many-pushes' },
          { token: TOKENS.alice },
        ),
      );
      const listed = paymentStatus?.notifications ?? [];
      expect(listed).toHaveLength(100);
      expect(listed.at(-1)?.payload).toEqual({ resend: 149 });
      expect(listed[0]?.payload).toEqual({ resend: 50 });
    });

    test('the wallet and the frontend receive their pushes, signed with PAYMENT_PUSH_SECRET, the credential only to the wallet', async () => {
      await paidApp(server, 'ledger');
      const payment = await buyToPurchased(server, 'ledger', 'eyJhbGciOiJFZERTQSJ9.ledger.c2lnbmF0dXJl');
      const { rows } = await pushesOf(server, payment.id);
      const credentialRow = rows.find((row) => row.topic === 'save_payment_vc');
      const purchasedRow = rows.find((row) => row.status === 'purchased');
      const credential = await receiver.waitFor(
        (delivery) => delivery.key?.startsWith(`payment:${credentialRow?.id}:`) === true,
        'the credential at the wallet',
      );
      expect(credential).toMatchObject({ path: '/wallet', topic: 'save_payment_vc' });
      expect(verifySignature(PUSH_SECRET, credential.body, credential.signature)).toBe(true);
      expect(JSON.parse(credential.body)).toMatchObject({
        topic: 'save_payment_vc',
        user: 'alice',
        sign: { sign_body: { vc: payment.vc, product_id: 'ledger-license', app_id: 'ledger', tx_hash: '0xfeed14' } },
      });
      const purchased = await receiver.waitFor(
        (delivery) => delivery.key?.startsWith(`payment:${purchasedRow?.id}:`) === true,
        'the purchased status at the frontend',
      );
      expect(purchased).toMatchObject({ path: '/frontend', topic: 'payment_state_update' });
      expect(verifySignature(PUSH_SECRET, purchased.body, purchased.signature)).toBe(true);
      expect(JSON.parse(purchased.body)).toMatchObject({
        notify_type: 'payment_state_update',
        extensions: { app_id: 'ledger', status: 'purchased' },
      });
      const toFrontend = receiver.received((delivery) => delivery.path === '/frontend').map((d) => d.body);
      expect(toFrontend.join('\n')).not.toContain(payment.vc as string);
      // The worker's record of the delivery reaches the buyer's history.
      const delivered = await waitFor(
        async () =>
          (await server.app.db.historyRecord.findFirst({
            where: { userId: 'alice', app: 'ledger', message: 'payment of ledger: credential delivered to the wallet' },
          })) ?? undefined,
        'the delivery of the credential in the history',
      );
      expect(delivered.extended).toMatchObject({ notificationId: credentialRow?.id, delivery: 'DELIVERED' });
    });

    test("each push's delivery shows on the payment: PENDING with the receiver's refusal while it fails, then DELIVERED", async () => {
      await paidApp(server, 'beacon');
      const pushesOfPayment = async () => {
        const { paymentStatus } = dataOf(
          await execute(
            server,
            PaymentPushDeliveriesQuery,
            { sourceId: REMOTE_SOURCE, appId: 'beacon' },
            { token: TOKENS.alice },
          ),
        );
        return paymentStatus?.notifications ?? [];
      };
      const signRequest = async () => {
        return (await pushesOfPayment()).find((n) => n.topic === 'market_payment')?.delivery ?? undefined;
      };
      receiver.fail(1000, 503);
      let key: string;
      try {
        await purchase(server, 'beacon');
        const refused = await waitFor(async () => {
          const delivery = await signRequest();
          return delivery?.lastError ? delivery : undefined;
        }, 'a refused attempt of the sign request');
        expect(refused).toMatchObject({
          topic: 'market_payment',
          status: 'PENDING',
          lastStatusCode: 503,
          lastError: 'the receiver answered HTTP 503: receiver is failing on purpose',
          deliveredAt: null,
        });
        expect(refused.attempts).toBeGreaterThanOrEqual(1);
        expect(refused.nextAttemptAt).not.toBeNull();
        key = refused.idempotencyKey;
        expect(receiver.received((d) => d.key === key).length).toBeGreaterThanOrEqual(1);
      } finally {
        receiver.ok();
      }
      const delivered = await waitFor(async () => {
        const delivery = await signRequest();
        return delivery?.status === 'DELIVERED' ? delivery : undefined;
      }, 'the sign request delivered');
      expect(delivered).toMatchObject({
        idempotencyKey: key,
        lastStatusCode: 200,
        lastError: null,
        nextAttemptAt: null,
        deliveredAt: expect.any(String),
      });
      expect(delivered.attempts).toBeGreaterThanOrEqual(2);
      // The receiver took it once, at the attempt the payment reports as the last.
      const accepted = receiver.received((d) => d.key === key && d.answered === 200);
      expect(accepted.map((d) => d.attempt)).toEqual([delivered.attempts]);
      // Every push of the payment (all channels have a URL here) shows a delivery of its own.
      const pushes = await pushesOfPayment();
      expect(pushes.length).toBeGreaterThan(1);
      expect(pushes.every((n) => n.delivery?.topic === n.topic)).toBe(true);
      expect(new Set(pushes.map((n) => n.delivery?.idempotencyKey)).size).toBe(pushes.length);
    });

    test('no response, history record or log line carries the credential or the signature', async () => {
      await paidApp(server, 'quill');
      const jws = 'eyJhbGciOiJFZERTQSJ9.quill.c2lnbmF0dXJlLXF1aWxs';
      const payment = await buyToPurchased(server, 'quill', jws);
      const vc = payment.vc as string;
      const seen = JSON.stringify([
        await execute(server, PaymentPushesQuery, { sourceId: REMOTE_SOURCE, appId: 'quill' }, { token: TOKENS.alice }),
        await execute(server, HistoryQuery, { first: 100 }, { token: TOKENS.alice }),
        await server.app.db.paymentNotification.findMany({ where: { paymentId: payment.id } }),
        await server.app.db.historyRecord.findMany(),
      ]);
      expect(seen).toContain('save_payment_vc');
      for (const secret of [vc, jws]) {
        expect(seen).not.toContain(secret);
        expect(server.logs.join('\n')).not.toContain(secret);
      }
    });
  });

  describe('without push URLs', () => {
    let server: TestServer;
    beforeAll(async () => {
      ({ server } = await startSeededServer(kind, {
        preseed: (seeder) => seeder.remoteSource(),
        env: { ...AUTH_ENV, ...POLLING_ENV },
      }));
    });
    afterAll(() => server?.stop());

    test('pushes are kept on the payment and nothing is queued for sending', async () => {
      await paidApp(server, 'atlas');
      await purchase(server, 'atlas');
      const payment = dataOf(
        await execute(server, PaymentPushesQuery, { sourceId: REMOTE_SOURCE, appId: 'atlas' }, { token: TOKENS.alice }),
      ).paymentStatus;
      expect(payment?.notifications.map((n) => n.topic)).toEqual(
        expect.arrayContaining(['fetch_payment_signature', 'market_payment', 'payment_state_update']),
      );
      expect(await server.app.db.outboxMessage.count()).toBe(0);
    });

    test('the end of a delivery becomes a payment history record of the buyer: delivered, or given up with the reason', async () => {
      await paidApp(server, 'orbit');
      await purchase(server, 'orbit');
      const payment = await server.app.db.payment.findFirstOrThrow({ where: { userId: 'alice', appId: 'orbit' } });
      const { rows } = await pushesOf(server, payment.id);
      const sign = rows.find((row) => row.topic === 'market_payment');
      const status = rows.find((row) => row.status === 'signature_required');
      if (!sign || !status) throw new Error('the purchase pushed no sign request');
      const { purchases } = server.app.services;
      await purchases.recordDelivery({ notificationId: sign.id, topic: sign.topic, status: 'DELIVERED', attempts: 1 });
      // A receiver that quotes the credential back: it is redacted from the record too.
      const vc = 'vc-orbit-quoted-back-by-the-receiver';
      await server.app.db.payment.update({ where: { id: payment.id }, data: { vc } });
      await purchases.recordDelivery({
        notificationId: status.id,
        topic: status.topic,
        status: 'DEAD',
        attempts: 8,
        lastError: `HTTP 500 from receiver: Bearer abcdefghijklmnopqrstuvwxyz012345 ${vc}`,
      });
      // A push that no longer exists records nothing.
      await purchases.recordDelivery({
        notificationId: 999_999,
        topic: 'market_payment',
        status: 'DELIVERED',
        attempts: 1,
      });

      const history = dataOf(
        await execute(server, HistoryQuery, { filter: { app: 'orbit' }, first: 50 }, { token: TOKENS.alice }),
      ).history.edges.map((edge) => edge.node);
      const deliveries = history.filter((record) => (record.extended as { delivery?: string }).delivery);
      expect(deliveries.map((record) => record.message).sort()).toEqual([
        'payment of orbit: sign request delivered to the wallet',
        'payment of orbit: status update "signature_required" not delivered to the frontend after 8 attempts (HTTP 500 from receiver: Bearer [redacted] [redacted])',
      ]);
      expect(deliveries.every((record) => record.type === 'PAYMENT' && record.userId === 'alice')).toBe(true);
      expect(deliveries.map((record) => record.extended)).toEqual(
        expect.arrayContaining([
          {
            paymentId: payment.id,
            productId: 'orbit-license',
            notificationId: sign.id,
            topic: 'market_payment',
            delivery: 'DELIVERED',
            attempts: 1,
          },
          expect.objectContaining({ notificationId: status.id, delivery: 'DEAD', attempts: 8 }),
        ]),
      );
      // bob sees none of alice's deliveries
      const bobs = dataOf(
        await execute(server, HistoryQuery, { filter: { app: 'orbit' }, first: 50 }, { token: TOKENS.bob }),
      ).history.edges;
      expect(bobs).toEqual([]);
    });
  });

  describe('with only the wallet push URL set', () => {
    let server: TestServer;
    let receiver: FakeReceiver;
    beforeAll(async () => {
      receiver = await FakeReceiver.start();
      ({ server } = await startSeededServer(kind, {
        preseed: (seeder) => seeder.remoteSource(),
        env: {
          ...AUTH_ENV,
          ...POLLING_ENV,
          PUBLIC_BASE_URL,
          PAYMENT_WALLET_PUSH_URL: receiver.url('/wallet'),
          PAYMENT_PUSH_SECRET: PUSH_SECRET,
        },
      }));
    });
    afterAll(async () => {
      await server?.stop();
      await receiver?.close();
    });

    test("only the wallet's pushes are queued; the frontend's are kept, not sent", async () => {
      await paidApp(server, 'prism');
      await purchase(server, 'prism');
      const payment = await server.app.db.payment.findFirstOrThrow({ where: { userId: 'alice', appId: 'prism' } });
      const { rows, messages } = await pushesOf(server, payment.id);
      const walletRows = rows.filter((row) => row.channel === 'larepass');
      expect(rows.some((row) => row.channel === 'frontend')).toBe(true);
      expect(messages.map((message) => message.notificationId).sort()).toEqual(walletRows.map((row) => row.id).sort());
      expect(new Set(messages.map((message) => message.destination))).toEqual(new Set(['wallet']));
    });
  });
});

describe("a buyer's push behind a hanging webhook receiver's backlog", () => {
  const AddHangingWebhook = graphql(`
    mutation AddHangingWebhook($input: AddWebhookInput!) {
      addWebhook(input: $input) {
        __typename
        ... on AddWebhookSuccess { webhook { webhookId } }
      }
    }
  `);
  let server: TestServer;
  let wallet: FakeReceiver;
  let hanging: FakeReceiver;
  beforeAll(async () => {
    wallet = await FakeReceiver.start();
    hanging = await FakeReceiver.start();
    hanging.hang();
    ({ server } = await startSeededServer('sqlite', {
      preseed: (seeder) => seeder.remoteSource(),
      env: {
        ...AUTH_ENV,
        PUBLIC_BASE_URL,
        PAYMENT_WALLET_PUSH_URL: wallet.url('/wallet'),
        PAYMENT_PUSH_SECRET: PUSH_SECRET,
        // Two slots, so a window of 32 claimed messages, and attempts that hang for a minute.
        OUTBOX_CONCURRENCY: '2',
        OUTBOX_ATTEMPT_TIMEOUT_MS: '60000',
        OUTBOX_POLL_INTERVAL_MS: '100',
      },
    }));
  });
  afterAll(async () => {
    await server?.stop();
    await wallet?.close();
    await hanging?.close();
  });

  test('goes out through the slot the receiver cannot take, long before its attempts time out', async () => {
    const { addWebhook } = dataOf(
      await execute(
        server,
        AddHangingWebhook,
        { input: { url: hanging.url('/hang'), events: ['TASK_FINISHED'] } },
        { token: TOKENS.ops },
      ),
    );
    if (addWebhook.__typename !== 'AddWebhookSuccess') throw new Error(JSON.stringify(addWebhook));
    // More deliveries due to the hanging receiver than the worker's window holds.
    await server.app.db.outboxMessage.createMany({
      data: Array.from({ length: 60 }, (_, i) => ({
        kind: 'webhook',
        idempotencyKey: `webhook:${addWebhook.webhook.webhookId}:backlog:${i}`,
        url: hanging.url('/hang'),
        topic: 'task.finished',
        body: '{}',
        webhookId: addWebhook.webhook.webhookId,
        nextAttemptAt: new Date(),
      })),
    });
    await waitFor(async () => (hanging.holding > 0 ? true : undefined), 'a delivery held open by the receiver');

    await paidApp(server, 'behind-backlog');
    await purchase(server, 'behind-backlog');
    // Buy asks the wallet for a signature it may hold first (fetch_payment_signature).
    const push = await wallet.waitFor((delivery) => delivery.path === '/wallet', 'the first push at the wallet');
    expect(push.topic).toBe('fetch_payment_signature');
    expect(verifySignature(PUSH_SECRET, push.body, push.signature)).toBe(true);
    expect(hanging.holding).toBe(1); // the receiver's cap: every slot but one
  });
});
