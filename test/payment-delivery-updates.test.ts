import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { graphql } from './gql/index.js';
import { availableDatabases } from './support/databases.js';
import { FakeReceiver } from './support/fake-receiver.js';
import { PurchaseAppMutation } from './support/operations.js';
import { REMOTE_SOURCE, startSeededServer } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, type TestServer, TOKENS } from './support/server.js';
import { subscribe } from './support/subscriptions.js';

/**
 * `paymentUpdated` follows the delivery of a payment's pushes: a subscriber sees each push move
 * from PENDING to DELIVERED, or to DEAD once it is given up on.
 */

const databases = await availableDatabases();

const PaymentDeliveriesSubscription = graphql(`
  subscription PaymentDeliveries($filter: PaymentFilter) {
    paymentUpdated(filter: $filter) { appId notifications { topic delivery { status } } }
  }
`);

describe.each(databases)('push deliveries in paymentUpdated on %s', (kind) => {
  let server: TestServer;
  let receiver: FakeReceiver;
  beforeAll(async () => {
    receiver = await FakeReceiver.start();
    const started = await startSeededServer(kind, {
      preseed: (seeder) => seeder.remoteSource(),
      env: {
        ...AUTH_ENV,
        PUBLIC_BASE_URL: 'https://market.example.com',
        PAYMENT_WALLET_PUSH_URL: receiver.url('/wallet'),
        PAYMENT_FRONTEND_PUSH_URL: receiver.url('/frontend'),
        PAYMENT_PUSH_SECRET: 'payment-push-secret-updates',
        OUTBOX_MAX_ATTEMPTS: '1',
      },
    });
    server = started.server;
    await started.seed.catalogApp({ name: 'delivered-app', price: '3.00' });
    await started.seed.catalogApp({ name: 'dead-app', price: '3.00' });
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
  });

  type Update = { paymentUpdated: { notifications: { delivery: { status: string } | null }[] } };
  const statusesOf = (update: Update) =>
    update.paymentUpdated.notifications.map((push) => push.delivery?.status ?? 'none');

  /** Buys `appId` while the receiver holds every push, then answers them all with `answer`. */
  async function buyAndAnswer(appId: string, answer: number, final: string) {
    const updates = await subscribe(
      server,
      PaymentDeliveriesSubscription,
      { filter: { appId } },
      { token: TOKENS.alice },
    );
    try {
      receiver.hang();
      const before = receiver.requests.length;
      const bought = dataOf(
        await execute(
          server,
          PurchaseAppMutation,
          { input: { sourceId: REMOTE_SOURCE, appId } },
          {
            token: TOKENS.alice,
          },
        ),
      ).purchaseApp;
      expect(bought.__typename).toBe('PurchaseAppSuccess');
      // The three pushes (signature question, sign request, signature_required) are held at the receiver,
      await updates.until((update) => statusesOf(update).length === 3);
      await receiver.waitFor(() => receiver.requests.length - before === 3, 'the three pushes held');
      // and then answered: the subscriber sees their end without asking.
      receiver.ok();
      receiver.release(answer);
      const seen = await updates.until((update) => statusesOf(update).every((status) => status === final));
      expect(statusesOf(seen.at(-1) as Update)).toEqual([final, final, final]);
    } finally {
      await updates.close();
    }
  }

  test('a subscriber sees the pushes of a payment delivered', async () => {
    await buyAndAnswer('delivered-app', 200, 'DELIVERED');
  });

  test('a subscriber sees the pushes of a payment given up on', async () => {
    await buyAndAnswer('dead-app', 500, 'DEAD');
  });
});
