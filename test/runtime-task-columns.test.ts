import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RuntimeEvent, StateStore } from '../src/runtime/state-store.js';
import { availableDatabases } from './support/databases.js';
import { InstallAppMutation } from './support/operations.js';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './support/redis.js';
import { seed } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * The runtime state holds a task's columns that the API shows, never its `metadata`, which keeps
 * the envs a user sent: 100 of up to 4,096 characters, ~410 KB a task. Every event the store's
 * replay buffer kept (RUNTIME_EVENT_BUFFER, 10,000 by default) had its own copy of the task row as
 * read back, so a user looping installs with large envs grew the heap by ~330 KB an event and held
 * it after the traffic stopped (1.1 GB after GC with ten users, past the pod's 1 GiB limit). In
 * cluster mode the rows also went through the change log and the event history in Redis.
 *
 * The buffer is read in-process (the store behind `runtimeEvents(since:)`): each event it keeps,
 * as JSON, is the size of an ordinary event (under 2 KB), whatever envs the installs carried.
 */

const databases = await availableDatabases();
const redisUp = await redisAvailable();
const APPS = ['big-env-a', 'big-env-b', 'big-env-c'];
/** As large as an operation takes (task-submission.ts operationEnvs): ~400 KB. */
const ENVS = Array.from({ length: 100 }, (_, i) => ({ name: `E${i}`, value: `${'x'.repeat(4000)}${i}` }));
/** An ordinary task or app event as JSON is well under this; one holding the envs is 200 times it. */
const EVENT_BYTES = 2_048;
/** A change log entry of read-back rows (a few tasks and apps); one with a task's envs is 50 times it. */
const ENTRY_BYTES = 8_192;
/** Installs complete within a few steps of the simulated app service. */
const ENV = { ...AUTH_ENV, DEMO_DATA: '0', SIMULATED_STEP_MS: '20' };

async function installWithEnvs(server: TestServer, appName: string): Promise<string> {
  const input = { sourceId: 'market.olares', appName, version: '1.0.0', envs: ENVS };
  const { installApp } = dataOf(await execute(server, InstallAppMutation, { input }, { token: TOKENS.alice }));
  if (installApp.__typename !== 'InstallAppSuccess') throw new Error(`install refused: ${JSON.stringify(installApp)}`);
  return installApp.task.taskId;
}

function completedIn(server: TestServer, taskId: string): Promise<true> {
  const { store } = server.app.services;
  return waitFor(async () => (store.task(taskId)?.status === 'COMPLETED' ? true : undefined), `${taskId} to complete`);
}

/** What the store holds of tasks: in `events` (those of its buffer) and itself, with the events' sizes. */
function heldBy(store: StateStore, events: readonly RuntimeEvent[]) {
  const tasks = [...events.flatMap((event) => (event.task ? [event.task] : [])), ...store.snapshot().tasks];
  return {
    taskEvents: events.filter((event) => event.task).length,
    withMetadata: tasks.filter((task) => 'metadata' in task).map((task) => task.taskId),
    largest: Math.max(...events.map((event) => JSON.stringify(event).length)),
  };
}

async function installAll(server: TestServer, completedOn: TestServer[]): Promise<string[]> {
  const taskIds: string[] = [];
  for (const appName of APPS) taskIds.push(await installWithEnvs(server, appName));
  for (const instance of completedOn) for (const taskId of taskIds) await completedIn(instance, taskId);
  // The envs did reach the tasks: what the runtime leaves out is there to leave out.
  const stored = await server.app.db.task.findMany({ where: { taskId: { in: taskIds } } });
  expect(stored.map((task) => (task.metadata as { envs: unknown[] }).envs.length)).toEqual([100, 100, 100]);
  return taskIds;
}

describe('the runtime state of one process', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: ENV });
    for (const name of APPS) await seed(server.app.db).catalogApp({ name, versions: ['1.0.0'] });
  });
  afterAll(() => server?.stop());

  test('keeps no task metadata in its events or tasks after installs with the largest envs', async () => {
    const { store } = server.app.services;
    const since = store.lastSequence;
    await installAll(server, [server]);
    const held = heldBy(store, store.eventsSince(since) ?? []);
    // Pending, running (progress steps) and completed, for each install.
    expect(held.taskEvents).toBeGreaterThanOrEqual(APPS.length * 3);
    expect(held.withMetadata).toEqual([]);
    expect(held.largest).toBeLessThan(EVENT_BYTES);
  });
});

