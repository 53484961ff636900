import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LOCAL_ADMIN } from '../src/auth/viewer.js';
import type { Db } from '../src/db/client.js';
import { InvalidStateError } from '../src/domain/errors.js';
import { loadConfig } from '../src/platform/config.js';
import { outboxSource } from '../src/runtime/outbox-source.js';
import { OutboxFigures } from '../src/services/outbox-figures.js';
import { WebhookService } from '../src/services/webhook-service.js';
import { graphql } from './gql/index.js';
import { availableDatabases } from './support/databases.js';
import { FakeReceiver } from './support/fake-receiver.js';
import { RuntimeSnapshotQuery } from './support/operations.js';
import { REMOTE_SOURCE, startSeededServer } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, installThroughApi, type TestServer, TOKENS, waitFor } from './support/server.js';

const databases = await availableDatabases();

const AddWebhookMutation = graphql(`
  mutation OutboxOpsAddWebhook($input: AddWebhookInput!) {
    addWebhook(input: $input) {
      __typename
      ... on AddWebhookSuccess { webhook { webhookId } }
      ... on Error { code message }
    }
  }
`);

const RedeliverMutation = graphql(`
  mutation OutboxOpsRedeliver($input: RedeliverWebhookDeliveryInput!) {
    redeliverWebhookDelivery(input: $input) {
      __typename
      ... on RedeliverWebhookDeliverySuccess { delivery { id status attempts idempotencyKey nextAttemptAt } }
      ... on Error { code message }
    }
  }
`);

const RemoveWebhookMutation = graphql(`
  mutation OutboxOpsRemoveWebhook($input: RemoveWebhookInput!) {
    removeWebhook(input: $input) {
      __typename
      ... on Error { code message }
    }
  }
`);

const DeliveriesQuery = graphql(`
  query OutboxOpsDeliveries {
    webhooks { webhookId deliveries(last: 5) { id status attempts idempotencyKey lastError } }
  }
`);

/** Short retries, so a refused delivery is dead within seconds; the collector counts every 100 ms. */
const ENV = {
  ...AUTH_ENV,
  SIMULATED_STEP_MS: '0',
  OUTBOX_MAX_ATTEMPTS: '3',
  OUTBOX_BACKOFF_BASE_MS: '700',
  OUTBOX_BACKOFF_MAX_MS: '1000',
  OUTBOX_ATTEMPT_TIMEOUT_MS: '1000',
  OUTBOX_POLL_INTERVAL_MS: '100',
  COLLECT_INTERVAL_MS: '100',
};

interface OutboxComponent {
  state: string;
  message: string | null;
  metrics: {
    pending: { payment: number; webhook: number };
    dead: { payment: number; webhook: number };
    oldestPendingAgeSeconds: number;
    deadSinceStart: number;
    delivered: number;
    failed: number;
    lastError?: string | null;
    lastErrorReceiver?: string | null;
  };
}

async function outboxComponent(server: TestServer, token: string = TOKENS.ops): Promise<OutboxComponent> {
  const { runtimeSnapshot } = dataOf(await execute(server, RuntimeSnapshotQuery, {}, { token }));
  const found = runtimeSnapshot.components.find((component) => component.name === 'outbox');
  if (!found) throw new Error('no outbox component');
  return found as unknown as OutboxComponent;
}

/** The samples of one metric on /metrics, keyed by their labels as written (`kind="webhook",status="dead"`). */
async function scrape(server: TestServer, name: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = line.match(/^([a-z_]+)(?:\{(.*)\})? (\S+)$/);
    if (match?.[1] === name) samples.set(match[2] ?? '', Number(match[3]));
  }
  return samples;
}

