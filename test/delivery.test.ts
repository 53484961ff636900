import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Viewer } from '../src/auth/viewer.js';
import type { RuntimeTaskRow } from '../src/db/models.js';
import { ChangeFeed, createEventBus, type TaskChanged } from '../src/events/change-feed.js';
import { RuntimeService } from '../src/runtime/runtime-service.js';
import { type ComponentStatus, type RuntimeApp, StateStore } from '../src/runtime/state-store.js';
import { RuntimeEventsSubscription } from './support/operations.js';
import { AUTH_ENV, installThroughApi, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { type Subscription, subscribe } from './support/subscriptions.js';

/**
 * Delivery never runs inside the call that made a change: the change feed and the runtime store
 * hand their changes to subscribers in a later macrotask, every subscriber in order.
 *
 * How the tests tell "inside the publishing turn" from "a later one" without timing: a
 * `setImmediate` queued before the change runs before the delivery's own (immediates run in the
 * order queued), and Node runs every microtask of a turn before the next immediate. So when it has
 * fired, everything the publishing turn set off (its promise callbacks included) has run, and the
 * delivery has not.
 */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Reads an async iterable into `received` as fast as it yields. */
function reader<T>(iterable: AsyncIterable<T>) {
  const iterator = iterable[Symbol.asyncIterator]();
  const received: T[] = [];
  void (async () => {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      received.push(next.value);
    }
  })();
  return { received, stop: () => iterator.return?.() };
}

const ADMIN: Viewer = { userId: 'ops', isAdmin: true };
const ALICE: Viewer = { userId: 'alice', isAdmin: false };
const BOB: Viewer = { userId: 'bob', isAdmin: false };
const at = new Date('2026-01-01T00:00:00Z');

function app(userId: string, appName: string): RuntimeApp {
  return {
    userId,
    sourceId: 'market.olares',
    appName,
    state: 'running',
    progress: 100,
    derived: { stage: 'RUNNING', health: 'HEALTHY' },
  } as unknown as RuntimeApp;
}

function task(userId: string, id: number, progress = 0): RuntimeTaskRow {
  return {
    id,
    taskId: `task-${id}`,
    type: 'INSTALL',
    status: 'RUNNING',
    userId,
    sourceId: 'market.olares',
    appName: `app-${id}`,
    progress,
    createdAt: at,
    updatedAt: at,
  } as unknown as RuntimeTaskRow;
}

function component(message: string): ComponentStatus {
  return { name: 'probe', healthy: true, state: 'RUNNING', message, lastCheck: at, metrics: {} };
}

