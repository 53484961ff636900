import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { removeOldHistory } from '../src/db/retention-sql.js';
import { ROWS_PER_STATEMENT } from '../src/platform/bounded-removal.js';
import { availableDatabases, createTestDatabase } from './support/databases.js';
import { planOf, SORTS } from './support/query-plans.js';
import { startTestServer, type TestServer, waitFor } from './support/server.js';
import { rawRequest } from './support/untyped.js';

describe('history retention', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      env: { HISTORY_RETENTION_DAYS: '30', OUTBOX_RETENTION_DAYS: '30', HISTORY_CLEANUP_INTERVAL_MS: '50' },
    });
  });
  afterAll(() => server?.stop());

  test('records older than HISTORY_RETENTION_DAYS are removed on schedule; newer ones stay', async () => {
    const day = 24 * 60 * 60 * 1000;
    const { db } = server.app;
    await db.historyRecord.createMany({
      data: [
        { type: 'system', message: 'too old', userId: 'alice', time: new Date(Date.now() - 31 * day) },
        { type: 'system', message: 'still kept', userId: 'alice', time: new Date(Date.now() - 29 * day) },
      ],
    });
    await waitFor(
      async () => ((await db.historyRecord.count({ where: { message: 'too old' } })) === 0 ? true : undefined),
      'the cleanup job',
    );
    expect(await db.historyRecord.count({ where: { message: 'still kept' } })).toBe(1);
    expect(server.logs.some((line) => line.includes('"historyRecords":1'))).toBe(true);
  });

  test('finished outbox messages older than the cutoff are removed in bounded statements until none is left or the time of the run is up; recent and pending ones stay', async () => {
    const day = 24 * 60 * 60 * 1000;
    const { db } = server.app;
    // Younger than the job's own cutoff (OUTBOX_RETENTION_DAYS, 30 here; every 50 ms), which so leaves them to this call.
    const old = new Date(Date.now() - 20 * day);
    const message = (key: string, status: string, updatedAt: Date) => ({
      kind: 'payment',
      topic: 'cleanup',
      url: 'http://127.0.0.1:9/',
      body: '{}',
      idempotencyKey: key,
      status,
      nextAttemptAt: updatedAt,
      createdAt: updatedAt,
      updatedAt,
    });
    await db.outboxMessage.createMany({
      data: [
        ...Array.from({ length: ROWS_PER_STATEMENT + 5 }, (_, index) =>
          message(`cleanup:old:${index}`, 'DELIVERED', old),
        ),
        message('cleanup:old-pending', 'PENDING', old),
        message('cleanup:recent', 'DEAD', new Date()),
      ],
    });
    const cutoff = new Date(Date.now() - 10 * day);
    // A run past its deadline stops after its statement (so a backlog of millions never held the
    // start-up for minutes), and says there is more.
    expect(await server.app.services.webhooks.removeFinishedMessages(cutoff, Date.now())).toEqual({
      removed: ROWS_PER_STATEMENT,
      more: true,
    });
    await db.outboxMessage.createMany({
      data: Array.from({ length: ROWS_PER_STATEMENT }, (_, index) =>
        message(`cleanup:old-again:${index}`, 'DELIVERED', old),
      ),
    });
    // More than one statement's bound: within its time the rest goes in the same run, not an hour later.
    const removed = await server.app.services.webhooks.removeFinishedMessages(cutoff, Date.now() + 60_000);
    expect(removed).toEqual({ removed: ROWS_PER_STATEMENT + 5, more: false });
    const left = await db.outboxMessage.findMany({ where: { topic: 'cleanup' }, orderBy: { id: 'asc' } });
    expect(left.map((row) => row.idempotencyKey)).toEqual(['cleanup:old-pending', 'cleanup:recent']);
  });
});

const databases = await availableDatabases();

