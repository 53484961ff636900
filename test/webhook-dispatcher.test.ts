import { Writable } from 'node:stream';
import { afterEach, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { databaseClockOf } from '../src/db/database-clock.js';
import type { TaskRow } from '../src/db/models.js';
import { ChangeFeed, createEventBus } from '../src/events/change-feed.js';
import { createLogger } from '../src/platform/logger.js';
import { WebhookDispatcher } from '../src/services/webhook-dispatcher.js';
import { WebhookService } from '../src/services/webhook-service.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { proxyDatabase } from './support/tcp-proxy.js';

const databases = await availableDatabases();
const ALL_EVENTS = ['TASK_FINISHED', 'APP_STATE_CHANGED', 'PAYMENT_STATUS_CHANGED'];

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

async function freshDatabase(kind: 'sqlite' | 'postgresql'): Promise<TestDatabase> {
  const database = await createTestDatabase(kind);
  disposers.push(() => database.drop());
  return database;
}

/** A client whose statements are counted (`statements.count`). */
function countingClient(url: string): { db: Db; statements: { count: number } } {
  const statements = { count: 0 };
  const db = createPrismaClient(url, {
    onQuery: () => {
      statements.count += 1;
    },
  });
  disposers.push(() => db.$disconnect());
  return { db, statements };
}

/** The JSON lines a logger wrote. */
function capturedLogger() {
  const lines: { msg: string; level: number }[] = [];
  const output = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger('info', output), lines };
}

const key = (index: number) => ({ userId: 'alice', sourceId: 'src', appName: `app-${index}` });

/** `count` apps installing, each with its RUNNING task, and a webhook that wants every event. */
async function seedInstalls(db: Db, count: number): Promise<TaskRow[]> {
  await db.webhook.create({
    data: {
      webhookId: 'wh_0000000000000000000000aa',
      url: 'http://127.0.0.1:9/',
      secret: 's',
      events: ALL_EVENTS,
      createdBy: 'admin',
    },
  });
  const tasks: TaskRow[] = [];
  for (let index = 0; index < count; index++) {
    const activeKey = `alice/src/app-${index}`;
    tasks.push(
      await db.task.create({
        data: { taskId: `task-${index}`, type: 'INSTALL', status: 'RUNNING', ...key(index), metadata: {}, activeKey },
      }),
    );
    await db.appState.create({ data: { ...key(index), state: 'installing', eventTime: new Date() } });
  }
  return tasks;
}

describe.each(databases)('the webhook dispatcher on %s', (kind) => {
  test.each([
    ['alone', false],
    ['in cluster mode', true],
  ])(
    '%s: a burst of progress reports and task ends costs a few statements per hundred changes, and announces each end and the last state of each app',
    async (_mode, cluster) => {
      const { db, statements } = countingClient((await freshDatabase(kind)).url);
      const tasks = await seedInstalls(db, 30);
      const bus = createEventBus();
      const feed = new ChangeFeed(bus);
      const dispatcher = new WebhookDispatcher(
        db,
        new WebhookService(db, 10, kind, databaseClockOf(db)),
        createLogger('silent'),
        databaseClockOf(db),
        { cluster },
      );
      dispatcher.start(bus);
      disposers.push(() => dispatcher.stop());
      statements.count = 0;
      // Ten progress reports per install, as the engine announces them: the task (RUNNING) and its app.
      for (let report = 0; report < 10; report++) {
        for (const task of tasks) {
          feed.task(task);
          feed.app(task);
        }
      }
      await feed.delivered();
      await dispatcher.idle();
      await db.task.updateMany({ data: { status: 'COMPLETED', completedAt: new Date(), activeKey: null } });
      await db.appState.updateMany({ data: { state: 'running', installedVersion: '1.0.0' } });
      for (const task of tasks) {
        feed.task({ ...task, status: 'COMPLETED' });
        feed.app(task);
      }
      await feed.delivered();
      await dispatcher.idle();
      const changes = tasks.length * 11 * 2;
      // One change at a time, they cost 1.7 statements each (a read of the task or the app and its task).
      // In cluster mode each batch also reads its subjects' last messages (26 statements here, 23 alone).
      expect(statements.count).toBeLessThan(changes / 20);
      const messages = await db.outboxMessage.findMany({ orderBy: { id: 'asc' } });
      expect(messages.filter((m) => m.topic === 'task.finished')).toHaveLength(tasks.length);
      for (const task of tasks) {
        const states = messages.filter((m) => m.subject === `app:alice/src/${task.appName}`);
        expect(states.map((m) => JSON.parse(m.body).app.state)).toEqual(['installing', 'running']);
      }
    },
  );
});

describe.runIf(databases.includes('postgresql'))('the webhook dispatcher during an outage of PostgreSQL', () => {
  test('logs the failure once (not once per change), waits for the database instead of going through its backlog, and enqueues the backlog once it is back', async () => {
    const database = await freshDatabase('postgresql');
    const direct = createPrismaClient(database.url);
    disposers.push(() => direct.$disconnect());
    await seedInstalls(direct, 200);
    const { proxy, url: proxiedUrl } = await proxyDatabase(database.url);
    disposers.push(() => proxy.close());
    const { db } = countingClient(proxiedUrl);
    const webhooks = new WebhookService(db, 10, 'postgresql', databaseClockOf(db));
    await webhooks.current();
    const { logger, lines } = capturedLogger();
    const dispatcher = new WebhookDispatcher(db, webhooks, logger, databaseClockOf(db), { retryMs: 50 });
    disposers.push(async () => {
      proxy.restore();
      await dispatcher.stop();
    });
    proxy.cut('refuse');
    for (let index = 0; index < 200; index++) dispatcher.accept({ kind: 'app', event: key(index) });
    await expect.poll(() => lines.filter((line) => line.msg.startsWith('webhooks: enqueueing')).length).toBe(1);
    // Tried again meanwhile (every 50 ms here), a connection each time, each time failing.
    const tried = proxy.accepted;
    await expect.poll(() => proxy.accepted).toBeGreaterThan(tried + 3);
    // A page of the catch-up fails at once, its cursor kept (before: held until the database was
    // back, and with it a stop or a leadership handover, which wait for the catch-up).
    await expect(dispatcher.catchUp([{ kind: 'app', event: key(0), at: new Date() }])).rejects.toThrow();
    proxy.restore();
    await dispatcher.idle();
    expect(await direct.outboxMessage.count()).toBe(200);
    const said = lines.filter((line) => line.msg.startsWith('webhooks:')).map((line) => line.msg);
    expect(said).toEqual(['webhooks: enqueueing changes failed', 'webhooks: enqueueing changes recovered']);
    // A batch at a time, tried again while the database was away: not one attempt per change.
    const recovered = lines.find((line) => line.msg === 'webhooks: enqueueing changes recovered') as {
      failures?: number;
    };
    expect(recovered.failures).toBeGreaterThan(1);
    expect(recovered.failures).toBeLessThan(200);
  });
});
