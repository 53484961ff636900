import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MAX_PENDING_EVENTS } from '../src/events/change-feed.js';
import { type FakeMarketSource, fakeEntry, startFakeMarketSource } from './support/fake-market-source.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { type Subscription, subscribe } from './support/subscriptions.js';
import { rawRequest } from './support/untyped.js';

type AppUpdated = { appUpdated: { userId: string; appName: string; latestVersion: string | null } };
const APP_UPDATED = parse('subscription { appUpdated { userId appName latestVersion } }') as TypedDocumentNode<
  AppUpdated,
  Record<string, never>
>;

/**
 * A catalogue sync announces every installed app of a changed entry at once, one event per app.
 * Yoga's pub/sub held at most 1,024 unread events per subscriber and then threw in the publishing
 * listener: one user's `appUpdated` subscription made such a sync end the whole process.
 */
describe('a burst of more app changes than a subscription may hold unread', () => {
  let fake: FakeMarketSource;
  let server: TestServer;
  beforeAll(async () => {
    fake = await startFakeMarketSource({ entries: [fakeEntry('burst')] });
    server = await startTestServer('sqlite', {
      env: { ...AUTH_ENV, DEMO_DATA: '0', MARKET_SOURCE_URL: fake.url, SYNC_INTERVAL_MS: '3600000' },
    });
    await waitFor(async () => {
      const [source] = await server.app.services.catalogueSync.status();
      return source?.appCount === 1 ? true : undefined;
    }, 'the first sync');
    // alice and MAX_PENDING_EVENTS other users have the app installed
    const users = ['alice', ...Array.from({ length: MAX_PENDING_EVENTS }, (_, index) => `user${index}`)];
    await server.app.db.appState.createMany({
      data: users.map((userId) => ({
        userId,
        sourceId: 'market.olares',
        appName: 'burst',
        installedVersion: '1.0.0',
        state: 'running',
        eventTime: new Date(),
      })),
    });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    await fake?.close();
  });

  test("a user gets their own change, an admin's subscription ends with SLOW_CONSUMER, the server goes on", async () => {
    let alices: Subscription<AppUpdated> | null = null;
    let admins: Subscription<AppUpdated> | null = null;
    try {
      alices = await subscribe(server, APP_UPDATED, {}, { token: TOKENS.alice });
      admins = await subscribe(server, APP_UPDATED, {}, { token: TOKENS.ops });
      fake.change('burst', { version: '2.0.0' });
      const synced = await rawRequest(
        server,
        { query: 'mutation { syncMarketSource(input: { sourceId: "market.olares" }) { __typename } }' },
        { token: TOKENS.ops },
      );
      expect(synced.body?.data).toEqual({ syncMarketSource: { __typename: 'SyncMarketSourceSuccess' } });

      // only alice's own app reached her subscription: the others' never waited in it
      expect(await alices.next(60_000)).toEqual({
        appUpdated: { userId: 'alice', appName: 'burst', latestVersion: '2.0.0' },
      });
      // the admin's would have held one more than it may: it ends, saying why and what to do
      await expect(admins.until(() => false, 60_000)).rejects.toThrow(
        /More than 10000 changes waited.*subscribe again.*"code":"SLOW_CONSUMER"/s,
      );

      const alive = await rawRequest(server, { query: '{ viewer { userId } }' }, { token: TOKENS.alice });
      expect(alive.body?.data).toEqual({ viewer: { userId: 'alice' } });
    } finally {
      await alices?.close();
      await admins?.close();
    }
  }, 120_000);
});
