/**
 * A server's outbox worker alone, in a process of its own, for tests about processes (one on a
 * clock ahead of the others, with test/support/skewed-clock.mjs preloaded). Reads DATABASE_URL,
 * OUTBOX_ATTEMPT_TIMEOUT_MS and PAYMENT_WALLET_PUSH_URL (the pushes it may send), signs with
 * PAYMENT_PUSH_SECRET; prints its worker id once started; stops on SIGTERM.
 */
import { createPrismaClient } from '../../src/db/client.js';
import { createLogger } from '../../src/platform/logger.js';
import { OutboxWorker } from '../../src/services/outbox-worker.js';

const env = process.env;
const db = createPrismaClient(env.DATABASE_URL as string);
const worker = new OutboxWorker(
  db,
  {
    concurrency: 4,
    maxAttempts: 5,
    backoffBaseMs: 1000,
    backoffMaxMs: 60_000,
    attemptTimeoutMs: Number(env.OUTBOX_ATTEMPT_TIMEOUT_MS ?? 10_000),
    pollIntervalMs: 100,
  },
  env.PAYMENT_PUSH_SECRET ?? null,
  createLogger('warn'),
  async () => {},
  { wallet: env.PAYMENT_WALLET_PUSH_URL ?? null, frontend: null },
);
worker.start();
console.log(JSON.stringify({ msg: 'outbox worker started', workerId: worker.workerId }));
process.once('SIGTERM', () => {
  void worker
    .stop(Date.now())
    .then(() => db.$disconnect())
    .then(() => process.exit(0));
});
