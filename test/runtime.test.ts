import type { ResultOf } from '@graphql-typed-document-node/core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import { startFakeChartRepo } from './support/fake-chart-repo.js';
import {
  AppsQuery,
  RuntimeEventsSubscription,
  RuntimeSnapshotQuery,
  RuntimeSnapshotSubscription,
} from './support/operations.js';
import { type Seeder, seededTest } from './support/seed.js';
import {
  AUTH_ENV,
  dataOf,
  errorCodes,
  execute,
  installThroughApi,
  startTestServer,
  type TestServer,
  TOKENS,
  waitFor,
} from './support/server.js';
import { type Subscription, subscribe } from './support/subscriptions.js';

type RuntimeEventsResult = ResultOf<typeof RuntimeEventsSubscription>;

const databases = await availableDatabases();
const COMPONENTS = [
  'app_service',
  'chart_repo',
  'collector',
  'database',
  'history_cleanup',
  'outbox',
  'payment_polling',
  'pubsub',
  'status_correction',
  'syncer',
  'task_engine',
];

/** alice: a running app and a failed install; bob: a running app. */
async function seedAliceAndBob(seed: Seeder) {
  const alice = seed.user('alice');
  await (await alice.app({ appName: 'jellyfin', state: 'running' })).task();
  const reason = 'missing env value NEXTCLOUD_ADMIN_PASSWORD';
  await (await alice.app({ appName: 'nextcloud', state: 'installFailed', reason })).task({ status: 'FAILED' });
  await (await seed.user('bob').app({ appName: 'gitea', state: 'running' })).task();
}

