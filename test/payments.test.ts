import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import { availableDatabases, createTestDatabase } from './support/databases.js';
import { type FakeAppService, sendEvent, startFakeAppService } from './support/fake-app-service.js';
import { type DeveloperBehaviour, startFakeDeveloperService } from './support/fake-developer-service.js';
import {
  CloneAppMutation,
  InstallAppMutation,
  NodeQuery,
  PaymentDetailQuery,
  PaymentStatusQuery,
  PaymentsQuery,
  PaymentUpdatedSubscription,
  PurchaseAppMutation,
  RestorePurchaseMutation,
  SignatureCallbackMutation,
  StartFrontendPaymentMutation,
  SubmitPaymentTransactionMutation,
  SubmitSignatureMutation,
  TaskDetailQuery,
} from './support/operations.js';
import { success } from './support/payments.js';
import { REMOTE_SOURCE, type Seeder, seed, startSeededServer } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { subscribe } from './support/subscriptions.js';

const databases = await availableDatabases();
const SOURCE = REMOTE_SOURCE;
const SECRET = 'app-service-event-secret-0002';
const JWS = 'eyJhbGciOiJFUzI1NiJ9.alice-signs-comfyui.c2lnbmF0dXJl';

/** The payment as its owner sees it. */
async function payment(server: TestServer, token: string, appId: string) {
  return dataOf(await execute(server, PaymentDetailQuery, { sourceId: SOURCE, appId }, { token })).paymentStatus;
}

/** The developer finds no record of the payment twice, then grants the credential. */
const NO_RECORD_TWICE_THEN_GRANT: DeveloperBehaviour = {
  respond: 'sequence',
  steps: [{ respond: 'json', body: { code: 1501 } }, { respond: 'json', body: { code: 1501 } }, { respond: 'grant' }],
};

/** A paid app, whose product is `<name>-license`. */
const paidApp = (seed: Seeder, name: string) => seed.catalogApp({ name, versions: ['1.0.0'], price: '9.99' });

/**
 * The apps the refusal cases (made by bob) are about, under names of the case's own: jellyfin is
 * free, alice bought plex, bob signed for comfyui, nobody started to buy rocketchat.
 */
async function seedRefusalApps(seed: Seeder, tag: string) {
  const names = {
    jellyfin: `jellyfin-${tag}`,
    plex: `plex-${tag}`,
    comfyui: `comfyui-${tag}`,
    rocketchat: `rocketchat-${tag}`,
  };
  await seed.catalogApp({ name: names.jellyfin, versions: ['1.2.0'] });
  for (const name of [names.plex, names.comfyui, names.rocketchat]) await paidApp(seed, name);
  await seed.user('alice').payment({ appId: names.plex, status: 'purchased' });
  await seed.user('bob').payment({ appId: names.comfyui, status: 'signed' });
  return names;
}
type RefusalApps = Awaited<ReturnType<typeof seedRefusalApps>>;

/** ComfyUI, paid, which bob signed for but never paid (the restore and restart tests start there). */
async function bobSignedForComfyui(seed: Seeder) {
  await seed.catalogApp({ name: 'comfyui', versions: ['0.3.7', '0.3.4'], price: '9.99' });
  await seed.user('bob').payment({ appId: 'comfyui', status: 'signed' });
}

