import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { FakeReceiver } from './support/fake-receiver.js';
import { PurchaseAppMutation } from './support/operations.js';
import { listeningUrl, SERVER_COMMAND, type ServerProcess, serverEnv, startProcess } from './support/process.js';
import { REMOTE_SOURCE, seed } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * Instances of one database configured apart (a rolling update that sets PAYMENT_WALLET_PUSH_URL):
 * an instance without the wallet's URL leaves the wallet's pushes to one that has it, instead of
 * claiming them and dead-lettering them, and their bodies stay to be sent.
 */

const databases = await availableDatabases();
const PUSH_SECRET = 'payment-push-secret-mixed';

describe.each(databases)('payment pushes across instances configured apart, on %s', (kind) => {
  let database: TestDatabase;
  let receiver: FakeReceiver;
  const processes: ServerProcess[] = [];
  const servers: TestServer[] = [];
  beforeAll(async () => {
    database = await createTestDatabase(kind);
    const db = createPrismaClient(database.url);
    await seed(db).remoteSource();
    await seed(db).catalogApp({ name: 'split', price: '2.00' });
    await db.$disconnect();
    receiver = await FakeReceiver.start();
  });
  afterAll(async () => {
    for (const server of processes) if (server.child.exitCode === null) server.child.kill('SIGKILL');
    await Promise.all(processes.map((server) => server.exited));
    await Promise.all(servers.map((server) => server.stop()));
    await receiver?.close();
    await database?.drop();
  });

  const env = (walletUrl: string | null) => ({
    ...AUTH_ENV,
    DEMO_DATA: '0',
    BUNDLED_CATALOGUE_FILE: 'off',
    PUBLIC_BASE_URL: 'https://market.example.com',
    PAYMENT_FRONTEND_PUSH_URL: receiver.url('/frontend'),
    ...(walletUrl ? { PAYMENT_WALLET_PUSH_URL: walletUrl } : {}),
    PAYMENT_PUSH_SECRET: PUSH_SECRET,
    OUTBOX_BACKOFF_BASE_MS: '60000',
    OUTBOX_POLL_INTERVAL_MS: '50',
  });

  /** An instance in this process, with the wallet's URL. */
  async function instanceWithWallet() {
    const server = await startTestServer(kind, { database, env: env(receiver.url('/wallet')) });
    servers.push(server);
    return server;
  }

  /** An instance in a process of its own, without the wallet's URL. */
  async function processWithoutWallet() {
    const server = startProcess(SERVER_COMMAND, serverEnv(database.url, env(null)));
    processes.push(server);
    await listeningUrl(server);
    return server;
  }

  test('an instance without PAYMENT_WALLET_PUSH_URL leaves the wallet pushes to an instance that has it', {
    timeout: 120_000,
  }, async () => {
    const db = createPrismaClient(database.url);
    try {
      // An instance with the wallet URL writes the pushes; the receiver is down, so they wait for a retry.
      await receiver.down();
      const writer = await instanceWithWallet();
      const bought = dataOf(
        await execute(
          writer,
          PurchaseAppMutation,
          { input: { sourceId: REMOTE_SOURCE, appId: 'split' } },
          {
            token: TOKENS.alice,
          },
        ),
      ).purchaseApp;
      expect(bought.__typename).toBe('PurchaseAppSuccess');
      await waitFor(async () => {
        const rows = await db.outboxMessage.findMany({ where: { kind: 'payment' } });
        return rows.length === 3 && rows.every((row) => row.status === 'PENDING' && row.lastError) ? rows : undefined;
      }, 'every push refused once');
      await writer.stop();
      // Due now rather than after their backoff: the next instance's first claim finds all of them.
      await db.outboxMessage.updateMany({ where: { kind: 'payment' }, data: { nextAttemptAt: new Date() } });
      await receiver.up();

      const withoutWallet = await processWithoutWallet();
      await waitFor(async () => {
        const row = await db.outboxMessage.findFirst({ where: { kind: 'payment', destination: 'frontend' } });
        return row?.status === 'DELIVERED' ? row : undefined;
      }, 'the frontend push delivered by the instance without the wallet URL');
      const walletRows = await db.outboxMessage.findMany({ where: { destination: 'wallet' }, orderBy: { id: 'asc' } });
      expect(walletRows.map((row) => [row.topic, row.status, row.attempts, row.lockedBy])).toEqual([
        ['fetch_payment_signature', 'PENDING', 1, null],
        ['market_payment', 'PENDING', 1, null],
      ]);
      withoutWallet.child.kill('SIGTERM');
      await withoutWallet.exited;

      await instanceWithWallet();
      for (const row of walletRows) {
        const delivery = await receiver.waitFor((d) => d.key === row.idempotencyKey, `the ${row.topic} push`);
        expect(delivery).toMatchObject({ path: '/wallet', topic: row.topic, answered: 200 });
        expect(JSON.parse(delivery.body)).toMatchObject({ topic: row.topic, user: 'alice' });
      }
    } finally {
      await db.$disconnect();
    }
  });
});
