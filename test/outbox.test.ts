import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { databaseClockOf } from '../src/db/database-clock.js';
import { driverSqlOf, type SqlRunner } from '../src/db/driver-sql.js';
import {
  claimDueMessages,
  lastKeysOfSubjects,
  recentMessageIds,
  removeFinishedMessages,
} from '../src/db/outbox-sql.js';
import { ROWS_PER_STATEMENT } from '../src/platform/bounded-removal.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logger.js';
import { verifySignature } from '../src/platform/signature.js';
import type { SettledMessage } from '../src/services/outbox-delivery.js';
import { enqueueOutbound, type OutboundMessage } from '../src/services/outbox-messages.js';
import { type OutboxSettings, OutboxWorker } from '../src/services/outbox-worker.js';
import { WebhookService } from '../src/services/webhook-service.js';
import { graphql } from './gql/index.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { FakeReceiver } from './support/fake-receiver.js';
import { listeningUrl, SERVER_COMMAND, type ServerProcess, serverEnv, startProcess } from './support/process.js';
import { planOf, SORTS } from './support/query-plans.js';
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

/** A worker whose log lines (at info and above) the test reads. */
function loggingWorker(db: Db) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { lines, worker: new OutboxWorker(db, SETTINGS, PUSH_SECRET, createLogger('info', sink)) };
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

  test('a receiver failing many messages logs its outage once at info, and once that it answers again', async () => {
    const { lines, worker } = loggingWorker(db);
    receiver.fail(4, 500);
    try {
      await enqueueOutbound(db, pushes(receiver, 'outage', 4));
      worker.start();
      await waitFor(async () => {
        const found = await rows('outage');
        return found.length === 4 && found.every((row) => row.status === 'DELIVERED') ? true : undefined;
      }, 'every message delivered once the receiver answers');
      // Four first attempts failed: one line at info for the outage, not one per message.
      const outbox = lines.filter((line) => String(line.msg).startsWith('outbox:'));
      expect(outbox.map(({ level, msg }) => [level, msg])).toEqual([
        [30, 'outbox: delivery failed, will retry'],
        [30, 'outbox: the receiver answers again'],
      ]);
    } finally {
      receiver.ok();
      await worker.stop();
    }
  });

  test('a failing receiver is retried with growing pauses, then the message is dead with the last error', async () => {
    const { lines, worker } = loggingWorker(db);
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
      // The log names the receiver (its host, never its path); the retries after the first only at debug.
      const host = new URL(receiver.url('/dead')).host;
      expect(lines.filter((line) => String(line.msg).startsWith('outbox:'))).toEqual([
        expect.objectContaining({ level: 30, msg: 'outbox: delivery failed, will retry', host, attempt: 1 }),
        expect.objectContaining({ level: 40, msg: 'outbox: message dead-lettered', host, attempt: 3 }),
      ]);
      expect(new Set(attempts.map((delivery) => delivery.key))).toEqual(new Set(['dead:0']));
      // The same bytes every time: the receiver can deduplicate and verify each attempt.
      expect(new Set(attempts.map((delivery) => delivery.body)).size).toBe(1);
      // A finished payment push keeps no copy of what it carried (its notification row keeps the redacted one).
      expect(dead?.body).toBe('{}');
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

  test("a webhook's last message about a subject is one step down its index, however many messages it has", async () => {
    const webhookId = 'wh_plan';
    const subject = 'app:alice/market.olares/plan-app';
    await enqueueOutbound(
      db,
      ['running/RUNNING:1', 'stopped/STOPPED:2'].map((change, i) => ({
        kind: 'webhook',
        topic: 'app.state_changed',
        url: receiver.url('/plan'),
        body: { i },
        idempotencyKey: `webhook:${webhookId}:${subject}:${change}`,
        webhookId,
        subject,
      })),
    );
    const other = 'app:al_ce/market.olares/plan-app';
    const keys = await lastKeysOfSubjects(db, [
      { webhookId, subject },
      { webhookId, subject: other },
    ]);
    expect(keys.get(`${webhookId} ${subject}`)?.idempotencyKey).toBe(
      `webhook:${webhookId}:${subject}:stopped/STOPPED:2`,
    );
    expect(keys.has(`${webhookId} ${other}`)).toBe(false);
    const plan = await planOf(db, (runner) => lastKeysOfSubjects(runner as never, [{ webhookId, subject }]));
    // SQLite walks the index; PostgreSQL's planner picks by its statistics (a handful of rows here).
    if (kind === 'sqlite') {
      expect(plan).toContain('OutboxMessage_webhookId_subject_id_idx');
      expect(plan).not.toMatch(SORTS);
    }
    await db.outboxMessage.deleteMany({ where: { webhookId } });
  });

  test('recent deliveries list each webhook newest first, at most the limit, each one walk down its index, across more than one statement', async () => {
    const message = (webhookId: string, n: number): OutboundMessage => ({
      kind: 'webhook',
      topic: 'task.finished',
      url: receiver.url('/recent'),
      body: { n },
      idempotencyKey: `recent:${webhookId}:${n}`,
      webhookId,
    });
    // Interleaved, so that each webhook's newest are not the table's newest.
    for (let n = 1; n <= 5; n++) {
      await enqueueOutbound(db, [message('wh_recent_a', n), ...(n <= 2 ? [message('wh_recent_b', n)] : [])]);
    }
    const stored = await rows('recent');
    const idOf = (webhookId: string, n: number) =>
      stored.find((row) => row.idempotencyKey === `recent:${webhookId}:${n}`)?.id;
    // wh_recent_b is the 101st: its walk is in the second statement.
    const none = Array.from({ length: 99 }, (_, index) => `wh_recent_none_${index}`);
    const listed = await new WebhookService(db, 10, kind, databaseClockOf(db)).recentDeliveries(
      ['wh_recent_a', ...none, 'wh_recent_b', 'wh_recent_c'],
      3,
    );
    expect(listed.map((list) => list.map((row) => row.id))).toEqual([
      [idOf('wh_recent_a', 5), idOf('wh_recent_a', 4), idOf('wh_recent_a', 3)],
      ...none.map(() => []),
      [idOf('wh_recent_b', 2), idOf('wh_recent_b', 1)],
      [],
    ]);
    if (kind === 'postgresql') {
      // PostgreSQL plans by its statistics: on the few rows above, once analysed (autovacuum may do it
      // at any moment of the run), a scan and a sort are cheaper, and the plan below failed now and
      // then (a sequential scan and a sort, measured). Planned over 20,000 messages of 50 webhooks,
      // analysed, as a stored outbox is.
      await db.$executeRawUnsafe(
        `INSERT INTO "OutboxMessage" ("kind", "webhookId", "idempotencyKey", "url", "topic", "body", "status", "nextAttemptAt", "createdAt", "updatedAt")
         SELECT 'webhook', 'wh_plan_' || (n % 50), 'plan-recent:' || n, 'http://127.0.0.1:9/', 't', '{}', 'DELIVERED',
           now() + interval '1 day', now(), now()
         FROM generate_series(1, 20000) AS n`,
      );
      await db.$executeRawUnsafe('ANALYZE "OutboxMessage"');
    }
    // Two webhooks with more messages than asked for (wh_plan_1 has 400 on PostgreSQL): one with fewer
    // is planned there as an index lookup and a sort of its few rows, as cheap.
    const plan = await planOf(db, (runner) => recentMessageIds(runner, ['wh_recent_a', 'wh_plan_1'], 3));
    // One walk down the (webhookId, id) index per webhook, no window ranking every message.
    expect(plan.match(/OutboxMessage_webhookId_id_idx/g)).toHaveLength(2);
    expect(plan).not.toMatch(/WindowAgg|ranked/);
    expect(plan).not.toMatch(SORTS);
    await db.outboxMessage.deleteMany({ where: { idempotencyKey: { startsWith: 'recent:' } } });
    await db.outboxMessage.deleteMany({ where: { idempotencyKey: { startsWith: 'plan-recent:' } } });
  });

  test('recent deliveries take 0 to 50 as a connection takes first and last: 0 is none, null or none the default of 10, anything else is refused', async () => {
    const webhooks = new WebhookService(db, 10, kind, databaseClockOf(db));
    for (let n = 1; n <= 11; n++) {
      await enqueueOutbound(db, [
        {
          kind: 'webhook',
          topic: 'task.finished',
          url: receiver.url('/limit'),
          body: { n },
          idempotencyKey: `limit:${n}`,
          webhookId: 'wh_limit',
        },
      ]);
    }
    const [byNull] = await webhooks.recentDeliveries(['wh_limit'], null);
    const [byDefault] = await webhooks.recentDeliveries(['wh_limit']);
    const [fifty] = await webhooks.recentDeliveries(['wh_limit'], 50);
    expect([byNull?.length, byDefault?.length, fifty?.length]).toEqual([10, 10, 11]);
    expect(await webhooks.recentDeliveries(['wh_limit', 'wh_other'], 0)).toEqual([[], []]);
    for (const [last, message, issue] of [
      [-1, 'Argument "last" must not be negative', 'negative'],
      [51, 'Argument "last" must be at most 50', 'above 50'],
      [1.5, 'Argument "last" must be a whole number', 'not whole'],
    ] as const) {
      await expect(webhooks.recentDeliveries(['wh_limit'], last)).rejects.toMatchObject({
        code: 'VALIDATION',
        message,
        issues: [{ path: 'last', message: issue }],
      });
    }
    await db.outboxMessage.deleteMany({ where: { idempotencyKey: { startsWith: 'limit:' } } });
  });

  test('a receiver that drips its answer is cut at the attempt timeout, not kept as long as it drips', async () => {
    const worker = new OutboxWorker(db, { ...SETTINGS, attemptTimeoutMs: 300, maxAttempts: 1 }, PUSH_SECRET, silent);
    const dripping = await FakeReceiver.start();
    dripping.drip(50); // each byte well within any per-chunk timeout: only a deadline for the whole attempt ends it
    try {
      await enqueueOutbound(db, pushes(dripping, 'drip', 1));
      worker.start();
      await dripping.waitFor(() => true, 'the attempt');
      const startedAt = Date.now();
      const [dead] = await waitFor(
        async () => {
          const found = await rows('drip');
          return found[0]?.status === 'DEAD' ? found : undefined;
        },
        'the dripping attempt given up',
        5_000,
      );
      expect(dead).toMatchObject({
        lastError: 'answered 200, but the answer did not end within 300 ms',
        lastStatusCode: 200,
      });
      expect(Date.now() - startedAt).toBeLessThan(2_000);
    } finally {
      await worker.stop();
      await dripping.close();
    }
  });

  test('two instances enqueueing the same keys at once both succeed, and each key is written once', async () => {
    const otherDb = createPrismaClient(database.url);
    try {
      for (let round = 0; round < 10; round++) {
        const batch = pushes(receiver, `race${round}`, 30);
        const counts = await Promise.all([enqueueOutbound(db, batch), enqueueOutbound(otherDb, batch)]);
        expect(counts[0] + counts[1]).toBe(30);
        expect(await rows(`race${round}`)).toHaveLength(30);
      }
    } finally {
      await otherDb.$disconnect();
    }
  });

  test('messages of a removed webhook that the worker claimed ahead are not sent once it is removed; the attempt in flight ends', async () => {
    const holding = await FakeReceiver.start();
    holding.hang();
    // Two slots, so one receiver host gets one at a time: the others wait, claimed, in the worker.
    const worker = new OutboxWorker(db, { ...SETTINGS, concurrency: 2, attemptTimeoutMs: 5000 }, PUSH_SECRET, silent);
    const webhookId = 'wh_0123456789abcdef0123a0ed';
    await db.webhook.create({
      data: { webhookId, url: holding.url('/ahead'), secret: 'whsec_ahead', events: [], createdBy: 'admin' },
    });
    const messages = [1, 2, 3].map((index) => ({
      kind: 'webhook' as const,
      topic: 'task.finished',
      url: holding.url('/ahead'),
      body: { index },
      idempotencyKey: `ahead:${index}`,
      webhookId,
    }));
    try {
      await enqueueOutbound(db, messages);
      worker.start();
      await holding.waitFor(() => true, 'the first attempt, held');
      await new WebhookService(db, 10, kind, databaseClockOf(db)).remove(
        { userId: 'admin', isAdmin: true },
        { webhookId },
      );
      holding.ok();
      holding.release(200);
      await waitFor(async () => (worker.busy === 0 ? true : undefined), 'the attempts over');
      expect(holding.received().map((d) => d.key)).toEqual(['ahead:1']);
      expect(await rows('ahead')).toEqual([]);
    } finally {
      await worker.stop();
      await holding.close();
    }
  });

  test('a message of a webhook removed after an earlier delivery is deleted at once, never sent with the old secret', async () => {
    const worker = new OutboxWorker(db, SETTINGS, PUSH_SECRET, silent);
    const webhookId = 'wh_0123456789abcdef01234567';
    await db.webhook.create({
      data: { webhookId, url: receiver.url('/gone'), secret: 'whsec_gone', events: [], createdBy: 'admin' },
    });
    const toWebhook = (index: number): OutboundMessage => ({
      kind: 'webhook',
      topic: 'task.finished',
      url: receiver.url('/gone'),
      body: { index },
      idempotencyKey: `gone:${index}`,
      webhookId,
    });
    try {
      worker.start();
      await enqueueOutbound(db, [toWebhook(1)]);
      await receiver.waitFor((d) => d.key === 'gone:1', 'the delivery before the removal');
      // removeWebhook, and a message written after it (a drain in flight, another instance's cached list).
      await db.webhook.delete({ where: { webhookId } });
      await enqueueOutbound(db, [toWebhook(2)]);
      // Deleted, not dead-lettered: no API could list the dead letter of a webhook that is gone.
      await waitFor(async () => ((await rows('gone')).length === 1 ? true : undefined), 'the late message deleted');
      expect(receiver.received((d) => d.key === 'gone:2')).toHaveLength(0);
    } finally {
      await worker.stop();
    }
  });

  test('a message whose every attempt died with its process is dead once claimed past OUTBOX_MAX_ATTEMPTS, not sent again', async () => {
    const settled: SettledMessage[] = [];
    const worker = new OutboxWorker(db, SETTINGS, PUSH_SECRET, silent, async (m) => {
      settled.push(m);
    });
    await enqueueOutbound(db, pushes(receiver, 'killed', 1));
    // Claimed SETTINGS.maxAttempts times by processes killed during each attempt: each claim
    // counted one, none reported, the last lock has expired.
    const expired = new Date(Date.now() - 1000);
    await db.outboxMessage.updateMany({
      where: { idempotencyKey: 'killed:0' },
      data: {
        attempts: SETTINGS.maxAttempts,
        lockedBy: 'a-killed-worker',
        lockedUntil: expired,
        nextAttemptAt: expired,
      },
    });
    try {
      worker.start();
      const [row] = await waitFor(async () => {
        const found = await rows('killed');
        return found[0]?.status === 'DEAD' ? found : undefined;
      }, 'the message dead');
      expect(row).toMatchObject({ attempts: SETTINGS.maxAttempts, lockedBy: null });
      expect(row?.lastError).toMatch(/attempts \(OUTBOX_MAX_ATTEMPTS\) were made; the last never reported/);
      expect(receiver.received((d) => d.key === 'killed:0')).toHaveLength(0);
      await expect
        .poll(() => settled.filter((m) => m.id === row?.id))
        .toMatchObject([{ status: 'DEAD', attempts: SETTINGS.maxAttempts }]);
    } finally {
      await worker.stop();
    }
  });

  test('a worker whose lock was taken over records nothing of its attempt: the message is not settled twice', async () => {
    const settled: SettledMessage[] = [];
    const worker = new OutboxWorker(db, { ...SETTINGS, attemptTimeoutMs: 5000 }, PUSH_SECRET, silent, async (m) => {
      settled.push(m);
    });
    const holding = await FakeReceiver.start();
    holding.hang();
    try {
      await enqueueOutbound(db, pushes(holding, 'lost', 1));
      worker.start();
      await holding.waitFor(() => true, 'the attempt, held');
      // Its lock expires (a stalled process: the claim made it due again at the lock's end) and
      // another worker claims the message.
      const expired = new Date(Date.now() - 1000);
      await db.outboxMessage.updateMany({
        where: { idempotencyKey: 'lost:0' },
        data: { lockedUntil: expired, nextAttemptAt: expired },
      });
      const now = new Date();
      const taken = await claimDueMessages(
        db,
        'another-worker',
        now,
        new Date(now.getTime() + 60_000),
        1000,
        kind === 'postgresql',
      );
      expect(taken.map((m) => m.idempotencyKey)).toContain('lost:0');
      holding.release(200);
      await waitFor(async () => (worker.busy === 0 ? true : undefined), 'the attempt over');
      await worker.stop();
      expect(settled.filter((m) => m.topic === 'payment_state_update' && m.id === taken[0]?.id)).toHaveLength(0);
      const [row] = await rows('lost');
      expect(row).toMatchObject({ status: 'PENDING', lockedBy: 'another-worker', attempts: 2 });
    } finally {
      await worker.stop();
      await holding.close();
    }
  });

  test('the cleanup removes finished messages older than the cutoff, at most its limit a run, and keeps pending and recent ones', async () => {
    await enqueueOutbound(db, pushes(receiver, 'old', 5));
    const all = await rows('old');
    const long = new Date(Date.now() - 40 * 24 * 3600 * 1000);
    const ids = all.map((row) => row.id);
    await db.outboxMessage.updateMany({
      where: { id: { in: ids.slice(0, 3) } },
      data: { status: 'DELIVERED', createdAt: long, updatedAt: long },
    });
    await db.outboxMessage.updateMany({
      where: { id: ids[3] as number },
      data: { status: 'PENDING', createdAt: long, updatedAt: long },
    });
    await db.outboxMessage.updateMany({ where: { id: ids[4] as number }, data: { status: 'DEAD' } });
    const cutoff = new Date(Date.now() - 30 * 24 * 3600 * 1000);
    // Other tests' finished messages are all recent: only these three are old enough.
    expect(await removeFinishedMessages(db, kind, cutoff, 2)).toBe(2);
    expect(await removeFinishedMessages(db, kind, cutoff, 2)).toBe(1);
    expect(await removeFinishedMessages(db, kind, cutoff, 2)).toBe(0);
    expect((await rows('old')).map((row) => row.id)).toEqual(ids.slice(3));
    await db.outboxMessage.deleteMany({ where: { id: { in: ids.slice(3) } } });
  });

  test('a finished message goes once its last change is older than the cutoff, however long ago it was created; one changed at the cutoff or later stays', async () => {
    const day = 24 * 3600 * 1000;
    const cutoff = new Date(Date.now() - 30 * day);
    const at = (ms: number) => new Date(cutoff.getTime() + ms);
    await enqueueOutbound(db, pushes(receiver, 'edge', 6));
    const ids = (await rows('edge')).map((row) => row.id);
    const cases: [string, number, number][] = [
      ['DELIVERED', -2 * day, -day], // finished a day before the cutoff: goes
      ['DEAD', -2 * day, -1], // a millisecond before: goes
      ['DELIVERED', -2 * day, 0], // at the cutoff: stays
      ['DEAD', -200 * day, 20 * day], // created long ago, finished ten days ago: stays
      ['PENDING', -2 * day, -2 * day], // never finished: stays
      ['DELIVERED', -1, -1], // created and finished a millisecond before: goes
    ];
    for (const [index, [status, created, changed]] of cases.entries()) {
      await db.outboxMessage.update({
        where: { id: ids[index] as number },
        data: { status, createdAt: at(created), updatedAt: at(changed), nextAttemptAt: at(day * 60) },
      });
    }
    const service = new WebhookService(db, 10, kind, databaseClockOf(db));
    expect(await service.removeFinishedMessages(cutoff, Date.now() + 60_000)).toEqual({ removed: 3, more: false });
    expect((await rows('edge')).map((row) => row.id)).toEqual([ids[2], ids[3], ids[4]]);
    await db.outboxMessage.deleteMany({ where: { id: { in: ids } } });
  });

  test('the outbox cleanup walks the (status, kind, createdAt) index, however many messages are stored', async () => {
    const now = new Date();
    // Messages finished now and pending ones: none is past the cutoff, as after a quiet week.
    await db.$executeRawUnsafe(
      kind === 'postgresql'
        ? `INSERT INTO "OutboxMessage" ("kind", "idempotencyKey", "url", "topic", "body", "status", "nextAttemptAt", "createdAt", "updatedAt")
           SELECT 'payment', 'plan-cleanup:' || n, 'http://127.0.0.1:9/', 't', '{}',
             CASE WHEN n % 10 = 0 THEN 'PENDING' ELSE 'DELIVERED' END, now() + interval '1 day', now(), now()
           FROM generate_series(1, 20000) AS n`
        : `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
           INSERT INTO "OutboxMessage" ("kind", "idempotencyKey", "url", "topic", "body", "status", "nextAttemptAt", "createdAt", "updatedAt")
           SELECT 'payment', 'plan-cleanup:' || i, 'http://127.0.0.1:9/', 't', '{}',
             CASE WHEN i % 10 = 0 THEN 'PENDING' ELSE 'DELIVERED' END, '${new Date(now.getTime() + 86_400_000).toISOString()}',
             '${now.toISOString()}', '${now.toISOString()}' FROM n`,
    );
    if (kind === 'postgresql') await db.$executeRawUnsafe('ANALYZE "OutboxMessage"');
    const cutoff = new Date(now.getTime() - 7 * 24 * 3600 * 1000);
    const plan = await planOf(db, (runner) => removeFinishedMessages(runner, kind, cutoff, ROWS_PER_STATEMENT));
    expect(plan).toContain('OutboxMessage_status_kind_createdAt_idx');
    expect(plan).not.toMatch(/Seq Scan|SCAN "?OutboxMessage"?(?! USING)/);
    expect(plan).not.toMatch(SORTS);
    expect(await removeFinishedMessages(db, kind, cutoff, ROWS_PER_STATEMENT)).toBe(0);
    await db.outboxMessage.deleteMany({ where: { idempotencyKey: { startsWith: 'plan-cleanup:' } } });
  });

  test('payment pushes are claimed before webhook deliveries that are due earlier', async () => {
    // Due in the past: the claim below looks at that moment, so the other tests' messages are not due yet.
    const past = new Date(Date.now() - 60_000);
    await enqueueOutbound(
      db,
      Array.from({ length: 5 }, (_, index) => ({
        kind: 'webhook' as const,
        topic: 'task.finished',
        url: receiver.url('/rank'),
        body: { index },
        idempotencyKey: `rank:webhook:${index}`,
        webhookId: 'wh_ffffffffffffffffffffffff',
      })),
      past,
    );
    await enqueueOutbound(db, pushes(receiver, 'rank:payment', 1), new Date(past.getTime() + 30_000));
    const then = new Date(past.getTime() + 40_000);
    const claimed = await claimDueMessages(
      db,
      'rank-worker',
      then,
      new Date(then.getTime() + 60_000),
      1,
      kind === 'postgresql',
    );
    expect(claimed.map((m) => m.idempotencyKey)).toEqual(['rank:payment:0']);
    await db.outboxMessage.deleteMany({ where: { idempotencyKey: { startsWith: 'rank:' } } });
  });

  test('a claim adds no index entry on PostgreSQL (a HOT update) and moves the message past its lock on SQLite', async () => {
    // Rows of ~1 kB: without the table's fillfactor (migration 0006) their pages are full, and a
    // new row version could not stay on its page.
    const past = new Date(Date.now() - 120_000);
    const padded = pushes(receiver, 'hot', 60).map((message) => ({ ...message, body: { pad: 'x'.repeat(1000) } }));
    await enqueueOutbound(db, padded, past);
    const then = new Date(past.getTime() + 1000);
    const lockedUntil = new Date(then.getTime() + 60_000);
    const keepDueTime = kind === 'postgresql';
    // The connection's update counts not yet flushed to PostgreSQL's statistics (they are not
    // flushed within a transaction): read around the claim, in its transaction.
    const counts = async (tx: SqlRunner) => {
      if (kind !== 'postgresql') return { updated: 0, hot: 0 };
      const [row] = await tx.$queryRaw<{ updated: number; hot: number }[]>`
        SELECT "n_tup_upd"::int AS "updated", "n_tup_hot_upd"::int AS "hot"
        FROM "pg_stat_xact_user_tables" WHERE "relname" = 'OutboxMessage'`;
      return row ?? { updated: 0, hot: 0 };
    };
    const updates = await driverSqlOf(db).$transaction(async (tx) => {
      const before = await counts(tx);
      const claimed = await claimDueMessages(tx, 'hot-worker', then, lockedUntil, 32, keepDueTime);
      expect(claimed).toHaveLength(32);
      const after = await counts(tx);
      return { updated: after.updated - before.updated, hot: after.hot - before.hot };
    });
    const claimedRows = (await rows('hot')).filter((row) => row.lockedBy === 'hot-worker');
    expect(claimedRows).toHaveLength(32);
    if (kind === 'postgresql') {
      expect(updates).toEqual({ updated: 32, hot: 32 });
      for (const row of claimedRows) expect(row.nextAttemptAt).toEqual(past);
    } else {
      for (const row of claimedRows) expect(row.nextAttemptAt).toEqual(lockedUntil);
    }
    // Claimed, they are not claimed again until their lock expires, on either provider.
    expect(await claimDueMessages(db, 'other', then, lockedUntil, 60, keepDueTime)).toHaveLength(28);
    expect(await claimDueMessages(db, 'other', then, lockedUntil, 60, keepDueTime)).toHaveLength(0);
    await db.outboxMessage.deleteMany({ where: { idempotencyKey: { startsWith: 'hot:' } } });
  });

  test.runIf(kind === 'postgresql')(
    'a claim passes over the messages another uncommitted claim holds instead of waiting for it',
    async () => {
      // Two instances' claims used to wait for each other's rows, and now and then deadlocked.
      const past = new Date(Date.now() - 120_000);
      await enqueueOutbound(db, pushes(receiver, 'held', 10), past);
      const then = new Date(past.getTime() + 1000);
      const lockedUntil = new Date(then.getTime() + 60_000);
      const sql = driverSqlOf(db);
      const others = await sql.$transaction(async (holding) => {
        expect(await claimDueMessages(holding, 'first', then, lockedUntil, 4, true)).toHaveLength(4);
        // Still uncommitted: a claim that waited for these rows would fail on its lock timeout.
        return sql.$transaction(async (other) => {
          await other.$executeRaw`SET LOCAL lock_timeout = '2s'`;
          return claimDueMessages(other, 'second', then, lockedUntil, 10, true);
        });
      });
      expect(others).toHaveLength(6);
      expect((await rows('held')).map((row) => row.lockedBy).sort()).toEqual([
        ...Array(4).fill('first'),
        ...Array(6).fill('second'),
      ]);
      await db.outboxMessage.deleteMany({ where: { idempotencyKey: { startsWith: 'held:' } } });
    },
  );

  test('a hanging receiver gets every slot but one: a push to another receiver goes out while it hangs', async () => {
    const worker = new OutboxWorker(db, { ...SETTINGS, concurrency: 2, attemptTimeoutMs: 10_000 }, PUSH_SECRET, silent);
    const hanging = await FakeReceiver.start();
    hanging.hang();
    try {
      await enqueueOutbound(db, pushes(hanging, 'capped', 4), new Date(Date.now() - 1000));
      worker.start();
      await hanging.waitFor(() => true, 'the first held attempt');
      await enqueueOutbound(db, pushes(receiver, 'beside-cap', 1));
      await receiver.waitFor((d) => d.key === 'beside-cap:0', 'the push beside the hanging receiver', 5_000);
      expect(hanging.holding).toBe(1);
      expect(hanging.received()).toHaveLength(1);
    } finally {
      await worker.stop(Date.now());
      await hanging.close();
    }
  });

  test('a stopping worker records nothing of the attempts it cuts: they keep their lock and are retried later', async () => {
    const worker = new OutboxWorker(db, { ...SETTINGS, attemptTimeoutMs: 10_000 }, PUSH_SECRET, silent);
    const hanging = await FakeReceiver.start();
    hanging.hang();
    try {
      await enqueueOutbound(db, pushes(hanging, 'cut', 1));
      worker.start();
      await hanging.waitFor(() => true, 'the held attempt');
      await worker.stop(Date.now());
      const [row] = await rows('cut');
      expect(row).toMatchObject({ status: 'PENDING', lockedBy: worker.workerId, lastError: null, attempts: 1 });
    } finally {
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
    await seeder.catalogApp({ name: 'answered-app', versions: ['1.0.0'] });
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

  test('a server killed after the receiver answered 200 but before recording it redelivers with the same key, and the deduplicating receiver processes it once', async () => {
    // The earlier test's server is stopped for good: this one starts from a server of its own.
    for (const server of processes) if (server.child.exitCode === null) server.child.kill('SIGKILL');
    await Promise.all(processes.map((server) => server.exited));
    receiver.ok();
    const first = await startServer();
    const added = dataOf(
      await execute(first, AddWebhookMutation, {
        input: { url: receiver.url('/answered'), events: ['TASK_FINISHED'], appName: 'answered-app' },
      }),
    ).addWebhook;
    if (added.__typename !== 'AddWebhookSuccess') throw new Error(JSON.stringify(added));
    // The receiver processes the delivery, answers 200, and kills the server right then: the
    // answer is not recorded (deliveries are recorded a few milliseconds later, together).
    receiver.onAnswered = (delivery) => {
      if (delivery.path !== '/answered') return;
      receiver.onAnswered = null;
      first.server.child.kill('SIGKILL');
    };
    await installThroughApi(first, { sourceId: 'market.olares', appName: 'answered-app', version: '1.0.0' });
    const answered = await receiver.waitFor((d) => d.path === '/answered', 'the delivery answered 200');
    expect((await first.server.exited).signal).toBe('SIGKILL');
    expect(answered.answered).toBe(200);
    expect(receiver.processed.get(answered.key)).toBe(1);

    await startServer();
    const again = await receiver.waitFor(
      (d) => d.path === '/answered' && d.attempt === 2,
      'the delivery again after the restart',
      30_000,
    );
    expect(again.key).toBe(answered.key);
    expect(again.body).toBe(answered.body);
    expect(verifySignature(added.secret, again.body, again.signature)).toBe(true);
    expect(receiver.processed.get(answered.key)).toBe(1);
    expect(receiver.duplicates).toBe(1);

    const db = createPrismaClient(database.url);
    try {
      const rows = await waitFor(async () => {
        const found = await db.outboxMessage.findMany({ where: { webhookId: added.webhook.webhookId } });
        return found.length > 0 && found.every((row) => row.status === 'DELIVERED') ? found : undefined;
      }, 'the redelivery recorded');
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ attempts: 2, lastStatusCode: 200, lockedBy: null });
      expect(receiver.received((d) => d.key === answered.key)).toHaveLength(2);
    } finally {
      await db.$disconnect();
    }
  });
});
