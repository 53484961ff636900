import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import { PurchaseAppMutation } from './support/operations.js';
import { startSeededServer } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, startTestServer, type TestServer, TOKENS } from './support/server.js';
import { errorLogs, rawRequest } from './support/untyped.js';

const databases = await availableDatabases();
const SOURCE = 'market.olares';

/** The PAYMENT history of `userId`'s purchase of `app`, oldest first: the statuses it recorded. */
async function milestones(server: TestServer, userId: string, app: string): Promise<string[]> {
  const records = await server.app.db.historyRecord.findMany({
    where: { userId, app, type: 'PAYMENT' },
    orderBy: { id: 'asc' },
  });
  return records.map((record) => (record.extended as { status: string }).status);
}

describe.each(databases)('concurrent purchases on %s', (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(kind, { env: { ...AUTH_ENV, MUTATION_RATE_PER_S: '0' } });
  });
  afterAll(() => server?.stop());

  test('twenty concurrent purchaseApp of one app write one PAYMENT record per change of the visible status', async () => {
    // The reference: one buyer clicks Buy once.
    const single = dataOf(
      await execute(
        server,
        PurchaseAppMutation,
        { input: { sourceId: SOURCE, appId: 'rocketchat' } },
        { token: TOKENS.bob },
      ),
    ).purchaseApp;
    expect(single).toMatchObject({ __typename: 'PurchaseAppSuccess', payment: { status: 'SIGNATURE_REQUIRED' } });
    const once = await milestones(server, 'bob', 'rocketchat');
    expect(once).toEqual(['SIGNATURE_REQUIRED']); // created asking for the signature, never NOT_BUY first

    // Another buyer clicks it twenty times at once.
    const logsFrom = server.logs.length;
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        execute(
          server,
          PurchaseAppMutation,
          { input: { sourceId: SOURCE, appId: 'rocketchat' } },
          { token: TOKENS.alice },
        ),
      ),
    );
    for (const result of results) {
      expect(dataOf(result).purchaseApp).toMatchObject({ __typename: 'PurchaseAppSuccess' });
    }
    expect(await milestones(server, 'alice', 'rocketchat')).toEqual(once);
    expect(await server.app.db.payment.count({ where: { userId: 'alice', appId: 'rocketchat' } })).toBe(1);
    expect(errorLogs(server, logsFrom)).toEqual([]);
  });
});

describe.each(databases)('repeated restores on %s', (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    const started = await startSeededServer(kind, {
      preseed: (seeder) => seeder.remoteSource(),
      env: { ...AUTH_ENV, MUTATION_RATE_PER_S: '0' },
    });
    server = started.server;
    await started.seed.catalogApp({ name: 'restored-often', price: '5.00' });
  });
  afterAll(() => server?.stop());

  test('eight requests of fifteen aliased restorePurchase each send the wallet one sign request', async () => {
    const aliases = Array.from(
      { length: 15 },
      (_, i) =>
        `r${i}: restorePurchase(input: { sourceId: "${SOURCE}", appId: "restored-often" }) { __typename ... on Error { message } }`,
    );
    const responses = await Promise.all(
      Array.from({ length: 8 }, () =>
        rawRequest(server, { query: `mutation { ${aliases.join('\n')} }` }, { token: TOKENS.alice }),
      ),
    );
    for (const response of responses) {
      expect(response.body?.errors).toBeUndefined();
      expect(new Set(Object.values(response.body?.data ?? {}).map((field) => JSON.stringify(field)))).toEqual(
        new Set([JSON.stringify({ __typename: 'RestorePurchaseSuccess' })]),
      );
    }
    const payment = await server.app.db.payment.findFirstOrThrow({
      where: { userId: 'alice', appId: 'restored-often' },
    });
    const signRequests = await server.app.db.paymentNotification.count({
      where: { paymentId: payment.id, topic: 'market_payment' },
    });
    expect(signRequests).toBe(1);
    expect(payment).toMatchObject({ signatureStatus: 'required', paymentStatus: 'notification_sent' });
  });
});
