import { Redis } from 'ioredis';
import { afterEach, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import { REMOTE_SOURCE } from '../src/db/default-sources.js';
import { availableDatabases, createTestDatabase } from './support/databases.js';
import { type FakeMarketSource, fakeEntry, startFakeMarketSource } from './support/fake-market-source.js';
import { SERVER_COMMAND, type ServerProcess, serverEnv, startProcess } from './support/process.js';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './support/redis.js';
import { startTestServer, type TestServer, waitFor } from './support/server.js';
import { rawRequest } from './support/untyped.js';

/**
 * A market-source sync in progress when the server stops is cut short: its calls in flight are
 * abandoned, nothing of it is written, the source is not marked as failing, and the stop keeps to
 * its time. A whole sync has no time bound (only each call), so a stop that waited for it ran as
 * long as a slow source took to trickle out its details, past the stop deadline.
 */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const databases = await availableDatabases();
const redisUp = await redisAvailable();
const APPS = 2400;
const SHUTDOWN_TIMEOUT_MS = 2000;

/** A source of APPS apps whose every details batch answers after 3 s: a whole first sync takes 18 s. */
async function slowSource(): Promise<FakeMarketSource> {
  const entries = Array.from({ length: APPS }, (_, index) => fakeEntry(`slowsync${index}`));
  const fake = await startFakeMarketSource({ entries });
  cleanups.push(() => fake.close());
  fake.fault('details', { kind: 'delay', ms: 3000 });
  return fake;
}

/**
 * Waits for the source to see a call closed unanswered: the client's abort reaches the source's
 * side as a 'close' a moment later (checked at once, it was not there yet in 1 run of 3).
 */
async function givenUp(fake: FakeMarketSource): Promise<void> {
  await waitFor(async () => (fake.requests.some((request) => request.abandoned) ? true : undefined), 'a call given up');
}

describe('a graceful stop during a slow market-source sync', () => {
  test('SIGTERM while the details trickle in cuts the sync short, the process exits 0 within SHUTDOWN_TIMEOUT_MS, and the next start syncs the source whole', async () => {
    const fake = await slowSource();
    const database = await createTestDatabase('sqlite');
    cleanups.push(() => database.drop());
    const env = { MARKET_SOURCE_URL: fake.url, SYNC_TIMEOUT_MS: '10000' };
    const server: ServerProcess = startProcess(
      SERVER_COMMAND,
      serverEnv(database.url, { ...env, SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) }),
    );
    cleanups.push(async () => {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
      await server.exited;
    });

    await waitFor(async () => (fake.count('details') > 0 ? true : undefined), 'the first details call', 60_000);
    server.child.kill('SIGTERM');
    const exit = await server.exited;

    expect(server.logs.filter((line) => /stop cut after|shutdown failed/.test(String(line.msg)))).toEqual([]);
    expect(exit).toEqual({ code: 0, signal: null });
    const stopped = server.logs.find((line) => line.msg === 'stopped');
    expect(Number(stopped?.ms)).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    expect(server.logs.find((line) => line.msg === 'a market source sync was cut short')).toMatchObject({
      sourceId: REMOTE_SOURCE,
      reason: 'the server is stopping',
    });
    // Its calls in flight were given up, not waited for.
    const details = fake.requests.filter((request) => request.endpoint === 'details');
    expect(details.length).toBeGreaterThan(0);
    expect(details.length).toBeLessThan(APPS / 100);
    await givenUp(fake);

    // Nothing written, and no failure of the source's recorded: its next sync is due at once.
    const db = createPrismaClient(database.url);
    const source = await db.marketSource.findUniqueOrThrow({ where: { sourceId: REMOTE_SOURCE } });
    const apps = await db.catalogApp.count({ where: { sourceId: REMOTE_SOURCE } });
    await db.$disconnect();
    expect(apps).toBe(0);
    expect(source).toMatchObject({ syncFailures: 0, syncError: null, syncedAt: null, nextSyncAt: null });

    fake.fault('details', null);
    const again = await startTestServer('sqlite', { database, env: { ...env, DEMO_DATA: '0' } });
    cleanups.push(() => again.stop());
    const synced = await waitFor(async () => {
      const status = (await again.app.services.catalogueSync.status()).find((s) => s.sourceId === REMOTE_SOURCE);
      return status?.lastSyncAt ? status : undefined;
    }, 'the sync after the restart');
    expect(synced).toMatchObject({ appCount: APPS, consecutiveFailures: 0, lastError: null });
  }, 120_000);
});