describe.each(databases)('payments on %s', (kind) => {
  describe('a first purchase, end to end', () => {
    let fakeAppService: FakeAppService;
    let server: TestServer;
    beforeAll(async () => {
      fakeAppService = await startFakeAppService();
      ({ server } = await startSeededServer(kind, {
        preseed: (seed) => seed.remoteSource(),
        env: {
          ...AUTH_ENV,
          APP_SERVICE_URL: fakeAppService.url,
          APP_SERVICE_EVENT_SECRET: SECRET,
          RECONCILE_INTERVAL_MS: '3600000',
          PAYMENT_POLL_INTERVAL_MS: '50',
          PAYMENT_POLL_ATTEMPTS: '5',
          SIMULATED_DEVELOPER_OUTCOMES: 'comfyui-license=vc-after-3',
        },
      }));
    });
    afterAll(async () => {
      await server?.stop();
      await fakeAppService?.stop();
    });

    test('not bought → signature required → payment required → paying → waiting → purchased, seen live; then the paid install gets the credential', async () => {
      await seed(server.app.db).catalogApp({ name: 'comfyui', versions: ['0.3.7', '0.3.4'], price: '9.99' });
      const mine = await subscribe(
        server,
        PaymentUpdatedSubscription,
        { filter: { appId: 'comfyui' } },
        { token: TOKENS.alice },
      );
      const bobs = await subscribe(server, PaymentUpdatedSubscription, {}, { token: TOKENS.bob });
      try {
        expect(await payment(server, TOKENS.alice, 'comfyui')).toBeNull(); // never started to buy
        const refused = dataOf(
          await execute(
            server,
            InstallAppMutation,
            { input: { sourceId: SOURCE, appName: 'comfyui', version: '0.3.7' } },
            { token: TOKENS.alice },
          ),
        ).installApp;
        expect(refused).toMatchObject({ code: 'INVALID_STATE', message: expect.stringMatching(/payment required/) });

        const bought = success(
          dataOf(
            await execute(
              server,
              PurchaseAppMutation,
              { input: { sourceId: SOURCE, appId: 'comfyui' } },
              { token: TOKENS.alice },
            ),
          ).purchaseApp,
        );
        expect(bought).toMatchObject({
          status: 'SIGNATURE_REQUIRED',
          paymentNeed: 'required',
          productId: 'comfyui-license',
          larePassSync: 'in_progress',
        });
        // the wallet was asked to sign, and the frontend told so — recorded, not dropped
        expect(bought.notifications.map((n) => `${n.channel}:${n.topic}:${n.status ?? ''}`)).toEqual(
          expect.arrayContaining(['larepass:market_payment:', 'frontend:payment_state_update:signature_required']),
        );

        const signed = success(
          dataOf(
            await execute(
              server,
              SubmitSignatureMutation,
              { input: { productId: 'comfyui-license', jws: JWS } },
              { token: TOKENS.alice },
            ),
          ).submitSignature,
        );
        expect(signed).toMatchObject({
          status: 'PAYMENT_REQUIRED',
          signatureStatus: 'required_and_signed',
          paymentStatus: 'notification_sent',
        });

        const paying = success(
          dataOf(
            await execute(
              server,
              StartFrontendPaymentMutation,
              {
                input: {
                  sourceId: SOURCE,
                  appId: 'comfyui',
                  productId: 'comfyui-license',
                  frontendData: { wallet: 'metamask' },
                },
              },
              { token: TOKENS.alice },
            ),
          ).startFrontendPayment,
        );
        expect(paying).toMatchObject({ status: 'PAYMENT_FRONTEND_STARTED', frontendData: { wallet: 'metamask' } });

        const paid = success(
          dataOf(
            await execute(
              server,
              SubmitPaymentTransactionMutation,
              { input: { sourceId: SOURCE, appId: 'comfyui', productId: 'comfyui-license', txHash: '0xabc123' } },
              { token: TOKENS.alice },
            ),
          ).submitPaymentTransaction,
        );
        expect(paid).toMatchObject({ status: 'WAITING_DEVELOPER_CONFIRMATION', txHash: '0xabc123' });

        const seen = await mine.until((event) => event.paymentUpdated.status === 'PURCHASED');
        const statuses = seen.map((event) => event.paymentUpdated.status).filter((s, i, all) => s !== all[i - 1]);
        // The state is created asking for the signature (never NOT_BUY first); that first event may
        // race the subscription's registration, everything after it may not.
        expect(statuses).toEqual([
          ...(statuses[0] === 'SIGNATURE_REQUIRED' ? ['SIGNATURE_REQUIRED'] : []),
          'PAYMENT_REQUIRED',
          'PAYMENT_FRONTEND_STARTED',
          'WAITING_DEVELOPER_CONFIRMATION',
          'PURCHASED',
        ]);
        expect(seen.every((event) => event.paymentUpdated.userId === 'alice')).toBe(true);

        const purchased = await payment(server, TOKENS.alice, 'comfyui');
        expect(purchased).toMatchObject({
          status: 'PURCHASED',
          developerSync: 'completed',
          paymentStatus: 'developer_confirmed',
          frontendData: null,
        });
        expect(purchased?.notifications.map((n) => n.status ?? n.topic)).toEqual(
          expect.arrayContaining(['purchased', 'save_payment_vc']),
        );

        // the paid install now goes through, and the credential reaches the app service as an env
        const install = dataOf(
          await execute(
            server,
            InstallAppMutation,
            { input: { sourceId: SOURCE, appName: 'comfyui', version: '0.3.7' } },
            { token: TOKENS.alice },
          ),
        ).installApp;
        expect(install.__typename).toBe('InstallAppSuccess');
        const taskId = install.__typename === 'InstallAppSuccess' ? install.task.taskId : '';
        const request = await waitFor(
          async () => fakeAppService.requests.find((r) => r.path === '/app-service/v1/apps/comfyui/install'),
          'the install request',
        );
        const vc = (await server.app.db.payment.findFirst({ where: { userId: 'alice', appId: 'comfyui' } }))
          ?.vc as string;
        expect(vc).toMatch(/^vc:sim:comfyui-license:/);
        expect((request.body as { envs: { envName: string; value: string }[] }).envs).toContainEqual({
          envName: 'VERIFIABLE_CREDENTIAL',
          value: vc,
        });
        const task = await waitFor(async () => {
          const t = dataOf(await execute(server, TaskDetailQuery, { taskId }, { token: TOKENS.alice })).task;
          return t?.opId ? t : undefined;
        }, 'the op id');
        await sendEvent(`${server.url}/events/app-state`, SECRET, {
          name: 'comfyui',
          user: 'alice',
          marketSource: SOURCE,
          opID: task.opId as string,
          state: 'running',
          createTime: new Date(Date.now() + 1000).toISOString(),
        });
        expect(dataOf(await execute(server, TaskDetailQuery, { taskId }, { token: TOKENS.alice })).task?.status).toBe(
          'COMPLETED',
        );
        // a clone of the bought app runs under the same credential
        const clone = dataOf(
          await execute(
            server,
            CloneAppMutation,
            { input: { sourceId: SOURCE, appName: 'comfyui', title: 'Second' } },
            {
              token: TOKENS.alice,
            },
          ),
        ).cloneApp;
        expect(clone.__typename).toBe('CloneAppSuccess');
        const cloneName = clone.__typename === 'CloneAppSuccess' ? clone.task.appName : '';
        const cloneRequest = await waitFor(
          async () => fakeAppService.requests.find((r) => r.path === `/app-service/v1/apps/${cloneName}/install`),
          'the clone request',
        );
        expect((cloneRequest.body as { envs: { envName: string; value: string }[] }).envs).toContainEqual({
          envName: 'VERIFIABLE_CREDENTIAL',
          value: vc,
        });

        // secrets stay where they belong: not in the task, history, logs or any response
        const stored = JSON.stringify([
          await server.app.db.task.findMany(),
          await server.app.db.historyRecord.findMany(),
          await server.app.db.paymentNotification.findMany(),
        ]);
        for (const secret of [JWS, vc]) {
          expect(stored).not.toContain(secret);
          expect(server.logs.join('\n')).not.toContain(secret);
          expect(JSON.stringify(mine.received)).not.toContain(secret);
        }
        // bob, subscribed at the same time, saw none of it
        expect(bobs.received.filter((event) => event.paymentUpdated.userId !== 'bob')).toEqual([]);
      } finally {
        await mine.close();
        await bobs.close();
      }
    });
  });

  // One server; each test buys apps of its own (or is bob, alone, restoring comfyui).
  describe('triggers and rules', () => {
    let developer: Awaited<ReturnType<typeof startFakeDeveloperService>>;
    let server: TestServer;
    let seeder: Seeder;
    beforeAll(async () => {
      developer = await startFakeDeveloperService();
      ({ server, seed: seeder } = await startSeededServer(kind, {
        preseed: (seed) => seed.remoteSource(),
        env: {
          ...AUTH_ENV,
          DEVELOPER_SERVICE_URL_TEMPLATE: developer.urlTemplate,
          PAYMENT_POLL_INTERVAL_MS: '30',
          PAYMENT_POLL_ATTEMPTS: '4',
        },
      }));
    });
    afterAll(async () => {
      await server?.stop();
      await developer?.stop();
    });

    const purchase = async (token: string, appId: string) =>
      dataOf(await execute(server, PurchaseAppMutation, { input: { sourceId: SOURCE, appId } }, { token })).purchaseApp;
    /** The one field a mutation answers, as alice. */
    const mutate = async <T, I>(document: TypedDocumentNode<T, { input: I }>, input: I) =>
      Object.values(
        dataOf(await execute(server, document, { input }, { token: TOKENS.alice })) as object,
      )[0] as T[keyof T];
    const walletAnswers = (productId: string, jws: string) =>
      mutate(SignatureCallbackMutation, { productId, signed: true, jws });
    /** Waits until the payment of `appId` is no longer being polled, and returns it. */
    const pollingEnded = (appId: string) =>
      waitFor(async () => {
        const p = await payment(server, TOKENS.alice, appId);
        return p?.developerSync === 'in_progress' ? undefined : p;
      }, 'the polling round to end');
    const purchased = (appId: string) =>
      waitFor(
        async () => ((await payment(server, TOKENS.alice, appId))?.status === 'PURCHASED' ? true : undefined),
        'the purchase',
      );
    /**
     * A paid app of its own at PAYMENT_RETRY_REQUIRED: a restore asks to pay before signing, so the
     * signature the wallet held meets a payment request, and the developer has no record of it.
     */
    const retryRequired = async (appId: string) => {
      await paidApp(seeder, appId);
      developer.setBehaviour({ respond: 'json', body: { code: 1501 } });
      success(await mutate(RestorePurchaseMutation, { sourceId: SOURCE, appId }));
      expect(success(await walletAnswers(`${appId}-license`, 'held.signature.jws'))).toMatchObject({
        status: 'PAYMENT_RETRY_REQUIRED',
      });
    };

    test('restore on a new device: an existing signature is confirmed with the developer (codes 1501, 1501, then 0)', async () => {
      developer.setBehaviour({
        respond: 'sequence',
        steps: [
          { respond: 'json', body: { code: 1501 } },
          { respond: 'json', body: { code: 1501 } },
          { respond: 'grant', vc: 'vc-bob-comfyui' },
        ],
      });
      await bobSignedForComfyui(seeder);
      const before = developer.requests.length;
      // bob signed for ComfyUI earlier but never got the credential
      const restored = dataOf(
        await execute(
          server,
          RestorePurchaseMutation,
          { input: { sourceId: SOURCE, appId: 'comfyui' } },
          { token: TOKENS.bob },
        ),
      ).restorePurchase;
      expect(restored.__typename).toBe('RestorePurchaseSuccess');
      const done = await waitFor(async () => {
        const p = await payment(server, TOKENS.bob, 'comfyui');
        return p?.status === 'PURCHASED' ? p : undefined;
      }, 'the restored purchase');
      expect(done).toMatchObject({ developerSync: 'completed', paymentStatus: 'developer_confirmed' });
      expect(developer.requests.length - before).toBe(3);
      expect(developer.requests.at(-1)).toMatchObject({ method: 'POST', developer: 'seed-developer' });
    });

    test('the wallet says it already holds a signature (T3) and the developer asks for a new one (1604): re-sign', async () => {
      await paidApp(seeder, 'rocketchat');
      developer.setBehaviour({ respond: 'json', body: { code: 1604 } });
      expect(success(await purchase(TOKENS.alice, 'rocketchat'))).toMatchObject({ status: 'SIGNATURE_REQUIRED' });
      const callback = success(
        dataOf(
          await execute(
            server,
            SignatureCallbackMutation,
            { input: { productId: 'rocketchat-license', signed: true, jws: 'old.signature.jws' } },
            { token: TOKENS.alice },
          ),
        ).signatureCallback,
      );
      expect(callback).toMatchObject({
        status: 'SIGNATURE_NEED_RESIGN',
        signatureStatus: 'error_need_resign',
        developerSync: 'completed',
      });
      // Buy again: the invalid signature is dropped and the wallet asked to sign anew
      const again = success(await purchase(TOKENS.alice, 'rocketchat'));
      expect(again).toMatchObject({ status: 'SIGNATURE_REQUIRED', signatureStatus: 'required' });
      expect(again.notifications.filter((n) => n.topic === 'market_payment').at(-1)?.payload).toMatchObject({
        sign: { is_resign: true },
      });
      expect(
        (await server.app.db.payment.findFirst({ where: { userId: 'alice', appId: 'rocketchat' } }))?.jws,
      ).toBeNull();
    });

    let polledApps = 0;
    test.each([
      [
        'no record (1501) until the attempts run out',
        { respond: 'json', body: { code: 1501 } },
        { developerSync: 'completed', signatureStatus: 'error_no_record' },
        4,
      ],
      [
        'an unknown code (7) counts as no record',
        { respond: 'json', body: { code: 7 } },
        { developerSync: 'completed', signatureStatus: 'error_no_record' },
        4,
      ],
      [
        'network errors until the attempts run out',
        { respond: 'http-error', status: 502 },
        { developerSync: 'failed', signatureStatus: 'required_and_signed' },
        4,
      ],
      [
        'an invalid signature (1100) stops at once',
        { respond: 'json', body: { code: 1100 } },
        { developerSync: 'completed', signatureStatus: 'error_need_resign' },
        1,
      ],
      [
        'code 1101 stops at once too',
        { respond: 'json', body: { code: 1101 } },
        { developerSync: 'completed', signatureStatus: 'error_need_resign' },
        1,
      ],
    ] as const)('polling after payment: %s', async (_name, behaviour, expected, queries) => {
      polledApps += 1;
      const appId = `actual-budget-${polledApps}`;
      await paidApp(seeder, appId);
      developer.setBehaviour(behaviour as never);
      success(await purchase(TOKENS.alice, appId));
      success(
        dataOf(
          await execute(
            server,
            SubmitSignatureMutation,
            { input: { productId: `${appId}-license`, jws: 'alice.budget.jws' } },
            { token: TOKENS.alice },
          ),
        ).submitSignature,
      );
      const before = developer.requests.length;
      success(
        dataOf(
          await execute(
            server,
            SubmitPaymentTransactionMutation,
            { input: { sourceId: SOURCE, appId, productId: `${appId}-license`, txHash: '0xfeed' } },
            { token: TOKENS.alice },
          ),
        ).submitPaymentTransaction,
      );
      const ended = await waitFor(async () => {
        const p = await payment(server, TOKENS.alice, appId);
        return p && p.developerSync !== 'in_progress' ? p : undefined;
      }, 'polling to end');
      expect(ended).toMatchObject(expected);
      expect(developer.requests.length - before).toBe(queries);
    });

    test('Buy clicked several times at once asks the wallet once; clicked again later, it asks again', async () => {
      const appId = 'double-click';
      await paidApp(seeder, appId);
      const clicks = await Promise.all(Array.from({ length: 6 }, () => purchase(TOKENS.alice, appId)));
      for (const click of clicks) success(click); // each answers the state as it found it
      expect(await payment(server, TOKENS.alice, appId)).toMatchObject({ status: 'SIGNATURE_REQUIRED' });
      const row = await server.app.db.payment.findFirstOrThrow({ where: { userId: 'alice', appId } });
      const pushes = async (topic: string) =>
        server.app.db.paymentNotification.findMany({ where: { paymentId: row.id, topic } });
      // One question to the wallet whether it holds a signature, one sign request.
      expect(await pushes('fetch_payment_signature')).toHaveLength(1);
      const [request] = await pushes('market_payment');
      expect(await pushes('market_payment')).toHaveLength(1);
      // A click a moment later is the same double click; one after 5 s asks again (the wallet may
      // have lost the request): its time set back as if those seconds had passed.
      success(await purchase(TOKENS.alice, appId));
      expect(await pushes('market_payment')).toHaveLength(1);
      const earlier = new Date(Date.now() - 6_000);
      await server.app.db.paymentNotification.update({ where: { id: request?.id }, data: { createdAt: earlier } });
      success(await purchase(TOKENS.alice, appId));
      expect(await pushes('market_payment')).toHaveLength(2);
    });

    test('never two pollers for one payment, however many times the payment is reported', async () => {
      const appId = 'actual-budget';
      await paidApp(seeder, appId);
      developer.setBehaviour(NO_RECORD_TWICE_THEN_GRANT);
      success(await purchase(TOKENS.alice, appId));
      success(
        dataOf(
          await execute(
            server,
            SubmitSignatureMutation,
            { input: { productId: 'actual-budget-license', jws: 'alice.budget.jws2' } },
            { token: TOKENS.alice },
          ),
        ).submitSignature,
      );
      const before = developer.requests.length;
      const input = { sourceId: SOURCE, appId, productId: 'actual-budget-license', txHash: '0xbeef' };
      await Promise.all(
        Array.from({ length: 6 }, () =>
          execute(server, SubmitPaymentTransactionMutation, { input }, { token: TOKENS.alice }),
        ),
      );
      await purchased(appId);
      expect(developer.requests.length - before).toBe(3);
    });

    test("a wallet's late answer neither replaces the buyer's newer signature nor cuts a polling round short", async () => {
      const appId = 'late-answer';
      const productId = `${appId}-license`;
      await paidApp(seeder, appId);
      developer.setBehaviour(NO_RECORD_TWICE_THEN_GRANT);
      success(await purchase(TOKENS.alice, appId));
      success(await mutate(SubmitSignatureMutation, { productId, jws: 'new.signature.jws' }));
      const before = developer.requests.length;
      // the answer to the first push (does the wallet hold a signature?), retried and arriving late
      expect(success(await walletAnswers(productId, 'old.signature.jws'))).toMatchObject({
        status: 'PAYMENT_REQUIRED',
      });
      success(await mutate(SubmitPaymentTransactionMutation, { sourceId: SOURCE, appId, productId, txHash: '0xf00d' }));
      expect(success(await walletAnswers(productId, 'old.signature.jws'))).toMatchObject({
        status: 'WAITING_DEVELOPER_CONFIRMATION',
      });
      const done = await pollingEnded(appId);
      expect(done?.status).toBe('PURCHASED');
      const asked = developer.requests.slice(before).map((r) => (r.body as { jws?: string }).jws);
      expect(asked).toEqual(['new.signature.jws', 'new.signature.jws', 'new.signature.jws']);
    });

    test("the developer's refusal of a signature does not refuse the one the buyer gave while it was asked", async () => {
      const appId = 'resign-race';
      const productId = `${appId}-license`;
      await paidApp(seeder, appId);
      let release = () => {};
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      // 1604: sign again, answered for the first signature only once the second was given
      const refusal = { respond: 'json', body: { code: 1604 } } as const;
      developer.setBehaviour({
        respond: 'sequence',
        steps: [{ respond: 'after', released, answer: refusal }, { respond: 'grant' }],
      });
      success(await purchase(TOKENS.alice, appId));
      success(await mutate(SubmitSignatureMutation, { productId, jws: 'first.signature.jws' }));
      const before = developer.requests.length;
      success(await mutate(SubmitPaymentTransactionMutation, { sourceId: SOURCE, appId, productId, txHash: '0xabba' }));
      await waitFor(async () => (developer.requests.length > before ? true : undefined), 'the first credential query');
      expect(success(await mutate(SubmitSignatureMutation, { productId, jws: 'second.signature.jws' }))).toMatchObject({
        status: 'WAITING_DEVELOPER_CONFIRMATION',
      });
      release();
      expect(await pollingEnded(appId)).toMatchObject({ status: 'PURCHASED' });
      const asked = developer.requests.slice(before).map((r) => (r.body as { jws?: string }).jws);
      expect(asked).toEqual(['first.signature.jws', 'second.signature.jws']);
    });

    test('no record for the signature the wallet held, before paying: Buy asks to pay with it, and paying buys', async () => {
      const appId = 'held-unpaid';
      const productId = `${appId}-license`;
      await paidApp(seeder, appId);
      developer.setBehaviour({ respond: 'json', body: { code: 1501 } });
      success(await purchase(TOKENS.alice, appId));
      expect(success(await walletAnswers(productId, 'held.signature.jws'))).toMatchObject({
        status: 'SIGNATURE_NO_RECORD',
      });
      const buy = success(await purchase(TOKENS.alice, appId));
      expect(buy).toMatchObject({ status: 'PAYMENT_REQUIRED' });
      expect(buy.notifications.at(-1)).toMatchObject({ topic: 'payment_state_update', status: 'payment_required' });
      developer.setBehaviour({ respond: 'grant' });
      const paid = success(
        await mutate(SubmitPaymentTransactionMutation, { sourceId: SOURCE, appId, productId, txHash: '0xca5e' }),
      );
      expect(paid).toMatchObject({ status: 'WAITING_DEVELOPER_CONFIRMATION' });
      await purchased(appId);
    });

    test('no record when asked to pay already (PAYMENT_RETRY_REQUIRED): a restore asks the developer again', async () => {
      const appId = 'retry-pay';
      await retryRequired(appId);
      const before = developer.requests.length;
      developer.setBehaviour({
        respond: 'sequence',
        steps: [{ respond: 'json', body: { code: 1501 } }, { respond: 'grant' }],
      });
      const restored = success(await mutate(RestorePurchaseMutation, { sourceId: SOURCE, appId }));
      expect(restored.developerSync).toBe('in_progress');
      await pollingEnded(appId);
      expect(developer.requests.length - before).toBe(2);
      // granted at the second query: bought without paying again (it was paid on another device)
      expect(await payment(server, TOKENS.alice, appId)).toMatchObject({ status: 'PURCHASED' });
    });

    test('PAYMENT_RETRY_REQUIRED lets the frontend pay again', async () => {
      const appId = 'retry-pay-2';
      const productId = `${appId}-license`;
      await retryRequired(appId);
      const started = success(await mutate(StartFrontendPaymentMutation, { sourceId: SOURCE, appId, productId }));
      expect(started).toMatchObject({ status: 'PAYMENT_FRONTEND_STARTED' }); // not SIGNATURE_NO_RECORD any more
      developer.setBehaviour({ respond: 'grant' });
      success(await mutate(SubmitPaymentTransactionMutation, { sourceId: SOURCE, appId, productId, txHash: '0xa9a1' }));
      await purchased(appId);
    });

    // Each case seeds its own apps (seedRefusalApps) and its input is about those.
    test.each(
      (
        [
          ['a free app', PurchaseAppMutation, (n) => ({ sourceId: SOURCE, appId: n.jellyfin }), 'INVALID_STATE'],
          ['an unknown app', PurchaseAppMutation, (_n) => ({ sourceId: SOURCE, appId: 'nope' }), 'NOT_FOUND'],
          [
            'paying before signing',
            StartFrontendPaymentMutation,
            (n) => ({ sourceId: SOURCE, appId: n.plex, productId: `${n.plex}-license` }),
            'NOT_FOUND',
          ],
          [
            'a malformed transaction hash',
            SubmitPaymentTransactionMutation,
            (n) => ({ sourceId: SOURCE, appId: n.comfyui, productId: `${n.comfyui}-license`, txHash: 'not-hex' }),
            'VALIDATION',
          ],
          [
            'a signature for a product never bought',
            SubmitSignatureMutation,
            (_n) => ({ productId: 'nobody-license', jws: 'x.y.z' }),
            'NOT_FOUND',
          ],
          [
            'signed without the signature',
            SignatureCallbackMutation,
            (n) => ({ productId: `${n.rocketchat}-license`, signed: true }),
            'VALIDATION',
          ],
          [
            'an empty signature',
            SubmitSignatureMutation,
            (n) => ({ productId: `${n.rocketchat}-license`, jws: '  ' }),
            'VALIDATION',
          ],
        ] as const satisfies readonly (readonly [string, unknown, (n: RefusalApps) => object, string])[]
      ).map(([name, document, input, code], index) => ({ name, document, input, code, index })),
    )('$name is refused with $code, changing nothing', async ({ document, input, code, index }) => {
      const apps = await seedRefusalApps(seeder, `r${index}`);
      const before = await server.app.db.payment.findMany({ orderBy: { id: 'asc' } });
      const response = dataOf(
        await execute(
          server,
          document as typeof PurchaseAppMutation,
          { input: input(apps) as never },
          { token: TOKENS.bob },
        ),
      );
      expect(Object.values(response)[0]).toMatchObject({ code });
      expect(await server.app.db.payment.findMany({ orderBy: { id: 'asc' } })).toEqual(before);
    });

    test("a user never reads or moves another user's payment; admins read all", async () => {
      // alice's purchase of an app of this test's own, which no other test buys.
      await seed(server.app.db).catalogApp({ name: 'owl-pro', price: '1.00' });
      await seed(server.app.db).user('alice').payment({ appId: 'owl-pro', status: 'purchased' });
      const alices = dataOf(
        await execute(server, PaymentsQuery, { filter: { appId: 'owl-pro' } }, { token: TOKENS.alice }),
      ).payments.edges[0]?.node;
      expect(alices?.userId).toBe('alice');
      expect(
        dataOf(await execute(server, NodeQuery, { id: alices?.id as string }, { token: TOKENS.bob })).node,
      ).toBeNull();
      expect(
        dataOf(await execute(server, PaymentsQuery, {}, { token: TOKENS.bob })).payments.edges.every(
          (e) => e.node.userId === 'bob',
        ),
      ).toBe(true);
      expect(dataOf(await execute(server, PaymentsQuery, {}, { token: TOKENS.ops })).payments.totalCount).toBe(
        await server.app.db.payment.count(),
      );
      // bob "submitting a signature" for alice's product only ever touches bob's own purchases
      const hijack = dataOf(
        await execute(
          server,
          SubmitSignatureMutation,
          { input: { productId: 'owl-pro-license', jws: 'bob.jws.sig' } },
          { token: TOKENS.bob },
        ),
      ).submitSignature;
      expect(hijack).toMatchObject({ code: 'NOT_FOUND' });
      expect(
        dataOf(
          await execute(server, PaymentStatusQuery, { sourceId: SOURCE, appId: 'owl-pro' }, { token: TOKENS.alice }),
        ).paymentStatus?.status,
      ).toBe('PURCHASED');
    });

    test('a product bought from one source counts where another source offers the same product', async () => {
      // alice bought lynx-pro from the remote source; the upload source offers the same product.
      await seed(server.app.db).catalogApp({ name: 'lynx-pro', price: '2.00' });
      await seed(server.app.db).catalogApp({ name: 'lynx-pro', price: '2.00', sourceId: 'upload' });
      await seed(server.app.db).user('alice').payment({ appId: 'lynx-pro', status: 'purchased' });
      const here = { sourceId: 'upload', appId: 'lynx-pro' };
      const alice = { token: TOKENS.alice };
      expect(dataOf(await execute(server, PaymentStatusQuery, here, alice)).paymentStatus?.status).toBe('PURCHASED');
      const bought = dataOf(await execute(server, PurchaseAppMutation, { input: here }, alice)).purchaseApp;
      expect(bought).toMatchObject({ __typename: 'PurchaseAppSuccess', payment: { status: 'PURCHASED' } });
      const install = dataOf(
        await execute(
          server,
          InstallAppMutation,
          { input: { sourceId: 'upload', appName: 'lynx-pro', version: '1.0.0' } },
          alice,
        ),
      ).installApp;
      expect(install.__typename).toBe('InstallAppSuccess');
      // Nobody else's purchase counts: bob has none.
      expect(dataOf(await execute(server, PaymentStatusQuery, here, { token: TOKENS.bob })).paymentStatus).toBeNull();
    });
  });

  describe('polling survives a restart', () => {
    test('a polling round in progress when the server stops resumes in the next one, where it left off', async () => {
      const env = {
        ...AUTH_ENV,
        PAYMENT_POLL_INTERVAL_MS: '100',
        PAYMENT_POLL_ATTEMPTS: '20',
        SIMULATED_DEVELOPER_OUTCOMES: 'comfyui-license=vc-after-6',
      };
      const database = await createTestDatabase(kind);
      const seeding = seed(createPrismaClient(database.url));
      await seeding
        .remoteSource()
        .then(() => bobSignedForComfyui(seeding))
        .finally(() => seeding.db.$disconnect());
      const first = await startTestServer(kind, { env: { DEMO_DATA: '0', ...env }, database });
      let second: TestServer | undefined;
      try {
        // bob signed for ComfyUI earlier; he pays now, and polling starts
        const input = { sourceId: SOURCE, appId: 'comfyui', productId: 'comfyui-license', txHash: '0x01' };
        success(
          dataOf(await execute(first, SubmitPaymentTransactionMutation, { input }, { token: TOKENS.bob }))
            .submitPaymentTransaction,
        );
        await waitFor(async () => {
          const row = await first.app.db.payment.findFirst({ where: { userId: 'bob', appId: 'comfyui' } });
          return row && row.pollAttempts >= 2 ? row : undefined;
        }, 'two credential queries');
        await first.app.stop();
        const db = createPrismaClient(first.database.url);
        const atStop = await db.payment
          .findFirst({ where: { userId: 'bob', appId: 'comfyui' } })
          .finally(() => db.$disconnect());
        expect(atStop).toMatchObject({ developerSync: 'in_progress', vc: null });

        second = await startTestServer(kind, { env: { DEMO_DATA: '0', ...env }, database });
        const done = await waitFor(async () => {
          const row = await second?.app.db.payment.findFirst({ where: { userId: 'bob', appId: 'comfyui' } });
          return row?.vc ? row : undefined;
        }, 'the resumed polling to get the credential');
        expect(done).toMatchObject({ developerSync: 'completed', paymentStatus: 'developer_confirmed' });
        // It went on counting from where it stopped: the new process's simulated developer
        // (which remembers nothing) answered "no record" 5 times and granted at the 6th query.
        expect(done.pollAttempts).toBe((atStop?.pollAttempts ?? 0) + 5);
      } finally {
        await second?.stop();
        await database.drop();
      }
    });
  });
});
