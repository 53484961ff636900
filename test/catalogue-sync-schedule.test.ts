import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createMarketSourceClient } from '../src/adapters/market-source/factory.js';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { createLogger } from '../src/platform/logger.js';
import { CatalogueSyncer } from '../src/services/catalogue-sync.js';
import type { SyncSettings } from '../src/services/catalogue-sync-outcome.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { type FakeMarketSource, fakeEntry, startFakeMarketSource } from './support/fake-market-source.js';

/**
 * When a source's next sync is due after a restart with other settings: the stored next time
 * counted the settings of the sync that stored it, and a lower SYNC_INTERVAL_MS (or backoff) now
 * must not wait it out. Two Syncers on one database stand for the instance before and after the
 * restart; each reads the clock the test gives it, so "two seconds later" is the test's, not a timer's.
 */

const databases = await availableDatabases();
const HOUR = 3_600_000;

describe.each(databases)('the schedule of syncs across a change of settings on %s', (kind) => {
  let database: TestDatabase;
  let db: Db;
  let fake: FakeMarketSource;
  let sources = 0;
  const syncers: CatalogueSyncer[] = [];

  /** A Syncer with these settings, reading `clock` as its time. */
  const syncerWith = (settings: Pick<SyncSettings, 'intervalMs' | 'backoffMaxMs'>, clock: { now: Date }) => {
    const logger = createLogger('fatal');
    const clientSettings = { bundledCataloguePath: '', version: '1.12.0', timeoutMs: 5000, maxResponseBytes: 1 << 20 };
    const clientFor = (source: { baseUrl: string | null }) => createMarketSourceClient(source.baseUrl, clientSettings);
    const full = { ...settings, maxCatalogueBytes: 1024 * 1024 };
    const syncer = new CatalogueSyncer(
      db,
      logger,
      full,
      clientFor,
      async () => undefined,
      () => clock.now,
    );
    syncers.push(syncer);
    return syncer;
  };

  /** A new remote source served by the fake; its id. */
  const addSource = async (baseUrl = fake.url) => {
    sources += 1;
    const sourceId = `schedule-${sources}`;
    await db.marketSource.create({
      data: { sourceId, title: sourceId, type: 'remote', baseUrl, updatedAt: new Date() },
    });
    return sourceId;
  };

  const dueIds = async (syncer: CatalogueSyncer) => {
    const outcomes = await syncer.syncDue();
    return outcomes.map((outcome) => outcome.sourceId);
  };

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    db = createPrismaClient(database.url);
    fake = await startFakeMarketSource({ entries: [fakeEntry('alpha', { version: '1.0.0' })] });
  });
  afterAll(async () => {
    await Promise.all(syncers.map((syncer) => syncer.stop('the test is over')));
    await fake?.close();
    await db?.$disconnect();
    await database?.drop();
  });

  test('a lower interval after a restart syncs a source when it says, not when the old interval said', async () => {
    const start = new Date('2026-12-08T10:00:00Z');
    const sourceId = await addSource();
    const before = syncerWith({ intervalMs: HOUR, backoffMaxMs: HOUR }, { now: start });
    expect((await before.syncNow(sourceId)).error).toBeNull();

    const later = { now: new Date(start.getTime() + 2000) };
    // The same settings two seconds later: the hour stored holds.
    expect(await dueIds(syncerWith({ intervalMs: HOUR, backoffMaxMs: HOUR }, later))).not.toContain(sourceId);
    // Restarted with a one-second interval: due now.
    expect(await dueIds(syncerWith({ intervalMs: 1000, backoffMaxMs: 8000 }, later))).toContain(sourceId);
    // A higher interval never delays the time stored: due at the hour, not at two.
    const atTheHour = { now: new Date(start.getTime() + HOUR) };
    expect(await dueIds(syncerWith({ intervalMs: 2 * HOUR, backoffMaxMs: 2 * HOUR }, atTheHour))).toContain(sourceId);
  });

  test('a failing source waits the backoff of the settings in force, counted from its failures', async () => {
    const start = new Date('2026-12-08T12:00:00Z');
    // Nothing listens there: every sync fails (a refused connection).
    const sourceId = await addSource('http://127.0.0.1:9');
    const clock = { now: start };
    const before = syncerWith({ intervalMs: HOUR, backoffMaxMs: 8 * HOUR }, clock);
    expect((await before.syncNow(sourceId)).error).not.toBeNull();
    expect((await before.syncNow(sourceId)).error).not.toBeNull();
    const row = await db.marketSource.findUniqueOrThrow({ where: { sourceId } });
    expect(row.syncFailures).toBe(2);
    expect(row.nextSyncAt?.getTime()).toBe(start.getTime() + 2 * HOUR);

    // Restarted with a one-second interval: two failures now mean two seconds, not two hours.
    const restartedAt = (ms: number) =>
      syncerWith({ intervalMs: 1000, backoffMaxMs: 60_000 }, { now: new Date(start.getTime() + ms) });
    expect(await dueIds(restartedAt(500))).not.toContain(sourceId);
    expect(await dueIds(restartedAt(2000))).toContain(sourceId);
  });
});
