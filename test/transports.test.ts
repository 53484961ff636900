import { print } from 'graphql';
import { createClient } from 'graphql-sse';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PaymentUpdatedSubscription, PurchaseAppMutation } from './support/operations.js';
import { AUTH_ENV, execute, startTestServer, type TestServer, TOKENS } from './support/server.js';
import { subscribe } from './support/subscriptions.js';

describe('subscription transports share the schema, plugins and auth', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: AUTH_ENV });
  });
  afterAll(() => server?.stop());

  test('graphql-ws refuses a connection without valid credentials (4403)', async () => {
    await expect(subscribe(server, PaymentUpdatedSubscription, {})).rejects.toThrow(/4403/);
    await expect(subscribe(server, PaymentUpdatedSubscription, {}, { token: 'not-a-token-at-all' })).rejects.toThrow(
      /4403/,
    );
  });

  test("graphql-ws: a user filtering on another user's payments gets FORBIDDEN", async () => {
    const sub = await subscribe(
      server,
      PaymentUpdatedSubscription,
      { filter: { userId: 'alice' } },
      { token: TOKENS.bob },
    );
    await expect(sub.next(5000)).rejects.toThrow(/FORBIDDEN|Only admins/);
    await sub.close();
  });

  test('server-sent events (Yoga SSE on /graphql, Bearer header) deliver the same events', async () => {
    const client = createClient({
      url: `${server.url}/graphql/stream`,
      headers: { authorization: `Bearer ${TOKENS.alice}` },
      retryAttempts: 0,
    });
    let connected!: () => void;
    const streaming = new Promise<void>((resolve) => {
      connected = resolve;
    });
    let delivered!: (value: unknown) => void;
    const first = new Promise((resolve) => {
      delivered = resolve;
    });
    const dispose = client.subscribe(
      { query: print(PaymentUpdatedSubscription), variables: { filter: { appId: 'rocketchat' } } },
      { next: delivered, error: delivered, complete: () => {} },
      { connected: () => connected() },
    );
    try {
      await streaming;
      await execute(
        server,
        PurchaseAppMutation,
        { input: { sourceId: 'market.olares', appId: 'rocketchat' } },
        { token: TOKENS.alice },
      );
      expect(await first).toMatchObject({ data: { paymentUpdated: { userId: 'alice', appId: 'rocketchat' } } });
    } finally {
      dispose();
      client.dispose();
    }
  });
});
