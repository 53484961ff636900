import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { createLogger } from '../src/platform/logger.js';
import { verifySignature } from '../src/platform/signature.js';
import { WebhookCatchUp } from '../src/services/webhook-catch-up.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { FakeReceiver } from './support/fake-receiver.js';
import { REMOTE_SOURCE, startSeededServer } from './support/seed.js';
import { AUTH_ENV, installThroughApi, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { rawRequest } from './support/untyped.js';

const databases = await availableDatabases();
const DAY_MS = 24 * 60 * 60 * 1000;
/** Past the catch-up's settle window (5 s): a run at this long after a write reads it. */
const SETTLED_MS = 10_000;
const settledAfter = (at: Date | number) => new Date(new Date(at).getTime() + SETTLED_MS);

/** No demo data, no bundled catalogue; the outbox looks often, the catch-up keeps to its start run. */
const ENV = {
  ...AUTH_ENV,
  DEMO_DATA: '0',
  BUNDLED_CATALOGUE_FILE: 'off',
  OUTBOX_POLL_INTERVAL_MS: '100',
  WEBHOOK_CATCH_UP_INTERVAL_MS: '3600000',
};

/** Through the API, as an admin; untyped, so this file adds no document to the generated ones. */
async function addWebhook(server: TestServer, input: Record<string, unknown>) {
  const response = await rawRequest(
    server,
    {
      query: `mutation CatchUpAddWebhook($input: AddWebhookInput!) {
        addWebhook(input: $input) { __typename ... on AddWebhookSuccess { secret webhook { webhookId } } }
      }`,
      variables: { input },
    },
    { token: TOKENS.ops },
  );
  const added = response.body?.data?.addWebhook as { secret: string; webhook: { webhookId: string } } | undefined;
  if (!added?.secret) throw new Error(`addWebhook refused: ${response.text}`);
  return { webhookId: added.webhook.webhookId, secret: added.secret };
}

/** A sweep of its own over a server's services, its statements read through `db`. */
function sweepOf(server: TestServer, db: Db = server.app.db, options: { pageSize?: number; maxPages?: number } = {}) {
  const { webhooks, webhookDispatcher } = server.app.services;
  const logger = createLogger('silent', new Writable({ write: (_chunk, _encoding, done) => done() }));
  return new WebhookCatchUp(db, webhooks, webhookDispatcher, logger, { lookBackMs: 30 * DAY_MS, ...options });
}

/** `SELECT Payment`: a statement's verb and table, the same on both providers. */
function statementOn(sql: string): string {
  const table = sql.replace(/[`"]/g, '').match(/(?:FROM|INTO) (?:\w+\.)?(\w+)/)?.[1];
  return `${sql.split(' ')[0]} ${table}`;
}

/** The catch-up's cursors (the table holds other markers too: a process's presence). */
async function cursors(db: Db): Promise<Record<string, Date>> {
  const rows = await db.jobCursor.findMany({ where: { name: { startsWith: 'webhook-catch-up:' } } });
  return Object.fromEntries(rows.map((row) => [row.name, row.position]));
}

describe.each(databases)('webhook catch-up on %s', (kind) => {
  let receiver: FakeReceiver;
  const servers = new Set<TestServer>();
  const created: TestDatabase[] = [];

  beforeAll(async () => {
    receiver = await FakeReceiver.start();
  });
  afterAll(async () => {
    for (const server of servers) await server.stop();
    for (const database of created) await database.drop();
    await receiver?.close();
  });

  async function start(database: TestDatabase): Promise<TestServer> {
    const server = await startTestServer(kind, { database, env: ENV });
    servers.add(server);
    return server;
  }
  async function stop(server: TestServer): Promise<void> {
    servers.delete(server);
    await server.stop();
  }
  async function freshDatabase(): Promise<TestDatabase> {
    const database = await createTestDatabase(kind);
    created.push(database);
    return database;
  }

  test('a task end and an app state that a process committed before it died, never dispatched, reach the receiver once each, signed, from the next start; a second sweep and a restart send nothing again', async () => {
    const path = `/crash-${kind}`;
    const database = await freshDatabase();
    let server = await start(database);
    const hook = await addWebhook(server, {
      url: receiver.url(path),
      events: ['TASK_FINISHED', 'APP_STATE_CHANGED'],
      userId: 'alice',
    });
    await stop(server);

    // What a process that died right after its commits left behind: the rows, announced to no one,
    // committed longer ago than the catch-up's settle window (the webhook older still).
    const key = { userId: 'alice', sourceId: REMOTE_SOURCE, appName: 'crash-app' };
    const died = new Date(Date.now() - SETTLED_MS);
    const writer = createPrismaClient(database.url);
    try {
      await writer.webhook.update({
        where: { webhookId: hook.webhookId },
        data: { createdAt: new Date(died.getTime() - 1000) },
      });
      await writer.task.create({
        data: {
          ...key,
          taskId: `crash-task-${kind}`,
          type: 'INSTALL',
          status: 'COMPLETED',
          version: '1.0.0',
          progress: 100,
          metadata: { cfgType: 'app', envs: [], appId: key.appName },
          startedAt: died,
          completedAt: died,
        },
      });
      await writer.appState.create({
        data: {
          ...key,
          state: 'running',
          installedVersion: '1.0.0',
          targetVersion: '1.0.0',
          eventTime: died,
          updatedAt: died,
        },
      });
    } finally {
      await writer.$disconnect();
    }

    server = await start(database);
    const finished = await receiver.waitFor((d) => d.path === path && d.topic === 'task.finished', 'the task end');
    const state = await receiver.waitFor((d) => d.path === path && d.topic === 'app.state_changed', 'the app state');
    expect(finished.key).toBe(`webhook:${hook.webhookId}:task:crash-task-${kind}:COMPLETED`);
    expect(state.key).toBe(
      `webhook:${hook.webhookId}:app:alice/${REMOTE_SOURCE}/crash-app:running/RUNNING:${died.getTime()}`,
    );
    for (const delivery of [finished, state]) {
      expect(verifySignature(hook.secret, delivery.body, delivery.signature)).toBe(true);
    }
    expect(JSON.parse(finished.body)).toMatchObject({
      event: 'TASK_FINISHED',
      task: { id: `crash-task-${kind}`, status: 'COMPLETED', app: key },
    });
    expect(JSON.parse(state.body)).toMatchObject({ event: 'APP_STATE_CHANGED', app: { key, state: 'running' } });
    // The start run is over once it moved its cursors.
    const moved = await waitFor(async () => {
      const positions = await cursors(server.app.db);
      return positions['webhook-catch-up:tasks'] && positions['webhook-catch-up:apps'] ? positions : undefined;
    }, 'the cursors of the start run');
    expect(moved['webhook-catch-up:payments']).toBeUndefined(); // no webhook wants payments: not read

    expect(await sweepOf(server).run()).toBe(0);
    await stop(server);
    server = await start(database);
    const before = moved['webhook-catch-up:tasks']?.getTime() ?? 0;
    await waitFor(async () => {
      const position = (await cursors(server.app.db))['webhook-catch-up:tasks'];
      return position && position.getTime() > before ? position : undefined;
    }, 'the cursor of the restart run');
    await waitFor(
      async () =>
        (await server.app.db.outboxMessage.count({ where: { status: 'PENDING' } })) === 0 ? true : undefined,
      'no message waiting',
    );
    const messages = await server.app.db.outboxMessage.findMany({ where: { webhookId: hook.webhookId } });
    expect(messages.map((message) => message.idempotencyKey).sort()).toEqual([finished.key, state.key].sort());
    expect(receiver.requests.filter((d) => d.path === path)).toHaveLength(2);
    expect(receiver.duplicates).toBe(0);
  });

  test('with no webhook registered a sweep reads nothing; once one is, it reads from its creation and moves its cursor', async () => {
    const database = await freshDatabase();
    const server = await start(database);
    const statements: string[] = [];
    const counted = createPrismaClient(database.url, { onQuery: (sql) => statements.push(sql) });
    try {
      const sweep = sweepOf(server, counted);
      expect(await sweep.run()).toBe(0);
      expect(statements).toEqual([]);

      const hook = await addWebhook(server, {
        url: receiver.url(`/quiet-${kind}`),
        events: ['PAYMENT_STATUS_CHANGED'],
      });
      const now = new Date(Date.now() + 120_000);
      expect(await sweep.run(now)).toBe(0);
      // Only the table a webhook wants: its cursor, one page (fewer rows than a page: the last), the cursor moved.
      expect(statements.map(statementOn)).toEqual(['SELECT JobCursor', 'SELECT Payment', 'INSERT JobCursor']);
      const positions = await cursors(counted);
      // The run's start minus the grace: what a transaction still in flight commits is read again.
      expect(positions).toEqual({ 'webhook-catch-up:payments': new Date(now.getTime() - 30_000) });
      expect(await counted.outboxMessage.count({ where: { webhookId: hook.webhookId } })).toBe(0);
    } finally {
      await counted.$disconnect();
    }
  });

  test('an app removed by a task that a dead process ended is announced removed; a webhook added after a change is not told of it', async () => {
    const database = await freshDatabase();
    const server = await start(database);
    const key = { userId: 'bob', sourceId: REMOTE_SOURCE, appName: 'gone-app' };
    const earlier = await addWebhook(server, { url: receiver.url(`/earlier-${kind}`), events: ['TASK_FINISHED'] });
    const { createdAt: before } = await server.app.db.webhook.findUniqueOrThrow({
      where: { webhookId: earlier.webhookId },
    });
    await server.app.db.task.create({
      data: {
        ...key,
        taskId: `old-task-${kind}`,
        type: 'INSTALL',
        status: 'COMPLETED',
        metadata: {},
        completedAt: before,
      },
    });
    const path = `/removed-${kind}`;
    const hook = await addWebhook(server, { url: receiver.url(path), events: ['TASK_FINISHED', 'APP_STATE_CHANGED'] });
    const ended = new Date(Date.now() + 1000);
    await server.app.db.task.create({
      data: {
        ...key,
        taskId: `uninstall-${kind}`,
        type: 'UNINSTALL',
        status: 'COMPLETED',
        metadata: {},
        completedAt: ended,
      },
    });

    const { createdAt: added } = await server.app.db.webhook.findUniqueOrThrow({
      where: { webhookId: hook.webhookId },
    });
    expect(added.getTime()).toBeGreaterThan(before.getTime());

    // The earlier webhook: both task ends; the later one: the uninstall and the app's removal.
    expect(await sweepOf(server).run(settledAfter(ended))).toBe(4);
    const removed = await receiver.waitFor((d) => d.path === path && d.topic === 'app.state_changed', 'the removal');
    expect(JSON.parse(removed.body)).toMatchObject({ app: { key, state: 'uninstalled', removed: true } });
    const keys = (await server.app.db.outboxMessage.findMany({ where: { webhookId: hook.webhookId } })).map(
      (message) => message.idempotencyKey,
    );
    expect(keys).toContain(`webhook:${hook.webhookId}:task:uninstall-${kind}:COMPLETED`);
    expect(keys.some((k) => k.includes(`old-task-${kind}`))).toBe(false);
    const earlierKeys = await server.app.db.outboxMessage.findMany({ where: { webhookId: earlier.webhookId } });
    expect(earlierKeys.map((message) => message.idempotencyKey).sort()).toEqual([
      `webhook:${earlier.webhookId}:task:old-task-${kind}:COMPLETED`,
      `webhook:${earlier.webhookId}:task:uninstall-${kind}:COMPLETED`,
    ]);
    expect(await sweepOf(server).run(settledAfter(ended.getTime() + 1000))).toBe(0);
  });

  test('an app that status correction removed, in a process that died before announcing it, is announced removed once', async () => {
    const database = await freshDatabase();
    const server = await start(database);
    const key = { userId: 'carol', sourceId: REMOTE_SOURCE, appName: 'vanished-app' };
    const path = `/corrected-${kind}`;
    const hook = await addWebhook(server, { url: receiver.url(path), events: ['APP_STATE_CHANGED'] });
    // What status correction commits in one transaction (status-correction.ts): the row deleted,
    // and its `system` history record; the process died before the announcement.
    const removedAt = new Date(Date.now() + 1000);
    await server.app.db.historyRecord.create({
      data: {
        type: 'system',
        message: 'vanished-app is gone from the app service: removed (last state running)',
        app: key.appName,
        userId: key.userId,
        time: removedAt,
        extended: { correction: 'removed', sourceId: key.sourceId, previousState: 'running' },
      },
    });
    // Other corrections and a catalogue change's record are not removals: nothing for them.
    await server.app.db.historyRecord.createMany({
      data: [
        {
          type: 'system',
          message: 'x appeared',
          app: 'x',
          userId: key.userId,
          time: removedAt,
          extended: { correction: 'appeared', sourceId: key.sourceId },
        },
        {
          type: 'system',
          message: 'catalogue changed',
          app: null,
          userId: 'system',
          time: removedAt,
          extended: { sourceId: key.sourceId, removed: ['y'] },
        },
      ],
    });

    expect(await sweepOf(server).run(settledAfter(removedAt))).toBe(1);
    const removed = await receiver.waitFor((d) => d.path === path && d.topic === 'app.state_changed', 'the removal');
    expect(JSON.parse(removed.body)).toMatchObject({ app: { key, state: 'uninstalled', removed: true } });
    expect(verifySignature(hook.secret, removed.body, removed.signature)).toBe(true);
    expect(await sweepOf(server).run(settledAfter(removedAt.getTime() + 1000))).toBe(0);
    expect(await cursors(server.app.db)).toHaveProperty('webhook-catch-up:corrections');
  });

  test('changes the dispatcher announced as they happened are not announced again by a sweep', async () => {
    const { server } = await startSeededServer(kind, {
      env: { ...ENV, SIMULATED_STEP_MS: '0' },
      preseed: async (seed) => {
        await seed.remoteSource();
        await seed.catalogApp({ name: 'live-app', versions: ['1.0.0'] });
      },
    });
    servers.add(server);
    const path = `/live-${kind}`;
    const hook = await addWebhook(server, { url: receiver.url(path), events: ['TASK_FINISHED', 'APP_STATE_CHANGED'] });
    const taskId = await installThroughApi(server, { appName: 'live-app', version: '1.0.0' }, TOKENS.alice);
    await receiver.waitFor((d) => d.path === path && d.key.endsWith(`task:${taskId}:COMPLETED`), 'the task end');
    await receiver.waitFor(
      (d) => d.path === path && d.topic === 'app.state_changed' && JSON.parse(d.body).app.state === 'running',
      'the app running',
    );
    await server.app.services.webhookDispatcher.idle();
    const announced = await server.app.db.outboxMessage.count();
    expect(await sweepOf(server).run(settledAfter(Date.now()))).toBe(0);
    expect(await server.app.db.outboxMessage.count()).toBe(announced);
    // It did look at them (rows the engine wrote with its own SQL): their messages gone, it writes
    // the task's again; the app's state this instance remembers having announced, so not that one.
    await server.app.db.outboxMessage.deleteMany({ where: { webhookId: hook.webhookId } });
    expect(await sweepOf(server).run(settledAfter(Date.now()))).toBe(1);
  });

  test('a run reads at most its pages and leaves the rest, from the last row read, to the next run, even within one time', async () => {
    const database = await freshDatabase();
    const server = await start(database);
    const path = `/pages-${kind}`;
    const hook = await addWebhook(server, { url: receiver.url(path), events: ['TASK_FINISHED'] });
    const first = Date.now() + 1000;
    // All three ended at the same instant: more rows than a run reads share one time.
    for (const [i, offset] of [1000, 1000, 1000].entries()) {
      await server.app.db.task.create({
        data: {
          userId: 'alice',
          sourceId: REMOTE_SOURCE,
          appName: `paged-${i}`,
          taskId: `paged-${kind}-${i}`,
          type: 'INSTALL',
          status: 'FAILED',
          metadata: {},
          completedAt: new Date(first + offset),
        },
      });
    }
    const now = new Date(first + 120_000);
    const sweep = sweepOf(server, server.app.db, { pageSize: 2, maxPages: 1 });
    expect(await sweep.run(now)).toBe(2);
    expect((await cursors(server.app.db))['webhook-catch-up:tasks']).toEqual(new Date(first + 1000));
    expect(await sweep.run(now)).toBe(1); // after the second task's id: the third, then done
    expect((await cursors(server.app.db))['webhook-catch-up:tasks']).toEqual(new Date(now.getTime() - 30_000));
    expect(await sweep.run(now)).toBe(0);
    expect((await cursors(server.app.db))['webhook-catch-up:tasks']).toEqual(new Date(now.getTime() - 30_000));
    const keys = (await server.app.db.outboxMessage.findMany({ where: { webhookId: hook.webhookId } })).map(
      (message) => message.idempotencyKey,
    );
    expect(keys.sort()).toEqual([0, 1, 2].map((i) => `webhook:${hook.webhookId}:task:paged-${kind}-${i}:FAILED`));
  });

  test('a sweep writes a missed change only for the webhooks whose source and app filters it matches', async () => {
    const database = await freshDatabase();
    const server = await start(database);
    const events = ['TASK_FINISHED', 'APP_STATE_CHANGED'];
    const remote = await addWebhook(server, { url: receiver.url(`/remote-${kind}`), events, sourceId: REMOTE_SOURCE });
    const upload = await addWebhook(server, { url: receiver.url(`/upload-${kind}`), events, sourceId: 'upload' });
    const oneApp = await addWebhook(server, { url: receiver.url(`/one-${kind}`), events, appName: 'filtered-b' });
    // Rows of two sources committed by a process that died before announcing them.
    const at = new Date(Date.now() + 1000);
    for (const [sourceId, appName] of [
      [REMOTE_SOURCE, 'filtered-a'],
      ['upload', 'filtered-b'],
    ] as const) {
      const key = { userId: 'alice', sourceId, appName };
      await server.app.db.task.create({
        data: {
          ...key,
          taskId: `filtered-${kind}-${appName}`,
          type: 'INSTALL',
          status: 'COMPLETED',
          metadata: { cfgType: 'app', envs: [], appId: appName },
          completedAt: at,
        },
      });
      await server.app.db.appState.create({ data: { ...key, state: 'running', eventTime: at, updatedAt: at } });
    }
    expect(await sweepOf(server).run(new Date(at.getTime() + 60_000))).toBe(6);
    const keysOf = async (webhookId: string) =>
      (await server.app.db.outboxMessage.findMany({ where: { webhookId } })).map((m) => m.idempotencyKey).sort();
    const expected = (webhookId: string, sourceId: string, appName: string) =>
      [
        `webhook:${webhookId}:app:alice/${sourceId}/${appName}:running/RUNNING:${at.getTime()}`,
        `webhook:${webhookId}:task:filtered-${kind}-${appName}:COMPLETED`,
      ].sort();
    expect(await keysOf(remote.webhookId)).toEqual(expected(remote.webhookId, REMOTE_SOURCE, 'filtered-a'));
    expect(await keysOf(upload.webhookId)).toEqual(expected(upload.webhookId, 'upload', 'filtered-b'));
    expect(await keysOf(oneApp.webhookId)).toEqual(expected(oneApp.webhookId, 'upload', 'filtered-b'));
  });

  test('the last state announced of an app is its own, not that of an app whose key differs by a `_` or by case', async () => {
    const database = await freshDatabase();
    const server = await start(database);
    const hook = await addWebhook(server, { url: receiver.url(`/lookalike-${kind}`), events: ['APP_STATE_CHANGED'] });
    const committed = async (userId: string, at: Date) =>
      server.app.db.appState.create({
        data: { userId, sourceId: REMOTE_SOURCE, appName: 'lookalike', state: 'running', eventTime: at, updatedAt: at },
      });
    const first = new Date();
    await committed('alice', first);
    expect(await sweepOf(server).run(settledAfter(first))).toBe(1);
    // Two more users' apps in the same state: `al_ce` (a `_` in SQL LIKE matches any character)
    // and `ALICE` (SQLite's LIKE ignores case). Each has its own first state to announce.
    const later = new Date(first.getTime() + 1000);
    await committed('al_ce', later);
    await committed('ALICE', later);
    expect(await sweepOf(server).run(settledAfter(later))).toBe(2);
    const keys = (await server.app.db.outboxMessage.findMany({ where: { webhookId: hook.webhookId } }))
      .map((message) => message.idempotencyKey)
      .sort();
    expect(keys).toEqual(
      [
        `webhook:${hook.webhookId}:app:alice/${REMOTE_SOURCE}/lookalike:running/RUNNING:${first.getTime()}`,
        `webhook:${hook.webhookId}:app:al_ce/${REMOTE_SOURCE}/lookalike:running/RUNNING:${later.getTime()}`,
        `webhook:${hook.webhookId}:app:ALICE/${REMOTE_SOURCE}/lookalike:running/RUNNING:${later.getTime()}`,
      ].sort(),
    );
  });
});