describe.each(databases)('history retention in bounded statements on %s', (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    // The job's own runs (at start, then every minute) keep a year: this test's cutoff is its own.
    server = await startTestServer(kind, { env: { HISTORY_RETENTION_DAYS: '365', DEMO_DATA: '0' } });
  });
  afterAll(() => server?.stop());

  test('records written before the cutoff go oldest first, one bounded statement down the time index after the other; the record written at the cutoff stays', async () => {
    const day = 24 * 60 * 60 * 1000;
    const { db } = server.app;
    const cutoff = new Date(Date.now() - 30 * day);
    const record = (message: string, time: Date) => ({ type: 'system', message, userId: 'alice', time });
    await db.historyRecord.createMany({
      data: Array.from({ length: ROWS_PER_STATEMENT + 2 }, (_, index) =>
        record('old', new Date(cutoff.getTime() - day - index)),
      ),
    });
    await db.historyRecord.createMany({
      data: [
        record('just before the cutoff', new Date(cutoff.getTime() - 1)),
        record('at the cutoff', cutoff),
        record('recent', new Date()),
      ],
    });
    if (kind === 'postgresql') await db.$executeRawUnsafe('ANALYZE "HistoryRecord"');
    const plan = await planOf(db, (runner) => removeOldHistory(runner, kind, cutoff, ROWS_PER_STATEMENT));
    expect(plan).toContain('HistoryRecord_time_idx');
    expect(plan).not.toMatch(SORTS);
    // Each deleted row found by its id, not by a scan of the table at every statement.
    expect(plan).not.toMatch(/Seq Scan|SCAN "?HistoryRecord"?(?! USING)/);

    // A run past its deadline stops after its statement, and says there is more; the newest of the
    // old records waits for the next statement (oldest first).
    expect(await server.app.services.history.removeOlderThan(cutoff, Date.now())).toEqual({
      removed: ROWS_PER_STATEMENT,
      more: true,
    });
    expect(await db.historyRecord.count({ where: { message: 'just before the cutoff' } })).toBe(1);
    expect(await server.app.services.history.removeOlderThan(cutoff, Date.now() + 60_000)).toEqual({
      removed: 3,
      more: false,
    });
    const left = await db.historyRecord.findMany({ where: { userId: 'alice' }, orderBy: { time: 'asc' } });
    expect(left.map((row) => row.message)).toEqual(['at the cutoff', 'recent']);
  });
});

describe.runIf(databases.includes('postgresql'))('a start with old history on postgresql', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let holder: pg.Client | undefined;
  let server: TestServer | undefined;
  afterAll(async () => {
    await holder?.end().catch(() => {});
    await server?.stop();
    await database?.drop();
  });

  test('the server answers while the history cleanup is held up, and its line says what it removed once it could', async () => {
    database = await createTestDatabase('postgresql');
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    await client.query(`
      INSERT INTO "HistoryRecord" ("type", "message", "userId", "time")
      VALUES ('system', 'old 1', 'alice', now() - interval '31 days'),
             ('system', 'old 2', 'alice', now() - interval '32 days')`);
    await client.end();
    // Another transaction holds one of the old records: the cleanup's DELETE waits for it.
    holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query(`SELECT "id" FROM "HistoryRecord" WHERE "message" = 'old 1' FOR UPDATE`);

    server = await startTestServer('postgresql', { database, env: { HISTORY_RETENTION_DAYS: '30' } });
    expect((await fetch(`${server.url}/readiness`)).status).toBe(200);
    const removalLine = () => server?.logs.find((line) => line.includes('"historyRecords":2'));
    expect(removalLine()).toBeUndefined();
    expect(await server.app.db.historyRecord.count()).toBeGreaterThanOrEqual(2);

    await holder.query('COMMIT');
    await waitFor(async () => removalLine(), 'the history cleanup line');
    expect(await server.app.db.historyRecord.count({ where: { message: { startsWith: 'old' } } })).toBe(0);
  });
});

