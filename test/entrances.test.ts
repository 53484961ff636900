import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { graphql } from './gql/index.js';
import { availableDatabases } from './support/databases.js';
import { type FakeAppService, sendEvent, startFakeAppService } from './support/fake-app-service.js';
import { AUTH_ENV, dataOf, execute, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { subscribe } from './support/subscriptions.js';

/**
 * Entrances, the URLs an "open" needs: taken from the app service's state events (its
 * `entranceStatuses` and `sharedEntrances`), stored on the app, exposed as `App.entrances` and
 * pushed live to `appUpdated` and `runtimeEvents` subscribers. (From its list of apps: see
 * status-correction.test.ts.)
 */

const databases = await availableDatabases();
const SECRET = 'app-service-event-secret-0002';
const SOURCE = 'market.olares';

const AppEntrancesQuery = graphql(`
  query AppEntrances($sourceId: String!, $appName: String!, $userId: String) {
    app(sourceId: $sourceId, appName: $appName, userId: $userId) {
      appName state
      entrances { name title url state authLevel icon openMethod invisible shared }
    }
  }
`);

const AppEntrancesUpdated = graphql(`
  subscription AppEntrancesUpdated($filter: AppFilter) {
    appUpdated(filter: $filter) { appName state entrances { name url state shared } }
  }
`);

const RuntimeEntrances = graphql(`
  subscription RuntimeEntrances($filter: SnapshotFilter) {
    runtimeEvents(filter: $filter) { kind app { appName state entrances { name url state shared } } }
  }
`);

const WIKI = {
  name: 'wiki',
  title: 'Wiki',
  url: 'a1b2c3d4.alice.olares.com',
  state: 'running',
  authLevel: 'private',
  icon: 'https://icons.example/wiki.png',
  openMethod: 'window',
  invisible: false,
  host: 'wiki-svc',
  port: 8080,
  statusTime: '2026-11-22T10:00:00Z',
};

describe.each(databases)('entrances on %s', (kind) => {
  let fake: FakeAppService;
  let server: TestServer;
  let intake: string;
  beforeAll(async () => {
    fake = await startFakeAppService();
    server = await startTestServer(kind, {
      env: {
        ...AUTH_ENV,
        APP_SERVICE_URL: fake.url,
        APP_SERVICE_EVENT_SECRET: SECRET,
        APP_SERVICE_TIMEOUT_MS: '2000',
        DEMO_DATA: '0',
        STATUS_CORRECTION_INTERVAL_MS: '3600000',
      },
    });
    intake = `${server.url}/events/app-state`;
  });
  afterAll(async () => {
    await server?.stop();
    await fake?.stop();
  });

  const at = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString();
  const appOf = async (appName: string) =>
    dataOf(await execute(server, AppEntrancesQuery, { sourceId: SOURCE, appName }, { token: TOKENS.alice })).app;

  test('entrances from a state event are stored, shown on the app and pushed to appUpdated and runtimeEvents subscribers', async () => {
    const filter = { appName: 'team-wiki' };
    const updates = await subscribe(server, AppEntrancesUpdated, { filter }, { token: TOKENS.alice });
    const events = await subscribe(server, RuntimeEntrances, { filter }, { token: TOKENS.alice });
    try {
      const status = await sendEvent(intake, SECRET, {
        name: 'team-wiki',
        user: 'alice',
        marketSource: SOURCE,
        state: 'running',
        createTime: at(0),
        entranceStatuses: [WIKI, { name: 'admin', state: 'notReady', invisible: true }],
        sharedEntrances: [{ name: 'wiki-api', url: 'api.wiki.olares.com', authLevel: 'public' }],
      });
      expect(status).toBe(202);

      const expected = [
        {
          name: 'wiki',
          title: 'Wiki',
          url: 'a1b2c3d4.alice.olares.com',
          state: 'running',
          authLevel: 'private',
          icon: 'https://icons.example/wiki.png',
          openMethod: 'window',
          invisible: false,
          shared: false,
        },
        {
          name: 'admin',
          title: null,
          url: null,
          state: 'notReady',
          authLevel: null,
          icon: null,
          openMethod: null,
          invisible: true,
          shared: false,
        },
        {
          name: 'wiki-api',
          title: null,
          url: 'api.wiki.olares.com',
          state: null,
          authLevel: 'public',
          icon: null,
          openMethod: null,
          invisible: false,
          shared: true,
        },
      ];
      expect((await appOf('team-wiki'))?.entrances).toEqual(expected);
      const row = await server.app.db.appState.findFirst({ where: { userId: 'alice', appName: 'team-wiki' } });
      expect(row?.entrances).toEqual(expected);

      const pushed = await updates.until((update) => update.appUpdated.entrances.length > 0);
      expect(pushed.at(-1)?.appUpdated.entrances.map((e) => [e.name, e.url, e.shared])).toEqual([
        ['wiki', 'a1b2c3d4.alice.olares.com', false],
        ['admin', null, false],
        ['wiki-api', 'api.wiki.olares.com', true],
      ]);
      const live = await events.until((event) => (event.runtimeEvents.app?.entrances.length ?? 0) > 0);
      expect(live.at(-1)?.runtimeEvents).toMatchObject({
        kind: 'APP_CHANGED',
        app: { appName: 'team-wiki', entrances: [{ name: 'wiki' }, { name: 'admin' }, { name: 'wiki-api' }] },
      });

      // A later report without entrances keeps them; one that carries new ones replaces them, live.
      expect(
        await sendEvent(intake, SECRET, { name: 'team-wiki', user: 'alice', state: 'stopped', createTime: at(1000) }),
      ).toBe(202);
      expect(await appOf('team-wiki')).toMatchObject({ state: 'stopped', entrances: expected });
      const stopped = { ...WIKI, state: 'stopped' };
      expect(
        await sendEvent(intake, SECRET, {
          name: 'team-wiki',
          user: 'alice',
          state: 'stopped',
          createTime: at(2000),
          entranceStatuses: [stopped],
        }),
      ).toBe(202);
      const replaced = await updates.until((update) => update.appUpdated.entrances.length === 1);
      expect(replaced.at(-1)?.appUpdated.entrances).toEqual([
        { name: 'wiki', url: 'a1b2c3d4.alice.olares.com', state: 'stopped', shared: false },
      ]);
      await events.until((event) => event.runtimeEvents.app?.entrances[0]?.state === 'stopped');
    } finally {
      await updates.close();
      await events.close();
    }
  });

  test('entrances are bounded: at most 32, an unnamed or overlong-named one skipped, an overlong field left out', async () => {
    const many = Array.from({ length: 40 }, (_, i) => ({ name: `entrance-${i}`, url: `e${i}.alice.olares.com` }));
    const status = await sendEvent(intake, SECRET, {
      name: 'crowded-app',
      user: 'alice',
      state: 'running',
      createTime: at(0),
      entranceStatuses: [
        { name: 'x'.repeat(129) },
        { title: 'no name' },
        'not an entrance',
        { name: 'long-url', url: `https://${'u'.repeat(3000)}`, title: 'Kept\u0000' },
        ...many,
      ],
    });
    expect(status).toBe(202);
    const entrances = (await appOf('crowded-app'))?.entrances ?? [];
    expect(entrances).toHaveLength(32);
    expect(entrances[0]).toMatchObject({ name: 'long-url', url: null, title: 'Kept' });
    expect(entrances.at(-1)?.name).toBe('entrance-30');
  });

  test('a report whose entrance lists are not lists still changes the state and keeps the stored entrances', async () => {
    const first = { name: 'kept-app', user: 'alice', state: 'running', createTime: at(0), entranceStatuses: [WIKI] };
    expect(await sendEvent(intake, SECRET, first)).toBe(202);
    const broken = { name: 'kept-app', user: 'alice', state: 'stopped', createTime: at(1000) };
    const status = await sendEvent(intake, SECRET, {
      ...broken,
      entranceStatuses: 'nope' as unknown as unknown[],
    });
    expect(status).toBe(202);
    const app = await waitFor(async () => {
      const found = await appOf('kept-app');
      return found?.state === 'stopped' ? found : undefined;
    }, 'the stopped state');
    expect(app.entrances.map((e) => e.name)).toEqual(['wiki']);
  });
});