describe('the runtime store hands its changes to the streams a turn later', () => {
  function runtimeOf() {
    const store = new StateStore({ bufferSize: 100, recentFinishedTasks: 10 });
    const runtime = new RuntimeService(store, { snapshotMaxHz: 1, subscriberBuffer: 50, aheadWaitMs: 0 });
    return { store, runtime };
  }

  test('no stream has a change when the turn that made it ends; after the next, each has what it may see, in order', async () => {
    const { store, runtime } = runtimeOf();
    const admin = [reader(runtime.events(ADMIN)), reader(runtime.events(ADMIN))];
    const alice = reader(runtime.events(ALICE));
    const bob = reader(runtime.events(BOB));
    const bobsApps = reader(runtime.events(ADMIN, { userId: 'bob' }));

    const publishingTurnOver = nextTurn();
    store.putTask(task('alice', 1));
    store.putApp(app('bob', 'gitea'));
    store.putTask(task('alice', 1, 50));
    store.putComponent(component('first'));
    const [first, second, third, fourth] = [1, 2, 3, 4].map((n) => store.lastSequence - 4 + n);
    await publishingTurnOver;
    for (const stream of [...admin, alice, bob, bobsApps]) expect(stream.received).toEqual([]);

    await runtime.delivered();
    await nextTurn();
    const sequences = (stream: { received: { sequence: number }[] }) => stream.received.map((e) => e.sequence);
    for (const stream of admin) expect(sequences(stream)).toEqual([first, second, third, fourth]);
    expect(sequences(alice)).toEqual([first, third, fourth]);
    expect(alice.received.map((e) => e.task?.progress ?? e.kind)).toEqual([0, 50, 'COMPONENT_CHANGED']);
    expect(sequences(bob)).toEqual([second, fourth]);
    expect(sequences(bobsApps)).toEqual([second, fourth]);
    // Each summary counts what the stream may see, as it stood when delivered.
    expect(alice.received.at(-1)?.summary).toMatchObject({ totalApps: 0, runningTasks: 1 });
    expect(bob.received.at(-1)?.summary).toMatchObject({ totalApps: 1, runningTasks: 0 });
    expect(admin[0]?.received.at(-1)?.summary).toMatchObject({ totalApps: 1, runningTasks: 1 });

    for (const stream of [...admin, alice, bob, bobsApps]) await stream.stop();
    expect(runtime.liveStreams).toBe(0);
    expect(store.listenerCount).toBe(0);
  });

  test('a stream that starts with `since` while changes wait for delivery gets each of them once, in order', async () => {
    const { store, runtime } = runtimeOf();
    const live = reader(runtime.events(ADMIN));
    const since = store.lastSequence;
    store.putTask(task('alice', 1));
    store.putTask(task('alice', 1, 10));
    // Still waiting in the queue: the replay below sends them, the queue must not send them again.
    const resumed = reader(runtime.events(ADMIN, {}, since));
    store.putTask(task('alice', 1, 20));

    await runtime.delivered();
    await nextTurn();
    const expected = [since + 1, since + 2, since + 3];
    expect(resumed.received.map((e) => e.sequence)).toEqual(expected);
    expect(live.received.map((e) => e.sequence)).toEqual(expected);
    await live.stop();
    await resumed.stop();
  });

  test('many bursts reach every stream complete and in order', async () => {
    const { store, runtime } = runtimeOf();
    const streams = Array.from({ length: 40 }, (_, i) => reader(runtime.events(i % 2 ? ALICE : ADMIN)));
    const first = store.lastSequence + 1;
    for (let burst = 0; burst < 10; burst += 1) {
      for (let i = 0; i < 20; i += 1) store.putTask(task('alice', burst, i));
      await runtime.delivered();
      await nextTurn();
    }
    const all = Array.from({ length: store.lastSequence - first + 1 }, (_, i) => first + i);
    for (const stream of streams) expect(stream.received.map((e) => e.sequence)).toEqual(all);
    for (const stream of streams) await stream.stop();
  });
});

describe('the change feed puts announcements on the bus a turn later', () => {
  test('a subscriber of the bus has nothing when the announcing turn ends, then every announcement in order', async () => {
    const bus = createEventBus();
    const feed = new ChangeFeed(bus);
    const tasks = reader(bus.subscribe('task:updated'));
    const apps = reader(bus.subscribe('app:updated'));
    const announced: TaskChanged[] = [1, 2, 3].map((n) => ({
      taskId: `task-${n}`,
      userId: 'alice',
      sourceId: 'market.olares',
      appName: 'jellyfin',
    }));

    const announcingTurnOver = nextTurn();
    for (const change of announced) {
      feed.task(change);
      feed.app(change);
    }
    await announcingTurnOver;
    expect(tasks.received).toEqual([]);
    expect(apps.received).toEqual([]);

    await feed.delivered();
    await nextTurn();
    expect(tasks.received).toEqual(announced);
    expect(apps.received).toEqual(announced.map(({ userId, sourceId, appName }) => ({ userId, sourceId, appName })));
    await tasks.stop();
    await apps.stop();
  });

  test('a listener gets every announcement a turn later, in order; one that throws is reported and the others still get it; stopped, it gets nothing more', async () => {
    const bus = createEventBus();
    const feed = new ChangeFeed(bus);
    const heard: string[] = [];
    const failures: unknown[] = [];
    const stopThrowing = bus.listen(
      'task:updated',
      (event) => {
        throw new Error(`cannot take ${event.taskId}`);
      },
      (error) => failures.push(error),
    );
    const stop = bus.listen(
      'task:updated',
      (event) => heard.push(event.taskId),
      () => {},
    );
    const change = (taskId: string) => ({ taskId, userId: 'alice', sourceId: 'market.olares', appName: 'jellyfin' });

    const announcingTurnOver = nextTurn();
    feed.task(change('task-1'));
    feed.task(change('task-2'));
    await announcingTurnOver;
    expect(heard).toEqual([]);
    await feed.delivered();
    expect(heard).toEqual(['task-1', 'task-2']);
    expect(failures.map((error) => (error as Error).message)).toEqual(['cannot take task-1', 'cannot take task-2']);

    stop();
    stopThrowing();
    feed.task(change('task-3'));
    await feed.delivered();
    expect(heard).toEqual(['task-1', 'task-2']);
    expect(failures).toHaveLength(2);
  });
});

