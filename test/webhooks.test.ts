import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { verifySignature } from '../src/platform/signature.js';
import type { AddWebhookInput } from './gql/graphql.js';
import { graphql } from './gql/index.js';
import { availableDatabases } from './support/databases.js';
import { FakeReceiver, type ReceivedDelivery } from './support/fake-receiver.js';
import { AppQuery, CancelTaskMutation, PurchaseAppMutation, UninstallAppMutation } from './support/operations.js';
import { REMOTE_SOURCE, startSeededServer } from './support/seed.js';
import {
  AUTH_ENV,
  dataOf,
  errorCodes,
  execute,
  installThroughApi,
  type TestServer,
  TOKENS,
  waitFor,
} from './support/server.js';

const databases = await availableDatabases();
const SOURCE = REMOTE_SOURCE;
/** A second market source, for the webhook filtered by source. */
const OTHER_SOURCE = 'local-hooks';

const AddWebhookMutation = graphql(`
  mutation WebhooksAdd($input: AddWebhookInput!) {
    addWebhook(input: $input) {
      __typename
      ... on AddWebhookSuccess { secret webhook { webhookId url events userId sourceId appName createdBy } }
      ... on ValidationError { issues { path message } }
      ... on Error { code message }
    }
  }
`);

const RemoveWebhookMutation = graphql(`
  mutation WebhooksRemove($input: RemoveWebhookInput!) {
    removeWebhook(input: $input) {
      __typename
      ... on RemoveWebhookSuccess { webhook { webhookId } }
      ... on Error { code message }
    }
  }
`);

const WebhooksQuery = graphql(`
  query WebhooksList($last: Int) {
    webhooks {
      webhookId url events userId sourceId appName createdBy createdAt
      deliveries(last: $last) {
        id topic idempotencyKey status attempts lastStatusCode lastError nextAttemptAt deliveredAt createdAt
      }
    }
  }
`);

interface Added {
  webhookId: string;
  secret: string;
}

