import { type Db, databaseProvider } from '../db/client.js';
import type { DatabaseClock } from '../db/database-clock.js';
import type { EventBus } from '../events/change-feed.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import type { SettledMessage } from '../services/outbox-delivery.js';
import { OutboxWorker } from '../services/outbox-worker.js';
import { WebhookDispatcher } from '../services/webhook-dispatcher.js';
import { WebhookService } from '../services/webhook-service.js';

/**
 * The outbound side (create-services.ts): the webhooks admins register, the dispatcher that turns
 * this instance's changes into webhook deliveries, and the worker that delivers the outbox (on
 * every instance). `startOutbox` runs once the database is ready; `stopOutbox` before it closes.
 */
export function createOutbox({
  db,
  config,
  logger,
  clock,
  onSettled,
}: {
  db: Db;
  config: Config;
  logger: Logger;
  /** The process's DatabaseClock: the worker's claims and locks are on it. */
  clock: DatabaseClock;
  /** A message delivered or dead-lettered (see OutboxWorker). */
  onSettled?: (message: SettledMessage) => Promise<void>;
}) {
  const webhooks = new WebhookService(db, config.maxWebhooks, databaseProvider(config.databaseUrl), clock);
  return {
    webhooks,
    webhookDispatcher: new WebhookDispatcher(db, webhooks, logger.child({ component: 'webhooks' }), clock, {
      cluster: config.redis !== null,
    }),
    outboxWorker: new OutboxWorker(
      db,
      config.outbox,
      config.payments.pushes.secret,
      logger.child({ component: 'outbox' }),
      onSettled,
      { wallet: config.payments.pushes.walletUrl, frontend: config.payments.pushes.frontendUrl },
      clock,
    ),
  };
}

type Outbox = ReturnType<typeof createOutbox>;

/** `localBus`: this instance's own announcements, so that each change is dispatched by one instance. */
export async function startOutbox({ webhooks, webhookDispatcher, outboxWorker }: Outbox, localBus: EventBus) {
  await webhooks.current();
  webhookDispatcher.start(localBus);
  outboxWorker.start();
}

/** The dispatcher's last changes reach the outbox, then the deliveries in flight get until `deadline`. */
export async function stopOutbox({ webhookDispatcher, outboxWorker }: Outbox, deadline: number) {
  await webhookDispatcher.stop();
  await outboxWorker.stop(deadline);
}
