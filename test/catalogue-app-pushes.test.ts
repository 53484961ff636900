import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import { type FakeMarketSource, fakeEntry, startFakeMarketSource } from './support/fake-market-source.js';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './support/redis.js';
import { seed } from './support/seed.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { type Subscription, subscribe } from './support/subscriptions.js';
import { rawRequest } from './support/untyped.js';

/**
 * A catalogue change reaches the `appUpdated` subscribers of the installed apps it concerns: once
 * per change, on every instance of a cluster, whichever instance made it.
 */

const SYNC = `mutation ($sourceId: String!) {
  syncMarketSource(input: { sourceId: $sourceId }) { __typename }
}`;

interface AppPush {
  appUpdated: { appName: string; latestVersion: string | null };
}

interface FullAppPush {
  appUpdated: {
    appName: string;
    sourceId: string;
    latestVersion: string | null;
    upgradeAvailable: boolean | null;
    sourceRemoved: boolean | null;
    catalogApp: { version: string } | null;
  };
}

const APP_UPDATED_FULL = parse(
  'subscription { appUpdated { appName sourceId latestVersion upgradeAvailable sourceRemoved catalogApp { version } } }',
) as TypedDocumentNode<FullAppPush, Record<string, never>>;

const APP_UPDATED = parse('subscription { appUpdated { appName latestVersion } }') as TypedDocumentNode<
  AppPush,
  Record<string, never>
>;

async function syncOn(server: TestServer, sourceId = 'market.olares'): Promise<void> {
  const response = await rawRequest(server, { query: SYNC, variables: { sourceId } }, { token: TOKENS.ops });
  expect(response.body?.data?.syncMarketSource, response.text).toEqual({ __typename: 'SyncMarketSourceSuccess' });
}

/** The pushes of `appName` a subscriber has received so far. */
function pushesOf(subscription: Subscription<AppPush>, appName: string): AppPush['appUpdated'][] {
  return subscription.received.map((push) => push.appUpdated).filter((app) => app.appName === appName);
}

const databases = await availableDatabases();
const runnable = databases.includes('postgresql') && (await redisAvailable());

describe.runIf(runnable)('catalogue changes in cluster mode: two instances on PostgreSQL and Redis', () => {
  let fake: FakeMarketSource;
  let prefix: string;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    fake = await startFakeMarketSource({
      entries: ['delta', 'mark1', 'mark2'].map((name) => fakeEntry(name, { version: '1.0.0' })),
    });
    prefix = uniquePrefix();
    const env = {
      ...AUTH_ENV,
      DEMO_DATA: '0',
      MARKET_SOURCE_URL: fake.url,
      SYNC_INTERVAL_MS: '3600000',
      REDIS_URL,
      REDIS_PREFIX: prefix,
    };
    a = await startTestServer('postgresql', { env: { ...env, INSTANCE_NAME: 'a' } });
    b = await startTestServer('postgresql', { env: { ...env, INSTANCE_NAME: 'b' }, database: a.database });
    // The leader's first sync, at start.
    await waitFor(async () => {
      const [source] = await a.app.services.catalogueSync.status();
      return source?.appCount === 3 ? true : undefined;
    }, 'the first sync');
    const alice = seed(a.app.db).user('alice');
    for (const appName of ['delta', 'mark1', 'mark2']) await alice.app({ appName, state: 'running' });
  }, 90_000);

  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await fake?.close();
    await deleteKeys(prefix);
  });

  test('each subscriber gets one push per installed app of a change, on the instance that made it and the other', async () => {
    const onA = await subscribe(a, APP_UPDATED, {}, { token: TOKENS.alice });
    const onB = await subscribe(b, APP_UPDATED, {}, { token: TOKENS.alice });
    try {
      fake.change('delta', { version: '2.0.0' });
      await syncOn(a);
      await onA.until((push) => push.appUpdated.appName === 'delta');
      await onB.until((push) => push.appUpdated.appName === 'delta');
      // A later change made on the other instance reaches each subscriber through the change log,
      // after any push of delta that comes that way (each instance appends in order). Each instance
      // announcing its own pushed delta twice: once itself, once with the other's read-back.
      fake.change('mark1', { version: '2.0.0' });
      await syncOn(b);
      await onA.until((push) => push.appUpdated.appName === 'mark1');
      fake.change('mark2', { version: '2.0.0' });
      await syncOn(a);
      await onB.until((push) => push.appUpdated.appName === 'mark2');
      expect(pushesOf(onA, 'delta')).toEqual([{ appName: 'delta', latestVersion: '2.0.0' }]);
      expect(pushesOf(onB, 'delta')).toEqual([{ appName: 'delta', latestVersion: '2.0.0' }]);
    } finally {
      await onA.close();
      await onB.close();
    }
  });
});