describe.each(databases)('webhooks on %s', (kind) => {
  let server: TestServer;
  let receiver: FakeReceiver;
  beforeAll(async () => {
    ({ server } = await startSeededServer(kind, {
      env: {
        ...AUTH_ENV,
        SIMULATED_STEP_MS: '0',
        OUTBOX_BACKOFF_BASE_MS: '150',
        OUTBOX_BACKOFF_MAX_MS: '300',
        OUTBOX_MAX_ATTEMPTS: '4',
        OUTBOX_ATTEMPT_TIMEOUT_MS: '1500',
        OUTBOX_POLL_INTERVAL_MS: '100',
        MAX_WEBHOOKS: '12',
        // ops runs ~80 mutations across these tests, faster than 10 a second on a quiet machine.
        MUTATION_RATE_PER_S: '0',
      },
      preseed: async (seed) => {
        await seed.remoteSource();
        for (const name of [
          'hook-a',
          'hook-b',
          'hook-down',
          'hook-dead',
          'hook-hang',
          'hook-free-1',
          'hook-free-2',
          'hook-gone',
        ]) {
          await seed.catalogApp({ name, versions: ['1.0.0'] });
        }
        await seed.catalogApp({ name: 'hook-paid', versions: ['1.0.0'], price: '9.99' });
        await seed.catalogApp({ name: 'hook-this-source', versions: ['1.0.0'] });
        await seed.source({ sourceId: OTHER_SOURCE, type: 'local' });
        await seed.catalogApp({ name: 'hook-other-source', sourceId: OTHER_SOURCE, versions: ['1.0.0'] });
      },
    }));
    receiver = await FakeReceiver.start();
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
  });

  async function addWebhook(input: AddWebhookInput): Promise<Added> {
    const { addWebhook } = dataOf(await execute(server, AddWebhookMutation, { input }, { token: TOKENS.ops }));
    if (addWebhook.__typename !== 'AddWebhookSuccess') throw new Error(`refused: ${JSON.stringify(addWebhook)}`);
    return { webhookId: addWebhook.webhook.webhookId, secret: addWebhook.secret };
  }

  async function deliveriesOf(webhookId: string, last = 10) {
    const { webhooks } = dataOf(await execute(server, WebhooksQuery, { last }, { token: TOKENS.ops }));
    return webhooks.find((webhook) => webhook.webhookId === webhookId)?.deliveries ?? [];
  }

  function parsed(delivery: ReceivedDelivery) {
    // biome-ignore lint/suspicious/noExplicitAny: a received JSON body, checked with toMatchObject
    return JSON.parse(delivery.body) as Record<string, any>;
  }

  test('an admin adds a webhook and gets its secret in that answer only: not in webhooks, not in the logs', async () => {
    const { addWebhook } = dataOf(
      await execute(
        server,
        AddWebhookMutation,
        { input: { url: receiver.url('/secret'), events: ['TASK_FINISHED'], appName: 'nothing-installs-this' } },
        { token: TOKENS.ops },
      ),
    );
    expect(addWebhook).toMatchObject({
      __typename: 'AddWebhookSuccess',
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9_-]{43}$/),
      webhook: {
        url: receiver.url('/secret'),
        events: ['TASK_FINISHED'],
        appName: 'nothing-installs-this',
        userId: null,
        createdBy: 'ops',
      },
    });
    if (addWebhook.__typename !== 'AddWebhookSuccess') return;
    const listing = await execute(server, WebhooksQuery, {}, { token: TOKENS.ops });
    expect(JSON.stringify(listing)).toContain(addWebhook.webhook.webhookId);
    expect(JSON.stringify(listing)).not.toContain(addWebhook.secret);
    expect(server.logs.join('\n')).not.toContain(addWebhook.secret);
    const removed = dataOf(
      await execute(
        server,
        RemoveWebhookMutation,
        { input: { webhookId: addWebhook.webhook.webhookId } },
        { token: TOKENS.ops },
      ),
    ).removeWebhook;
    expect(removed).toMatchObject({ __typename: 'RemoveWebhookSuccess' });
    const again = dataOf(
      await execute(
        server,
        RemoveWebhookMutation,
        { input: { webhookId: addWebhook.webhook.webhookId } },
        { token: TOKENS.ops },
      ),
    ).removeWebhook;
    expect(again).toMatchObject({ code: 'NOT_FOUND' });
  });

  test('deliveries(last:) takes 0 to 50 as a connection takes first and last (0: none); null is the default', async () => {
    const hook = await addWebhook({ url: receiver.url('/last'), events: ['TASK_FINISHED'], appName: 'nothing-here' });
    const none = await execute(server, WebhooksQuery, { last: 0 }, { token: TOKENS.ops });
    expect(none.errors).toBeUndefined();
    expect(none.data?.webhooks.map((webhook) => webhook.deliveries)).toContainEqual([]);
    expect(none.data?.webhooks.filter((webhook) => webhook.deliveries.length > 0)).toEqual([]);
    for (const [last, message] of [
      [-1, 'Argument "last" must not be negative'],
      [51, 'Argument "last" must be at most 50'],
    ] as const) {
      const refused = await execute(server, WebhooksQuery, { last }, { token: TOKENS.ops });
      expect(errorCodes(refused)).toContain('VALIDATION');
      expect(refused.errors?.[0]?.message).toBe(message);
    }
    const listed = await execute(server, WebhooksQuery, { last: null }, { token: TOKENS.ops });
    expect(listed.errors).toBeUndefined();
    await execute(server, RemoveWebhookMutation, { input: { webhookId: hook.webhookId } }, { token: TOKENS.ops });
  });

  test("a webhook filtered to alice's hook-a receives its task finishing and its state change, signed; bob's install of it and other apps reach no one", async () => {
    const hook = await addWebhook({
      url: receiver.url('/alice-a'),
      events: ['TASK_FINISHED', 'APP_STATE_CHANGED'],
      userId: 'alice',
      sourceId: SOURCE,
      appName: 'hook-a',
    });
    const bobsTask = await installThroughApi(
      server,
      { sourceId: SOURCE, appName: 'hook-a', version: '1.0.0' },
      TOKENS.bob,
    );
    const otherTask = await installThroughApi(
      server,
      { sourceId: SOURCE, appName: 'hook-b', version: '1.0.0' },
      TOKENS.alice,
    );
    const taskId = await installThroughApi(
      server,
      { sourceId: SOURCE, appName: 'hook-a', version: '1.0.0' },
      TOKENS.alice,
    );
    const finished = await receiver.waitFor(
      (d) => d.path === '/alice-a' && d.topic === 'task.finished',
      "alice's task finishing",
    );
    expect(verifySignature(hook.secret, finished.body, finished.signature)).toBe(true);
    expect(verifySignature('another-secret', finished.body, finished.signature)).toBe(false);
    expect(finished.key).toBe(`webhook:${hook.webhookId}:task:${taskId}:COMPLETED`);
    expect(finished.headers['content-type']).toBe('application/json');
    expect(finished.attempt).toBe(1);
    expect(parsed(finished)).toMatchObject({
      event: 'TASK_FINISHED',
      webhookId: hook.webhookId,
      task: {
        id: taskId,
        type: 'INSTALL',
        status: 'COMPLETED',
        user: 'alice',
        app: { userId: 'alice', sourceId: SOURCE, appName: 'hook-a' },
        error: null,
      },
    });
    // The app service's `running` may come while the task still runs (stage INSTALLING): the
    // task's end is then announced too, so the receiver's last word is RUNNING, installed.
    const running = await receiver.waitFor(
      (d) => d.path === '/alice-a' && d.topic === 'app.state_changed' && parsed(d).app.stage === 'RUNNING',
      'the app running',
    );
    expect(verifySignature(hook.secret, running.body, running.signature)).toBe(true);
    expect(parsed(running)).toMatchObject({
      event: 'APP_STATE_CHANGED',
      app: {
        key: { userId: 'alice', sourceId: SOURCE, appName: 'hook-a' },
        state: 'running',
        stage: 'RUNNING',
        installedVersion: '1.0.0',
      },
    });
    // Bob's and the other app's tasks finished too, and went nowhere.
    for (const other of [bobsTask, otherTask]) {
      await waitFor(async () => {
        const task = await server.app.db.task.findUnique({ where: { taskId: other } });
        return task?.status === 'COMPLETED' ? true : undefined;
      }, 'the other task finished');
    }
    await server.app.services.feed.delivered();
    await server.app.services.webhookDispatcher.idle();
    const deliveries = await waitFor(async () => {
      const found = await deliveriesOf(hook.webhookId, 50);
      return found.every((d) => d.status === 'DELIVERED') ? found : undefined;
    }, 'every delivery made');
    expect(deliveries.every((d) => d.lastStatusCode === 200 && d.deliveredAt && d.lastError === null)).toBe(true);
    const received = receiver.received((d) => d.path === '/alice-a');
    expect(new Set(received.map((d) => d.key))).toEqual(new Set(deliveries.map((d) => d.idempotencyKey)));
    for (const body of received.map(parsed)) {
      expect(body.task?.app ?? body.app?.key).toEqual({ userId: 'alice', sourceId: SOURCE, appName: 'hook-a' });
    }
    expect(deliveries.filter((d) => d.topic === 'task.finished')).toHaveLength(1);
    // Each state (and stage) announced once: in the order written, no message repeats the one before it.
    const states = deliveries
      .filter((d) => d.topic === 'app.state_changed')
      .reverse()
      .map((d) => d.idempotencyKey.split(':').at(-2));
    expect(states.at(-1)).toBe('running/RUNNING');
    expect(states.every((state, index) => index === 0 || state !== states[index - 1])).toBe(true);
  });

  test('a webhook filtered to one source receives the events of its apps and none of an app of another source', async () => {
    const hook = await addWebhook({
      url: receiver.url('/by-source'),
      events: ['TASK_FINISHED', 'APP_STATE_CHANGED'],
      sourceId: OTHER_SOURCE,
    });
    // First an app of the other source (SOURCE), to the end of its events' dispatch …
    const excluded = await installThroughApi(
      server,
      { sourceId: SOURCE, appName: 'hook-this-source', version: '1.0.0' },
      TOKENS.alice,
    );
    await waitFor(async () => {
      const task = await server.app.db.task.findUnique({ where: { taskId: excluded } });
      return task?.status === 'COMPLETED' ? true : undefined;
    }, 'the install from the excluded source finished');
    await server.app.services.feed.delivered();
    await server.app.services.webhookDispatcher.idle();
    // … then one of the webhook's source: its events come after, so the excluded ones had their chance.
    const included = await installThroughApi(
      server,
      { sourceId: OTHER_SOURCE, appName: 'hook-other-source', version: '1.0.0' },
      TOKENS.alice,
    );
    const finished = await receiver.waitFor(
      (d) => d.path === '/by-source' && d.topic === 'task.finished',
      'the task of the filtered source finishing',
    );
    expect(verifySignature(hook.secret, finished.body, finished.signature)).toBe(true);
    expect(parsed(finished)).toMatchObject({
      event: 'TASK_FINISHED',
      task: { id: included, app: { userId: 'alice', sourceId: OTHER_SOURCE, appName: 'hook-other-source' } },
    });
    await receiver.waitFor(
      (d) => d.path === '/by-source' && d.topic === 'app.state_changed' && parsed(d).app.state === 'running',
      'the app of the filtered source running',
    );
    // Nothing of the app of SOURCE: neither queued for this webhook nor received.
    const deliveries = await waitFor(async () => {
      const found = await deliveriesOf(hook.webhookId, 50);
      return found.every((d) => d.status === 'DELIVERED') ? found : undefined;
    }, 'every delivery of the webhook made');
    const received = receiver.received((d) => d.path === '/by-source');
    expect(new Set(received.map((d) => d.key))).toEqual(new Set(deliveries.map((d) => d.idempotencyKey)));
    const about = received.map(parsed).map((body) => body.task?.app ?? body.app?.key);
    expect(about).toEqual(
      Array(received.length).fill({ userId: 'alice', sourceId: OTHER_SOURCE, appName: 'hook-other-source' }),
    );
    expect(received.map((d) => d.body).join('\n')).not.toContain(excluded);
    await execute(server, RemoveWebhookMutation, { input: { webhookId: hook.webhookId } }, { token: TOKENS.ops });
  });

  test("a payment's status change reaches a PAYMENT_STATUS_CHANGED webhook, signed, without the payment's secrets", async () => {
    const hook = await addWebhook({
      url: receiver.url('/payments'),
      events: ['PAYMENT_STATUS_CHANGED'],
      appName: 'hook-paid',
    });
    const bought = dataOf(
      await execute(
        server,
        PurchaseAppMutation,
        { input: { sourceId: SOURCE, appId: 'hook-paid' } },
        { token: TOKENS.alice },
      ),
    ).purchaseApp;
    expect(bought.__typename).toBe('PurchaseAppSuccess');
    const pushed = await receiver.waitFor(
      (d) => d.path === '/payments' && parsed(d).payment.status === 'SIGNATURE_REQUIRED',
      'the payment status change',
    );
    expect(verifySignature(hook.secret, pushed.body, pushed.signature)).toBe(true);
    expect(pushed.topic).toBe('payment.status_changed');
    expect(parsed(pushed)).toMatchObject({
      event: 'PAYMENT_STATUS_CHANGED',
      payment: {
        status: 'SIGNATURE_REQUIRED',
        productId: 'hook-paid-license',
        app: { userId: 'alice', appName: 'hook-paid' },
      },
    });
    expect(pushed.body).not.toMatch(/"(jws|vc|signBody)"/);
  });

  test('while the receiver is down, deliveries are retried with backoff (visible in webhooks) and delivered once it is back', async () => {
    const down = await FakeReceiver.start();
    try {
      await down.down();
      const hook = await addWebhook({ url: down.url('/down'), events: ['TASK_FINISHED'], appName: 'hook-down' });
      await installThroughApi(server, { sourceId: SOURCE, appName: 'hook-down', version: '1.0.0' }, TOKENS.alice);
      const retrying = await waitFor(async () => {
        const [delivery] = await deliveriesOf(hook.webhookId);
        return delivery && delivery.attempts >= 2 && delivery.lastError ? delivery : undefined;
      }, 'a second failed attempt');
      expect(retrying).toMatchObject({
        topic: 'task.finished',
        status: 'PENDING',
        lastStatusCode: null,
        lastError: expect.stringMatching(/^unreachable: ECONNREFUSED/),
        deliveredAt: null,
      });
      expect(new Date(retrying.nextAttemptAt as string).getTime()).toBeGreaterThan(
        new Date(retrying.createdAt).getTime(),
      );
      await down.up();
      const delivered = await waitFor(async () => {
        const [delivery] = await deliveriesOf(hook.webhookId);
        return delivery?.status === 'DELIVERED' ? delivery : undefined;
      }, 'the delivery');
      expect(delivered).toMatchObject({ lastStatusCode: 200, lastError: null, nextAttemptAt: null });
      // At least one failed attempt before it (attempts counts the one in flight when it was read).
      expect(delivered.attempts).toBeGreaterThanOrEqual(2);
      expect(down.received()).toHaveLength(1);
      expect(down.received()[0]?.attempt).toBe(delivered.attempts);
    } finally {
      await down.close();
    }
  });

  test('a receiver that keeps failing leaves the delivery DEAD after OUTBOX_MAX_ATTEMPTS, with its last status and error', async () => {
    const failing = await FakeReceiver.start();
    failing.fail(1000, 500);
    try {
      const hook = await addWebhook({ url: failing.url('/dead'), events: ['TASK_FINISHED'], appName: 'hook-dead' });
      await installThroughApi(server, { sourceId: SOURCE, appName: 'hook-dead', version: '1.0.0' }, TOKENS.alice);
      const dead = await waitFor(async () => {
        const [delivery] = await deliveriesOf(hook.webhookId);
        return delivery?.status === 'DEAD' ? delivery : undefined;
      }, 'the dead letter');
      expect(dead).toMatchObject({
        attempts: 4,
        lastStatusCode: 500,
        lastError: 'the receiver answered HTTP 500: receiver is failing on purpose',
        nextAttemptAt: null,
        deliveredAt: null,
      });
      expect(failing.received().map((d) => d.attempt)).toEqual([1, 2, 3, 4]);
      expect(new Set(failing.received().map((d) => d.key)).size).toBe(1);
    } finally {
      await failing.close();
    }
  });

  test('a hanging receiver blocks neither installs nor requests', async () => {
    const hanging = await FakeReceiver.start();
    hanging.hang();
    try {
      await addWebhook({
        url: hanging.url('/hang'),
        events: ['TASK_FINISHED', 'APP_STATE_CHANGED'],
        appName: 'hook-hang',
      });
      await installThroughApi(server, { sourceId: SOURCE, appName: 'hook-hang', version: '1.0.0' }, TOKENS.alice);
      await waitFor(async () => (hanging.holding > 0 ? true : undefined), 'a delivery held open');
      // While it holds the delivery: two more installs run to the end, and a query answers.
      const tasks = await Promise.all(
        ['hook-free-1', 'hook-free-2'].map((appName) =>
          installThroughApi(server, { sourceId: SOURCE, appName, version: '1.0.0' }, TOKENS.alice),
        ),
      );
      for (const taskId of tasks) {
        await waitFor(async () => {
          const task = await server.app.db.task.findUnique({ where: { taskId } });
          return task?.status === 'COMPLETED' ? true : undefined;
        }, 'the install to complete');
      }
      const { app } = dataOf(
        await execute(server, AppQuery, { sourceId: SOURCE, appName: 'hook-free-2' }, { token: TOKENS.alice }),
      );
      expect(app).toMatchObject({ appName: 'hook-free-2' });
      expect(hanging.holding).toBeGreaterThan(0);
    } finally {
      await hanging.close();
    }
  });

  test('users other than admins get FORBIDDEN for addWebhook, removeWebhook and webhooks', async () => {
    const add = await execute(
      server,
      AddWebhookMutation,
      { input: { url: receiver.url('/x'), events: ['TASK_FINISHED'] } },
      { token: TOKENS.alice },
    );
    expect(dataOf(add).addWebhook).toMatchObject({ code: 'FORBIDDEN' });
    const remove = await execute(
      server,
      RemoveWebhookMutation,
      { input: { webhookId: 'wh_x' } },
      { token: TOKENS.bob },
    );
    expect(dataOf(remove).removeWebhook).toMatchObject({ code: 'FORBIDDEN' });
    expect(errorCodes(await execute(server, WebhooksQuery, {}, { token: TOKENS.alice }))).toEqual(['FORBIDDEN']);
  });

  test('an uninstalled app whose state row is gone is announced as removed, once', async () => {
    const hook = await addWebhook({
      url: receiver.url('/gone'),
      events: ['APP_STATE_CHANGED'],
      userId: 'alice',
      appName: 'hook-gone',
    });
    await installThroughApi(server, { sourceId: SOURCE, appName: 'hook-gone', version: '1.0.0' }, TOKENS.alice);
    await receiver.waitFor((d) => d.path === '/gone' && parsed(d).app.state === 'running', 'the app running');
    const { uninstallApp } = dataOf(
      await execute(
        server,
        UninstallAppMutation,
        { input: { sourceId: SOURCE, appName: 'hook-gone' } },
        { token: TOKENS.alice },
      ),
    );
    expect(uninstallApp.__typename).toBe('UninstallAppSuccess');
    const removed = await receiver.waitFor((d) => d.path === '/gone' && parsed(d).app.removed === true, 'the removal');
    expect(verifySignature(hook.secret, removed.body, removed.signature)).toBe(true);
    expect(parsed(removed)).toMatchObject({
      event: 'APP_STATE_CHANGED',
      app: { key: { userId: 'alice', sourceId: SOURCE, appName: 'hook-gone' }, state: 'uninstalled', stage: null },
    });
    expect(removed.key).toContain(`webhook:${hook.webhookId}:app:`);
    expect(removed.key).toContain(':removed:');
    expect(await server.app.db.appState.count({ where: { userId: 'alice', appName: 'hook-gone' } })).toBe(0);
    await server.app.services.feed.delivered();
    await server.app.services.webhookDispatcher.idle();
    const removals = (await deliveriesOf(hook.webhookId, 50)).filter((d) => d.idempotencyKey.includes(':removed:'));
    expect(removals).toHaveLength(1);
    await execute(server, RemoveWebhookMutation, { input: { webhookId: hook.webhookId } }, { token: TOKENS.ops });
  });

  test('admins adding webhooks at the same time never get past MAX_WEBHOOKS', async () => {
    const existing = dataOf(await execute(server, WebhooksQuery, {}, { token: TOKENS.ops })).webhooks.length;
    const answers = await Promise.all(
      Array.from({ length: 12 - existing + 6 }, () =>
        execute(
          server,
          AddWebhookMutation,
          { input: { url: receiver.url('/together'), events: ['TASK_FINISHED'], appName: 'none' } },
          { token: TOKENS.ops },
        ),
      ),
    );
    const added = answers.map((answer) => dataOf(answer).addWebhook);
    const accepted = added.flatMap((answer) => (answer.__typename === 'AddWebhookSuccess' ? [answer] : []));
    expect(accepted).toHaveLength(12 - existing);
    expect(added.filter((answer) => answer.__typename !== 'AddWebhookSuccess')).toEqual(
      Array(6).fill(expect.objectContaining({ code: 'INVALID_STATE' })),
    );
    expect(dataOf(await execute(server, WebhooksQuery, {}, { token: TOKENS.ops })).webhooks).toHaveLength(12);
    for (const answer of accepted) {
      await execute(
        server,
        RemoveWebhookMutation,
        { input: { webhookId: answer.webhook.webhookId } },
        { token: TOKENS.ops },
      );
    }
  });

  test.skipIf(kind !== 'postgresql')(
    'an add held past its transaction time (the table locked) answers 503 UNAVAILABLE, and adds again after',
    async () => {
      // Another session holds the table longer than Prisma's transaction timeout (5 s): the add
      // waits at its LOCK TABLE, its transaction expires, and it was an unexpected error (500).
      const blocker = new pg.Client({ connectionString: server.database.url });
      await blocker.connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query('LOCK TABLE "Webhook" IN ACCESS EXCLUSIVE MODE');
        const adding = execute(
          server,
          AddWebhookMutation,
          { input: { url: receiver.url('/held'), events: ['TASK_FINISHED'] } },
          { token: TOKENS.ops },
        );
        // The fault's length, not a wait for an event: the lock held past the transaction's 5 s.
        await new Promise((resolve) => setTimeout(resolve, 5_500));
        await blocker.query('COMMIT');
        const answer = await adding;
        expect(answer.status).toBe(503);
        expect(errorCodes(answer)).toEqual(['UNAVAILABLE']);
      } finally {
        await blocker.query('ROLLBACK').catch(() => undefined);
        await blocker.end();
      }
      const again = await addWebhook({ url: receiver.url('/held'), events: ['TASK_FINISHED'] });
      await execute(server, RemoveWebhookMutation, { input: { webhookId: again.webhookId } }, { token: TOKENS.ops });
    },
    30_000,
  );

  test('URLs that are not http(s), are not written scheme://host, name port 0, have a fragment, carry credentials or are too long, an empty event list and more than MAX_WEBHOOKS are refused', async () => {
    const refused = async (input: Record<string, unknown>) =>
      dataOf(await execute(server, AddWebhookMutation, { input } as never, { token: TOKENS.ops })).addWebhook;
    expect(await refused({ url: 'ftp://127.0.0.1/hook', events: ['TASK_FINISHED'] })).toMatchObject({
      code: 'VALIDATION',
      issues: [{ path: 'url', message: 'url must use http or https' }],
    });
    // Nothing listens on port 0, and a fragment is never sent: both were stored as given.
    expect(await refused({ url: 'http://127.0.0.1:0/', events: ['TASK_FINISHED'] })).toMatchObject({
      code: 'VALIDATION',
      issues: [{ path: 'url', message: 'url must not name port 0 (nothing can be reached on it)' }],
    });
    // The URL parser reads each as http://hooks.example/: stored so, the typo became the host called.
    for (const url of [
      'http:/hooks.example',
      'http:hooks.example',
      'http:\\\\hooks.example',
      'http:///hooks.example',
    ]) {
      expect(await refused({ url, events: ['TASK_FINISHED'] }), url).toMatchObject({
        code: 'VALIDATION',
        issues: [{ path: 'url', message: 'url must be an absolute URL (http:// or https://)' }],
      });
    }
    for (const url of [receiver.url('/hook#part'), receiver.url('/hook#')]) {
      expect(await refused({ url, events: ['TASK_FINISHED'] }), url).toMatchObject({
        code: 'VALIDATION',
        issues: [{ path: 'url', message: 'url must not have a fragment (it is never sent)' }],
      });
    }
    // A query string is the receiver's to read (a token), and is kept.
    const withQuery = await refused({ url: receiver.url('/hook?token=abc'), events: ['TASK_FINISHED'] });
    expect(withQuery).toMatchObject({ webhook: { url: receiver.url('/hook?token=abc') } });
    if ('webhook' in withQuery) {
      await execute(
        server,
        RemoveWebhookMutation,
        { input: { webhookId: withQuery.webhook.webhookId } },
        { token: TOKENS.ops },
      );
    }
    const withCredentials = await refused({ url: 'https://user:pw@example.com/hook', events: ['TASK_FINISHED'] });
    expect(withCredentials).toMatchObject({ code: 'VALIDATION', issues: [{ path: 'url' }] });
    expect(JSON.stringify(withCredentials)).not.toContain('pw@');
    expect(await refused({ url: `https://example.com/${'a'.repeat(2100)}`, events: ['TASK_FINISHED'] })).toMatchObject({
      code: 'VALIDATION',
    });
    // Short as written, three times as long once its spaces are percent-encoded as it would be stored.
    expect(await refused({ url: `http://a/${' '.repeat(2000)}x`, events: ['TASK_FINISHED'] })).toMatchObject({
      code: 'VALIDATION',
      issues: [{ path: 'url', message: 'url must be at most 2048 characters once encoded' }],
    });
    expect(await refused({ url: receiver.url('/x'), events: [] })).toMatchObject({
      code: 'VALIDATION',
      issues: [{ path: 'events' }],
    });
    const existing = dataOf(await execute(server, WebhooksQuery, {}, { token: TOKENS.ops })).webhooks.length;
    const added: string[] = [];
    for (let index = existing; index < 12; index++) {
      added.push(
        (await addWebhook({ url: receiver.url('/limit'), events: ['TASK_FINISHED'], appName: 'none' })).webhookId,
      );
    }
    expect(await refused({ url: receiver.url('/limit'), events: ['TASK_FINISHED'] })).toMatchObject({
      code: 'INVALID_STATE',
      message: 'At most 12 webhooks may be registered (MAX_WEBHOOKS)',
    });
    for (const webhookId of added) {
      await execute(server, RemoveWebhookMutation, { input: { webhookId } }, { token: TOKENS.ops });
    }
  });
  test('a filter no id could match (too long, or other characters) is refused naming its field; one as long as the id is accepted', async () => {
    const add = async (filter: Record<string, string>) =>
      dataOf(
        await execute(
          server,
          AddWebhookMutation,
          { input: { url: receiver.url('/bounds'), events: ['TASK_FINISHED'], ...filter } },
          { token: TOKENS.ops },
        ),
      ).addWebhook;
    // Source ids are at most 50 characters (MAX_SOURCE_ID_LENGTH), app names and user ids 128.
    for (const [field, longest] of [
      ['sourceId', 50],
      ['appName', 128],
      ['userId', 128],
    ] as const) {
      expect(await add({ [field]: 's'.repeat(longest + 1) }), field).toMatchObject({
        __typename: 'ValidationError',
        code: 'VALIDATION',
        issues: [{ path: field, message: `${field} must be at most ${longest} characters` }],
      });
      const accepted = await add({ [field]: 's'.repeat(longest) });
      expect(accepted, field).toMatchObject({
        __typename: 'AddWebhookSuccess',
        webhook: { [field]: 's'.repeat(longest) },
      });
      if (accepted.__typename !== 'AddWebhookSuccess') continue;
      const { webhookId } = accepted.webhook;
      await execute(server, RemoveWebhookMutation, { input: { webhookId } }, { token: TOKENS.ops });
    }
    // Within the bound but made of characters no id has: it could never match either.
    for (const [field, value, rule] of [
      ['userId', '用户', 'must be a user id: 1 to 128 ASCII letters, digits, "_", ".", "@", ":" or "-", not "system"'],
      [
        'userId',
        'system',
        'must be a user id: 1 to 128 ASCII letters, digits, "_", ".", "@", ":" or "-", not "system"',
      ],
      ['sourceId', 'market olares', 'may hold only letters, digits, ".", "_" and "-"'],
      ['appName', '相册管理器', 'must start with a letter or digit and may contain letters, digits, ".", "_" and "-"'],
    ] as const) {
      expect(await add({ [field]: value }), `${field} ${value}`).toMatchObject({
        __typename: 'ValidationError',
        code: 'VALIDATION',
        issues: [{ path: field, message: `${field} ${rule}` }],
      });
    }
  });
});

