import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logger.js';
import { verifySignature } from '../src/platform/signature.js';
import { enqueueOutbound, type OutboundMessage } from '../src/services/outbox-messages.js';
import { type OutboxSettings, OutboxWorker } from '../src/services/outbox-worker.js';
import { graphql } from './gql/index.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { FakeReceiver } from './support/fake-receiver.js';
import { listeningUrl, SERVER_COMMAND, type ServerProcess, serverEnv, startProcess } from './support/process.js';
import { seed } from './support/seed.js';
import { dataOf, execute, installThroughApi, waitFor } from './support/server.js';

const databases = await availableDatabases();

const AddWebhookMutation = graphql(`
  mutation OutboxAddWebhook($input: AddWebhookInput!) {
    addWebhook(input: $input) {
      __typename
      ... on AddWebhookSuccess { secret webhook { webhookId } }
      ... on Error { code message }
    }
  }
`);

const PUSH_SECRET = 'push-secret-for-the-outbox-tests';
const SETTINGS: OutboxSettings = {
  concurrency: 8,
  maxAttempts: 3,
  backoffBaseMs: 50,
  backoffMaxMs: 100,
  attemptTimeoutMs: 500,
  pollIntervalMs: 50,
};
const silent = createLogger('silent');

function pushes(receiver: FakeReceiver, tag: string, count: number): OutboundMessage[] {
  return Array.from({ length: count }, (_, index) => ({
    kind: 'payment' as const,
    topic: 'payment_state_update',
    url: receiver.url(`/${tag}`),
    body: { tag, index },
    idempotencyKey: `${tag}:${index}`,
  }));
}

