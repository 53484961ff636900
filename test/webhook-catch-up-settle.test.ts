import { Writable } from 'node:stream';
import { afterEach, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import { databaseClockOf } from '../src/db/database-clock.js';
import { createLogger } from '../src/platform/logger.js';
import { WebhookCatchUp } from '../src/services/webhook-catch-up.js';
import { WebhookDispatcher } from '../src/services/webhook-dispatcher.js';
import { WebhookService } from '../src/services/webhook-service.js';
import { availableDatabases, createTestDatabase } from './support/databases.js';

const databases = await availableDatabases();
const CAUGHT_UP = 'webhooks: caught up on changes never dispatched';

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

describe.each(databases)('the webhook catch-up on %s', (kind) => {
  test('leaves a change committed a moment ago to the live dispatcher, and says it caught up only on what the dispatcher really missed', async () => {
    const database = await createTestDatabase(kind);
    disposers.push(() => database.drop());
    const db = createPrismaClient(database.url);
    disposers.push(() => db.$disconnect());
    const msgs: string[] = [];
    const output = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) msgs.push(JSON.parse(line).msg);
        done();
      },
    });
    const logger = createLogger('info', output);
    const webhooks = new WebhookService(db, 10, kind, databaseClockOf(db));
    const dispatcher = new WebhookDispatcher(db, webhooks, logger, databaseClockOf(db));
    disposers.push(() => dispatcher.stop());
    const catchUp = new WebhookCatchUp(db, webhooks, dispatcher, logger, { lookBackMs: 24 * 60 * 60 * 1000 });
    await db.webhook.create({
      data: {
        webhookId: 'wh_0000000000000000000000se',
        url: 'http://127.0.0.1:9/hook',
        secret: 'settle-secret',
        events: ['APP_STATE_CHANGED'],
        createdBy: 'admin',
        createdAt: new Date(Date.now() - 60_000),
      },
    });
    const key = { userId: 'alice', sourceId: 'src', appName: 'settling' };
    const committed = new Date();
    await db.appState.create({ data: { ...key, state: 'running', eventTime: committed, updatedAt: committed } });

    // The run comes between the commit and the dispatcher's handling of its bus event.
    expect(await catchUp.run(new Date(committed.getTime() + 1000))).toBe(0);
    dispatcher.accept({ kind: 'app', event: key });
    await dispatcher.idle();
    expect(await db.outboxMessage.count()).toBe(1);
    // Once the change settled, the next run reads it, finds it announced and writes nothing.
    expect(await catchUp.run(new Date(committed.getTime() + 10_000))).toBe(0);
    expect(msgs).not.toContain(CAUGHT_UP);

    // A change the dispatcher never heard of is still caught up, once settled.
    const missed = { ...key, appName: 'missed' };
    const later = new Date(committed.getTime() + 1);
    await db.appState.create({ data: { ...missed, state: 'running', eventTime: later, updatedAt: later } });
    expect(await catchUp.run(new Date(later.getTime() + 10_000))).toBe(1);
    expect(msgs.filter((msg) => msg === CAUGHT_UP)).toHaveLength(1);
    expect(await db.outboxMessage.count({ where: { subject: 'app:alice/src/missed' } })).toBe(1);
  });
});
