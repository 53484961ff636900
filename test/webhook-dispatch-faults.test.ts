import { Writable } from 'node:stream';
import { afterEach, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { databaseClockOf } from '../src/db/database-clock.js';
import { createLogger } from '../src/platform/logger.js';
import { WebhookCatchUp } from '../src/services/webhook-catch-up.js';
import { WebhookDispatcher } from '../src/services/webhook-dispatcher.js';
import { WebhookService } from '../src/services/webhook-service.js';
import { availableDatabases, createTestDatabase, type DatabaseKind } from './support/databases.js';

const databases = await availableDatabases();
const APPS = 10;
/** The app whose message the database refuses (a trigger on the outbox). */
const BAD = 'app-7';
const SECRET = 'whsec-fault-test-0123456789abcdef';
const URL_TOKEN = 'url-token-fault-test-0123456789';

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

/** The JSON lines a logger wrote. */
function capturedLogger() {
  const lines: { msg: string; level: number; change?: { kind: string; subject: string } }[] = [];
  const text: string[] = [];
  const output = new Writable({
    write(chunk, _encoding, done) {
      text.push(String(chunk));
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger('info', output), lines, text };
}

const key = (index: number) => ({ userId: 'alice', sourceId: 'src', appName: `app-${index}` });

/** A database with APPS running apps and a webhook that wants their states (created before them). */
async function seeded(kind: DatabaseKind): Promise<Db> {
  const database = await createTestDatabase(kind);
  disposers.push(() => database.drop());
  const db = createPrismaClient(database.url);
  disposers.push(() => db.$disconnect());
  await db.webhook.create({
    data: {
      webhookId: 'wh_0000000000000000000000fa',
      url: `http://127.0.0.1:9/hook?token=${URL_TOKEN}`,
      secret: SECRET,
      events: ['APP_STATE_CHANGED'],
      createdBy: 'admin',
      createdAt: new Date(Date.now() - 60_000),
    },
  });
  for (let index = 0; index < APPS; index++) {
    await db.appState.create({ data: { ...key(index), state: 'running', eventTime: new Date() } });
  }
  return db;
}

/** A real fault: the database itself refuses the outbox row about BAD, and that one only. */
async function refuseMessagesAbout(db: Db, kind: DatabaseKind, appName: string): Promise<void> {
  const subject = `app:alice/src/${appName}`;
  if (kind === 'sqlite') {
    await db.$executeRawUnsafe(
      `CREATE TRIGGER "refuse_one" BEFORE INSERT ON "OutboxMessage" WHEN NEW."subject" = '${subject}'
       BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END`,
    );
    return;
  }
  await db.$executeRawUnsafe(
    `CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       IF NEW."subject" = '${subject}' THEN RAISE EXCEPTION 'refused by the test trigger'; END IF;
       RETURN NEW;
     END $$`,
  );
  await db.$executeRawUnsafe(
    `CREATE TRIGGER "refuse_one" BEFORE INSERT ON "OutboxMessage" FOR EACH ROW EXECUTE FUNCTION refuse_one()`,
  );
}

async function subjectsInOutbox(db: Db): Promise<string[]> {
  const messages = await db.outboxMessage.findMany({ orderBy: { subject: 'asc' } });
  return messages.map((message) => message.subject ?? '');
}

const allBut = (bad: string) =>
  Array.from({ length: APPS }, (_, index) => `app:alice/src/app-${index}`)
    .filter((subject) => subject !== `app:alice/src/${bad}`)
    .sort();

describe.each(databases)('the webhook dispatcher on %s when the database refuses one change of a batch', (kind) => {
  test('enqueues the other changes of the batch and logs the refused one once, at error level, by its subject, with no secret', async () => {
    const db = await seeded(kind);
    await refuseMessagesAbout(db, kind, BAD);
    const { logger, lines, text } = capturedLogger();
    const dispatcher = new WebhookDispatcher(
      db,
      new WebhookService(db, 10, kind, databaseClockOf(db)),
      logger,
      databaseClockOf(db),
    );
    disposers.push(() => dispatcher.stop());

    for (let index = 0; index < APPS; index++) dispatcher.accept({ kind: 'app', event: key(index) });
    await dispatcher.idle();

    expect(await subjectsInOutbox(db)).toEqual(allBut(BAD));
    const errors = lines.filter((line) => line.level >= 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.msg).toBe('webhooks: a change failed alone (left to the catch-up)');
    expect(errors[0]?.change).toEqual({ kind: 'app', subject: `app:alice/src/${BAD}` });
    expect(text.join('')).toContain('refused by the test trigger');
    expect(text.join('')).not.toContain(SECRET);
    expect(text.join('')).not.toContain(URL_TOKEN);
  });

  test('the catch-up enqueues the other changes of its page, logs the refused one and moves its cursor past it instead of failing at it at every run', async () => {
    const db = await seeded(kind);
    await refuseMessagesAbout(db, kind, BAD);
    const { logger, lines } = capturedLogger();
    const webhooks = new WebhookService(db, 10, kind, databaseClockOf(db));
    const dispatcher = new WebhookDispatcher(db, webhooks, logger, databaseClockOf(db));
    disposers.push(() => dispatcher.stop());
    const catchUp = new WebhookCatchUp(db, webhooks, dispatcher, logger, { lookBackMs: 24 * 60 * 60 * 1000 });

    // Past the catch-up's settle window (5 s): it reads the rows just written.
    const now = new Date(Date.now() + 10_000);
    expect(await catchUp.run(now)).toBe(APPS - 1);

    expect(await subjectsInOutbox(db)).toEqual(allBut(BAD));
    const errors = lines.filter((line) => line.level >= 50);
    expect(errors.map((line) => [line.msg, line.change?.subject])).toEqual([
      ['webhooks: a change failed alone (the catch-up skips it)', `app:alice/src/${BAD}`],
    ]);
    const cursor = await db.jobCursor.findUnique({ where: { name: 'webhook-catch-up:apps' } });
    expect(cursor?.position.getTime()).toBe(now.getTime() - 30_000);
  });
});
