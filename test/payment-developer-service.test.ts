import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { simulatedServicesWarning, startBanner } from '../src/app/banner.js';
import { loadConfig } from '../src/platform/config.js';
import { availableDatabases } from './support/databases.js';
import {
  InstallAppMutation,
  PaymentDetailQuery,
  PurchaseAppMutation,
  StartFrontendPaymentMutation,
  SubmitPaymentTransactionMutation,
  SubmitSignatureMutation,
} from './support/operations.js';
import { REMOTE_SOURCE, startSeededServer } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * The simulated developer service grants every purchase: outside local development it runs only
 * when asked for (SIMULATED_DEVELOPER_SERVICE); a deployment that sets neither it nor
 * DEVELOPER_SERVICE_URL_TEMPLATE refuses purchases, naming the setting.
 */

const databases = await availableDatabases();
const SOURCE = REMOTE_SOURCE;
const TEMPLATE = 'https://{developer}.dev.example/grant';

describe('which developer service a configuration gets', () => {
  test.each([
    ['local development, nothing set', {}, 'simulated'],
    ['API tokens, nothing set', AUTH_ENV, 'none'],
    ['a gateway header, nothing set', { AUTH_USER_HEADER: 'X-Bfl-User' }, 'none'],
    [
      'API tokens and a real app service',
      { ...AUTH_ENV, APP_SERVICE_URL: 'https://apps.internal', APP_SERVICE_EVENT_SECRET: 'event-secret-0001x' },
      'none',
    ],
    ['API tokens and SIMULATED_DEVELOPER_SERVICE', { ...AUTH_ENV, SIMULATED_DEVELOPER_SERVICE: 'true' }, 'simulated'],
    ['API tokens and a template', { ...AUTH_ENV, DEVELOPER_SERVICE_URL_TEMPLATE: TEMPLATE }, 'http'],
    [
      'a template beside SIMULATED_DEVELOPER_SERVICE',
      { ...AUTH_ENV, DEVELOPER_SERVICE_URL_TEMPLATE: TEMPLATE, SIMULATED_DEVELOPER_SERVICE: 'true' },
      'http',
    ],
  ] as const)('%s: %s', (_name, env, kind) => {
    expect(loadConfig({ HOST: '127.0.0.1', ...env }).payments.developerService.kind).toBe(kind);
  });

  test('the banner and the start warning say which services are simulated, and that purchases are refused', () => {
    const running = { url: 'http://127.0.0.1:4000', port: 4000 };
    const refusing = loadConfig(AUTH_ENV);
    expect(startBanner(refusing, running).developerService).toBe(
      'none: purchases are refused (DEVELOPER_SERVICE_URL_TEMPLATE)',
    );
    expect(simulatedServicesWarning(refusing)).toBe(
      'Simulated: the app service (APP_SERVICE_URL unset): installs nothing. Paid apps cannot be bought on this server: no developer service is configured (set DEVELOPER_SERVICE_URL_TEMPLATE).',
    );
    const local = loadConfig({});
    expect(startBanner(local, running).developerService).toBe('simulated: grants every purchase');
    expect(simulatedServicesWarning(local)).toMatch(
      /the developer service \(DEVELOPER_SERVICE_URL_TEMPLATE unset\): grants every purchase/,
    );
    const real = loadConfig({
      ...AUTH_ENV,
      APP_SERVICE_URL: 'https://apps.internal',
      APP_SERVICE_EVENT_SECRET: 'event-secret-0001x',
      DEVELOPER_SERVICE_URL_TEMPLATE: TEMPLATE,
    });
    expect(startBanner(real, running).developerService).toBe(TEMPLATE);
    expect(simulatedServicesWarning(real)).toBeNull();
  });
});

