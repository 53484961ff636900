import type { DatabaseKind } from './databases.js';
import { type FakeDeveloperService, startFakeDeveloperService } from './fake-developer-service.js';
import { FakeReceiver } from './fake-receiver.js';
import { type Seeder, startSeededServer } from './seed.js';
import { AUTH_ENV, type TestServer } from './server.js';

/** The payment of a payment mutation's success result; anything else (an error result) fails the test, showing it. */
export function success<T extends { __typename: string }>(result: T): Extract<T, { payment: unknown }>['payment'] {
  if (!('payment' in result)) throw new Error(`expected success, got ${JSON.stringify(result)}`);
  return (result as { payment: unknown }).payment as never;
}

/** A server selling paid apps of a remote source, with its developer service and push receivers (fakes). */
export interface PaymentWorld {
  server: TestServer;
  seeder: Seeder;
  developer: FakeDeveloperService;
  /** Receives the frontend's pushes at `/frontend`. */
  frontend: FakeReceiver;
  /** Receives the wallet's pushes at `/wallet` (with PUBLIC_BASE_URL set); null when not asked for. */
  wallet: FakeReceiver | null;
  stop(): Promise<void>;
}

/**
 * Starts a payment world: polling every 20 ms, two attempts; `wallet` adds the wallet's push
 * receiver; `secret` signs the pushes.
 */
export async function startPaymentWorld(
  kind: DatabaseKind,
  { wallet: withWallet, secret }: { wallet: boolean; secret: string },
): Promise<PaymentWorld> {
  const developer = await startFakeDeveloperService();
  const frontend = await FakeReceiver.start();
  const wallet = withWallet ? await FakeReceiver.start() : null;
  const closeFakes = async () => {
    await developer.stop();
    await frontend.close();
    await wallet?.close();
  };
  const started = startSeededServer(kind, {
    preseed: (seed) => seed.remoteSource(),
    env: {
      ...AUTH_ENV,
      DEVELOPER_SERVICE_URL_TEMPLATE: developer.urlTemplate,
      PAYMENT_POLL_INTERVAL_MS: '20',
      PAYMENT_POLL_ATTEMPTS: '2',
      PAYMENT_FRONTEND_PUSH_URL: frontend.url('/frontend'),
      ...(wallet
        ? { PAYMENT_WALLET_PUSH_URL: wallet.url('/wallet'), PUBLIC_BASE_URL: 'https://market.example.com' }
        : {}),
      PAYMENT_PUSH_SECRET: secret,
    },
  });
  const { server, seed: seeder } = await started.catch(async (error) => {
    await closeFakes();
    throw error;
  });
  return {
    server,
    seeder,
    developer,
    frontend,
    wallet,
    async stop() {
      await server.stop();
      await closeFakes();
    },
  };
}