describe('many subscribers of a real server', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { ...AUTH_ENV, SIMULATED_STEP_MS: '0' } });
  });
  afterAll(() => server?.stop());

  type Events = Subscription<{
    runtimeEvents: {
      sequence: number;
      kind: string;
      app?: { userId: string } | null;
      task?: { userId: string } | null;
    };
  }>;

  /** Makes a change every subscriber sees (a component saying something new) until all have one. */
  async function untilAllLive(subscribers: Events[]): Promise<void> {
    let probe = 0;
    await waitFor(async () => {
      if (subscribers.every((s) => s.received.length > 0)) return true;
      server.app.services.store.putComponent(component(`probe ${probe++}`));
      return undefined;
    }, 'every subscription to be live');
  }

  test('receive every event after mutations, in order, in each cohort', async () => {
    const { store } = server.app.services;
    const admins = await Promise.all(
      Array.from({ length: 30 }, () => subscribe(server, RuntimeEventsSubscription, {}, { token: TOKENS.ops })),
    );
    const alices = await Promise.all(
      Array.from({ length: 10 }, () => subscribe(server, RuntimeEventsSubscription, {}, { token: TOKENS.alice })),
    );
    const everyone = [...admins, ...alices];
    try {
      await untilAllLive(everyone);
      const from = store.lastSequence;
      const installs = await Promise.all([
        installThroughApi(server, { appName: 'ghost', version: '5.104.2' }, TOKENS.alice),
        installThroughApi(server, { appName: 'n8n', version: '1.70.1' }, TOKENS.alice),
        installThroughApi(server, { appName: 'wordpress', version: '6.7.1' }, TOKENS.alice),
        installThroughApi(server, { appName: 'wordpress', version: '6.7.1' }, TOKENS.bob),
      ]);
      await waitFor(async () => {
        const completed = new Set(
          store
            .snapshot()
            .tasks.filter((t) => t.status === 'COMPLETED')
            .map((t) => t.taskId),
        );
        return installs.every((id) => completed.has(id)) ? true : undefined;
      }, 'the installs to complete in the runtime store');
      // A last change every subscriber sees: when it has arrived, so has everything before it.
      store.putComponent({ ...component('end'), name: 'delivery-end' });
      const end = store.lastSequence;
      await Promise.all(everyone.map((s) => s.until((e) => e.runtimeEvents.sequence === end)));

      const sequencesAfterStart = (s: Events) =>
        s.received.map((e) => e.runtimeEvents.sequence).filter((n) => n > from);
      // An admin sees every change: every sequence from the first mutation's to the end, once.
      const every = Array.from({ length: end - from }, (_, i) => from + 1 + i);
      for (const admin of admins) expect(sequencesAfterStart(admin)).toEqual(every);
      const alicesView = sequencesAfterStart(alices[0] as Events);
      expect(alicesView.length).toBeGreaterThan(3);
      expect(alicesView).toEqual([...alicesView].sort((a, b) => a - b));
      for (const alice of alices) expect(sequencesAfterStart(alice)).toEqual(alicesView);
      expect(alices.flatMap((s) => s.received.map((e) => e.runtimeEvents.kind))).not.toContain('RESYNC');
      const owners = alices.flatMap((s) =>
        s.received.map((e) => (e.runtimeEvents.task ?? e.runtimeEvents.app)?.userId),
      );
      expect(new Set(owners.filter(Boolean))).toEqual(new Set(['alice']));
    } finally {
      await Promise.all(everyone.map((s) => s.close()));
    }
  });
});