describe.each(databases)('a token-mode server without a developer service on %s', (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    ({ server } = await startSeededServer(kind, {
      preseed: async (seed) => {
        await seed.remoteSource();
        await seed.catalogApp({ name: 'plex', versions: ['1.0.0'], price: '9.99' });
        await seed.catalogApp({ name: 'comfyui', versions: ['1.0.0'], price: '9.99' });
        // A purchase signed while the server still simulated the developer service.
        await seed.user('bob').payment({ appId: 'comfyui', status: 'signed' });
      },
      // '' takes back the simulation startTestServer asks for.
      env: { ...AUTH_ENV, SIMULATED_DEVELOPER_SERVICE: '', PAYMENT_POLL_INTERVAL_MS: '20', PAYMENT_POLL_ATTEMPTS: '3' },
    }));
  });
  afterAll(() => server?.stop());

  const status = async (token: string, appId: string) =>
    dataOf(await execute(server, PaymentDetailQuery, { sourceId: SOURCE, appId }, { token })).paymentStatus;

  test('a purchase is refused naming DEVELOPER_SERVICE_URL_TEMPLATE, and the junk signature and payment after it buy nothing', async () => {
    const alice = { token: TOKENS.alice };
    const bought = dataOf(
      await execute(server, PurchaseAppMutation, { input: { sourceId: SOURCE, appId: 'plex' } }, alice),
    );
    expect(bought.purchaseApp).toEqual({
      __typename: 'InvalidStateError',
      code: 'INVALID_STATE',
      message:
        'Paid apps cannot be bought on this server: no developer service is configured (set DEVELOPER_SERVICE_URL_TEMPLATE)',
    });
    const productId = 'plex-license';
    const signed = dataOf(
      await execute(server, SubmitSignatureMutation, { input: { productId, jws: 'junk.jws.x' } }, alice),
    );
    expect(signed.submitSignature).toMatchObject({ code: 'NOT_FOUND' });
    const started = dataOf(
      await execute(
        server,
        StartFrontendPaymentMutation,
        { input: { sourceId: SOURCE, appId: 'plex', productId } },
        alice,
      ),
    );
    expect(started.startFrontendPayment).toMatchObject({ code: 'NOT_FOUND' });
    const paid = dataOf(
      await execute(
        server,
        SubmitPaymentTransactionMutation,
        { input: { sourceId: SOURCE, appId: 'plex', productId, txHash: '0xdeadbeef' } },
        alice,
      ),
    );
    expect(paid.submitPaymentTransaction).toMatchObject({ code: 'NOT_FOUND' });
    expect(await status(TOKENS.alice, 'plex')).toBeNull();
    const install = { input: { sourceId: SOURCE, appName: 'plex', version: '1.0.0' } };
    expect(dataOf(await execute(server, InstallAppMutation, install, alice)).installApp).toMatchObject({
      code: 'INVALID_STATE',
      message: expect.stringMatching(/payment required/),
    });
  });

  test('a purchase signed before the developer service was removed is paid for and never granted', async () => {
    const bob = { token: TOKENS.bob };
    const productId = 'comfyui-license';
    const ref = { sourceId: SOURCE, appId: 'comfyui', productId };
    const started = dataOf(await execute(server, StartFrontendPaymentMutation, { input: ref }, bob));
    expect(started.startFrontendPayment).toMatchObject({ __typename: 'StartFrontendPaymentSuccess' });
    const paid = dataOf(
      await execute(server, SubmitPaymentTransactionMutation, { input: { ...ref, txHash: '0xdeadbeef' } }, bob),
    );
    expect(paid.submitPaymentTransaction).toMatchObject({ __typename: 'SubmitPaymentTransactionSuccess' });
    const ended = await waitFor(async () => {
      const payment = await status(TOKENS.bob, 'comfyui');
      return payment?.developerSync === 'in_progress' ? undefined : payment;
    }, 'the polling round to end');
    expect(ended?.status).not.toBe('PURCHASED');
    const install = { input: { sourceId: SOURCE, appName: 'comfyui', version: '1.0.0' } };
    expect(dataOf(await execute(server, InstallAppMutation, install, bob)).installApp).toMatchObject({
      code: 'INVALID_STATE',
    });
  });
});
