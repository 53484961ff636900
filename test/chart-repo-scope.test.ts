import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { graphql } from './gql/index.js';
import { availableDatabases } from './support/databases.js';
import { chartRepoStatusFixture, type FakeChartRepo, startFakeChartRepo } from './support/fake-chart-repo.js';
import { RuntimeEventsSubscription } from './support/operations.js';
import { AUTH_ENV, dataOf, execute, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { type Subscription, subscribe } from './support/subscriptions.js';

const databases = await availableDatabases();

const ChartRepoScopeQuery = graphql(`
  query ChartRepoScope {
    chartRepo {
        reachable lastError apps images tasks
        # The typed fields beside the deprecated JSON ones: a leak must show in neither.
        droppedItems
        appStates { appName userId error { message } }
        imageStates { imageName }
        queues { hydrator { queueLength tasks { taskId userId } } }
      }
    components { name state message metrics }
    runtimeSnapshot {
      chartRepo {
        reachable lastError apps images tasks
        # The typed fields beside the deprecated JSON ones: a leak must show in neither.
        droppedItems
        appStates { appName userId error { message } }
        imageStates { imageName }
        queues { hydrator { queueLength tasks { taskId userId } } }
      }
      components { name state message metrics }
    }
  }
`);

const RuntimeSequenceQuery = graphql(`
  query ChartRepoScopeSequence {
    runtimeSnapshot { sequence }
  }
`);

const ChartRepoSnapshotSubscription = graphql(`
  subscription ChartRepoSnapshotLive {
    runtimeSnapshot {
      sequence
      chartRepo {
        reachable lastError apps images tasks
        # The typed fields beside the deprecated JSON ones: a leak must show in neither.
        droppedItems
        appStates { appName userId error { message } }
        imageStates { imageName }
        queues { hydrator { queueLength tasks { taskId userId } } }
      }
      components { name state message metrics }
    }
  }
`);

const ChartRepoEventsSubscription = graphql(`
  subscription ChartRepoEvents {
    runtimeEvents {
      sequence kind
      chartRepo {
        reachable lastError apps images tasks
        # The typed fields beside the deprecated JSON ones: a leak must show in neither.
        droppedItems
        appStates { appName userId error { message } }
        imageStates { imageName }
        queues { hydrator { queueLength tasks { taskId userId } } }
      }
      component { name state message metrics }
    }
  }
`);

// Every datum of bob's carries "bob" and every one of alice's "alice", so a leak is a substring.
const aliceStatus = (apps: string[]) => ({
  apps: apps.map((app) => ({ app_id: `id-${app}`, app_name: app, user_id: 'alice', state: 'completed' })),
  images: [{ image_name: 'registry/alice/jellyfin:10.9', status: 'completed' }],
  tasks: {
    hydrator: {
      queue_length: 1,
      worker_count: 4,
      tasks: [{ task_id: 'hyd-alice-1', user_id: 'alice', app_name: 'jellyfin-of-alice', status: 'running' }],
    },
  },
});
const BOB_STATUS = {
  apps: [
    {
      app_id: 'id-gitea-of-bob',
      app_name: 'gitea-of-bob',
      user_id: 'bob',
      state: 'failed',
      error: { message: 'bob: chart render failed' },
    },
  ],
  images: [{ image_name: 'registry/bob/gitea:1.22', status: 'downloading' }],
  tasks: {
    hydrator: {
      queue_length: 4,
      worker_count: 4,
      tasks: [{ task_id: 'hyd-bob-1', user_id: 'bob', app_name: 'gitea-of-bob', status: 'running' }],
    },
  },
};
/** What bob's chart repo calls answer once they fail: an upstream message that names his app and quotes a token. */
const BOB_FAILURE = {
  success: false,
  message: 'render of gitea-of-bob failed: Bearer bob-chart-token-12345',
  data: null,
};

type View = {
  apps: unknown;
  images: unknown;
  tasks: unknown;
  lastError: string | null;
  reachable: boolean;
  appStates: { appName: string; userId: string }[];
};
const appNames = (view: View | null | undefined) =>
  (view?.apps as { app_name: string }[] | undefined)?.map((a) => a.app_name);
/** The typed app names, which must always match the raw ones. */
const typedNames = (view: View | null | undefined) => view?.appStates.map((a) => a.appName);
const hydrator = (view: View | null | undefined) =>
  (view?.tasks as { hydrator: { queue_length: number; tasks: unknown[] } } | null | undefined)?.hydrator;

describe.each(databases)('chart repo data is scoped to its user on %s', (kind) => {
  let chartRepo: FakeChartRepo;
  let server: TestServer;
  beforeAll(async () => {
    chartRepo = await startFakeChartRepo();
    chartRepo.setStatus('alice/*', aliceStatus(['jellyfin-of-alice']));
    chartRepo.setStatus('bob/*', BOB_STATUS);
    server = await startTestServer(kind, {
      env: { ...AUTH_ENV, CHART_REPO_URL: chartRepo.url, COLLECT_INTERVAL_MS: '100', MUTATION_RATE_PER_S: '0' },
    });
  });
  afterAll(async () => {
    await server?.stop();
    await chartRepo?.stop();
  });

  const read = async (token: string) => dataOf(await execute(server, ChartRepoScopeQuery, {}, { token }));
  const chartRepoComponent = (components: { name: string; message: string | null; metrics: unknown }[]) =>
    components.find((component) => component.name === 'chart_repo');

  test('alice and bob each see only their own entries, errors and counts, over HTTP and graphql-ws; admins see both', async () => {
    const subscriptions: Pick<Subscription<unknown>, 'close'>[] = [];
    const aliceSnapshots = await subscribe(server, ChartRepoSnapshotSubscription, {}, { token: TOKENS.alice });
    const aliceEvents = await subscribe(server, ChartRepoEventsSubscription, {}, { token: TOKENS.alice });
    const bobSnapshots = await subscribe(server, ChartRepoSnapshotSubscription, {}, { token: TOKENS.bob });
    const adminEvents = await subscribe(server, ChartRepoEventsSubscription, {}, { token: TOKENS.ops });
    subscriptions.push(aliceSnapshots, aliceEvents, bobSnapshots, adminEvents);
    try {
      // 1. Both users' calls answer.
      const admin = await waitFor(async () => {
        const all = await read(TOKENS.ops);
        // The component's figures follow the collect's data by a moment (its own push).
        const counted = (chartRepoComponent(all.components)?.metrics as { apps?: number } | undefined)?.apps;
        return appNames(all.chartRepo)?.length === 2 && counted === 2 ? all : undefined;
      }, "the first collect with both users' data");
      expect(appNames(admin.chartRepo)?.sort()).toEqual(['gitea-of-bob', 'jellyfin-of-alice']);
      expect(typedNames(admin.chartRepo)?.sort()).toEqual(['gitea-of-bob', 'jellyfin-of-alice']);
      expect(admin.chartRepo?.queues?.hydrator?.queueLength).toBe(5);
      expect(hydrator(admin.chartRepo)?.queue_length).toBe(5);
      expect(chartRepoComponent(admin.components)?.metrics).toMatchObject({ apps: 2 });

      const alice = await read(TOKENS.alice);
      for (const view of [alice.chartRepo, alice.runtimeSnapshot.chartRepo]) {
        expect(view).toMatchObject({ reachable: true, lastError: null });
        expect(appNames(view)).toEqual(['jellyfin-of-alice']);
        expect(typedNames(view)).toEqual(['jellyfin-of-alice']);
        expect(view).toMatchObject({
          droppedItems: 0,
          imageStates: [{ imageName: 'registry/alice/jellyfin:10.9' }],
          queues: { hydrator: { queueLength: 1, tasks: [{ taskId: 'hyd-alice-1', userId: 'alice' }] } },
        });
        expect(view?.images).toEqual([expect.objectContaining({ image_name: 'registry/alice/jellyfin:10.9' })]);
        expect(hydrator(view)).toMatchObject({
          queue_length: 1,
          tasks: [{ task_id: 'hyd-alice-1', user_id: 'alice' }],
        });
      }
      for (const components of [alice.components, alice.runtimeSnapshot.components]) {
        expect(chartRepoComponent(components)).toMatchObject({ message: null, metrics: { apps: 1 } });
      }
      const bob = await read(TOKENS.bob);
      expect(appNames(bob.chartRepo)).toEqual(['gitea-of-bob']);
      expect(bob.chartRepo?.appStates).toEqual([
        { appName: 'gitea-of-bob', userId: 'bob', error: { message: 'bob: chart render failed' } },
      ]);
      expect(hydrator(bob.runtimeSnapshot.chartRepo)?.queue_length).toBe(4);

      // 2. Bob's calls fail with a message naming his app (and quoting a token).
      chartRepo.setBehaviour('bob/*', { respond: 'http-error', status: 500, body: BOB_FAILURE });
      const failing = await waitFor(async () => {
        const all = await read(TOKENS.ops);
        return all.chartRepo?.lastError ? all : undefined;
      }, "bob's failure to be collected");
      expect(failing.chartRepo?.lastError).toBe(
        '1 of 3 chart repo status calls failed: bob/market.olares: HTTP 500: render of gitea-of-bob failed: Bearer [redacted]',
      );
      expect(chartRepoComponent(failing.components)?.message).toBe(failing.chartRepo?.lastError);

      const bobFailing = await read(TOKENS.bob);
      expect(bobFailing.chartRepo).toMatchObject({
        reachable: false,
        lastError:
          '1 of 1 chart repo status call failed: bob/market.olares: HTTP 500: render of gitea-of-bob failed: Bearer [redacted]',
      });
      expect(appNames(bobFailing.chartRepo)).toEqual(['gitea-of-bob']); // his last good data is kept
      expect(typedNames(bobFailing.chartRepo)).toEqual(['gitea-of-bob']);
      const aliceAfter = await read(TOKENS.alice);
      expect(aliceAfter.chartRepo).toMatchObject({ reachable: true, lastError: null });
      expect(chartRepoComponent(aliceAfter.components)?.message).toBeNull();

      // 3. A change of alice's own: once it reached her streams, so had everything before it.
      chartRepo.setStatus('alice/*', aliceStatus(['jellyfin-of-alice', 'immich-of-alice']));
      const aliceChanges = await aliceEvents.until((e) => typedNames(e.runtimeEvents.chartRepo)?.length === 2);
      await aliceSnapshots.until((s) => typedNames(s.runtimeSnapshot.chartRepo)?.length === 2);
      await bobSnapshots.until((s) => s.runtimeSnapshot.chartRepo?.lastError?.includes('HTTP 500') === true);
      await adminEvents.until((e) => appNames(e.runtimeEvents.chartRepo)?.includes('immich-of-alice') === true);

      expect(aliceChanges.filter((e) => e.runtimeEvents.kind === 'CHART_REPO_CHANGED').length).toBeGreaterThan(0);
      // Bob's calls failing changed nothing alice sees of the chart_repo component (RUNNING, no
      // message; her figures come with her own chart repo's changes): no event told her when.
      const aliceComponentEvents = aliceEvents.received
        .map((e) => e.runtimeEvents)
        .filter((e) => e.kind === 'COMPONENT_CHANGED' && e.component?.name === 'chart_repo');
      expect(aliceComponentEvents).toEqual([]);
      const aliceSaw = JSON.stringify([aliceSnapshots.received, aliceEvents.received, alice, aliceAfter]);
      expect(aliceSaw).not.toMatch(/bob|gitea/);
      expect(JSON.stringify([bobSnapshots.received, bob, bobFailing])).not.toMatch(/alice|jellyfin/);
      const adminSaw = JSON.stringify(adminEvents.received);
      expect(adminSaw).toContain('gitea-of-bob');
      expect(adminSaw).toContain('immich-of-alice');
      expect(JSON.stringify([adminSaw, aliceSaw, bobFailing, failing])).not.toContain('bob-chart-token-12345');

      // 4. Alice's own calls fail too: what she sees of the component changed, and she is told,
      // live and in a replay from before (her dashboard away meanwhile).
      const { sequence: before } = dataOf(
        await execute(server, RuntimeSequenceQuery, {}, { token: TOKENS.alice }),
      ).runtimeSnapshot;
      chartRepo.setBehaviour('alice/*', { respond: 'http-error', status: 500, body: { message: 'alice down' } });
      const aliceFailing = (e: { runtimeEvents: { component?: { name: string; message: string | null } | null } }) =>
        e.runtimeEvents.component?.name === 'chart_repo' && e.runtimeEvents.component.message !== null;
      const told = await aliceEvents.until(aliceFailing);
      expect(told.at(-1)?.runtimeEvents.component?.message).toMatch(/^1 of 1 chart repo status call failed: alice\//);
      const replay = await subscribe(server, RuntimeEventsSubscription, { since: before }, { token: TOKENS.alice });
      subscriptions.push(replay);
      await replay.until(aliceFailing);
    } finally {
      chartRepo.setBehaviour('alice/*', null);
      for (const subscription of subscriptions) await subscription.close();
    }
  });

  test("a chart repo that ignores user= and answers alice's calls with admin's apps shows her none of them", async () => {
    // The whole fixture: admin's n8n, ghost and excalidraw and their hydrator tasks, beside alice's immich.
    chartRepo.setStatus('alice/*', chartRepoStatusFixture());
    try {
      const alice = await waitFor(async () => {
        const view = await read(TOKENS.alice);
        return typedNames(view.chartRepo)?.includes('immich') ? view : undefined;
      }, "the fixture answered to alice's call to be collected");

      for (const view of [alice.chartRepo, alice.runtimeSnapshot.chartRepo]) {
        expect(typedNames(view)).toEqual(['immich']);
        expect(appNames(view)).toEqual(['immich']);
        expect(view?.queues?.hydrator?.tasks).toEqual([{ taskId: 'hyd-alice-immich-1747295988', userId: 'alice' }]);
        expect(hydrator(view)?.tasks).toEqual([expect.objectContaining({ task_id: 'hyd-alice-immich-1747295988' })]);
        // Admin's three app states, two hydrator tasks and one recently failed task.
        expect(view?.droppedItems).toBe(6);
        expect(JSON.stringify([view?.apps, view?.appStates, view?.queues, hydrator(view)])).not.toMatch(/admin/);
      }
    } finally {
      chartRepo.setStatus('alice/*', aliceStatus(['jellyfin-of-alice']));
    }
  });

  test('a user with no apps gets an empty chart repo status, not everyone else', async () => {
    // carol has a token but no apps, so no call was made on her behalf.
    const carol = 'carol-token-0004';
    const separate = await startTestServer(kind, {
      env: {
        AUTH_TOKENS: `${AUTH_ENV.AUTH_TOKENS},carol:user:${carol}`,
        CHART_REPO_URL: chartRepo.url,
        MUTATION_RATE_PER_S: '0',
      },
    });
    try {
      await waitFor(async () => {
        const all = dataOf(await execute(separate, ChartRepoScopeQuery, {}, { token: TOKENS.ops }));
        return all.chartRepo?.reachable ? true : undefined;
      }, 'the first chart repo collect');
      const view = dataOf(await execute(separate, ChartRepoScopeQuery, {}, { token: carol }));
      expect(view.chartRepo).toEqual({
        reachable: true,
        lastError: null,
        apps: [],
        images: [],
        tasks: null,
        droppedItems: 0,
        appStates: [],
        imageStates: [],
        queues: null,
      });
      expect(chartRepoComponent(view.components)).toMatchObject({ metrics: { apps: 0 } });
    } finally {
      await separate.stop();
    }
  });
});

describe('a chart repo that stops answering', () => {
  let chartRepo: FakeChartRepo;
  let server: TestServer;
  beforeAll(async () => {
    chartRepo = await startFakeChartRepo();
    server = await startTestServer('sqlite', {
      env: { CHART_REPO_URL: chartRepo.url, COLLECT_INTERVAL_MS: '100', DEMO_DATA: '0' },
    });
  });
  afterAll(async () => {
    await server?.stop();
    await chartRepo?.stop();
  });

  /** When the collector's last cycle ended, as its component says. */
  const lastCycle = async () => {
    const { runtimeSnapshot } = dataOf(await execute(server, ChartRepoScopeQuery, {}, {}));
    const collector = runtimeSnapshot.components.find((component) => component.name === 'collector');
    return (collector?.metrics as { lastCycleAt?: string } | undefined)?.lastCycleAt;
  };

  test('gets no new call while the last one hangs, however many collect cycles pass', async () => {
    await waitFor(async () => (chartRepo.requests.length > 0 ? true : undefined), 'the first chart repo call');
    chartRepo.setBehaviour('*', { respond: 'hang' });
    const before = chartRepo.requests.length;
    // Ten cycles of 100 ms: on a loaded machine they may outlast the call's own 5 s timeout, after
    // which one new call is due. So: no call starts while the one before it hangs, within 5 s.
    const cycles = new Set<string>();
    await waitFor(async () => {
      const at = await lastCycle();
      if (at) cycles.add(at);
      return cycles.size > 10 ? true : undefined;
    }, 'ten collect cycles');
    const hanging = chartRepo.requests.slice(before).map((request) => request.at);
    const gaps = hanging.slice(1).map((at, index) => at - (hanging[index] as number));
    expect(hanging.length).toBeGreaterThanOrEqual(1);
    // Measured here, on arrival: a first call that reached the fake late shortens its gap; a call
    // while the other hangs would come within one cycle (100 ms).
    expect(gaps.filter((gap) => gap < 4_500)).toEqual([]);
    // A call still within CHART_REPO_TIMEOUT_MS is the chart repo's to end (its component says
    // so when it does): the collector, whose cycles go on without it, is not failing.
    const { runtimeSnapshot } = dataOf(await execute(server, ChartRepoScopeQuery, {}, {}));
    const collector = runtimeSnapshot.components.find((component) => component.name === 'collector');
    expect(collector).toMatchObject({ state: 'RUNNING', message: null });
  });
});
