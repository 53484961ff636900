import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { appKeyString } from '../src/domain/app-key.js';
import { availableDatabases } from './support/databases.js';
import { type FakeAppService, startFakeAppService } from './support/fake-app-service.js';
import { type FakeDeveloperService, startFakeDeveloperService } from './support/fake-developer-service.js';
import {
  CloneAppMutation,
  InstallAppMutation,
  PaymentDetailQuery,
  PurchaseAppMutation,
  SignatureCallbackMutation,
  StartFrontendPaymentMutation,
  SubmitPaymentTransactionMutation,
  SubmitSignatureMutation,
  UpgradeAppMutation,
} from './support/operations.js';
import { type Seeder, REMOTE_SOURCE as SOURCE, startSeededServer } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * What a buyer, their frontend and a developer's credential service can make the server keep:
 * the credential a developer grants, the frontend's note while it pays, and the envs of a paid
 * app's install. Each is bounded, and the credential env is the server's alone.
 */

const databases = await availableDatabases();

describe.each(databases)('payment bounds on %s', (kind) => {
  let developer: FakeDeveloperService;
  let appService: FakeAppService;
  let server: TestServer;
  let seeder: Seeder;
  beforeAll(async () => {
    developer = await startFakeDeveloperService();
    appService = await startFakeAppService();
    ({ server, seed: seeder } = await startSeededServer(kind, {
      preseed: (seed) => seed.remoteSource(),
      env: {
        ...AUTH_ENV,
        DEVELOPER_SERVICE_URL_TEMPLATE: developer.urlTemplate,
        APP_SERVICE_URL: appService.url,
        APP_SERVICE_EVENT_SECRET: 'app-service-event-secret-0003',
        PAYMENT_POLL_INTERVAL_MS: '30',
        PAYMENT_POLL_ATTEMPTS: '2',
      },
    }));
  });
  afterAll(async () => {
    await server?.stop();
    await developer?.stop();
    await appService?.stop();
  });

  const paidApp = (name: string) => seeder.catalogApp({ name, versions: ['1.0.0', '0.9.0'], price: '9.99' });
  const payment = async (appId: string) =>
    dataOf(await execute(server, PaymentDetailQuery, { sourceId: SOURCE, appId }, { token: TOKENS.alice }))
      .paymentStatus;

  /** alice buys `appId`, signs and pays; resolves with the payment once the polling round ended. */
  async function payAndPoll(appId: string) {
    await paidApp(appId);
    const token = { token: TOKENS.alice };
    const productId = `${appId}-license`;
    await execute(server, PurchaseAppMutation, { input: { sourceId: SOURCE, appId } }, token);
    await execute(server, SubmitSignatureMutation, { input: { productId, jws: `alice.${appId}.jws` } }, token);
    const paid = dataOf(
      await execute(
        server,
        SubmitPaymentTransactionMutation,
        { input: { sourceId: SOURCE, appId, productId, txHash: '0xfeed' } },
        token,
      ),
    ).submitPaymentTransaction;
    expect(paid.__typename).toBe('SubmitPaymentTransactionSuccess');
    return waitFor(async () => {
      const current = await payment(appId);
      return current && current.developerSync !== 'in_progress' ? current : undefined;
    }, 'the polling round to end');
  }

  /** What the server kept of the credential and pushed of it. */
  async function keptCredential(appId: string) {
    const row = await server.app.db.payment.findFirst({ where: { userId: 'alice', appId } });
    const pushes = await server.app.db.paymentNotification.findMany({
      where: { paymentId: row?.id ?? -1, topic: 'save_payment_vc' },
    });
    return { vc: row?.vc ?? null, pushes: pushes.length };
  }

  /** Why the credential queries about alice's payment of `appId` failed, as logged. */
  async function failedQueries(appId: string): Promise<string[]> {
    const row = await server.app.db.payment.findFirst({ where: { userId: 'alice', appId } });
    return server.logs
      .map((line) => JSON.parse(line) as { msg?: string; paymentId?: number; err?: string })
      .filter((entry) => entry.msg === 'credential query failed' && entry.paymentId === row?.id)
      .map((entry) => entry.err ?? '');
  }

  test('a signature that is not a compact JWS is refused before it is stored or sent; an empty txHash counts as none', async () => {
    await paidApp('jws-shape');
    const token = { token: TOKENS.alice };
    const productId = 'jws-shape-license';
    await execute(server, PurchaseAppMutation, { input: { sourceId: SOURCE, appId: 'jws-shape' } }, token);
    const row = () => server.app.db.payment.findFirstOrThrow({ where: { userId: 'alice', appId: 'jws-shape' } });
    const asked = developer.requests.length;
    const submit = async (input: { jws: string; txHash?: string }) =>
      dataOf(await execute(server, SubmitSignatureMutation, { input: { productId, ...input } }, token)).submitSignature;
    // Each was stored and forwarded to the developer's service as the buyer's signature.
    for (const jws of [
      '../../../etc/passwd',
      'eyJhbGciOiJFUzI1NiJ9.cGF5.c2ln\r\nX-Injected: 1',
      'eyJhbGciOiJFUzI1NiJ9.cGF5', // two segments
      'eyJhbGciOiJFUzI1NiJ9.cGF5.c2ln.ZXh0cmE', // four
      '.cGF5.c2ln', // no header
      'eyJhbGciOiJFUzI1NiJ9.cGF5.', // no signature
      'eyJhbGciOiJFUzI1NiJ9.cGF5.c2ln==', // padded: base64url in a JWS has none
      'eyJhbGciOiJFUzI1NiJ9.c+Y/.c2ln', // base64, not base64url
    ]) {
      expect(await submit({ jws }), JSON.stringify(jws)).toMatchObject({
        code: 'VALIDATION',
        message: expect.stringContaining('jws must be a compact JWS'),
        issues: [{ path: 'jws' }], // the field a form marks
      });
    }
    const held = dataOf(
      await execute(server, SignatureCallbackMutation, { input: { productId, signed: true, jws: 'a/b' } }, token),
    ).signatureCallback;
    expect(held).toMatchObject({
      code: 'VALIDATION',
      message: expect.stringContaining('jws must be a compact JWS'),
      issues: [{ path: 'jws' }],
    });
    expect(await row()).toMatchObject({ jws: null, txHash: null });
    expect(developer.requests.length).toBe(asked);

    expect(await submit({ jws: 'eyJhbGciOiJFUzI1NiJ9.cGF5.c2ln', txHash: '0xzz' })).toMatchObject({
      code: 'VALIDATION',
      issues: [{ path: 'txHash' }],
    });
    // The hash is optional: empty or blank, as a wallet with none may send it, is none, whichever.
    for (const txHash of ['', '   ']) {
      expect(await submit({ jws: 'eyJhbGciOiJFUzI1NiJ9.cGF5.c2ln', txHash }), JSON.stringify(txHash)).toMatchObject({
        __typename: 'SubmitSignatureSuccess',
      });
      expect(await row()).toMatchObject({ jws: 'eyJhbGciOiJFUzI1NiJ9.cGF5.c2ln', txHash: null });
    }
    // A detached payload (RFC 7515 Appendix F) is a JWS too.
    expect(await submit({ jws: 'eyJhbGciOiJFUzI1NiJ9..c2ln' })).toMatchObject({ __typename: 'SubmitSignatureSuccess' });
    const paid = await execute(
      server,
      SubmitPaymentTransactionMutation,
      { input: { sourceId: SOURCE, appId: 'jws-shape', productId, txHash: 'feed' } },
      token,
    );
    expect(dataOf(paid).submitPaymentTransaction).toMatchObject({ code: 'VALIDATION', issues: [{ path: 'txHash' }] });
  });

  test('a credential of 8,000,000 characters is refused like a bad answer: nothing stored or pushed, the reason logged', async () => {
    developer.setBehaviour({ respond: 'grant', vc: 'v'.repeat(8_000_000) });
    const ended = await payAndPoll('huge-vc');

    expect(ended).toMatchObject({ status: 'WAITING_DEVELOPER_CONFIRMATION', developerSync: 'failed' });
    expect(await keptCredential('huge-vc')).toEqual({ vc: null, pushes: 0 });
    expect(await failedQueries('huge-vc')).toEqual([
      'developer service of seed-developer answered HTTP 200 with a body larger than 65536 bytes',
      'developer service of seed-developer answered HTTP 200 with a body larger than 65536 bytes',
    ]);
  });

  test('a credential over 16,384 characters is refused naming its length; one of 16,384 is granted', async () => {
    developer.setBehaviour({ respond: 'grant', vc: 'w'.repeat(16_385) });
    expect(await payAndPoll('long-vc')).toMatchObject({ developerSync: 'failed' });
    expect(await keptCredential('long-vc')).toEqual({ vc: null, pushes: 0 });
    expect(await failedQueries('long-vc')).toEqual(
      Array(2).fill(
        'developer service of seed-developer answered with a credential of 16385 characters, more than 16384',
      ),
    );

    const longest = `eyJ${'x'.repeat(16_381)}`;
    developer.setBehaviour({ respond: 'grant', vc: longest });
    expect(await payAndPoll('longest-vc')).toMatchObject({ status: 'PURCHASED', developerSync: 'completed' });
    expect(await keptCredential('longest-vc')).toEqual({ vc: longest, pushes: 1 });
  });

  test('the wallet holding a signature and the developer granting an oversized credential: asked again, then sync failed, the reason logged', async () => {
    await paidApp('held-huge-vc');
    developer.setBehaviour({ respond: 'grant', vc: 'h'.repeat(70_000) });
    const token = { token: TOKENS.alice };
    await execute(server, PurchaseAppMutation, { input: { sourceId: SOURCE, appId: 'held-huge-vc' } }, token);
    const input = { productId: 'held-huge-vc-license', signed: true, jws: 'alice.held.jws' };
    const answered = dataOf(await execute(server, SignatureCallbackMutation, { input }, token)).signatureCallback;

    // A bad answer concludes nothing: a polling round asks again (PAYMENT_POLL_ATTEMPTS in all).
    expect(answered).toMatchObject({ payment: { developerSync: 'in_progress', status: 'SYNCING' } });
    const ended = await waitFor(async () => {
      const current = await payment('held-huge-vc');
      return current && current.developerSync !== 'in_progress' ? current : undefined;
    }, 'the polling round to end');
    expect(ended).toMatchObject({ developerSync: 'failed', status: 'NOT_BUY' });
    expect(await keptCredential('held-huge-vc')).toEqual({ vc: null, pushes: 0 });
    expect(await failedQueries('held-huge-vc')).toEqual([
      'developer service of seed-developer answered HTTP 200 with a body larger than 65536 bytes',
      'developer service of seed-developer answered HTTP 200 with a body larger than 65536 bytes',
    ]);
  });

  test('frontendData over 8,192 characters as JSON is refused with VALIDATION and not kept; 8,192 are kept', async () => {
    await paidApp('noted');
    await seeder.user('alice').payment({ appId: 'noted', status: 'signed' });
    const start = async (frontendData: unknown) =>
      dataOf(
        await execute(
          server,
          StartFrontendPaymentMutation,
          { input: { sourceId: SOURCE, appId: 'noted', productId: 'noted-license', frontendData } },
          { token: TOKENS.alice },
        ),
      ).startFrontendPayment;

    // 60 strings of 16 KB each passed the generic input bounds: 960 KB echoed in every event and read.
    const refused = await start({ notes: Array.from({ length: 60 }, () => 'n'.repeat(16_000)) });
    expect(refused).toEqual({
      __typename: 'ValidationError',
      code: 'VALIDATION',
      message: 'Invalid input: frontendData: frontendData must be at most 8192 characters as JSON',
    });
    expect(await start({ note: 'n'.repeat(8_182) })).toMatchObject({ code: 'VALIDATION' });
    const row = await server.app.db.payment.findFirst({ where: { userId: 'alice', appId: 'noted' } });
    expect(row).toMatchObject({ frontendData: null, paymentStatus: 'notification_sent' });

    // {"note":"…"} is 11 characters around the note
    const kept = await start({ note: 'n'.repeat(8_181) });
    expect(kept.__typename).toBe('StartFrontendPaymentSuccess');
    expect(kept).toMatchObject({
      payment: { status: 'PAYMENT_FRONTEND_STARTED', frontendData: { note: 'n'.repeat(8_181) } },
    });
  });

  test('installApp, upgradeApp and cloneApp refuse an env named VERIFIABLE_CREDENTIAL, sending nothing', async () => {
    await paidApp('forged');
    await seeder.user('alice').payment({ appId: 'forged', status: 'purchased' });
    const envs = [{ name: 'VERIFIABLE_CREDENTIAL', value: 'forged-by-user' }];
    const input = { sourceId: SOURCE, appName: 'forged', envs };
    const token = { token: TOKENS.alice };
    const sent = appService.requests.length;

    const install = dataOf(await execute(server, InstallAppMutation, { input: { ...input, version: '1.0.0' } }, token));
    expect(install.installApp).toMatchObject({
      __typename: 'ValidationError',
      code: 'VALIDATION',
      issues: [
        { path: 'envs.0.name', message: "VERIFIABLE_CREDENTIAL is set by the server (a paid app's credential)" },
      ],
    });
    const upgrade = dataOf(await execute(server, UpgradeAppMutation, { input: { ...input, version: '1.0.0' } }, token));
    expect(upgrade.upgradeApp).toMatchObject({ code: 'VALIDATION' });
    const clone = dataOf(await execute(server, CloneAppMutation, { input: { ...input, title: 'Forged' } }, token));
    expect(clone.cloneApp).toMatchObject({ code: 'VALIDATION' });

    expect(await server.app.db.task.count({ where: { userId: 'alice', appName: 'forged' } })).toBe(0);
    expect(appService.requests.slice(sent)).toEqual([]);
  });

  test('a stored install naming VERIFIABLE_CREDENTIAL itself is sent with the server credential in its place', async () => {
    // A task written before such envs were refused, waiting to be sent.
    await paidApp('stored');
    await seeder.user('alice').payment({ appId: 'stored', status: 'purchased' });
    const key = { userId: 'alice', sourceId: SOURCE, appName: 'stored' };
    await server.app.db.task.create({
      data: {
        ...key,
        taskId: 'stored-forged-install',
        type: 'INSTALL',
        status: 'PENDING',
        version: '1.0.0',
        activeKey: appKeyString(key),
        progress: 0,
        metadata: {
          cfgType: 'app',
          envs: [
            { name: 'VERIFIABLE_CREDENTIAL', value: 'forged-by-user' },
            { name: 'TZ', value: 'UTC' },
          ],
          appId: 'stored',
          paid: true,
        },
      },
    });

    const request = await waitFor(
      async () => appService.requests.find((r) => r.path === '/app-service/v1/apps/stored/install'),
      'the install request',
    );
    const sentEnvs = (request.body as { envs: { envName: string; value: string }[] }).envs;
    expect(sentEnvs.map(({ envName, value }) => ({ envName, value }))).toEqual([
      { envName: 'TZ', value: 'UTC' },
      { envName: 'VERIFIABLE_CREDENTIAL', value: 'seed-vc-alice-stored' },
    ]);
  });
});