describe.each(databases)('retention of finished tasks and payment pushes on %s', (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(kind, {
      env: { HISTORY_RETENTION_DAYS: '30', HISTORY_CLEANUP_INTERVAL_MS: '50' },
    });
  });
  afterAll(() => server?.stop());

  test('finished tasks and payment pushes older than HISTORY_RETENTION_DAYS are removed on schedule; running, recent and undelivered ones stay, and so do payments', async () => {
    const day = 24 * 60 * 60 * 1000;
    const { db } = server.app;
    const old = new Date(Date.now() - 31 * day);
    const task = (taskId: string, status: string, completedAt: Date | null) => ({
      taskId,
      type: 'INSTALL',
      status,
      userId: 'alice',
      sourceId: 'market.olares',
      appName: `retention-${taskId}`,
      metadata: {},
      createdAt: old,
      completedAt,
    });
    await db.task.createMany({
      data: [
        task('retention-completed', 'COMPLETED', old),
        task('retention-failed', 'FAILED', old),
        task('retention-canceled', 'CANCELED', old),
        task('retention-running', 'RUNNING', null),
        task('retention-recent', 'COMPLETED', new Date()),
      ],
    });
    const payment = await db.payment.create({
      data: {
        userId: 'alice',
        sourceId: 'market.olares',
        appId: 'retention-app',
        appName: 'retention-app',
        productId: 'retention-license',
        paymentNeed: 'required',
        developerSync: 'completed',
        larePassSync: 'completed',
        signatureStatus: 'required_and_signed',
        paymentStatus: 'developer_confirmed',
      },
    });
    const push = (topic: string, createdAt: Date) => ({
      paymentId: payment.id,
      userId: 'alice',
      channel: 'larepass',
      topic,
      payload: {},
      createdAt,
    });
    // The undelivered push becomes old only once its pending delivery exists (the job runs every 50 ms).
    const undelivered = await db.paymentNotification.create({ data: push('retention-old-undelivered', new Date()) });
    await db.outboxMessage.create({
      data: {
        kind: 'payment',
        topic: 'retention',
        url: 'http://127.0.0.1:9/',
        body: '{}',
        idempotencyKey: 'retention:undelivered',
        notificationId: undelivered.id,
        // Waiting for its next attempt (tomorrow): the worker leaves it PENDING meanwhile.
        nextAttemptAt: new Date(Date.now() + day),
      },
    });
    await db.paymentNotification.update({ where: { id: undelivered.id }, data: { createdAt: old } });
    await db.paymentNotification.createMany({
      data: [push('retention-old', old), push('retention-recent', new Date())],
    });

    await waitFor(async () => {
      const tasks = await db.task.count({ where: { taskId: { startsWith: 'retention-' } } });
      const pushes = await db.paymentNotification.count({ where: { paymentId: payment.id } });
      return tasks === 2 && pushes === 2 ? true : undefined;
    }, 'the cleanup job');
    const tasks = await db.task.findMany({ where: { taskId: { startsWith: 'retention-' } }, orderBy: { id: 'asc' } });
    expect(tasks.map((row) => row.taskId)).toEqual(['retention-running', 'retention-recent']);
    const pushes = await db.paymentNotification.findMany({ where: { paymentId: payment.id }, orderBy: { id: 'asc' } });
    expect(pushes.map((row) => row.topic).sort()).toEqual(['retention-old-undelivered', 'retention-recent']);
    expect(await db.payment.count({ where: { id: payment.id } })).toBe(1);
    expect(server.logs.some((line) => line.includes('"finishedTasks":3'))).toBe(true);
    expect(server.logs.some((line) => line.includes('"paymentPushes":1'))).toBe(true);
    await db.outboxMessage.deleteMany({ where: { idempotencyKey: 'retention:undelivered' } });
  });
});

describe('what the retention cleanup tells operators', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      env: { HISTORY_RETENTION_DAYS: '30', HISTORY_CLEANUP_INTERVAL_MS: '50', COLLECT_INTERVAL_MS: '50' },
    });
  });
  afterAll(() => server?.stop());

  const REMOVED = 'retention cleanup removed old records';
  const removalLines = () =>
    server.logs.filter((line) => line.includes(REMOVED)).map((line) => JSON.parse(line) as Record<string, unknown>);
  const cleanupComponent = async () => {
    const response = await rawRequest(server, { query: '{ components { name state metrics } }' });
    const components = response.body?.data?.components as { name: string; metrics: Record<string, unknown> }[];
    return components.find((component) => component.name === 'history_cleanup');
  };

  test('a run that removed old rows logs one line with the count of each kind and the cutoff, and the history_cleanup component shows them; runs that removed nothing say nothing', async () => {
    const day = 24 * 60 * 60 * 1000;
    const { db } = server.app;
    // Both cleanup jobs have run several times over a database with nothing old.
    await waitFor(async () => {
      const metrics = (await cleanupComponent())?.metrics;
      return Number(metrics?.runs) >= 3 && metrics?.finishedRecordsLastRunAt ? true : undefined;
    }, 'cleanup runs with nothing to remove');
    expect(removalLines()).toEqual([]);
    expect((await cleanupComponent())?.metrics).toMatchObject({
      lastRemoval: null,
      removedTotal: { historyRecords: 0 },
    });

    const old = new Date(Date.now() - 31 * day);
    await db.historyRecord.createMany({
      data: [1, 2].map((n) => ({ type: 'system', message: `old ${n}`, userId: 'alice', time: old })),
    });
    await waitFor(async () => (removalLines().length === 1 ? true : undefined), 'the history cleanup line');
    const payment = await db.payment.create({
      data: {
        userId: 'alice',
        sourceId: 'market.olares',
        appId: 'told-app',
        appName: 'told-app',
        productId: 'told-license',
        paymentNeed: 'required',
        developerSync: 'completed',
        larePassSync: 'completed',
        signatureStatus: 'required_and_signed',
        paymentStatus: 'developer_confirmed',
      },
    });
    // Written in one transaction, so that one run of the finished-records job finds them all.
    await db.$transaction([
      db.task.create({
        data: {
          taskId: 'told-completed',
          type: 'INSTALL',
          status: 'COMPLETED',
          userId: 'alice',
          sourceId: 'market.olares',
          appName: 'told-app',
          metadata: {},
          createdAt: old,
          completedAt: old,
        },
      }),
      db.paymentNotification.create({
        data: {
          paymentId: payment.id,
          userId: 'alice',
          channel: 'larepass',
          topic: 'told',
          payload: {},
          createdAt: old,
        },
      }),
      ...['told:1', 'told:2', 'told:3'].map((idempotencyKey) =>
        db.outboxMessage.create({
          data: {
            kind: 'payment',
            topic: 'told',
            url: 'http://127.0.0.1:9/',
            body: '{}',
            idempotencyKey,
            status: 'DELIVERED',
            nextAttemptAt: old,
            createdAt: old,
            updatedAt: old,
          },
        }),
      ),
    ]);
    await waitFor(async () => (removalLines().length === 2 ? true : undefined), 'the finished-records cleanup line');
    const [history, records] = removalLines();
    const cutoffDay = (line: Record<string, unknown> | undefined) =>
      Math.round((Date.now() - Date.parse(String(line?.cutoff))) / day);
    expect(history).toMatchObject({ msg: REMOVED, removed: { historyRecords: 2 } });
    expect(cutoffDay(history)).toBe(30);
    expect(records).toMatchObject({ removed: { outboxMessages: 3, finishedTasks: 1, paymentPushes: 1 } });
    expect(cutoffDay(records)).toBe(30);
    const metrics = await waitFor(async () => {
      const figures = (await cleanupComponent())?.metrics;
      return (figures?.removedTotal as { outboxMessages?: number })?.outboxMessages === 3 ? figures : undefined;
    }, 'the component figures');
    expect(metrics).toMatchObject({
      removedTotal: { historyRecords: 2, outboxMessages: 3, finishedTasks: 1, paymentPushes: 1 },
      lastRemoval: { removed: { outboxMessages: 3, finishedTasks: 1, paymentPushes: 1 }, cutoff: records?.cutoff },
      finishedRecordsLastError: null,
    });
    // Later runs find nothing more: still two lines.
    const runs = Number(metrics.runs);
    await waitFor(
      async () => (Number((await cleanupComponent())?.metrics.runs) >= runs + 3 ? true : undefined),
      'runs',
    );
    expect(removalLines()).toHaveLength(2);
  });
});

