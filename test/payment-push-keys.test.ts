import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import { FakeReceiver } from './support/fake-receiver.js';
import { PurchaseAppMutation } from './support/operations.js';
import { REMOTE_SOURCE, startSeededServer } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * The Idempotency-Key of a payment push is unique beyond its database: two deployments (or one
 * restored from a backup) pushing to one receiver, whose notification numbers both start at 1,
 * never send it the same key for different pushes; and every retry of one push keeps its key.
 */

const databases = await availableDatabases();

describe.each(databases)('payment push keys on %s', (kind) => {
  let receiver: FakeReceiver;
  const servers: TestServer[] = [];
  beforeAll(async () => {
    receiver = await FakeReceiver.start();
    for (let i = 0; i < 2; i++) {
      const { server, seed } = await startSeededServer(kind, {
        preseed: (seeder) => seeder.remoteSource(),
        env: {
          ...AUTH_ENV,
          PAYMENT_WALLET_PUSH_URL: receiver.url('/wallet'),
          PAYMENT_FRONTEND_PUSH_URL: receiver.url('/frontend'),
          PUBLIC_BASE_URL: 'https://market.example.com',
          PAYMENT_PUSH_SECRET: 'payment-push-secret-keys',
          OUTBOX_BACKOFF_BASE_MS: '20',
          OUTBOX_BACKOFF_MAX_MS: '40',
        },
      });
      await seed.catalogApp({ name: 'keyed', price: '1.00' });
      servers.push(server);
    }
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    await receiver?.close();
  });

  /** Buys the app on one server and waits until every push it wrote is delivered. */
  async function buyAndDeliver(server: TestServer) {
    const bought = dataOf(
      await execute(
        server,
        PurchaseAppMutation,
        { input: { sourceId: REMOTE_SOURCE, appId: 'keyed' } },
        {
          token: TOKENS.alice,
        },
      ),
    ).purchaseApp;
    expect(bought.__typename).toBe('PurchaseAppSuccess');
    return waitFor(async () => {
      const messages = await server.app.db.outboxMessage.findMany({ where: { kind: 'payment' } });
      return messages.length > 0 && messages.every((message) => message.status === 'DELIVERED') ? messages : undefined;
    }, 'the pushes delivered');
  }

  test('two servers on two fresh databases send one receiver distinct keys, and a retried push keeps its key', async () => {
    const [first, second] = servers as [TestServer, TestServer];
    receiver.fail(1); // the first push sent is refused once, then retried
    const firstMessages = await buyAndDeliver(first);
    const secondMessages = await buyAndDeliver(second);

    const keys = [...firstMessages, ...secondMessages].map((message) => message.idempotencyKey);
    expect(new Set(keys).size).toBe(keys.length);
    // The receiver, which drops a key it already processed, processed every push of both.
    expect(receiver.duplicates).toBe(0);
    expect([...receiver.processed.keys()].sort()).toEqual([...keys].sort());

    const [refused, ...others] = receiver.requests.filter((request) => request.answered !== 200);
    expect(others).toHaveLength(0);
    const retried = receiver.requests.filter((request) => request.key === refused?.key);
    expect(retried.map((request) => [request.answered, request.attempt])).toEqual([
      [500, 1],
      [200, 2],
    ]);
    expect(retried[0]?.body).toBe(retried[1]?.body);
  });
});
