import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FakeReceiver } from './support/fake-receiver.js';
import { REMOTE_SOURCE, startSeededServer } from './support/seed.js';
import { AUTH_ENV, installThroughApi, type TestServer, TOKENS, waitFor } from './support/server.js';
import { rawRequest } from './support/untyped.js';

const SOURCE = REMOTE_SOURCE;
const APPS = ['ra-seconds', 'ra-capped', 'ra-gone'];

interface Delivery {
  status: string;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
}

/** What a receiver's refusals do to the next attempt, as an admin sees it in `webhooks { deliveries }`. */
describe('a receiver that answers 429 or 503 with Retry-After, or 410 Gone', () => {
  let server: TestServer;
  const receivers: FakeReceiver[] = [];
  beforeAll(async () => {
    ({ server } = await startSeededServer('sqlite', {
      env: {
        ...AUTH_ENV,
        SIMULATED_STEP_MS: '0',
        // Without a Retry-After the next attempt comes 50 to 100 ms later.
        OUTBOX_BACKOFF_BASE_MS: '100',
        OUTBOX_BACKOFF_MAX_MS: '4000',
        OUTBOX_MAX_ATTEMPTS: '5',
        OUTBOX_POLL_INTERVAL_MS: '100',
      },
      preseed: async (seed) => {
        await seed.remoteSource();
        for (const name of APPS) await seed.catalogApp({ name, versions: ['1.0.0'] });
      },
    }));
  });
  afterAll(async () => {
    await server?.stop();
    for (const receiver of receivers) await receiver.close();
  });

  /** A receiver, a TASK_FINISHED webhook to it for `appName`, and the app installed. */
  async function hooked(appName: string, answer: (receiver: FakeReceiver) => void) {
    const receiver = await FakeReceiver.start();
    receivers.push(receiver);
    answer(receiver);
    const query = `mutation { addWebhook(input: { url: "${receiver.url()}", events: [TASK_FINISHED], appName: "${appName}" }) {
      ... on AddWebhookSuccess { webhook { webhookId } } } }`;
    const added = await rawRequest(server, { query }, { token: TOKENS.ops });
    const addWebhook = added.body?.data?.addWebhook as { webhook?: { webhookId: string } } | undefined;
    const webhookId = addWebhook?.webhook?.webhookId;
    if (!webhookId) throw new Error(`addWebhook refused: ${added.text}`);
    await installThroughApi(server, { sourceId: SOURCE, appName, version: '1.0.0' }, TOKENS.alice);
    const delivery = async () => {
      const fields = 'status attempts lastStatusCode lastError nextAttemptAt';
      const listed = await rawRequest(
        server,
        { query: `{ webhooks { webhookId deliveries { ${fields} } } }` },
        {
          token: TOKENS.ops,
        },
      );
      const webhooks = listed.body?.data?.webhooks as { webhookId: string; deliveries: Delivery[] }[] | undefined;
      return webhooks?.find((webhook) => webhook.webhookId === webhookId)?.deliveries[0];
    };
    return { receiver, delivery };
  }

  test('a 429 with Retry-After in seconds is tried again no sooner, and lastError says why it waits', async () => {
    const { receiver, delivery } = await hooked('ra-seconds', (r) => r.fail(1, 429, { 'retry-after': '2' }));
    const waiting = await waitFor(async () => {
      const found = await delivery();
      return found?.lastStatusCode === 429 ? found : undefined;
    }, 'the refused attempt recorded');
    expect(waiting).toMatchObject({
      status: 'PENDING',
      lastError: 'the receiver answered HTTP 429: receiver is failing on purpose (retried after its Retry-After, 2 s)',
    });
    const second = await receiver.waitFor((d) => d.attempt === 2, 'the second attempt');
    const [first] = receiver.received();
    expect(second.receivedAt - (first?.receivedAt ?? 0)).toBeGreaterThanOrEqual(1_900);
    await waitFor(async () => ((await delivery())?.status === 'DELIVERED' ? true : undefined), 'delivered');
  });

  test('a Retry-After date past OUTBOX_BACKOFF_MAX_MS waits that long only, and lastError says so', async () => {
    const inAnHour = new Date(Date.now() + 3_600_000).toUTCString();
    const { receiver, delivery } = await hooked('ra-capped', (r) => r.fail(1, 503, { 'retry-after': inAnHour }));
    const waiting = await waitFor(async () => {
      const found = await delivery();
      return found?.lastStatusCode === 503 ? found : undefined;
    }, 'the refused attempt recorded');
    expect(waiting.status).toBe('PENDING');
    expect(waiting.lastError).toMatch(
      /^the receiver answered HTTP 503: receiver is failing on purpose \(its Retry-After, 3\d{3}(\.\d)? s, is past OUTBOX_BACKOFF_MAX_MS: retried after 4 s\)$/,
    );
    const [first] = receiver.received();
    const wait = new Date(waiting.nextAttemptAt as string).getTime() - (first?.receivedAt ?? 0);
    expect(wait).toBeGreaterThanOrEqual(3_500);
    expect(wait).toBeLessThanOrEqual(5_000);
  });

  test('a 410 Gone is dead-lettered at once, not retried', async () => {
    const { receiver, delivery } = await hooked('ra-gone', (r) => r.fail(1, 410));
    const dead = await waitFor(async () => {
      const found = await delivery();
      return found?.status === 'DEAD' ? found : undefined;
    }, 'the dead letter');
    expect(dead).toMatchObject({
      attempts: 1,
      lastStatusCode: 410,
      lastError:
        'the receiver answered HTTP 410: receiver is failing on purpose (410 Gone: dead-lettered at once, not retried)',
      nextAttemptAt: null,
    });
    expect(receiver.received()).toHaveLength(1);
  });
});