describe.each(databases)('the outbox worker on %s', (kind) => {
  let database: TestDatabase;
  let db: Db;
  let receiver: FakeReceiver;
  beforeAll(async () => {
    database = await createTestDatabase(kind);
    db = createPrismaClient(database.url);
    receiver = await FakeReceiver.start();
  });
  afterAll(async () => {
    await receiver?.close();
    await db?.$disconnect();
    await database?.drop();
  });

  const rows = (tag: string) =>
    db.outboxMessage.findMany({ where: { idempotencyKey: { startsWith: `${tag}:` } }, orderBy: { id: 'asc' } });

  test('two workers on one database deliver each of 200 messages exactly once, signed', async () => {
    // Two instances: each has its own database client and worker. Their locks (two attempt
    // timeouts plus a margin) outlast any recording write, even with SQLite's writers queueing on
    // a loaded machine: a lock that expired before its outcome was written would let the other
    // worker send the message again, which is at-least-once by design, not what this test checks.
    const otherDb = createPrismaClient(database.url);
    const workers = [
      new OutboxWorker(db, { ...SETTINGS, attemptTimeoutMs: 5000 }, PUSH_SECRET, silent),
      new OutboxWorker(otherDb, { ...SETTINGS, attemptTimeoutMs: 5000 }, PUSH_SECRET, silent),
    ];
    try {
      await enqueueOutbound(db, pushes(receiver, 'pair', 200));
      for (const worker of workers) worker.start();
      await waitFor(
        async () => ((await rows('pair')).every((row) => row.status === 'DELIVERED') ? true : undefined),
        'every message delivered',
      );
      const received = receiver.received((delivery) => delivery.path === '/pair');
      expect(received).toHaveLength(200);
      expect(new Set(received.map((delivery) => delivery.key)).size).toBe(200);
      for (const delivery of received) {
        expect(verifySignature(PUSH_SECRET, delivery.body, delivery.signature)).toBe(true);
        expect(delivery.headers['content-type']).toBe('application/json');
        expect(delivery.topic).toBe('payment_state_update');
        expect(delivery.attempt).toBe(1);
      }
      const delivered = await rows('pair');
      expect(delivered.every((row) => row.attempts === 1 && row.lastStatusCode === 200 && row.lockedBy === null)).toBe(
        true,
      );
    } finally {
      await Promise.all(workers.map((worker) => worker.stop()));
      await otherDb.$disconnect();
    }
  });

  test('a failing receiver is retried with growing pauses, then the message is dead with the last error', async () => {
    const worker = new OutboxWorker(db, SETTINGS, PUSH_SECRET, silent);
    receiver.fail(100, 500);
    try {
      await enqueueOutbound(db, pushes(receiver, 'dead', 1));
      worker.start();
      const [dead] = await waitFor(async () => {
        const found = await rows('dead');
        return found[0]?.status === 'DEAD' ? found : undefined;
      }, 'the message dead-lettered');
      expect(dead).toMatchObject({ attempts: 3, lastStatusCode: 500, deliveredAt: null, lockedBy: null });
      expect(dead?.lastError).toBe('the receiver answered HTTP 500: receiver is failing on purpose');
      const attempts = receiver.received((delivery) => delivery.path === '/dead');
      expect(attempts.map((delivery) => delivery.attempt)).toEqual([1, 2, 3]);
      expect(new Set(attempts.map((delivery) => delivery.key))).toEqual(new Set(['dead:0']));
      // The same bytes every time: the receiver can deduplicate and verify each attempt.
      expect(new Set(attempts.map((delivery) => delivery.body)).size).toBe(1);
    } finally {
      receiver.ok();
      await worker.stop();
    }
  });

  test('a receiver failing twice gets the message at the third attempt', async () => {
    const worker = new OutboxWorker(db, SETTINGS, PUSH_SECRET, silent);
    receiver.fail(2, 503);
    try {
      await enqueueOutbound(db, pushes(receiver, 'flaky', 1));
      worker.start();
      const [row] = await waitFor(async () => {
        const found = await rows('flaky');
        return found[0]?.status === 'DELIVERED' ? found : undefined;
      }, 'the message delivered');
      expect(row).toMatchObject({ attempts: 3, lastStatusCode: 200, lastError: null });
      expect(receiver.received((delivery) => delivery.path === '/flaky').map((d) => d.answered)).toEqual([
        503, 503, 200,
      ]);
    } finally {
      receiver.ok();
      await worker.stop();
    }
  });

  test('a redirect is not followed: it counts as a failed attempt', async () => {
    const worker = new OutboxWorker(db, { ...SETTINGS, maxAttempts: 1 }, PUSH_SECRET, silent);
    receiver.redirect();
    try {
      await enqueueOutbound(db, pushes(receiver, 'moved', 1));
      worker.start();
      const [row] = await waitFor(async () => {
        const found = await rows('moved');
        return found[0]?.status === 'DEAD' ? found : undefined;
      }, 'the message dead-lettered');
      expect(row).toMatchObject({ lastStatusCode: 302 });
      expect(receiver.received((delivery) => delivery.path === '/elsewhere')).toHaveLength(0);
    } finally {
      receiver.ok();
      await worker.stop();
    }
  });

  test('a message locked by a live worker is left alone; one whose lock expired is delivered', async () => {
    await enqueueOutbound(db, pushes(receiver, 'locked', 2));
    const [live, expired] = await rows('locked');
    const now = Date.now();
    await db.outboxMessage.update({
      where: { id: live?.id as number },
      data: { lockedBy: 'another-instance', lockedUntil: new Date(now + 60_000), attempts: 1 },
    });
    await db.outboxMessage.update({
      where: { id: expired?.id as number },
      data: { lockedBy: 'a-killed-instance', lockedUntil: new Date(now - 1), attempts: 1 },
    });
    const worker = new OutboxWorker(db, SETTINGS, PUSH_SECRET, silent);
    try {
      worker.start();
      await receiver.waitFor((delivery) => delivery.key === 'locked:1', 'the expired one');
      const delivery = receiver.received((each) => each.key === 'locked:1')[0];
      expect(delivery?.attempt).toBe(2);
      await waitFor(async () => ((await rows('locked'))[1]?.status === 'DELIVERED' ? true : undefined), 'it recorded');
      expect(receiver.received((each) => each.key === 'locked:0')).toHaveLength(0);
      expect((await rows('locked'))[0]).toMatchObject({ status: 'PENDING', lockedBy: 'another-instance' });
    } finally {
      await worker.stop();
    }
  });

  test('a hanging receiver times the attempt out and holds none of the other deliveries back', async () => {
    const worker = new OutboxWorker(db, { ...SETTINGS, concurrency: 2, maxAttempts: 1 }, PUSH_SECRET, silent);
    const hanging = await FakeReceiver.start();
    hanging.hang();
    try {
      await enqueueOutbound(db, [pushes(hanging, 'hung', 1)[0] as OutboundMessage, ...pushes(receiver, 'beside', 20)]);
      worker.start();
      await waitFor(
        async () => ((await rows('beside')).every((row) => row.status === 'DELIVERED') ? true : undefined),
        'the others delivered',
      );
      expect(hanging.holding).toBe(1);
      const [hung] = await waitFor(async () => {
        const found = await rows('hung');
        return found[0]?.status === 'DEAD' ? found : undefined;
      }, 'the hanging one given up');
      expect(hung?.lastError).toBe('no answer within 500 ms');
    } finally {
      await worker.stop();
      await hanging.close();
    }
  });
});