describe('outbox retention', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      env: { HISTORY_RETENTION_DAYS: '30', OUTBOX_RETENTION_DAYS: '7', HISTORY_CLEANUP_INTERVAL_MS: '50' },
    });
  });
  afterAll(() => server?.stop());

  test('a delivered webhook message older than OUTBOX_RETENTION_DAYS, though younger than HISTORY_RETENTION_DAYS, is removed; a pending one as old and a recent delivered one stay', async () => {
    const day = 24 * 60 * 60 * 1000;
    const { db } = server.app;
    await db.webhook.create({
      data: {
        webhookId: 'wh-retention',
        url: 'http://127.0.0.1:9/',
        secret: 'retention-secret',
        events: ['TASK_FINISHED'],
        createdBy: 'admin',
      },
    });
    const message = (topic: string, status: string, updatedAt: Date, nextAttemptAt = updatedAt) => ({
      kind: 'webhook',
      webhookId: 'wh-retention',
      topic,
      url: 'http://127.0.0.1:9/',
      body: '{}',
      idempotencyKey: `retention:${topic}`,
      status,
      nextAttemptAt,
      createdAt: updatedAt,
      updatedAt,
    });
    const tenDaysAgo = new Date(Date.now() - 10 * day);
    // The cleanup runs every 50 ms: it may remove the old ones before any read here, so no count of
    // them is asserted before it (that assertion failed once when it had).
    await db.outboxMessage.createMany({
      data: [
        message('delivered-10-days-ago', 'DELIVERED', tenDaysAgo),
        message('dead-10-days-ago', 'DEAD', tenDaysAgo),
        // Due tomorrow (its backoff): the worker leaves it PENDING meanwhile.
        message('pending-10-days-ago', 'PENDING', tenDaysAgo, new Date(Date.now() + day)),
        message('delivered-5-days-ago', 'DELIVERED', new Date(Date.now() - 5 * day)),
      ],
    });
    const deliveries = async () => {
      const response = await rawRequest(server, {
        query: '{ webhooks { webhookId deliveries(last: 10) { topic status } } }',
      });
      const webhooks = response.body?.data?.webhooks as { webhookId: string; deliveries: { topic: string }[] }[];
      return webhooks.find((webhook) => webhook.webhookId === 'wh-retention')?.deliveries.map((d) => d.topic);
    };
    const left = await waitFor(async () => {
      const topics = await deliveries();
      return topics?.length === 2 ? topics : undefined;
    }, 'the outbox retention cleanup');
    expect(left.sort()).toEqual(['delivered-5-days-ago', 'pending-10-days-ago']);
    const line = server.logs.find((entry) => entry.includes('"outboxMessages":2'));
    expect(Math.round((Date.now() - Date.parse(JSON.parse(line ?? '{}').outboxCutoff)) / day)).toBe(7);
  });
});