describe.each(databases)('runtime state on %s', (kind) => {
  const env = { ...AUTH_ENV, SIMULATED_STEP_MS: '0', RUNTIME_EVENT_BUFFER: '400', SNAPSHOT_MAX_HZ: '2' };
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(kind, { env });
  });
  afterAll(() => server?.stop());

  // On a server of its own: the shared one's apps change under the other tests (SIMULATED_STEP_MS=0).
  // Seeded before it starts, as the collector reads apps and tasks at start.
  seededTest(kind, { env, preseed: seedAliceAndBob })(
    'runtimeSnapshot: your apps and tasks with a summary over them, and every component',
    async ({ server, expect }) => {
      const { runtimeSnapshot: mine } = dataOf(
        await execute(server, RuntimeSnapshotQuery, {}, { token: TOKENS.alice }),
      );
      expect(mine.apps.length).toBeGreaterThan(0);
      expect(
        mine.apps.every((app) => app.userId === 'alice') && mine.tasks.every((task) => task.userId === 'alice'),
      ).toBe(true);
      expect(mine.summary.totalApps).toBe(mine.apps.length);
      expect(mine.summary.totalTasks).toBe(mine.tasks.length);
      expect(mine.summary.healthyApps).toBe(mine.apps.filter((app) => app.health === 'HEALTHY').length);
      expect(mine.summary.appsByStage.reduce((sum, s) => sum + s.count, 0)).toBe(mine.apps.length);
      expect(mine.components.map((c) => c.name)).toEqual(COMPONENTS);
      expect(mine.components.find((c) => c.name === 'chart_repo')).toMatchObject({
        state: 'DISABLED',
        message: 'CHART_REPO_URL is not set',
      });
      expect(mine.components.find((c) => c.name === 'database')).toMatchObject({ state: 'RUNNING', healthy: true });

      const failed = dataOf(
        await execute(server, RuntimeSnapshotQuery, { filter: { stage: ['FAILED'] } }, { token: TOKENS.ops }),
      ).runtimeSnapshot;
      expect(failed.apps.map((app) => `${app.userId}/${app.appName}`)).toEqual(['alice/nextcloud']);
      expect(
        errorCodes(await execute(server, RuntimeSnapshotQuery, { filter: { userId: 'alice' } }, { token: TOKENS.bob })),
      ).toEqual(['FORBIDDEN']);
      // An empty user id is nobody's: refused, not read as everyone's here and as no one's by the lists.
      for (const token of [TOKENS.ops, TOKENS.bob]) {
        const snapshot = await execute(server, RuntimeSnapshotQuery, { filter: { userId: '' } }, { token });
        expect(errorCodes(snapshot)).toEqual(['VALIDATION']);
        const apps = await execute(server, AppsQuery, { filter: { userId: '' } }, { token });
        expect(errorCodes(apps)).toEqual(['VALIDATION']);
      }
    },
  );

  test('runtimeEvents: each change at once with a growing sequence and your summary; nothing of other users', async () => {
    const alice = await subscribe(server, RuntimeEventsSubscription, {}, { token: TOKENS.alice });
    const bob = await subscribe(server, RuntimeEventsSubscription, {}, { token: TOKENS.bob });
    try {
      const taskId = await installThroughApi(server, { appName: 'ghost', version: '5.104.2' }, TOKENS.alice);
      const events = (
        await alice.until((e) => e.runtimeEvents.task?.taskId === taskId && e.runtimeEvents.task.status === 'COMPLETED')
      ).map((e) => e.runtimeEvents);
      const sequences = events.map((e) => e.sequence);
      expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
      expect(new Set(sequences).size).toBe(sequences.length);
      expect(events.some((e) => e.kind === 'APP_CHANGED' && e.app?.appName === 'ghost')).toBe(true);
      const progress = events.filter((e) => e.task?.taskId === taskId).map((e) => e.task?.progress ?? 0);
      expect(progress).toEqual([...progress].sort((a, b) => a - b));
      expect(events.at(-1)?.summary?.completedTasks).toBeGreaterThan(0);
      const last = dataOf(await execute(server, RuntimeSnapshotQuery, {}, { token: TOKENS.alice })).runtimeSnapshot;
      expect(last.apps.find((app) => app.appName === 'ghost')).toMatchObject({ stage: 'RUNNING' });
      expect(bob.received.filter((e) => (e.runtimeEvents.task ?? e.runtimeEvents.app)?.userId === 'alice')).toEqual([]);
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  test('a client reconnecting with `since` gets exactly what it missed; one too far behind gets RESYNC', async () => {
    const before = dataOf(await execute(server, RuntimeSnapshotQuery, {}, { token: TOKENS.alice })).runtimeSnapshot
      .sequence;
    const taskId = await installThroughApi(server, { appName: 'n8n', version: '1.70.1' }, TOKENS.alice);
    await waitFor(async () => {
      const snapshot = dataOf(await execute(server, RuntimeSnapshotQuery, {}, { token: TOKENS.alice })).runtimeSnapshot;
      return snapshot.tasks.find((t) => t.taskId === taskId && t.status === 'COMPLETED') ? true : undefined;
    }, 'the install to complete');
    const resumed = await subscribe(server, RuntimeEventsSubscription, { since: before }, { token: TOKENS.alice });
    try {
      const missed = (
        await resumed.until(
          (e) => e.runtimeEvents.task?.taskId === taskId && e.runtimeEvents.task.status === 'COMPLETED',
        )
      ).map((e) => e.runtimeEvents);
      expect(missed[0]?.sequence).toBeGreaterThan(before);
      const sequences = missed.map((e) => e.sequence);
      expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
      expect(missed.map((e) => e.kind)).not.toContain('RESYNC');
      expect(missed.some((e) => e.kind === 'APP_CHANGED' && e.app?.appName === 'n8n')).toBe(true);
    } finally {
      await resumed.close();
    }
  });

  test('runtimeSnapshot subscription: at once, then coalesced to SNAPSHOT_MAX_HZ however many changes happen', async () => {
    const live = await subscribe(server, RuntimeSnapshotSubscription, {}, { token: TOKENS.bob });
    const events = await subscribe(server, RuntimeEventsSubscription, {}, { token: TOKENS.bob });
    try {
      const first = await live.next();
      expect(first.runtimeSnapshot.sequence).toBeGreaterThan(0);
      const taskId = await installThroughApi(server, { appName: 'wordpress', version: '6.7.1' }, TOKENS.bob);
      await live.until((s) => s.runtimeSnapshot.tasks.some((t) => t.taskId === taskId && t.status === 'COMPLETED'));
      const changes = await events.until(
        (e) => e.runtimeEvents.task?.taskId === taskId && e.runtimeEvents.task.status === 'COMPLETED',
      );
      expect(changes.length).toBeGreaterThan(8);
      expect(live.received.length).toBeLessThan(changes.length);
    } finally {
      await live.close();
      await events.close();
    }
  });
});

describe('a client too far behind', () => {
  test('gets RESYNC when what it missed has left the bounded buffer (RUNTIME_EVENT_BUFFER), or comes from another process', async () => {
    const server = await startTestServer('sqlite', { env: { RUNTIME_EVENT_BUFFER: '5' } });
    try {
      // loading the demo state alone made far more than 5 events: the first ones are gone
      const current0 = dataOf(await execute(server, RuntimeSnapshotQuery, {})).runtimeSnapshot.sequence;
      const stale = await subscribe(server, RuntimeEventsSubscription, { since: current0 - 20 });
      try {
        expect((await stale.next()).runtimeEvents.kind).toBe('RESYNC');
      } finally {
        await stale.close();
      }
      // a position this process never had (a later process's numbering) is not a position here
      const foreign = await subscribe(server, RuntimeEventsSubscription, { since: current0 + 1_000_000 });
      try {
        expect((await foreign.next()).runtimeEvents.kind).toBe('RESYNC');
      } finally {
        await foreign.close();
      }
      const current = dataOf(await execute(server, RuntimeSnapshotQuery, {})).runtimeSnapshot.sequence;
      const fresh = await subscribe(server, RuntimeEventsSubscription, { since: current });
      try {
        await installThroughApi(server, { appName: 'ghost', version: '5.104.2' }, '');
        const first = await fresh.next();
        expect(first.runtimeEvents.kind).not.toBe('RESYNC');
        expect(first.runtimeEvents.sequence).toBeGreaterThan(current);
      } finally {
        await fresh.close();
      }
    } finally {
      await server.stop();
    }
  });
});

describe('a failing poll source is isolated', () => {
  test('a chart repo that hangs or fails shows as an unhealthy component; the others keep working; it recovers', async () => {
    const chartRepo = await startFakeChartRepo();
    chartRepo.setBehaviour('*', { respond: 'hang' });
    const server = await startTestServer('sqlite', {
      env: { CHART_REPO_URL: chartRepo.url, COLLECT_INTERVAL_MS: '300' },
    });
    try {
      const components = async () => dataOf(await execute(server, RuntimeSnapshotQuery, {})).runtimeSnapshot;
      const broken = await waitFor(async () => {
        const snapshot = await components();
        return snapshot.components.find((c) => c.name === 'chart_repo')?.state === 'ERROR' ? snapshot : undefined;
      }, 'chart_repo to fail');
      // Its check answered, within CHART_REPO_TIMEOUT_MS, with the repo's failure: the collector
      // itself is fine, and so is every other component.
      expect(broken.components.find((c) => c.name === 'chart_repo')?.message).toMatch(/no answer within 5000 ms/);
      expect(broken.components.filter((c) => c.name !== 'chart_repo').every((c) => c.state === 'RUNNING')).toBe(true);

      chartRepo.setBehaviour('*', null);
      chartRepo.setStatus('*', { apps: [{ app_name: 'jellyfin', state: 'completed' }], images: [] });
      const healed = await waitFor(async () => {
        const snapshot = await components();
        return snapshot.chartRepo?.reachable ? snapshot : undefined;
      }, 'chart_repo to recover');
      expect(healed.components.find((c) => c.name === 'chart_repo')).toMatchObject({ state: 'RUNNING' });
      expect(healed.chartRepo?.apps).toEqual(
        expect.arrayContaining([expect.objectContaining({ app_name: 'jellyfin' })]),
      );
    } finally {
      await server.stop();
      await chartRepo.stop();
    }
  });
});

describe('a resume, or a burst, of more events than RUNTIME_SUBSCRIBER_BUFFER', () => {
  test('still gets every retained event in order, without RESYNC', async () => {
    const server = await startTestServer('sqlite', {
      env: { RUNTIME_SUBSCRIBER_BUFFER: '20', COLLECT_INTERVAL_MS: '3600000' },
    });
    const { store } = server.app.services;
    /** 150 changes in one turn, each an event (its message changes). */
    const burst = (tag: string) => {
      for (let i = 0; i < 150; i += 1) {
        store.putComponent({
          name: 'probe',
          healthy: true,
          state: 'RUNNING',
          message: `${tag} ${i}`,
          lastCheck: new Date(),
          metrics: {},
        });
      }
      return store.lastSequence;
    };
    /** Every change the store made after `after`, up to `last`, as it retains them. */
    const sequencesBetween = (after: number, last: number) =>
      (store.eventsSince(after) ?? []).map((e) => e.sequence).filter((sequence) => sequence <= last);
    const readUntil = async (subscription: Subscription<RuntimeEventsResult>, last: number) =>
      (await subscription.until((e) => e.runtimeEvents.sequence >= last)).map((e) => e.runtimeEvents);
    try {
      const before = store.lastSequence;
      const missedUntil = burst('missed');
      const resumed = await subscribe(server, RuntimeEventsSubscription, { since: before });
      try {
        const missed = await readUntil(resumed, missedUntil);
        expect(missed.map((e) => e.kind)).not.toContain('RESYNC');
        expect(missed.map((e) => e.sequence)).toEqual(sequencesBetween(before, missedUntil));
        // and live, a burst of as many in one turn
        const liveUntil = burst('live');
        const live = await readUntil(resumed, liveUntil);
        expect(live.map((e) => e.kind)).not.toContain('RESYNC');
        expect(live.map((e) => e.sequence)).toEqual(sequencesBetween(missedUntil, liveUntil));
        expect(live.filter((e) => e.component?.name === 'probe')).toHaveLength(150);
        // and changes that keep coming, each in its own turn, while it catches up: none twice
        const trickleUntil = await (async () => {
          burst('behind');
          for (let i = 0; i < 60; i += 1) {
            await new Promise((resolve) => setImmediate(resolve));
            store.putComponent({
              name: 'probe',
              healthy: true,
              state: 'RUNNING',
              message: `trickle ${i}`,
              lastCheck: new Date(),
              metrics: {},
            });
          }
          return store.lastSequence;
        })();
        const trickle = await readUntil(resumed, trickleUntil);
        expect(trickle.map((e) => e.sequence)).toEqual(sequencesBetween(liveUntil, trickleUntil));
      } finally {
        await resumed.close();
      }
    } finally {
      await server.stop();
    }
  });
});
