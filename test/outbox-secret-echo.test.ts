import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { REMOTE_SOURCE, startSeededServer } from './support/seed.js';
import { AUTH_ENV, installThroughApi, type TestServer, TOKENS, waitFor } from './support/server.js';
import { rawRequest } from './support/untyped.js';

const PUSH_SECRET = `push-${randomBytes(16).toString('hex')}`;
const QUERY_TOKEN = randomBytes(12).toString('hex');
/** A webhook another instance added: this one reads it from the database only. */
const OTHER_SECRET = `whsec_${randomBytes(32).toString('base64url')}`;

/**
 * A webhook receiver that answers 500 quoting secrets it should never have echoed: the payment
 * pushes' key and other webhooks' keys. The server signs with each of them, so none may reach
 * a delivery's lastError or the log, not only the message's own key.
 */
describe("a receiver whose refusal echoes the server's outbound secrets", () => {
  let server: TestServer;
  let receiver: Server;
  let echoed = '';
  beforeAll(async () => {
    ({ server } = await startSeededServer('sqlite', {
      env: {
        ...AUTH_ENV,
        SIMULATED_STEP_MS: '0',
        PAYMENT_PUSH_SECRET: PUSH_SECRET,
        OUTBOX_BACKOFF_BASE_MS: '60000',
        OUTBOX_POLL_INTERVAL_MS: '100',
      },
      preseed: async (seed) => {
        await seed.remoteSource();
        await seed.catalogApp({ name: 'echo-app', versions: ['1.0.0'] });
        await seed.db.webhook.create({
          data: {
            webhookId: 'wh_other_instance',
            url: 'http://127.0.0.1:9/elsewhere',
            secret: OTHER_SECRET,
            events: ['TASK_FINISHED'],
            appName: 'never-installed',
            createdBy: 'ops',
          },
        });
      },
    }));
    receiver = createServer((request, response) => {
      request.resume();
      // `{signature}`: the X-Signature this delivery came with (the timestamp too: easily guessed).
      const signature = String(request.headers['x-signature']);
      const said = echoed.replaceAll('{signature}', signature).replaceAll('{url}', String(request.url));
      request.on('end', () => response.writeHead(500).end(said));
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await server?.stop();
    receiver?.closeAllConnections();
    await new Promise((resolve) => receiver?.close(resolve));
  });

  async function addWebhook(url: string, appName: string): Promise<{ webhookId: string; secret: string }> {
    const query = `mutation { addWebhook(input: { url: "${url}", events: [TASK_FINISHED], appName: "${appName}" }) {
      ... on AddWebhookSuccess { secret webhook { webhookId } } } }`;
    const added = await rawRequest(server, { query }, { token: TOKENS.ops });
    const answer = added.body?.data?.addWebhook as { secret?: string; webhook?: { webhookId: string } } | undefined;
    if (!answer?.secret || !answer.webhook) throw new Error(`addWebhook refused: ${added.text}`);
    return { webhookId: answer.webhook.webhookId, secret: answer.secret };
  }

  test('lastError and the retry log line redact the push secret, every webhook secret, the delivery signature and a token in its URL', async () => {
    const port = (receiver.address() as AddressInfo).port;
    const another = await addWebhook(`http://127.0.0.1:${port}/another`, 'never-installed-either');
    // Its URL carries a token under a name no rule knows as a secret's, which the receiver quotes.
    const hook = await addWebhook(`http://127.0.0.1:${port}/echo?t=${QUERY_TOKEN}`, 'echo-app');
    echoed =
      `failed: push=${PUSH_SECRET} another=${another.secret} other=${OTHER_SECRET} own=${hook.secret}` +
      ' sig={signature} got {signature}, "x-signature": "{signature}" at {url}';
    await installThroughApi(server, { sourceId: REMOTE_SOURCE, appName: 'echo-app', version: '1.0.0' }, TOKENS.alice);
    const lastError = await waitFor(async () => {
      const listed = await rawRequest(
        server,
        { query: '{ webhooks { webhookId deliveries { lastError } } }' },
        {
          token: TOKENS.ops,
        },
      );
      const webhooks = listed.body?.data?.webhooks as {
        webhookId: string;
        deliveries: { lastError: string | null }[];
      }[];
      return webhooks.find((webhook) => webhook.webhookId === hook.webhookId)?.deliveries[0]?.lastError ?? undefined;
    }, 'the failed attempt recorded');
    expect(lastError).toBe(
      'the receiver answered HTTP 500: failed: push=[redacted] another=[redacted] other=[redacted] own=[redacted]' +
        ' sig=[redacted] got [redacted], "x-signature": "[redacted]" at /echo?t=[redacted]',
    );
    const logged = await waitFor(
      async () => server.logs.find((line) => line.includes('outbox: delivery failed, will retry')),
      'the retry logged',
    );
    expect(logged).toContain(
      'push=[redacted] another=[redacted] other=[redacted] own=[redacted] sig=[redacted] got [redacted]',
    );
    expect(server.logs.join('\n')).not.toMatch(/v1=[0-9a-f]{64}/);
    for (const secret of [PUSH_SECRET, another.secret, OTHER_SECRET, hook.secret, QUERY_TOKEN]) {
      expect(server.logs.join('\n')).not.toContain(secret);
    }
  });
});
