import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { createPrismaClient, prepareDatabase } from '../src/db/client.js';
import { createLogger } from '../src/platform/logger.js';
import { enqueueOutbound } from '../src/services/outbox-messages.js';
import { OutboxWorker } from '../src/services/outbox-worker.js';
import { graphql } from './gql/index.js';
import { availableDatabases, createTestDatabase } from './support/databases.js';
import { FakeReceiver } from './support/fake-receiver.js';
import {
  listeningUrl,
  SERVER_COMMAND,
  SKEWED_CLOCK,
  serverEnv,
  skewedClockEnv,
  startProcess,
} from './support/process.js';
import { seed } from './support/seed.js';
import { dataOf, execute, installThroughApi, waitFor } from './support/server.js';

/**
 * Outbox locks between instances whose clocks disagree (PostgreSQL, the cluster's database): a
 * worker in this process is still sending three messages (the receiver holds them) when a worker
 * in another process, on a clock 45 s ahead, starts. On its own clock their locks had expired and
 * it sent them again; on the database's clock (DatabaseClock) it leaves them alone.
 */

const databases = await availableDatabases();
const WORKER = fileURLToPath(new URL('./support/outbox-worker-process.ts', import.meta.url));
const SECRET = 'payment-push-secret-0123456789';
/**
 * The lock of a claim is 2 × this + the record margin (5 s): 29 s, below the skew; and the held
 * attempts time out (and are retried) only 12 s after they were sent, time enough for the other
 * process to start and claim on a loaded machine.
 */
const ATTEMPT_TIMEOUT_MS = 12_000;

const AddWebhookMutation = graphql(`
  mutation OutboxSkewAddWebhook($input: AddWebhookInput!) {
    addWebhook(input: $input) { __typename }
  }
`);

describe.runIf(databases.includes('postgresql'))('outbox locks across clocks', () => {
  test('a worker on a clock 45 s ahead does not send again what another worker is still sending', async () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    const database = await createTestDatabase('postgresql');
    cleanups.push(() => database.drop());
    const db = createPrismaClient(database.url);
    cleanups.push(() => db.$disconnect());
    const settings = {
      concurrency: 4,
      maxAttempts: 5,
      backoffBaseMs: 1000,
      backoffMaxMs: 60_000,
      attemptTimeoutMs: ATTEMPT_TIMEOUT_MS,
      pollIntervalMs: 100,
    };
    const here = new OutboxWorker(db, settings, SECRET, createLogger('silent'));
    cleanups.push(() => here.stop(Date.now()));
    const keys = ['held-1', 'held-2', 'held-3'];
    try {
      await prepareDatabase(db, database.url);
      const receiver = await FakeReceiver.start();
      cleanups.push(() => receiver.close());
      cleanups.push(async () => receiver.release()); // first: the held attempts end
      receiver.hang();
      const url = receiver.url('/held');
      await enqueueOutbound(
        db,
        keys.map((key) => ({ kind: 'payment', topic: 'market_payment', url, body: { key }, idempotencyKey: key })),
      );
      here.start();
      for (const key of keys) await receiver.waitFor((delivery) => delivery.key === key, `${key} to be sent`);
      // A push only the worker ahead may send (it alone has a wallet URL): once it arrives, that
      // worker has claimed, and the held messages, older, came first in its claim.
      await enqueueOutbound(db, [
        { kind: 'payment', topic: 'market_payment', destination: 'wallet', body: {}, idempotencyKey: 'probe' },
      ]);
      const ahead = startProcess([process.execPath, '--import', 'tsx', '--import', SKEWED_CLOCK, WORKER], {
        ...process.env,
        DATABASE_URL: database.url,
        TEST_CLOCK_SKEW_MS: '45000',
        PAYMENT_PUSH_SECRET: SECRET,
        PAYMENT_WALLET_PUSH_URL: receiver.url('/wallet'),
        OUTBOX_ATTEMPT_TIMEOUT_MS: String(ATTEMPT_TIMEOUT_MS),
      });
      cleanups.push(async () => {
        ahead.child.kill('SIGTERM');
        await ahead.exited;
      });
      await receiver.waitFor((delivery) => delivery.key === 'probe', 'the probe from the worker ahead');
      expect(keys.map((key) => receiver.received((delivery) => delivery.key === key).length)).toEqual([1, 1, 1]);
      receiver.release();
      await waitFor(async () => {
        const delivered = await db.outboxMessage.count({ where: { status: 'DELIVERED' } });
        return delivered === keys.length + 1 ? true : undefined;
      }, 'every message to be recorded delivered');
      expect(receiver.duplicates).toBe(0);
    } finally {
      for (const cleanup of cleanups.reverse()) await cleanup();
    }
  }, 60_000);

  test('a server whose clock runs 45 s ahead delivers its webhooks at once, not 45 s later', async () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    try {
      const database = await createTestDatabase('postgresql');
      cleanups.push(() => database.drop());
      const db = createPrismaClient(database.url);
      cleanups.push(() => db.$disconnect());
      await prepareDatabase(db, database.url);
      await seed(db).remoteSource();
      await seed(db).catalogApp({ name: 'skew-hook', versions: ['1.0.0'] });
      const receiver = await FakeReceiver.start();
      cleanups.push(() => receiver.close());
      // Local development mode: every request is the local admin, who may add webhooks.
      const ahead = startProcess(
        SERVER_COMMAND,
        serverEnv(database.url, { ...skewedClockEnv(45_000), BUNDLED_CATALOGUE_FILE: 'off', SIMULATED_STEP_MS: '0' }),
      );
      cleanups.push(async () => {
        ahead.child.kill('SIGTERM');
        await ahead.exited;
      });
      const server = { graphqlUrl: (await listeningUrl(ahead)).toString() };
      const input = { url: receiver.url('/hook'), events: ['TASK_FINISHED' as const] };
      expect(dataOf(await execute(server, AddWebhookMutation, { input })).addWebhook.__typename).toBe(
        'AddWebhookSuccess',
      );
      const taskId = await installThroughApi(server, { appName: 'skew-hook', version: '1.0.0' });
      // Due at its enqueuer's clock, the message waited 45 s for the workers' (the database's).
      const delivery = await receiver.waitFor((each) => each.body.includes(taskId), 'the task finished webhook');
      expect(delivery.topic).toBe('task.finished');
    } finally {
      for (const cleanup of cleanups.reverse()) await cleanup();
    }
  }, 60_000);
});
