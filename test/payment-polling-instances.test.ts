import { afterAll, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { type DeveloperStep, startFakeDeveloperService } from './support/fake-developer-service.js';
import {
  PurchaseAppMutation,
  SubmitPaymentTransactionMutation,
  SubmitSignatureMutation,
} from './support/operations.js';
import { REMOTE_SOURCE, seed } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * Two instances on one PostgreSQL database, a payment's polling round on one of them: the other
 * resumes the round only once its poller is really gone (a credential query still out does not
 * count as gone), and when it does, only one of the two credentials it may then get is written
 * and pushed.
 */

const databases = await availableDatabases();
const APP = 'render-farm';
const PRODUCT = `${APP}-license`;
const SIGNATURE = 'eyJhbGciOiJFUzI1NiJ9.render-farm.c2ln';

describe.runIf(databases.includes('postgresql'))('credential polling across instances', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => {});
  });

  /** A database of its own with the app to buy, and a developer service answering as told. */
  const world = async () => {
    const developer = await startFakeDeveloperService();
    cleanup.push(() => developer.stop());
    const database = await createTestDatabase('postgresql');
    cleanup.push(() => database.drop());
    const db = createPrismaClient(database.url);
    await seed(db).remoteSource();
    await seed(db).catalogApp({ name: APP, versions: ['1.0.0'], price: '9.99' });
    await db.$disconnect();
    return { developer, database };
  };

  const instance = async (database: TestDatabase, env: Record<string, string>) => {
    const server = await startTestServer('postgresql', { database, env });
    cleanup.push(() => server.stop());
    return server;
  };

  /** alice buys, signs and pays on `server`: its polling round starts there. */
  const buyAndPay = async (server: Pick<TestServer, 'graphqlUrl'>) => {
    const as = { token: TOKENS.alice };
    const input = { sourceId: REMOTE_SOURCE, appId: APP };
    expect(dataOf(await execute(server, PurchaseAppMutation, { input }, as)).purchaseApp.__typename).toBe(
      'PurchaseAppSuccess',
    );
    const signed = dataOf(
      await execute(server, SubmitSignatureMutation, { input: { productId: PRODUCT, jws: SIGNATURE } }, as),
    );
    expect(signed.submitSignature.__typename).toBe('SubmitSignatureSuccess');
    const paid = await execute(
      server,
      SubmitPaymentTransactionMutation,
      { input: { ...input, productId: PRODUCT, txHash: '0xc0ffee' } },
      as,
    );
    expect(dataOf(paid).submitPaymentTransaction.__typename).toBe('SubmitPaymentTransactionSuccess');
  };

  /** The buyer's pushes of the purchase, by topic or frontend status. */
  const pushesOf = async (server: TestServer) => {
    const rows = await server.app.db.paymentNotification.findMany({ where: { userId: 'alice' } });
    return rows.map((row) => row.status ?? row.topic);
  };

  const env = (developerUrl: string, timeoutMs: number) => ({
    ...AUTH_ENV,
    DEMO_DATA: '0',
    BUNDLED_CATALOGUE_FILE: 'off',
    DEVELOPER_SERVICE_URL_TEMPLATE: developerUrl,
    DEVELOPER_SERVICE_TIMEOUT_MS: String(timeoutMs),
    PAYMENT_POLL_INTERVAL_MS: '200',
    PAYMENT_POLL_ATTEMPTS: '5',
  });

  test('a credential query longer than a few poll intervals is not taken for a dead poller: one query, one purchase', async () => {
    const { developer, database } = await world();
    const a = await instance(database, env(developer.urlTemplate, 8000));
    const b = await instance(database, env(developer.urlTemplate, 8000));
    // The developer answers 6 s after the payment (within DEVELOPER_SERVICE_TIMEOUT_MS): a slow
    // developer, not a dead poller. Any query asked meanwhile is answered then too.
    const answered = new Promise((resolve) => setTimeout(resolve, 6000).unref());
    const grant = (vc: string): DeveloperStep => ({
      respond: 'after',
      released: answered,
      answer: { respond: 'grant', vc },
    });
    developer.setBehaviour({ respond: 'sequence', steps: [grant('vc-first'), grant('vc-second')] });
    await buyAndPay(b);
    const bought = await waitFor(async () => {
      const row = await a.app.db.payment.findFirst({ where: { userId: 'alice', appId: APP } });
      return row?.vc ? row : undefined;
    }, 'the purchase');
    expect(developer.requests.filter((request) => request.developer !== null)).toHaveLength(1);
    expect(bought.vc).toBe('vc-first');
    expect(a.logs.some((line) => line.includes('resuming credential polling'))).toBe(false);
    const pushes = await pushesOf(a);
    expect(pushes.filter((push) => push === 'purchased')).toHaveLength(1);
    expect(pushes.filter((push) => push === 'save_payment_vc')).toHaveLength(1);
  });

  test('a query that outlasts the other instance patience finds the purchase granted elsewhere meanwhile: its credential is neither written nor pushed', async () => {
    const { developer, database } = await world();
    // A gives a round up as abandoned after 200 ms + 1 s + 2 s of silence; B's query lasts longer
    // than that (a longer DEVELOPER_SERVICE_TIMEOUT_MS there: the same as B stalling with it out).
    const a = await instance(database, env(developer.urlTemplate, 1000));
    const b = await instance(database, env(developer.urlTemplate, 30_000));
    let answerB = () => {};
    const released = new Promise<void>((resolve) => {
      answerB = resolve;
    });
    developer.setBehaviour({
      respond: 'sequence',
      steps: [
        { respond: 'after', released, answer: { respond: 'grant', vc: 'vc-from-b' } },
        { respond: 'grant', vc: 'vc-from-a' },
      ],
    });
    await buyAndPay(b);
    // A resumes the round and is granted the credential while B's query is still out.
    const bought = await waitFor(async () => {
      const row = await a.app.db.payment.findFirst({ where: { userId: 'alice', appId: APP } });
      return row?.vc ? row : undefined;
    }, 'A to buy');
    expect(bought.vc).toBe('vc-from-a');
    expect(a.logs.some((line) => line.includes('resuming credential polling'))).toBe(true);
    answerB();
    // B goes on with the credential it got: it writes and pushes it, or finds the purchase made.
    const refused = 'credential granted, not written';
    await waitFor(async () => {
      if (b.logs.some((line) => line.includes(refused))) return true;
      return (await pushesOf(a)).filter((push) => push === 'purchased').length > 1 ? true : undefined;
    }, 'B to handle its credential');
    const pushes = await pushesOf(a);
    expect(pushes.filter((push) => push === 'purchased')).toHaveLength(1);
    expect(pushes.filter((push) => push === 'save_payment_vc')).toHaveLength(1);
    const row = await a.app.db.payment.findFirstOrThrow({ where: { userId: 'alice', appId: APP } });
    expect(row.vc).toBe('vc-from-a');
  });
});
