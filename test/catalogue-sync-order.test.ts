import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createMarketSourceClient } from '../src/adapters/market-source/factory.js';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { createLogger } from '../src/platform/logger.js';
import { CatalogueSyncer } from '../src/services/catalogue-sync.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { type FakeMarketSource, fakeAppId, fakeEntry, startFakeMarketSource } from './support/fake-market-source.js';

/**
 * Syncs of one source that run side by side, as on a cluster: the leader's scheduled sync and a
 * syncMarketSource on another instance. Two Syncers, each with a Prisma client (a pool) of its
 * own on one database, as two instances have; the source is a fake in its own HTTP server whose
 * details answer a test holds (a `hold` fault: the catalogue as it was when asked, sent once the
 * test releases it), so the order in which the syncs start and finish is the test's, not a timer's.
 */

const databases = await availableDatabases();
const INTERVAL_MS = 3_600_000;

/** A promise and its resolver. */
function deferred() {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** Holds the source's next details answer: `arrived` once asked, sent (or failed with `status`) on `release()`. */
function holdDetails(fake: FakeMarketSource, status?: number) {
  const arrival = deferred();
  const release = deferred();
  fake.fault('details', { kind: 'hold', until: release.promise, arrived: arrival.resolve, status, times: 1 });
  return { arrived: arrival.promise, release: release.resolve };
}

describe.each(databases)('syncs of one source side by side on %s', (kind) => {
  let database: TestDatabase;
  const clients: Db[] = [];
  const syncers: CatalogueSyncer[] = [];
  const fakes: FakeMarketSource[] = [];
  const lines: Record<string, unknown>[] = [];
  let sources = 0;

  /** One instance's Syncer: a database client of its own. */
  const instance = () => {
    const db = createPrismaClient(database.url);
    clients.push(db);
    const logger = createLogger('info', { write: (line: string) => lines.push(JSON.parse(line)) });
    const settings = { intervalMs: INTERVAL_MS, backoffMaxMs: 4 * INTERVAL_MS, maxCatalogueBytes: 1024 * 1024 };
    const clientSettings = { bundledCataloguePath: '', version: '1.12.0', timeoutMs: 5000, maxResponseBytes: 1 << 20 };
    const clientFor = (source: { baseUrl: string | null }) => createMarketSourceClient(source.baseUrl, clientSettings);
    const syncer = new CatalogueSyncer(db, logger, settings, clientFor, async () => undefined);
    syncers.push(syncer);
    return { db, syncer };
  };

  /** A remote source of this test, served by a fake of its own, and two instances that sync it. */
  const setUp = async (names: string[]) => {
    const fake = await startFakeMarketSource({ entries: names.map((name) => fakeEntry(name, { version: '1.0.0' })) });
    fakes.push(fake);
    sources += 1;
    const sourceId = `order-${sources}`;
    const [one, two] = [instance(), instance()];
    await one.db.marketSource.create({
      data: { sourceId, title: sourceId, type: 'remote', baseUrl: fake.url, updatedAt: new Date() },
    });
    const row = () => one.db.marketSource.findUniqueOrThrow({ where: { sourceId } });
    const versions = async () =>
      Object.fromEntries(
        (await one.db.catalogApp.findMany({ where: { sourceId }, orderBy: { name: 'asc' } })).map((app) => [
          app.name,
          app.version,
        ]),
      );
    return { fake, sourceId, one: one.syncer, two: two.syncer, row, versions };
  };

  beforeAll(async () => {
    database = await createTestDatabase(kind);
  });
  afterAll(async () => {
    // A test that failed may leave a sync waiting for its held answer: closing the fakes ends it.
    for (const fake of fakes) await fake.close();
    await Promise.all(syncers.map((syncer) => syncer.stop('the test is over')));
    for (const db of clients) await db.$disconnect();
    await database?.drop();
  });

  test('a sync that started earlier and ends later is dropped: the later sync keeps its catalogue, hash and time', async () => {
    const { fake, sourceId, one, two, row, versions } = await setUp(['delta', 'withdrawn']);
    expect((await one.syncNow(sourceId)).error).toBeNull();
    fake.put(fakeEntry('delta', { version: '2.0.0' }));
    const held = holdDetails(fake);
    const earlier = one.syncNow(sourceId);
    await held.arrived;
    // The source moves on while the first instance waits for its details of 2.0.0.
    fake.put(fakeEntry('delta', { version: '3.0.0' }));
    fake.remove('withdrawn');
    expect(await two.syncNow(sourceId)).toMatchObject({ error: null, updated: [fakeAppId('delta')] });
    const later = await row();
    expect(await versions()).toEqual({ delta: '3.0.0' });

    held.release();
    expect(await earlier).toMatchObject({ superseded: true, error: null, added: [], updated: [], removed: [] });
    expect(await versions()).toEqual({ delta: '3.0.0' });
    const stored = await row();
    expect(stored.catalogHash).toBe(fake.hash);
    expect(stored.syncedAt).toEqual(later.syncedAt);
    expect(stored.syncAttemptAt).toEqual(later.syncAttemptAt);
    expect(stored.syncOutcomeTicket).toBe(later.syncOutcomeTicket);
    expect(lines).toContainEqual(
      expect.objectContaining({
        sourceId,
        msg: 'a market source sync was superseded by one started later; its reading was dropped',
      }),
    );
  });

  test('the failure of a sync that started earlier leaves a later success as it was', async () => {
    const { fake, sourceId, one, two, row, versions } = await setUp(['delta']);
    expect((await one.syncNow(sourceId)).error).toBeNull();
    fake.put(fakeEntry('delta', { version: '7.1.0' }));
    const held = holdDetails(fake, 500);
    const earlier = one.syncNow(sourceId);
    await held.arrived;
    fake.put(fakeEntry('delta', { version: '7.2.0' }));
    expect((await two.syncNow(sourceId)).error).toBeNull();
    const success = await row();

    held.release();
    expect((await earlier).error).toMatch(/500/);
    const stored = await row();
    expect(stored).toMatchObject({ syncError: null, syncFailures: 0, catalogHash: fake.hash });
    expect(stored.syncAttemptAt).toEqual(success.syncedAt);
    expect(stored.nextSyncAt).toEqual(success.nextSyncAt);
    expect(await versions()).toEqual({ delta: '7.2.0' });
    expect(lines).toContainEqual(
      expect.objectContaining({
        sourceId,
        msg: 'a market source sync failed after a later one stored its outcome; not recorded',
      }),
    );
  });

  test('two failures side by side count two: each adds one to the failures stored, not to those it read', async () => {
    const { fake, sourceId, one, two, row } = await setUp(['delta']);
    expect((await one.syncNow(sourceId)).error).toBeNull();
    fake.put(fakeEntry('delta', { version: '8.0.0' }));
    const first = holdDetails(fake, 500);
    const earlier = one.syncNow(sourceId);
    await first.arrived;
    const second = holdDetails(fake, 500);
    const later = two.syncNow(sourceId);
    await second.arrived;
    // Both read the row with no failure; the earlier fails first, then the later.
    first.release();
    expect((await earlier).error).toMatch(/500/);
    expect((await row()).syncFailures).toBe(1);
    second.release();
    expect((await later).error).toMatch(/500/);
    const stored = await row();
    expect(stored.syncFailures).toBe(2);
    // The backoff of two failures: twice the interval, from the later sync's attempt.
    expect((stored.nextSyncAt?.getTime() ?? 0) - (stored.syncAttemptAt?.getTime() ?? 0)).toBe(2 * INTERVAL_MS);
  });

  test('a sync asked for while one runs runs again after it, once for every request made meanwhile', async () => {
    const { fake, sourceId, one, versions } = await setUp(['delta']);
    expect((await one.syncNow(sourceId)).error).toBeNull();
    fake.put(fakeEntry('delta', { version: '4.0.0' }));
    const held = holdDetails(fake);
    const running = one.syncNow(sourceId);
    await held.arrived;
    // Asked after the source moved to 5.0.0: the sync running read 4.0.0's index before.
    fake.put(fakeEntry('delta', { version: '5.0.0' }));
    fake.resetCounters();
    const asked = [one.syncNow(sourceId), one.syncNow(sourceId), one.syncNow(sourceId)];
    held.release();
    expect((await running).updated).toEqual([fakeAppId('delta')]);
    const answers = await Promise.all(asked);
    expect(await versions()).toEqual({ delta: '5.0.0' });
    // One follow-up for the three requests: one hash call after the release, one details call.
    expect(answers.map((answer) => answer.error)).toEqual([null, null, null]);
    expect(new Set(answers).size).toBe(1);
    expect(fake.count('hash')).toBe(1);
    expect(fake.detailCalls).toEqual([[expect.any(String)]]);
  });
});