describe.runIf(redisUp)('the runtime state of a cluster', () => {
  const kind = databases.includes('postgresql') ? 'postgresql' : 'sqlite';
  const prefix = uniquePrefix();
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    const env = { ...ENV, REDIS_URL, REDIS_PREFIX: prefix };
    a = await startTestServer(kind, { env: { ...env, INSTANCE_NAME: 'a' } });
    b = await startTestServer(kind, { env: { ...env, INSTANCE_NAME: 'b' }, database: a.database });
    for (const name of APPS) await seed(a.app.db).catalogApp({ name, versions: ['1.0.0'] });
  }, 60_000);
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await deleteKeys(prefix);
  });

  test('emits no task metadata on either instance, nor carries it through the change log or the event history', async () => {
    // Events in the first seconds after a start may be forgotten again (cluster-join.ts, mayBeLoaded):
    // what each store emits is taken as it goes into the buffer.
    const emitted = { a: [] as RuntimeEvent[], b: [] as RuntimeEvent[] };
    const stops = [
      a.app.services.store.onEvent((e) => emitted.a.push(e)),
      b.app.services.store.onEvent((e) => emitted.b.push(e)),
    ];
    try {
      await installAll(a, [a, b]);
    } finally {
      for (const stop of stops) stop();
    }
    for (const [instance, events] of [
      [a, emitted.a],
      [b, emitted.b],
    ] as const) {
      const held = heldBy(instance.app.services.store, events);
      expect(held.taskEvents).toBeGreaterThanOrEqual(APPS.length * 3);
      expect(held.withMetadata).toEqual([]);
      expect(held.largest).toBeLessThan(EVENT_BYTES);
    }
    const redis = new Redis(REDIS_URL);
    try {
      const recorded = await redis.zrangeBuffer(`${prefix}events`, 0, -1);
      expect(recorded.length).toBeGreaterThanOrEqual(APPS.length * 3);
      expect(Math.max(...recorded.map((value) => value.length))).toBeLessThan(EVENT_BYTES);
      const entries = await redis.xrangeBuffer(`${prefix}changes`, '-', '+');
      const runtime = entries.flatMap(([, fields]) => fields.filter((_, i) => String(fields[i - 1]) === 'runtime'));
      expect(runtime.length).toBeGreaterThanOrEqual(APPS.length);
      expect(Math.max(...runtime.map((value) => value.length))).toBeLessThan(ENTRY_BYTES);
    } finally {
      redis.disconnect();
    }
  });

  test('an instance whose own read-back came back from the log no longer holds its mutations for it', async () => {
    const { barrier, feed, store } = a.app.services;
    await seed(a.app.db).user('carol').app({ appName: 'barrier-probe', state: 'running' });
    const applied = new Promise<void>((resolve) => {
      const stop = store.onEvent((event) => {
        if (event.app?.appName !== 'barrier-probe') return;
        stop();
        resolve();
      });
    });
    feed.app({ userId: 'carol', sourceId: 'market.olares', appName: 'barrier-probe' });
    // As a mutation's answer waits (read-your-writes), with no time limit that could end the wait.
    let caughtUp = false;
    const waiting = barrier
      .caughtUp(() => feed.delivered(), 3_600_000)
      .then(() => {
        caughtUp = true;
      });
    await applied;
    // The entry's return is noted as it is applied: the waiter is released within the same turn.
    await new Promise((resolve) => setImmediate(resolve));
    expect(caughtUp).toBe(true);
    await waiting;
  });

  test('keeps only its own columns of the whole task rows an instance of an earlier version appends', async () => {
    const [row] = await a.app.db.task.findMany({ where: { appName: APPS[0] } });
    if (!row) throw new Error('no task to copy');
    // As an earlier version appended a read-back: the whole row, metadata and envs included.
    const earlier = { ...row, id: row.id + 1_000, taskId: 'appended-by-an-earlier-version' };
    a.app.services.clusterLog?.appendRuntime({ kind: 'rows', tasks: [earlier], appKeys: [], apps: [] }, 3);
    for (const instance of [a, b]) {
      const held = await waitFor(
        async () => instance.app.services.store.task(earlier.taskId),
        'the appended task in the runtime state',
      );
      expect(held).toMatchObject({ taskId: earlier.taskId, status: 'COMPLETED', appName: APPS[0] });
      expect('metadata' in held).toBe(false);
    }
  });
});