describe.each(databases)('operating the outbox on %s', (kind) => {
  let server: TestServer;
  let receiver: FakeReceiver;
  let webhookId: string;
  beforeAll(async () => {
    ({ server } = await startSeededServer(kind, {
      env: ENV,
      preseed: async (seed) => {
        await seed.remoteSource();
        await seed.catalogApp({ name: 'ops-app', versions: ['1.0.0'] });
      },
    }));
    receiver = await FakeReceiver.start();
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
  });

  test('a refused webhook delivery shows as pending with a growing age, then dead after OUTBOX_MAX_ATTEMPTS, on the component and /metrics', async () => {
    receiver.fail(1_000, 503);
    // A token in the URL's query: neither it nor the path may show in what operators read.
    const url = receiver.url('/ops-hook/secret-path?token=receiver-token-123');
    const added = dataOf(
      await execute(
        server,
        AddWebhookMutation,
        { input: { url, events: ['TASK_FINISHED'], appName: 'ops-app' } },
        { token: TOKENS.ops },
      ),
    ).addWebhook;
    if (added.__typename !== 'AddWebhookSuccess') throw new Error(JSON.stringify(added));
    webhookId = added.webhook.webhookId;
    const before = await outboxComponent(server);
    expect(before).toMatchObject({ state: 'RUNNING', metrics: { pending: { webhook: 0 }, dead: { webhook: 0 } } });

    await installThroughApi(server, { sourceId: REMOTE_SOURCE, appName: 'ops-app', version: '1.0.0' }, TOKENS.alice);
    await receiver.waitFor((delivery) => delivery.path.startsWith('/ops-hook'), 'the first, refused attempt');
    const pending = await waitFor(async () => {
      const seen = await outboxComponent(server);
      return seen.metrics.pending?.webhook === 1 && seen.metrics.oldestPendingAgeSeconds > 0 ? seen : undefined;
    }, 'the component counting the pending delivery');
    const grown = await waitFor(async () => {
      const seen = await outboxComponent(server);
      return seen.metrics.pending?.webhook === 1 &&
        seen.metrics.oldestPendingAgeSeconds > pending.metrics.oldestPendingAgeSeconds
        ? seen
        : undefined;
    }, 'its age growing');
    expect(grown.metrics.lastError).toContain('the receiver answered HTTP 503');
    expect(grown.metrics.lastErrorReceiver).toBe(webhookId);
    expect((await scrape(server, 'market_outbox_failing_receivers')).get('')).toBe(1);
    const firstAge = (await scrape(server, 'market_outbox_oldest_pending_age_seconds')).get('');
    const messages = await scrape(server, 'market_outbox_messages');
    expect(messages.get('kind="webhook",status="pending"')).toBe(1);
    expect(firstAge).toBeGreaterThan(0);
    const laterAge = await waitFor(async () => {
      const age = (await scrape(server, 'market_outbox_oldest_pending_age_seconds')).get('') ?? 0;
      return age > (firstAge ?? 0) ? age : undefined;
    }, 'the oldest pending age growing on /metrics');
    expect(laterAge).toBeGreaterThan(firstAge ?? 0);

    const dead = await waitFor(async () => {
      const seen = await outboxComponent(server);
      // A count that outlasted COLLECT_INTERVAL_MS (a loaded machine) shows ERROR, without figures, until the next.
      return seen.metrics.dead?.webhook === 1 && seen.metrics.pending?.webhook === 0 ? seen : undefined;
    }, 'the delivery dead after 3 attempts');
    expect(dead).toMatchObject({
      state: 'DEGRADED',
      metrics: { oldestPendingAgeSeconds: 0, deadSinceStart: 1, failed: 3, delivered: 0 },
    });
    expect(dead.message).toContain('1 message(s) dead-lettered since this instance started');
    expect(receiver.received((delivery) => delivery.path.startsWith('/ops-hook'))).toHaveLength(3);
    const counted = await scrape(server, 'market_outbox_messages');
    expect(counted.get('kind="webhook",status="pending"')).toBe(0);
    expect(counted.get('kind="webhook",status="dead"')).toBe(1);
    const attempts = await scrape(server, 'market_outbox_delivery_attempts_total');
    expect(attempts.get('kind="webhook",outcome="failed"')).toBe(2);
    expect(attempts.get('kind="webhook",outcome="dead"')).toBe(1);
    expect(attempts.get('kind="webhook",outcome="delivered"')).toBe(0);
    expect((await scrape(server, 'market_outbox_oldest_pending_age_seconds')).get('')).toBe(0);
    // The count that saw nothing pending for it forgot its outage.
    expect((await scrape(server, 'market_outbox_failing_receivers')).get('')).toBe(0);
    const shown = JSON.stringify(dead) + [...(await scrape(server, 'market_outbox_messages')).keys()].join();
    expect(shown).not.toContain('secret-path');
    expect(shown).not.toContain('receiver-token-123');
    // A user sees the state and the counts, not whose delivery failed nor why.
    // Past a count that outlasted the 100-ms interval (ERROR, without figures, until the next).
    const forUser = await waitFor(async () => {
      const seen = await outboxComponent(server, TOKENS.alice);
      return seen.state === 'ERROR' ? undefined : seen;
    }, 'the outbox as a user sees it');
    expect(forUser.state).toBe('DEGRADED');
    expect(forUser.metrics).not.toHaveProperty('lastError');
    expect(forUser.metrics).not.toHaveProperty('lastErrorReceiver');
  });

  test('a failing receiver counts on market_outbox_failing_receivers until its webhook is removed', async () => {
    // A server of its own that counts once an hour, so no count runs during the test and only the
    // removal can forget the outage (the gauge reads the figures live, not the count). On the
    // shared server (a count every 100 ms) the count forgot it too once nothing was pending for
    // it, and the test passed without the removal forgetting anything.
    const { server: own } = await startSeededServer(kind, {
      env: { ...ENV, COLLECT_INTERVAL_MS: String(60 * 60_000) },
      preseed: async (seed) => {
        await seed.remoteSource();
        await seed.catalogApp({ name: 'removed-hook-app', versions: ['1.0.0'] });
      },
    });
    const failing = await FakeReceiver.start();
    failing.fail(1_000, 503);
    try {
      const added = dataOf(
        await execute(
          own,
          AddWebhookMutation,
          { input: { url: failing.url('/removed-hook'), events: ['TASK_FINISHED'], appName: 'removed-hook-app' } },
          { token: TOKENS.ops },
        ),
      ).addWebhook;
      if (added.__typename !== 'AddWebhookSuccess') throw new Error(JSON.stringify(added));
      const failingReceivers = async () => (await scrape(own, 'market_outbox_failing_receivers')).get('') ?? 0;
      const before = await failingReceivers();
      const app = { sourceId: REMOTE_SOURCE, appName: 'removed-hook-app', version: '1.0.0' };
      await installThroughApi(own, app, TOKENS.alice);
      await failing.waitFor((delivery) => delivery.path === '/removed-hook', 'the first, refused attempt');
      const counted = async () => ((await failingReceivers()) === before + 1 ? true : undefined);
      await waitFor(counted, 'the receiver counted failing');

      const removed = dataOf(
        await execute(
          own,
          RemoveWebhookMutation,
          { input: { webhookId: added.webhook.webhookId } },
          { token: TOKENS.ops },
        ),
      ).removeWebhook;
      expect(removed.__typename).toBe('RemoveWebhookSuccess');
      await waitFor(async () => ((await failingReceivers()) === before ? true : undefined), 'its outage forgotten');
    } finally {
      await failing.close();
      await own.stop();
    }
  });

  test('a dead delivery redelivered reaches the healthy receiver with the same Idempotency-Key and body; the component recovers', async () => {
    const { webhooks } = dataOf(await execute(server, DeliveriesQuery, {}, { token: TOKENS.ops }));
    const [delivery] = webhooks.find((webhook) => webhook.webhookId === webhookId)?.deliveries ?? [];
    expect(delivery).toMatchObject({ status: 'DEAD', attempts: 3 });
    if (!delivery) return;
    const refused = receiver.received((d) => d.key === delivery.idempotencyKey);
    expect(refused).toHaveLength(3);

    const asUser = await execute(
      server,
      RedeliverMutation,
      { input: { deliveryId: delivery.id } },
      { token: TOKENS.bob },
    );
    expect(dataOf(asUser).redeliverWebhookDelivery).toMatchObject({ __typename: 'ForbiddenError', code: 'FORBIDDEN' });

    receiver.ok();
    const answer = dataOf(
      await execute(server, RedeliverMutation, { input: { deliveryId: delivery.id } }, { token: TOKENS.ops }),
    ).redeliverWebhookDelivery;
    expect(answer).toMatchObject({
      __typename: 'RedeliverWebhookDeliverySuccess',
      delivery: { id: delivery.id, status: 'PENDING', attempts: 0, idempotencyKey: delivery.idempotencyKey },
    });
    const accepted = await receiver.waitFor(
      (d) => d.key === delivery.idempotencyKey && d.answered === 200,
      'the redelivery, accepted',
    );
    expect(accepted.body).toBe(refused[0]?.body);
    expect(accepted.attempt).toBe(1);
    expect(receiver.processed.get(delivery.idempotencyKey)).toBe(1);

    const recovered = await waitFor(async () => {
      const seen = await outboxComponent(server);
      // The redelivery leaves the dead count at once, then the pending one once its 200 is recorded.
      return seen.state === 'RUNNING' && seen.metrics.pending?.webhook === 0 ? seen : undefined;
    }, 'the component RUNNING again, nothing pending');
    expect(recovered.metrics).toMatchObject({ pending: { webhook: 0 }, dead: { webhook: 0 }, deadSinceStart: 0 });
    expect(
      (await scrape(server, 'market_outbox_delivery_attempts_total')).get('kind="webhook",outcome="delivered"'),
    ).toBe(1);

    const again = await waitFor(async () => {
      const result = dataOf(
        await execute(server, RedeliverMutation, { input: { deliveryId: delivery.id } }, { token: TOKENS.ops }),
      ).redeliverWebhookDelivery;
      // Refused while the delivery is still PENDING (its record follows the 200 by a few ms), then as DELIVERED.
      return result.__typename !== 'RedeliverWebhookDeliverySuccess' && result.message.includes('DELIVERED')
        ? result
        : undefined;
    }, 'a redelivery of the delivered one refused');
    expect(again).toMatchObject({ __typename: 'InvalidStateError', code: 'INVALID_STATE' });

    const missing = dataOf(
      await execute(server, RedeliverMutation, { input: { deliveryId: '987654321' } }, { token: TOKENS.ops }),
    ).redeliverWebhookDelivery;
    expect(missing).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
  });

  test('a payment push is not redelivered (its body is blanked once finished): INVALID_STATE pointing at resendPaymentCredential', async () => {
    const push = await server.app.db.outboxMessage.create({
      data: {
        kind: 'payment',
        topic: 'market_payment',
        destination: 'wallet',
        body: '{}',
        idempotencyKey: `payment:ops:${kind}`,
        status: 'DEAD',
        attempts: 3,
        nextAttemptAt: new Date(),
      },
    });
    const answer = dataOf(
      await execute(server, RedeliverMutation, { input: { deliveryId: String(push.id) } }, { token: TOKENS.ops }),
    ).redeliverWebhookDelivery;
    expect(answer).toMatchObject({ __typename: 'InvalidStateError', code: 'INVALID_STATE' });
    if (answer.__typename === 'InvalidStateError') expect(answer.message).toContain('resendPaymentCredential');
    await server.app.db.outboxMessage.delete({ where: { id: push.id } });
  });

  test('a deliveryId beyond the column (int4 on PostgreSQL) is VALIDATION on both databases; the largest one is NOT_FOUND', async () => {
    for (const deliveryId of ['2147483648', '99999999999', '9999999999999999', '0']) {
      const answer = dataOf(
        await execute(server, RedeliverMutation, { input: { deliveryId } }, { token: TOKENS.ops }),
      ).redeliverWebhookDelivery;
      expect(answer, deliveryId).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION' });
      if (answer.__typename === 'ValidationError') expect(answer.message).toContain('1 to 2147483647');
    }
    const largest = dataOf(
      await execute(server, RedeliverMutation, { input: { deliveryId: '2147483647' } }, { token: TOKENS.ops }),
    ).redeliverWebhookDelivery;
    expect(largest).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
  });

  test('of two admins redelivering one dead delivery at once, the later is told it was just redelivered, not that it is DEAD', async () => {
    const dead = await server.app.db.outboxMessage.create({
      data: {
        kind: 'webhook',
        topic: 'task.finished',
        url: receiver.url('/ops-hook/raced'),
        webhookId,
        body: '{}',
        idempotencyKey: `webhook:raced:${kind}`,
        status: 'DEAD',
        attempts: 3,
        nextAttemptAt: new Date(),
      },
    });
    // The later admin's read of the row (DEAD) is held until the other's redelivery is answered.
    let held = true;
    const db = server.app.db.$extends({
      query: {
        outboxMessage: {
          async findUnique({ args, query }) {
            const row = await query(args);
            if (held) {
              held = false;
              const first = dataOf(
                await execute(
                  server,
                  RedeliverMutation,
                  { input: { deliveryId: String(dead.id) } },
                  { token: TOKENS.ops },
                ),
              ).redeliverWebhookDelivery;
              expect(first).toMatchObject({ __typename: 'RedeliverWebhookDeliverySuccess' });
            }
            return row;
          },
        },
      },
    }) as unknown as Db;
    const later = new WebhookService(db, 10, kind, { date: () => new Date() });
    const refusal = await later.redeliver(LOCAL_ADMIN, { deliveryId: String(dead.id) }).catch((error: Error) => error);
    expect(refusal).toBeInstanceOf(InvalidStateError);
    expect((refusal as Error).message).toMatch(/is (PENDING|DELIVERED) \(it was just redelivered\)/);
    expect((refusal as Error).message).not.toContain('is DEAD');
    await receiver.waitFor((d) => d.key === dead.idempotencyKey, 'the one redelivery');
    await server.app.db.outboxMessage.delete({ where: { id: dead.id } });
  });

  test('past its count cap the outbox component shows the cap and says capped, and the oldest pending is still the oldest written', async () => {
    const hourAgo = new Date(Date.now() - 3_600_000);
    const message = (status: string, n: number, createdAt = new Date()) => ({
      kind: status === 'DEAD' ? 'webhook' : 'payment',
      topic: 'market_payment',
      destination: status === 'DEAD' ? null : 'wallet', // no URL for it here: no worker claims it
      webhookId: status === 'DEAD' ? webhookId : null,
      body: '{}',
      idempotencyKey: `capped:${kind}:${status}:${n}`,
      status,
      attempts: status === 'DEAD' ? 3 : 0,
      nextAttemptAt: new Date(Date.now() + 60_000), // due later than the oldest's creation, and after it in the index
      createdAt,
    });
    const data = [
      message('DEAD', 1),
      message('DEAD', 2),
      message('DEAD', 3),
      message('PENDING', 1),
      message('PENDING', 2, hourAgo),
      message('PENDING', 3),
    ];
    await server.app.db.outboxMessage.createMany({ data });
    try {
      const settings = loadConfig({ DATABASE_URL: 'file:unused.db', ...ENV }).outbox;
      const figures = new OutboxFigures({ countCap: 2 });
      const [seen] = await outboxSource(server.app.db, figures, settings).collect();
      expect(seen?.metrics).toMatchObject({
        countCap: 2,
        pending: { payment: 2, webhook: 0 },
        dead: { payment: 0, webhook: 2 },
        capped: { pending: { payment: true, webhook: false }, dead: { payment: false, webhook: true } },
      });
      expect(seen?.message).toContain(`the oldest pending payment message (written ${hourAgo.toISOString()})`);
      // The server's own, at its default cap: the same rows, counted in full.
      const shown = await waitFor(async () => {
        const outbox = (await outboxComponent(server)) as unknown as { metrics: Record<string, unknown> };
        return (outbox.metrics.dead as { webhook: number }).webhook >= 3 ? outbox.metrics : undefined;
      }, 'the server counting the dead deliveries');
      expect(shown).toMatchObject({ countCap: 10_000, capped: { dead: { webhook: false } } });
    } finally {
      await server.app.db.outboxMessage.deleteMany({ where: { idempotencyKey: { startsWith: `capped:${kind}:` } } });
    }
  });

  test('a payment push for a receiver no instance has a URL for stays pending and, once older than its retries take, makes the component DEGRADED', async () => {
    // Written an hour ago for the wallet, whose PAYMENT_WALLET_PUSH_URL this server does not have:
    // no worker claims it (README, payment pushes).
    const hourAgo = new Date(Date.now() - 3_600_000);
    const push = await server.app.db.outboxMessage.create({
      data: {
        kind: 'payment',
        topic: 'market_payment',
        destination: 'wallet',
        body: '{"credential":"kept until delivered"}',
        idempotencyKey: `payment:stranded:${kind}`,
        nextAttemptAt: hourAgo,
        createdAt: hourAgo,
      },
    });
    const stuck = await waitFor(async () => {
      const seen = await outboxComponent(server);
      return seen.metrics.pending?.payment === 1 ? seen : undefined;
    }, 'the stranded push counted');
    expect(stuck.state).toBe('DEGRADED');
    expect(stuck.metrics.oldestPendingAgeSeconds).toBeGreaterThanOrEqual(3600);
    expect(stuck.message).toContain(`the oldest pending payment message (written ${hourAgo.toISOString()}) has waited`);
    expect(stuck.message).toContain('no instance has its receiver');
    expect((await scrape(server, 'market_outbox_messages')).get('kind="payment",status="pending"')).toBe(1);
    expect((await scrape(server, 'market_outbox_oldest_pending_age_seconds')).get('')).toBeGreaterThanOrEqual(3600);
    expect(await server.app.db.outboxMessage.findUnique({ where: { id: push.id } })).toMatchObject({
      status: 'PENDING',
      attempts: 0,
    });
  });
});
