import { afterAll, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { FakeReceiver } from './support/fake-receiver.js';
import { PurchaseAppMutation } from './support/operations.js';
import { REMOTE_SOURCE, seed } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * A payment push names its receiver (the wallet, the frontend), and the outbox worker sends it to
 * that receiver's URL as the instance is configured at each attempt: an operator who changes
 * PAYMENT_WALLET_PUSH_URL (a wrong address, a leaked token in it) and restarts reaches the pushes
 * already queued too, and no push URL, nor its token, is ever stored.
 */

const databases = await availableDatabases();
/** Nothing listens there (a port of this test's range): every attempt is refused. */
const OLD_WALLET_URL = 'http://127.0.0.1:4599/wallet?tok=OLDTOKEN';
const OLD_FRONTEND_URL = 'http://127.0.0.1:4599/frontend?tok=OLDTOKEN';

describe.each(databases)('payment pushes after their URL changed, on %s', (kind) => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => {});
  });

  /** A server on `database` with these push URLs, retrying a refused push within a second. */
  const serverWith = async (database: TestDatabase, walletUrl: string, frontendUrl: string) => {
    const server = await startTestServer(kind, {
      database,
      env: {
        ...AUTH_ENV,
        DEMO_DATA: '0',
        BUNDLED_CATALOGUE_FILE: 'off',
        PUBLIC_BASE_URL: 'https://market.example.com',
        PAYMENT_WALLET_PUSH_URL: walletUrl,
        PAYMENT_FRONTEND_PUSH_URL: frontendUrl,
        PAYMENT_PUSH_SECRET: 'payment-push-secret-payrace',
        OUTBOX_BACKOFF_BASE_MS: '200',
        OUTBOX_BACKOFF_MAX_MS: '800',
        OUTBOX_MAX_ATTEMPTS: '100',
      },
    });
    cleanup.push(() => server.stop());
    return server;
  };

  test('pushes queued for the old URL go to the URL the restarted instance is given, and no push URL is stored', async () => {
    const receiver = await FakeReceiver.start();
    cleanup.push(() => receiver.close());
    const database = await createTestDatabase(kind);
    cleanup.push(() => database.drop());
    const db = createPrismaClient(database.url);
    await seed(db).remoteSource();
    await seed(db).catalogApp({ name: 'vault', versions: ['1.0.0'], price: '4.99' });
    await db.$disconnect();

    let server: TestServer = await serverWith(database, OLD_WALLET_URL, OLD_FRONTEND_URL);
    const bought = dataOf(
      await execute(
        server,
        PurchaseAppMutation,
        { input: { sourceId: REMOTE_SOURCE, appId: 'vault' } },
        {
          token: TOKENS.alice,
        },
      ),
    ).purchaseApp;
    expect(bought.__typename).toBe('PurchaseAppSuccess');
    // The wallet pushes (the signature question, the sign request) were tried and refused.
    const refused = await waitFor(async () => {
      const rows = await server.app.db.outboxMessage.findMany({ where: { kind: 'payment' }, orderBy: { id: 'asc' } });
      return rows.length > 0 && rows.every((row) => row.status === 'PENDING' && row.lastError) ? rows : undefined;
    }, 'every push to be refused at the old address');
    expect(refused.map((row) => row.topic).sort()).toEqual([
      'fetch_payment_signature',
      'market_payment',
      'payment_state_update',
    ]);
    await server.stop();

    server = await serverWith(database, receiver.url('/wallet?tok=NEWTOKEN'), receiver.url('/frontend?tok=NEWTOKEN'));
    for (const row of refused) {
      const delivery = await receiver.waitFor((d) => d.key === row.idempotencyKey, `the ${row.topic} push`);
      expect(delivery.path).toBe(
        row.topic === 'payment_state_update' ? '/frontend?tok=NEWTOKEN' : '/wallet?tok=NEWTOKEN',
      );
    }
    await waitFor(async () => {
      const pending = await server.app.db.outboxMessage.count({
        where: { kind: 'payment', status: { not: 'DELIVERED' } },
      });
      return pending === 0 ? true : undefined;
    }, 'every push recorded as delivered');
    // Neither address, nor its token, is in the outbox.
    const stored = await server.app.db.outboxMessage.findMany({ where: { kind: 'payment' } });
    expect(stored.map((row) => [row.topic, row.url, row.destination]).sort()).toEqual([
      ['fetch_payment_signature', null, 'wallet'],
      ['market_payment', null, 'wallet'],
      ['payment_state_update', null, 'frontend'],
    ]);
    expect(JSON.stringify(stored)).not.toMatch(/TOKEN/);
  });
});