/** The source's sync status as the syncer reports it. */
async function syncStatus(server: TestServer) {
  return (await server.app.services.catalogueSync.status()).find((status) => status.sourceId === REMOTE_SOURCE);
}

const SYNC = `mutation ($sourceId: String!) {
  syncMarketSource(input: { sourceId: $sourceId }) {
    __typename
    ... on SyncMarketSourceSuccess { marketSource { sync { lastSyncAt lastError consecutiveFailures appCount } } }
  }
}`;

describe('a stop while syncMarketSource waits for a slow sync', () => {
  test('the mutation answers at once with the status as it was, and the stop does not wait for the request', async () => {
    const fake = await slowSource();
    // The sync at start fails at once (its backoff keeps the job from starting another): the only
    // sync running later is the mutation's.
    fake.fault('hash', { kind: 'status', status: 500, times: 1 });
    const server = await startTestServer('sqlite', {
      env: {
        MARKET_SOURCE_URL: fake.url,
        SYNC_TIMEOUT_MS: '10000',
        SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
        DEMO_DATA: '0',
      },
    });
    let stopped = false;
    cleanups.push(async () => {
      if (!stopped) await server.stop();
    });
    await waitFor(async () => ((await syncStatus(server))?.consecutiveFailures === 1 ? true : undefined), 'failure');

    const answer = rawRequest(server, { query: SYNC, variables: { sourceId: REMOTE_SOURCE } });
    await waitFor(async () => (fake.count('details') > 0 ? true : undefined), 'the first details call', 60_000);
    const began = performance.now();
    await server.stop();
    stopped = true;
    const response = await answer;

    expect(performance.now() - began).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    const result = response.body?.data?.syncMarketSource as { __typename: string; marketSource: { sync: unknown } };
    expect(result?.__typename, response.text).toBe('SyncMarketSourceSuccess');
    // The failure at start, still the only one: the cut is no failure of the source.
    expect(result.marketSource.sync).toMatchObject({ lastSyncAt: null, consecutiveFailures: 1, appCount: 0 });
    expect(result.marketSource.sync).not.toMatchObject({ lastError: expect.stringContaining('cut short') });
    await givenUp(fake);
  }, 120_000);
});

describe.runIf(redisUp && databases.includes('postgresql'))('a leader that loses its lease during a slow sync', () => {
  test('cuts the sync short: its calls are abandoned, nothing is written and no failure is recorded', async () => {
    const fake = await slowSource();
    const prefix = uniquePrefix();
    cleanups.push(() => deleteKeys(prefix));
    const server = await startTestServer('postgresql', {
      env: {
        MARKET_SOURCE_URL: fake.url,
        SYNC_TIMEOUT_MS: '10000',
        DEMO_DATA: '0',
        REDIS_URL,
        REDIS_PREFIX: prefix,
        INSTANCE_NAME: 'old-leader',
        LEADER_LEASE_MS: '3000',
      },
    });
    cleanups.push(() => server.stop());
    await waitFor(async () => (fake.count('details') > 0 ? true : undefined), 'the first details call', 60_000);

    // Another instance holds the lease from now on: at its next renewal this one learns it no longer leads.
    const redis = new Redis(REDIS_URL);
    cleanups.push(async () => void redis.disconnect());
    await redis.set(`${prefix}leader`, 'new-leader token', 'PX', 60_000);
    const logged = () => server.logs.map((line) => JSON.parse(line) as { msg?: string; [key: string]: unknown });
    const cut = await waitFor(
      async () => logged().find((line) => line.msg === 'a market source sync was cut short'),
      'the sync to be cut short',
    );

    expect(cut).toMatchObject({ sourceId: REMOTE_SOURCE, reason: 'this instance stopped leading' });
    expect(server.app.services.catalogueSync.syncing()).toEqual([]);
    await givenUp(fake);
    expect(fake.count('details')).toBeLessThan(APPS / 100);
    expect(await syncStatus(server)).toMatchObject({
      lastSyncAt: null,
      lastAttemptAt: null,
      lastError: null,
      consecutiveFailures: 0,
      appCount: 0,
    });
  }, 120_000);
});