test('the worker reads its settings from the environment', () => {
  const config = loadConfig({ OUTBOX_CONCURRENCY: '3', OUTBOX_MAX_ATTEMPTS: '7', DATABASE_URL: 'file:./x.db' });
  expect(config.outbox).toMatchObject({ concurrency: 3, maxAttempts: 7 });
});

describe.each(databases)('a server killed during a delivery, on %s', (kind) => {
  let database: TestDatabase;
  let receiver: FakeReceiver;
  const processes: ServerProcess[] = [];
  beforeAll(async () => {
    database = await createTestDatabase(kind);
    const db = createPrismaClient(database.url);
    const seeder = seed(db);
    await seeder.remoteSource();
    await seeder.catalogApp({ name: 'crash-app', versions: ['1.0.0'] });
    await db.$disconnect();
    receiver = await FakeReceiver.start();
  });
  afterAll(async () => {
    for (const server of processes) if (server.child.exitCode === null) server.child.kill('SIGKILL');
    await Promise.all(processes.map((server) => server.exited));
    await receiver?.close();
    await database?.drop();
  });

  const env = () =>
    serverEnv(database.url, {
      SIMULATED_STEP_MS: '0',
      BUNDLED_CATALOGUE_FILE: 'off',
      OUTBOX_ATTEMPT_TIMEOUT_MS: '2000',
      OUTBOX_BACKOFF_BASE_MS: '100',
      OUTBOX_POLL_INTERVAL_MS: '100',
    });
  async function startServer() {
    const server = startProcess(SERVER_COMMAND, env());
    processes.push(server);
    return { server, graphqlUrl: (await listeningUrl(server)).toString() };
  }

  test('the delivery is made after the restart, with the same key, body and a valid signature, and processed once by a receiver that deduplicates', async () => {
    receiver.hang();
    const first = await startServer();
    const added = dataOf(
      await execute(first, AddWebhookMutation, {
        input: { url: receiver.url('/crash'), events: ['TASK_FINISHED'], appName: 'crash-app' },
      }),
    ).addWebhook;
    if (added.__typename !== 'AddWebhookSuccess') throw new Error(JSON.stringify(added));
    const taskId = await installThroughApi(first, {
      sourceId: 'market.olares',
      appName: 'crash-app',
      version: '1.0.0',
    });
    const held = await receiver.waitFor((d) => d.path === '/crash', 'the delivery, held open');
    // Killed while the receiver holds the request: the attempt never ends on this process.
    first.server.child.kill('SIGKILL');
    expect((await first.server.exited).signal).toBe('SIGKILL');
    receiver.ok();

    await startServer();
    const delivered = await receiver.waitFor(
      (d) => d.path === '/crash' && d.answered === 200,
      'the delivery after the restart',
      30_000,
    );
    expect(delivered.key).toBe(held.key);
    expect(delivered.key).toBe(`webhook:${added.webhook.webhookId}:task:${taskId}:COMPLETED`);
    expect(delivered.body).toBe(held.body);
    expect(verifySignature(added.secret, delivered.body, delivered.signature)).toBe(true);
    expect(delivered.attempt).toBe(2);
    expect(receiver.processed.get(held.key)).toBe(1);
    expect(receiver.duplicates).toBe(0);

    const db = createPrismaClient(database.url);
    try {
      const rows = await waitFor(async () => {
        const found = await db.outboxMessage.findMany({ where: { webhookId: added.webhook.webhookId } });
        return found.every((row) => row.status === 'DELIVERED') ? found : undefined;
      }, 'the delivery recorded');
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ attempts: 2, lastStatusCode: 200, lockedBy: null });
    } finally {
      await db.$disconnect();
    }
  });
});
