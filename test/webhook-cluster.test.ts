import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { graphql } from './gql/index.js';
import { as, completedOn, type Instance, installOn, startInstance, stopRunning } from './support/cluster.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { FakeReceiver, type ReceivedDelivery } from './support/fake-receiver.js';
import { CancelTaskMutation, UninstallAppMutation } from './support/operations.js';
import { killLeftovers } from './support/process.js';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './support/redis.js';
import { dataOf, execute } from './support/server.js';

/**
 * APP_STATE_CHANGED in cluster mode: an app's changes are announced by whichever instance made
 * them, so one instance's "last state announced" can be another's. A first install on B, canceled
 * on A at once, deleted the app's row; A compared its removal with the last state it had announced
 * itself ("removed", from an earlier uninstall), not with B's "pending", and sent nothing: the
 * receiver kept `pending` until the leader's catch-up (and for good with the catch-up off).
 */

const databases = await availableDatabases();
const runnable = databases.includes('postgresql') && (await redisAvailable());

const AddWebhookMutation = graphql(`
  mutation WebhookClusterAdd($input: AddWebhookInput!) {
    addWebhook(input: $input) { __typename }
  }
`);

const APP = 'excalidraw';
const VERSION = '0.17.6';
const USER = 'dora';

/** The `app` of an APP_STATE_CHANGED body: its state and stage, `removed` when its row is gone. */
function appOf(delivery: ReceivedDelivery): { state: string; stage: string | null; removed?: true } {
  return (JSON.parse(delivery.body) as { app: { state: string; stage: string | null; removed?: true } }).app;
}

describe.runIf(runnable)('webhooks in cluster mode: two instances on PostgreSQL and Redis', () => {
  let database: TestDatabase;
  let prefix: string;
  let receiver: FakeReceiver;
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    database = await createTestDatabase('postgresql');
    prefix = uniquePrefix();
    receiver = await FakeReceiver.start();
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL,
      REDIS_PREFIX: prefix,
      // Only the live dispatch counts: no catch-up to announce what it missed.
      WEBHOOK_CATCH_UP_INTERVAL_MS: '0',
      // Each instance runs only the tasks its own mutations submit.
      TASK_POLL_INTERVAL_MS: '3600000',
      OUTBOX_POLL_INTERVAL_MS: '100',
    };
    a = await startInstance({ ...env, DEMO_DATA: '1', INSTANCE_NAME: 'a' });
    const added = await execute(
      a,
      AddWebhookMutation,
      { input: { url: receiver.url('/apps'), events: ['APP_STATE_CHANGED'], appName: APP } },
      as('ops'),
    );
    expect(dataOf(added).addWebhook.__typename).toBe('AddWebhookSuccess');
    // Started after the webhook was added, B's list of webhooks has it from the start. One worker,
    // whose simulated steps outlast the test: a task behind B's first stays PENDING.
    b = await startInstance({
      ...env,
      DEMO_DATA: '0',
      INSTANCE_NAME: 'b',
      TASK_CONCURRENCY: '1',
      SIMULATED_STEP_MS: '600000',
    });
  }, 90_000);

  afterAll(async () => {
    await stopRunning([a, b]);
    await killLeftovers();
    await receiver?.close();
    await database?.drop();
    await deleteKeys(prefix);
  }, 60_000);

  test('a first install on B canceled on A is announced removed, though A last announced that app removed itself', async () => {
    const announced = () => receiver.received((d) => d.path === '/apps').map(appOf);
    /** Resolves once a delivery past the first `seen` ones matches (deliveries of one app may arrive out of order). */
    const arrives = (seen: number, match: (app: ReturnType<typeof appOf>) => boolean, what: string) =>
      receiver.waitFor(() => announced().slice(seen).some(match), what, 10_000);
    // A installs and uninstalls the app: the last state A announced is "removed".
    await completedOn(a, await installOn(a, USER, APP, VERSION));
    const uninstall = dataOf(
      await execute(a, UninstallAppMutation, { input: { sourceId: 'market.olares', appName: APP } }, as(USER)),
    ).uninstallApp;
    if (uninstall.__typename !== 'UninstallAppSuccess') throw new Error(JSON.stringify(uninstall));
    await completedOn(a, uninstall.task.taskId);
    await arrives(0, (app) => app.removed === true, 'the uninstall announced by A');

    // B's one worker is busy: the app's install on B stays PENDING, and B announces it.
    await installOn(b, USER, 'minio', '2024.11.7');
    const beforeB = announced().length;
    const installId = await installOn(b, USER, APP, VERSION);
    await arrives(beforeB, (app) => app.state === 'pending', 'the pending install announced by B');

    // Canceled on A while PENDING: a first install, so its row is deleted, and A announces that.
    const beforeCancel = announced().length;
    const canceled = dataOf(
      await execute(a, CancelTaskMutation, { input: { taskId: installId } }, as(USER)),
    ).cancelTask;
    expect(canceled).toMatchObject({ __typename: 'CancelTaskSuccess', task: { status: 'CANCELED' } });
    await arrives(beforeCancel, (app) => app.removed === true, 'the canceled install announced removed');
    expect(announced().slice(beforeB)).toEqual([
      expect.objectContaining({ state: 'pending', stage: 'INSTALLING' }),
      expect.objectContaining({ state: 'uninstalled', stage: null, removed: true }),
    ]);
  });
});