describe.each(databases)('catalogue changes on %s', (kind) => {
  let olares: FakeMarketSource;
  let other: FakeMarketSource;
  let server: TestServer;

  beforeAll(async () => {
    olares = await startFakeMarketSource({
      entries: [fakeEntry('delta', { version: '4.0.0' }), fakeEntry('kept', { version: '1.0.0' })],
    });
    other = await startFakeMarketSource({ entries: [fakeEntry('epsilon', { version: '2.0.0' })] });
    server = await startTestServer(kind, {
      env: { ...AUTH_ENV, DEMO_DATA: '0', MARKET_SOURCE_URL: olares.url, SYNC_INTERVAL_MS: '3600000' },
    });
    await waitFor(async () => {
      const [source] = await server.app.services.catalogueSync.status();
      return source?.appCount === 2 ? true : undefined;
    }, 'the first sync');
    await addSource(server, 'other.market', other.url);
    await syncOn(server, 'other.market');
    const users = seed(server.app.db);
    await users.user('alice').app({ appName: 'delta', state: 'running', version: '3.0.0' });
    await users.user('alice').app({ appName: 'kept', state: 'running' });
    await users.user('bob').app({ appName: 'epsilon', sourceId: 'other.market', state: 'running' });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await olares?.close();
    await other?.close();
  });

  test('an entry a sync removes is pushed to the appUpdated subscribers of its installed apps', async () => {
    const alice = await subscribe(server, APP_UPDATED_FULL, {}, { token: TOKENS.alice });
    try {
      olares.remove('delta');
      await syncOn(server);
      expect(await alice.next()).toEqual({
        appUpdated: {
          appName: 'delta',
          sourceId: 'market.olares',
          latestVersion: null,
          upgradeAvailable: false,
          sourceRemoved: false,
          catalogApp: null,
        },
      });
    } finally {
      await alice.close();
    }
  });

  test('a source removed, then added again, is pushed to the appUpdated subscribers of its installed apps', async () => {
    const bob = await subscribe(server, APP_UPDATED_FULL, {}, { token: TOKENS.bob });
    try {
      const removal = await rawRequest(
        server,
        { query: 'mutation { removeMarketSource(input: { sourceId: "other.market" }) { __typename } }' },
        { token: TOKENS.ops },
      );
      expect(removal.body?.data?.removeMarketSource, removal.text).toEqual({ __typename: 'RemoveMarketSourceSuccess' });
      const epsilon = { appName: 'epsilon', sourceId: 'other.market', upgradeAvailable: false };
      expect(await bob.next()).toEqual({
        appUpdated: { ...epsilon, latestVersion: null, sourceRemoved: true, catalogApp: null },
      });
      await addSource(server, 'other.market', other.url);
      // Its catalogue comes with its first sync, which may have run by the time the push is read.
      expect(await bob.next()).toMatchObject({ appUpdated: { appName: 'epsilon', sourceRemoved: false } });
    } finally {
      await bob.close();
    }
  });
});

async function addSource(server: TestServer, sourceId: string, baseUrl: string): Promise<void> {
  const query = `mutation { addMarketSource(input: { sourceId: "${sourceId}", title: "T", baseUrl: "${baseUrl}" }) { __typename } }`;
  const response = await rawRequest(server, { query }, { token: TOKENS.ops });
  expect(response.body?.data?.addMarketSource, response.text).toEqual({ __typename: 'AddMarketSourceSuccess' });
}