describe('an app whose stage goes back to an earlier one, with no new report', () => {
  let server: TestServer;
  let receiver: FakeReceiver;
  beforeAll(async () => {
    ({ server } = await startSeededServer('sqlite', {
      // One task at a time, each step long enough that a second one stays PENDING behind it.
      env: { ...AUTH_ENV, TASK_CONCURRENCY: '1', SIMULATED_STEP_MS: '1000', OUTBOX_POLL_INTERVAL_MS: '100' },
      preseed: async (seed) => {
        await seed.remoteSource();
        for (const name of ['flip-app', 'flip-blocker']) await seed.catalogApp({ name, versions: ['1.0.0'] });
      },
    }));
    receiver = await FakeReceiver.start();
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
  });

  test('a pending uninstall canceled announces RUNNING again, each time', async () => {
    const { addWebhook } = dataOf(
      await execute(
        server,
        AddWebhookMutation,
        { input: { url: receiver.url('/flip'), events: ['APP_STATE_CHANGED'], appName: 'flip-app' } },
        { token: TOKENS.ops },
      ),
    );
    expect(addWebhook.__typename).toBe('AddWebhookSuccess');
    const stageOf = (delivery: ReceivedDelivery) => (JSON.parse(delivery.body) as { app: { stage: string } }).app.stage;
    const stages = () => receiver.received((d) => d.path === '/flip').map(stageOf);
    const install = (appName: string) =>
      installThroughApi(server, { sourceId: SOURCE, appName, version: '1.0.0' }, TOKENS.alice);
    await install('flip-app');
    await receiver.waitFor((d) => d.path === '/flip' && stageOf(d) === 'RUNNING', 'flip-app running');
    const announced = stages().length;

    await install('flip-blocker'); // holds the one worker for a few steps
    for (let round = 1; round <= 2; round += 1) {
      const variables = { input: { sourceId: SOURCE, appName: 'flip-app' } };
      const { uninstallApp } = dataOf(await execute(server, UninstallAppMutation, variables, { token: TOKENS.alice }));
      if (uninstallApp.__typename !== 'UninstallAppSuccess') throw new Error(JSON.stringify(uninstallApp));
      expect(uninstallApp.task.status).toBe('PENDING');
      const canceled = dataOf(
        await execute(
          server,
          CancelTaskMutation,
          { input: { taskId: uninstallApp.task.taskId } },
          { token: TOKENS.alice },
        ),
      ).cancelTask;
      expect(canceled).toMatchObject({ __typename: 'CancelTaskSuccess', task: { status: 'CANCELED' } });
      await waitFor(
        async () =>
          stages().slice(announced).join(' ') === Array(round).fill('UNINSTALLING RUNNING').join(' ') || undefined,
        `round ${round}: UNINSTALLING then RUNNING announced`,
      );
    }
  });
});
