import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { announcedIn, nextSequence } from '../src/services/webhook-messages.js';
import { availableDatabases } from './support/databases.js';
import { FakeReceiver, type ReceivedDelivery } from './support/fake-receiver.js';
import { REMOTE_SOURCE, startSeededServer } from './support/seed.js';
import { AUTH_ENV, installThroughApi, type TestServer, TOKENS } from './support/server.js';
import { rawRequest } from './support/untyped.js';

const databases = await availableDatabases();
const SOURCE = REMOTE_SOURCE;

interface StateBody {
  occurredAt: string;
  sequence: number;
  app: { key: { appName: string }; state: string; stage: string };
}

const bodyOf = (delivery: { body: string }) => JSON.parse(delivery.body) as StateBody;
const stateOf = (body: StateBody) => `${body.app.state}/${body.app.stage}`;

describe.each(databases)('the order of webhook messages on %s', (kind) => {
  let server: TestServer;
  let receiver: FakeReceiver;
  beforeAll(async () => {
    ({ server } = await startSeededServer(kind, {
      env: {
        ...AUTH_ENV,
        SIMULATED_STEP_MS: '0',
        // A failed attempt is retried 2.5 to 5 s later: long after the app's later messages arrived.
        OUTBOX_BACKOFF_BASE_MS: '5000',
        OUTBOX_BACKOFF_MAX_MS: '5000',
        OUTBOX_POLL_INTERVAL_MS: '100',
      },
      preseed: async (seed) => {
        await seed.remoteSource();
        await seed.catalogApp({ name: 'order-app', versions: ['1.0.0'] });
      },
    }));
    receiver = await FakeReceiver.start();
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
  });

  test('a receiver that gets a stale state last tells it apart by sequence, which grows with every message of the app', async () => {
    const added = await rawRequest(
      server,
      {
        query: `mutation { addWebhook(input: { url: "${receiver.url('/order')}", events: [APP_STATE_CHANGED], appName: "order-app" }) {
          ... on AddWebhookSuccess { webhook { webhookId } } } }`,
      },
      { token: TOKENS.ops },
    );
    const addWebhook = added.body?.data?.addWebhook as { webhook?: { webhookId: string } } | undefined;
    const webhookId = addWebhook?.webhook?.webhookId;
    if (!webhookId) throw new Error(`addWebhook refused: ${added.text}`);
    receiver.fail(1); // the app's first message fails once: its retry comes after the others
    const answered = (stage: string) => (d: ReceivedDelivery) => d.answered === 200 && bodyOf(d).app.stage === stage;
    await installThroughApi(server, { sourceId: SOURCE, appName: 'order-app', version: '1.0.0' }, TOKENS.alice);
    await receiver.waitFor(answered('RUNNING'), 'the app running');
    const stop = await rawRequest(
      server,
      { query: `mutation { stopApp(input: { sourceId: "${SOURCE}", appName: "order-app" }) { __typename } }` },
      { token: TOKENS.alice },
    );
    expect(stop.body?.data).toEqual({ stopApp: { __typename: 'StopAppSuccess' } });
    await receiver.waitFor(answered('STOPPED'), 'the app stopped');
    const [failed] = receiver.received((d) => d.answered === 500);
    if (!failed) throw new Error('no attempt failed');
    await receiver.waitFor((d) => d.key === failed.key && d.answered === 200, 'the failed message retried', 15_000);

    // The receiver's view: the last message to arrive is the stale one, an early state.
    const arrived = receiver.received((d) => d.answered === 200);
    expect(arrived.at(-1)?.key).toBe(failed.key);
    expect(stateOf(bodyOf(failed))).not.toBe('stopped/STOPPED');
    // Keeping the message with the highest sequence, it ends on the app's last state all the same.
    const kept = arrived.map(bodyOf).reduce((best, body) => (body.sequence > best.sequence ? body : best));
    expect(stateOf(kept)).toBe('stopped/STOPPED');

    // In the order written, every message's sequence is above the one before it, and occurredAt
    // is its change's time (the row's last write, which the idempotency key carries).
    const written = await server.app.db.outboxMessage.findMany({ where: { webhookId }, orderBy: { id: 'asc' } });
    expect(written.length).toBeGreaterThanOrEqual(4);
    expect(new Set(arrived.map((d) => d.key))).toEqual(new Set(written.map((m) => m.idempotencyKey)));
    const sequences = written.map((m) => bodyOf(m).sequence);
    expect(sequences.every((sequence) => Number.isInteger(sequence))).toBe(true);
    expect(sequences.every((sequence, i) => i === 0 || sequence > (sequences[i - 1] as number))).toBe(true);
    for (const message of written) {
      expect(new Date(bodyOf(message).occurredAt).getTime()).toBe(Number(message.idempotencyKey.split(':').at(-1)));
    }
  });
});

describe('the sequence of a subject', () => {
  const at = new Date('2026-03-01T10:00:00.000Z');

  test('is the change time in milliseconds, or one more than the previous message when the change is not later', () => {
    expect(nextSequence(at, undefined)).toBe(at.getTime());
    expect(nextSequence(at, { value: 'running/RUNNING', sequence: at.getTime() - 5 })).toBe(at.getTime());
    // Two changes in one millisecond, or a stage moved with no write of the row: still above.
    expect(nextSequence(at, { value: 'stopped/STOPPING', sequence: at.getTime() })).toBe(at.getTime() + 1);
    expect(nextSequence(at, { value: 'stopped/STOPPING', sequence: at.getTime() + 1 })).toBe(at.getTime() + 2);
  });

  test('of a stored message is read from its body, and for one written before it existed from its key', () => {
    const prefix = 'webhook:wh_1:app:alice/market.olares/n8n:';
    const key = `${prefix}running/RUNNING:${at.getTime()}`;
    const stored = { idempotencyKey: key, body: JSON.stringify({ sequence: at.getTime() + 2 }) };
    expect(announcedIn(stored, prefix)).toEqual({ value: 'running/RUNNING', sequence: at.getTime() + 2 });
    const older = { idempotencyKey: key, body: JSON.stringify({ occurredAt: at.toISOString() }) };
    expect(announcedIn(older, prefix)).toEqual({ value: 'running/RUNNING', sequence: at.getTime() });
  });
});
