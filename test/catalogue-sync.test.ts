import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { parse } from 'graphql';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import {
  type FakeMarketSource,
  fakeAppId,
  fakeEntry,
  fakePrice,
  startFakeMarketSource,
} from './support/fake-market-source.js';
import { installThroughApi, startTestServer, type TestServer, waitFor } from './support/server.js';
import { subscribe } from './support/subscriptions.js';
import { rawRequest } from './support/untyped.js';

/**
 * The Syncer against a fake market source in its own HTTP server (test/support/fake-market-
 * source.ts speaks the protocol as real sources do): `market.olares` points at it through
 * MARKET_SOURCE_URL. The schedule is long (1 h), so each sync after the first (which the leader
 * runs at start) is asked for with `syncMarketSource`, as an admin would.
 */

const CATALOG = `query ($sourceId: String, $first: Int) {
  catalog(sourceId: $sourceId, first: $first) {
    totalCount
    edges { node { appId name version versions title description categories paid cfgType } }
  }
}`;
const SYNC = `mutation ($sourceId: String!) {
  syncMarketSource(input: { sourceId: $sourceId }) {
    __typename
    ... on SyncMarketSourceSuccess { marketSource { sync { lastSyncAt lastError consecutiveFailures appCount nextSyncAt durationMs } } }
  }
}`;
const COMPONENTS = '{ runtimeSnapshot { components { name state healthy message metrics } } }';
const HISTORY = `{ history(first: 20) { edges { node { type message userId } } } }`;

interface CatalogNode {
  appId: string;
  name: string;
  version: string;
  versions: string[];
  title: string | null;
  description: string | null;
  categories: string[];
  paid: boolean;
  cfgType: string;
}

/** The catalogue of one source, or (null) of the sources users see. */
async function catalog(server: TestServer, sourceId: string | null = 'market.olares'): Promise<CatalogNode[]> {
  const response = await rawRequest(server, { query: CATALOG, variables: { sourceId, first: 100 } });
  const connection = response.body?.data?.catalog as { edges: { node: CatalogNode }[] };
  return connection.edges.map((edge) => edge.node).sort((a, b) => a.name.localeCompare(b.name));
}

interface SyncStatus {
  lastSyncAt: string | null;
  lastError: string | null;
  consecutiveFailures: number;
  appCount: number;
  durationMs: number | null;
}

async function syncNow(server: TestServer, sourceId = 'market.olares'): Promise<SyncStatus> {
  const response = await rawRequest(server, { query: SYNC, variables: { sourceId } });
  const result = response.body?.data?.syncMarketSource as { __typename: string; marketSource: { sync: SyncStatus } };
  expect(result?.__typename, response.text).toBe('SyncMarketSourceSuccess');
  return result.marketSource.sync;
}

async function syncerComponent(server: TestServer) {
  const response = await rawRequest(server, { query: COMPONENTS });
  const snapshot = response.body?.data?.runtimeSnapshot as {
    components: { name: string; state: string; healthy: boolean; message: string | null; metrics: unknown }[];
  };
  return snapshot.components.find((component) => component.name === 'syncer');
}

const ENTRIES = [
  fakeEntry('notes', { version: '1.0.0', categories: ['Productivity'] }),
  fakeEntry('photos', { version: '2.1.0', categories: ['Media', 'Productivity'] }),
  fakeEntry('paidtool', { version: '0.9.0', price: fakePrice() }),
];

const databases = await availableDatabases();

describe.each(databases)('the Syncer on %s', (kind) => {
  let fake: FakeMarketSource;
  let server: TestServer;

  beforeAll(async () => {
    fake = await startFakeMarketSource({ entries: ENTRIES });
    server = await startTestServer(kind, {
      env: {
        DEMO_DATA: '0',
        MARKET_SOURCE_URL: fake.url,
        SYNC_INTERVAL_MS: '3600000',
        SYNC_TIMEOUT_MS: '4000',
        SYNC_MAX_RESPONSE_BYTES: String(1024 * 1024),
        SYNC_MAX_CATALOGUE_BYTES: '200000',
        COLLECT_INTERVAL_MS: '200',
      },
    });
    await waitFor(async () => ((await catalog(server)).length === 3 ? true : undefined), 'the first sync');
  });
  afterAll(async () => {
    await server?.stop();
    await fake?.close();
  });
  beforeEach(() => fake.resetCounters());
  afterEach(() => {
    for (const endpoint of ['hash', 'info', 'details'] as const) fake.fault(endpoint, null);
  });

  test('a first sync loads every app of the source with its fields', async () => {
    const apps = await catalog(server);
    expect(apps.map((app) => app.name)).toEqual(['notes', 'paidtool', 'photos']);
    const photos = apps.find((app) => app.name === 'photos') as CatalogNode;
    const served = fake.entry('photos') as { title: string | Record<string, string> };
    expect(photos).toMatchObject({
      appId: fakeAppId('photos'),
      version: '2.1.0',
      title: typeof served.title === 'string' ? served.title : served.title['en-US'],
      categories: ['Media', 'Productivity'],
      paid: false,
      cfgType: 'app',
    });
    expect(apps.find((app) => app.name === 'paidtool')?.paid).toBe(true);
    expect((await syncerComponent(server))?.state).toBe('RUNNING');
  });

  test('an unchanged hash costs one request and writes no catalogue row', async () => {
    const before = await rawRequest(server, { query: CATALOG, variables: { first: 100 } });
    const status = await syncNow(server);
    expect(fake.requests.map((request) => request.endpoint)).toEqual(['hash']);
    expect(status).toMatchObject({ lastError: null, consecutiveFailures: 0, appCount: 3 });
    const after = await rawRequest(server, { query: CATALOG, variables: { first: 100 } });
    expect(after.body).toEqual(before.body);
    const updated = await server.app.db.catalogApp.findMany({ select: { updatedAt: true } });
    expect(Math.max(...updated.map((row) => row.updatedAt.getTime()))).toBeLessThan(
      Date.parse(status.lastSyncAt ?? ''),
    );
  });

  test('an unchanged hash is checked against the stored row: another writer having moved it makes the sync read', async () => {
    await syncNow(server);
    // As another instance would: the stored hash is not the one this instance last saw.
    await server.app.db.marketSource.update({ where: { sourceId: 'market.olares' }, data: { catalogHash: 'other' } });
    fake.resetCounters();
    expect(await syncNow(server)).toMatchObject({ lastError: null, consecutiveFailures: 0, appCount: 3 });
    expect(fake.count('info')).toBe(1);
    expect((await server.app.db.marketSource.findUnique({ where: { sourceId: 'market.olares' } }))?.catalogHash).toBe(
      fake.hash,
    );
  });

  test('a source whose hash call and index carry different hashes costs one request per unchanged poll', async () => {
    fake.setHashPrefix('published:');
    try {
      fake.change('notes', { version: '1.0.1' });
      expect(await syncNow(server)).toMatchObject({ lastError: null, consecutiveFailures: 0 });
      expect((await catalog(server)).find((app) => app.name === 'notes')?.version).toBe('1.0.1');
      fake.resetCounters();
      await syncNow(server);
      await syncNow(server);
      expect(fake.requests.map((request) => request.endpoint)).toEqual(['hash', 'hash']);
      // The source moves: its hash call says so, and the change is read.
      fake.change('notes', { version: '1.0.2' });
      await syncNow(server);
      expect(fake.count('info')).toBe(1);
      expect((await catalog(server)).find((app) => app.name === 'notes')?.version).toBe('1.0.2');
    } finally {
      fake.setHashPrefix('');
    }
  });

  test('an index that lags its hash call is read again at every sync until it catches up, and says so meanwhile', async () => {
    // Stored under the index's hash, which lagging is told by (an earlier test may leave another).
    await syncNow(server);
    const before = fake.snapshot();
    const staleHash = fake.hash;
    const notes = (await catalog(server)).find((app) => app.name === 'notes') as CatalogNode;
    fake.lagIndex(before);
    try {
      fake.change('notes', { version: '1.0.4' });
      const lag = `the index (info) still has hash ${staleHash} while the hash call answers ${fake.hash}: it is read again at the next sync`;
      expect(await syncNow(server)).toMatchObject({ lastError: lag, consecutiveFailures: 0 });
      expect((await catalog(server)).find((app) => app.name === 'notes')).toEqual(notes);
      fake.resetCounters();
      expect(await syncNow(server)).toMatchObject({ lastError: lag, consecutiveFailures: 0 });
      expect(fake.count('info')).toBe(1);
      fake.lagIndex(null);
      expect(await syncNow(server)).toMatchObject({ lastError: null, consecutiveFailures: 0 });
      expect((await catalog(server)).find((app) => app.name === 'notes')?.version).toBe('1.0.4');
      const stored = await server.app.db.marketSource.findUniqueOrThrow({ where: { sourceId: 'market.olares' } });
      expect(stored.catalogHash).toBe(fake.hash);
      fake.resetCounters();
      await syncNow(server);
      expect(fake.requests.map((request) => request.endpoint)).toEqual(['hash']);
    } finally {
      fake.lagIndex(null);
      expect(await syncNow(server)).toMatchObject({ lastError: null, consecutiveFailures: 0 });
    }
  });

  test('an entry whose version or name is not its summary is refused, and asked for again once the details catch up', async () => {
    const notes = (await catalog(server)).find((app) => app.name === 'notes') as CatalogNode;
    const id = fakeAppId('notes');
    const served = fake.entry('notes') as Record<string, unknown>;
    try {
      fake.lagDetails('notes', served);
      fake.change('notes', { version: '7.7.7' });
      expect((await syncNow(server)).lastError).toBe(
        `1 entries rejected; first: app ${id}: the entry has version ${notes.version} while the index lists 7.7.7 (the details lag the index)`,
      );
      expect((await catalog(server)).find((app) => app.name === 'notes')).toEqual(notes);
      fake.lagDetails('notes', null);
      fake.resetCounters();
      expect(await syncNow(server)).toMatchObject({ lastError: null, consecutiveFailures: 0 });
      expect(fake.detailCalls).toEqual([[id]]);
      expect((await catalog(server)).find((app) => app.name === 'notes')?.version).toBe('7.7.7');

      fake.lagDetails('notes', { ...served, name: 'othername', version: '7.7.8' });
      fake.change('notes', { version: '7.7.8' });
      expect((await syncNow(server)).lastError).toBe(
        `1 entries rejected; first: app ${id}: the entry is named othername while the index lists notes`,
      );
      const names = (await catalog(server)).map((app) => app.name);
      expect(names).toContain('notes');
      expect(names).not.toContain('othername');
    } finally {
      fake.lagDetails('notes', null);
      fake.change('notes', { version: notes.version });
      expect(await syncNow(server)).toMatchObject({ lastError: null, consecutiveFailures: 0 });
    }
  });

  test('one changed app costs one detail fetch for it and changes its row only', async () => {
    const rowsBefore = await server.app.db.catalogApp.findMany({ orderBy: { appId: 'asc' } });
    fake.change('notes', { version: '1.1.0' });
    await syncNow(server);
    expect(fake.count('info')).toBe(1);
    expect(fake.detailCalls).toEqual([[fakeAppId('notes')]]);
    const rowsAfter = await server.app.db.catalogApp.findMany({ orderBy: { appId: 'asc' } });
    const changed = rowsAfter.filter(
      (row, index) => row.updatedAt.getTime() !== rowsBefore[index]?.updatedAt.getTime(),
    );
    expect(changed.map((row) => row.name)).toEqual(['notes']);
    expect(changed[0]).toMatchObject({ id: rowsBefore.find((row) => row.name === 'notes')?.id, version: '1.1.0' });
  });

  test('an app the source no longer lists disappears; the change is in the history', async () => {
    fake.put(fakeEntry('extra'));
    await syncNow(server);
    expect((await catalog(server)).map((app) => app.name)).toContain('extra');
    fake.remove('extra');
    await syncNow(server);
    expect((await catalog(server)).map((app) => app.name)).not.toContain('extra');
    const history = await rawRequest(server, { query: HISTORY });
    const connection = history.body?.data?.history as { edges: { node: { message: string } }[] };
    const messages = connection.edges.map((edge) => edge.node.message);
    expect(messages[0]).toBe(`catalogue of market.olares changed: 1 removed (${fakeAppId('extra')})`);
  });

  test('a sync that rejected an entry keeps no hash: a source rolled back to the catalogue before is read again', async () => {
    const before = fake.snapshot();
    const notes = (await catalog(server)).find((app) => app.name === 'notes');
    fake.change('notes', { version: '9.9.9' });
    fake.change('photos', { version: 7 }); // not an entry: rejected, the rest still written
    expect((await syncNow(server)).lastError).toMatch(/^1 entries rejected/);
    expect((await catalog(server)).find((app) => app.name === 'notes')?.version).toBe('9.9.9');
    fake.restore(before);
    expect(await syncNow(server)).toMatchObject({ lastError: null, consecutiveFailures: 0 });
    expect((await catalog(server)).find((app) => app.name === 'notes')).toEqual(notes);
  });

  test('a synced link or entrance that a page or the app service would act on unsafely refuses that entry only', async () => {
    const notes = (await catalog(server)).find((app) => app.name === 'notes') as CatalogNode;
    const added: string[] = [];
    try {
      // A changed entry with a script link keeps its stored row; a new one with a bad entrance is not stored.
      fake.change('notes', { version: '1.0.2', icon: 'javascript:alert(1)' });
      added.push(fake.put(fakeEntry('badhost', { entrances: [{ name: 'web', host: 'evil\r\nx', port: 80 }] })));
      // A translation's entrance is held to the same rules.
      const translated = { 'en-US': { entrances: [{ name: 'web', openMethod: 'javascript:alert(1)' }] } };
      added.push(fake.put(fakeEntry('badi18n', { i18n: translated })));
      added.push(fake.put(fakeEntry('goodnew')));
      const status = await syncNow(server);
      expect(status.lastError).toBe(
        `3 entries rejected; first: app ${fakeAppId('notes')}: icon must be an http or https URL (or empty)`,
      );
      const names = (await catalog(server)).map((app) => app.name);
      expect(names).toContain('goodnew');
      expect(names).not.toContain('badhost');
      expect(names).not.toContain('badi18n');
      expect((await catalog(server)).find((app) => app.name === 'notes')).toEqual(notes);
    } finally {
      for (const id of added) fake.remove(id);
      fake.change('notes', { version: notes.version, icon: fakeEntry('notes').icon });
      expect(await syncNow(server)).toMatchObject({ lastError: null, consecutiveFailures: 0 });
    }
  });

  test('every entry a sync rejects is in one warning with its reason, past the first that lastError names', async () => {
    const reasons = new Map<string, string>();
    const reject = (name: string, patch: Record<string, unknown>, reason: string) =>
      reasons.set(fake.put(fakeEntry(name, patch)), `app ${fakeAppId(name)}: ${reason}`);
    const host = 'entrances.0.host must be a lowercase DNS label (a-z, 0-9, "-", at most 63)';
    const icon = 'icon must be an http or https URL (or empty)';
    const warned = async () => {
      const logged = server.logs.length;
      const status = await syncNow(server);
      const warnings = server.logs
        .slice(logged)
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => line.msg === 'a market source sync rejected entries; each keeps its stored row, if any');
      expect(warnings).toHaveLength(1);
      const warning = warnings[0] as { level: number; sourceId: string; rejected: string[] };
      expect(warning).toMatchObject({ level: 40, sourceId: 'market.olares' });
      expect(status.lastError).toBe(`${reasons.size} entries rejected; first: ${warning.rejected[0]}`);
      return warning;
    };
    try {
      reject('badhost', { entrances: [{ name: 'web', host: 'evil\r\nx', port: 80 }] }, host);
      reject('badicon', { icon: 'javascript:alert(1)' }, icon);
      reject(
        'badversion',
        { versionHistory: [{ version: '../x' }] },
        'versionHistory.0.version is not a SemVer version (e.g. 1.2.3)',
      );
      const few = await warned();
      expect(few).toMatchObject({ rejectedCount: 3, unlisted: 0 });
      expect(few.rejected.toSorted()).toEqual([...reasons.values()].toSorted());
      // Past 20 the line lists 20 and counts the rest.
      for (let i = 0; i < 19; i++) reject(`badicon${i}`, { icon: 'javascript:alert(1)' }, icon);
      const many = await warned();
      expect(many).toMatchObject({ rejectedCount: 22, unlisted: 2 });
      expect(new Set(many.rejected).size).toBe(20);
      for (const reason of many.rejected) expect([...reasons.values()]).toContain(reason);
    } finally {
      for (const id of reasons.keys()) fake.remove(id);
      expect(await syncNow(server)).toMatchObject({ lastError: null });
    }
  });

  test('a title or description past its column, an emoji on the cut, is listed cut before that emoji', async () => {
    // Unit 1,000 of each is the first half of an emoji: the column kept it alone, shown as U+FFFD.
    const description = `${'x'.repeat(999)}🚀 and more`;
    const id = fake.put(
      fakeEntry('longtext', { title: { 'en-US': `a${'😀'.repeat(600)}` }, description: { 'en-US': description } }),
    );
    try {
      expect(await syncNow(server)).toMatchObject({ lastError: null });
      expect((await catalog(server)).find((app) => app.name === 'longtext')).toMatchObject({
        title: `a${'😀'.repeat(499)}`,
        description: 'x'.repeat(999),
      });
    } finally {
      fake.remove(id);
      await syncNow(server);
    }
  });

  test.skipIf(kind !== 'postgresql')(
    'the duration of a sync counts its write, held up as long as it may be',
    async () => {
      // The source row held: the write waits at its first statement, after everything read.
      const blocker = new pg.Client({ connectionString: server.database.url });
      const monitor = new pg.Client({ connectionString: server.database.url });
      await Promise.all([blocker.connect(), monitor.connect()]);
      const version = fake.entry('notes')?.version;
      try {
        fake.change('notes', { version: '1.0.7' });
        await blocker.query('BEGIN');
        await blocker.query(`SELECT 1 FROM "MarketSource" WHERE "sourceId" = 'market.olares' FOR UPDATE`);
        const asked = performance.now();
        const syncing = syncNow(server);
        await waitFor(async () => {
          const { rows } = await monitor.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          );
          return (rows[0]?.n ?? 0) >= 1 ? true : undefined;
        }, 'the sync to wait on the source row');
        const held = performance.now();
        // Held longer than everything before the write took: a duration taken before the write is
        // shorter than the hold, one that counts it is not. The time held is what is measured.
        await new Promise((resolve) => setTimeout(resolve, held - asked + 200));
        await blocker.query('COMMIT');
        const released = performance.now();
        const status = await syncing;
        expect(status.durationMs).toBeGreaterThanOrEqual(Math.floor(released - held));
        expect((await catalog(server)).find((app) => app.name === 'notes')?.version).toBe('1.0.7');
      } finally {
        await blocker.query('ROLLBACK').catch(() => undefined);
        await Promise.all([blocker.end(), monitor.end()]);
        fake.change('notes', { version });
        await syncNow(server);
      }
    },
  );

  test("a version that cannot name a chart (a path, a line break), in an entry's history or as its version, refuses it", async () => {
    const weird = '../../x\nnewline';
    const notes = (await catalog(server)).find((app) => app.name === 'notes') as CatalogNode;
    let added: string | null = null;
    try {
      const history = [{ version: '1.0.1' }, { version: notes.version }, { version: weird }];
      fake.change('notes', { version: '1.0.1', versionHistory: history });
      expect((await syncNow(server)).lastError).toBe(
        `1 entries rejected; first: app ${fakeAppId('notes')}: versionHistory.2.version is not a SemVer version (e.g. 1.2.3)`,
      );
      // The stored row of notes stays as it was: nothing offers the weird version.
      expect((await catalog(server)).find((app) => app.name === 'notes')).toEqual(notes);
      await expect(installThroughApi(server, { appName: 'notes', version: weird })).rejects.toThrow(
        /is not in the catalogue of market\.olares/,
      );

      fake.change('notes', { version: notes.version, versionHistory: [{ version: notes.version }] });
      added = fake.put(fakeEntry('weirdver', { version: weird }));
      expect((await syncNow(server)).lastError).toBe(
        `1 entries rejected; first: app ${added}: version is not a SemVer version (e.g. 1.2.3)`,
      );
      expect((await catalog(server)).map((app) => app.name)).not.toContain('weirdver');
      await expect(installThroughApi(server, { appName: 'weirdver', version: weird })).rejects.toThrow(/refused/);
    } finally {
      if (added) fake.remove(added);
      fake.change('notes', { version: notes.version, versionHistory: [{ version: notes.version }] });
      expect(await syncNow(server)).toMatchObject({ lastError: null, consecutiveFailures: 0 });
    }
  });

  test('a source removed during its sync and added again under the same id gets its own catalogue', async () => {
    const other = await startFakeMarketSource({ entries: [fakeEntry('first-build')] });
    const replacement = await startFakeMarketSource({ entries: [fakeEntry('second-build')] });
    try {
      const source = (baseUrl: string) =>
        rawRequest(server, {
          query: `mutation { addMarketSource(input: { sourceId: "swapped", title: "S", baseUrl: "${baseUrl}" }) { __typename } }`,
        });
      expect((await source(other.url)).body?.data?.addMarketSource).toEqual({ __typename: 'AddMarketSourceSuccess' });
      other.fault('details', { kind: 'delay', ms: 1500 });
      const slow = rawRequest(server, { query: SYNC, variables: { sourceId: 'swapped' } });
      await waitFor(async () => (other.count('details') > 0 ? true : undefined), 'the slow sync to ask for details');
      const removal = await rawRequest(server, {
        query: 'mutation { removeMarketSource(input: { sourceId: "swapped" }) { __typename } }',
      });
      expect(removal.body?.data?.removeMarketSource).toEqual({ __typename: 'RemoveMarketSourceSuccess' });
      expect((await source(replacement.url)).body?.data?.addMarketSource).toEqual({
        __typename: 'AddMarketSourceSuccess',
      });
      // Asked while the removed row's sync still runs: run after it, for the row as it is then (the new one).
      expect(await syncNow(server, 'swapped')).toMatchObject({ lastError: null, appCount: 1 });
      await slow;
      expect((await catalog(server, 'swapped')).map((app) => app.name)).toEqual(['second-build']);
      const stored = await server.app.db.marketSource.findUniqueOrThrow({ where: { sourceId: 'swapped' } });
      expect(stored.catalogHash).toBe(replacement.hash);
    } finally {
      await rawRequest(server, {
        query: 'mutation { removeMarketSource(input: { sourceId: "swapped" }) { __typename } }',
      });
      await other.close();
      await replacement.close();
    }
  });

  test('a source removed and added again under the same id is never asked at its old URL with its old credentials', async () => {
    const oldSource = await startFakeMarketSource({
      entries: [fakeEntry('old-build')],
      credentials: { username: 'old2', password: 'OLDPW2' },
    });
    const newSource = await startFakeMarketSource({
      entries: [fakeEntry('new-build')],
      credentials: { username: 'new2', password: 'NEWPW2' },
    });
    const withCredentials = (url: string, user: string, password: string) =>
      url.replace('http://', `http://${user}:${password}@`);
    const add = async (baseUrl: string) => {
      const added = await rawRequest(server, {
        query: `mutation { addMarketSource(input: { sourceId: "re-added", title: "R", baseUrl: "${baseUrl}" }) { __typename } }`,
      });
      expect(added.body?.data?.addMarketSource, added.text).toEqual({ __typename: 'AddMarketSourceSuccess' });
    };
    const remove = () =>
      rawRequest(server, { query: 'mutation { removeMarketSource(input: { sourceId: "re-added" }) { __typename } }' });
    try {
      await add(withCredentials(oldSource.url, 'old2', 'OLDPW2'));
      expect(await syncNow(server, 're-added')).toMatchObject({ lastError: null, appCount: 1 });
      // An unchanged-hash sync: the row it synced is the one the next would start from, were it kept.
      expect(await syncNow(server, 're-added')).toMatchObject({ lastError: null, appCount: 1 });
      expect((await remove()).body?.data?.removeMarketSource).toEqual({ __typename: 'RemoveMarketSourceSuccess' });
      oldSource.resetCounters();
      await add(withCredentials(newSource.url, 'new2', 'NEWPW2'));
      expect(await syncNow(server, 're-added')).toMatchObject({ lastError: null, appCount: 1 });
      expect(oldSource.requests).toEqual([]);
      expect(newSource.requests.map((request) => [request.endpoint, request.user, request.status])).toEqual([
        ['hash', 'new2', 200],
        ['info', 'new2', 200],
        ['details', 'new2', 200],
      ]);
      expect((await catalog(server, 're-added')).map((app) => app.name)).toEqual(['new-build']);
    } finally {
      await remove();
      await oldSource.close();
      await newSource.close();
    }
  });

  test('a sync whose changed entries come to more than SYNC_MAX_CATALOGUE_BYTES fails and keeps the catalogue', async () => {
    const good = await catalog(server);
    // 4 entries of ~60 kB each: every answer and entry within its bound, together over 200 kB.
    const bulky = ['bulk-a', 'bulk-b', 'bulk-c', 'bulk-d'];
    for (const name of bulky) fake.put(fakeEntry(name, { fullDescription: { 'en-US': 'x'.repeat(60_000) } }));
    const failed = await syncNow(server);
    expect(failed.consecutiveFailures).toBe(1);
    expect(failed.lastError).toMatch(/more than 200000 characters in one sync \(SYNC_MAX_CATALOGUE_BYTES\)/);
    expect(await catalog(server)).toEqual(good);
    for (const name of bulky.slice(1)) fake.remove(name);
    expect(await syncNow(server)).toMatchObject({ lastError: null, consecutiveFailures: 0 });
    expect((await catalog(server)).map((app) => app.name)).toContain('bulk-a');
    fake.remove('bulk-a');
    await syncNow(server);
    // The next test watches the component for its own failure: this one's must be over there too.
    await waitFor(async () => ((await syncerComponent(server))?.state === 'RUNNING' ? true : undefined), 'recovery');
  });

  test('a connection dropped during a detail batch is asked again: the sync succeeds with every app', async () => {
    const added = ['flaky-a', 'flaky-b'].map((name) => fake.put(fakeEntry(name)));
    try {
      fake.fault('details', { kind: 'reset', times: 1 });
      expect(await syncNow(server)).toMatchObject({ lastError: null, consecutiveFailures: 0 });
      expect(fake.count('details')).toBe(2);
      expect((await catalog(server)).map((app) => app.appId).sort()).toEqual(fake.ids().sort());
      const retries = logsAbout(server, 'market.olares').filter((line) => line.call === 'details');
      expect(retries).toEqual([expect.objectContaining({ attempt: 1, problem: 'UND_ERR_SOCKET' })]);
    } finally {
      for (const id of added) fake.remove(id);
      await syncNow(server);
    }
  });

  test('a source that drops every connection fails the sync after the bounded attempts, naming why', async () => {
    const good = await catalog(server);
    fake.change('photos', { version: '3.3.3' });
    fake.fault('details', { kind: 'reset' });
    const failed = await syncNow(server);
    expect(failed.consecutiveFailures).toBe(1);
    expect(failed.lastError).toBe(`details: ${fake.url} is unreachable (UND_ERR_SOCKET, 3 attempts)`);
    expect(fake.count('details')).toBe(3);
    expect(await catalog(server)).toEqual(good);
    fake.fault('details', null);
    expect(await syncNow(server)).toMatchObject({ lastError: null, consecutiveFailures: 0 });
    expect((await catalog(server)).find((app) => app.name === 'photos')?.version).toBe('3.3.3');
    // The next tests watch the component for their own failure: this one's must be over there too.
    await waitFor(async () => ((await syncerComponent(server))?.state === 'RUNNING' ? true : undefined), 'recovery');
  });

  test.each([
    ['a 500 on hash', 'hash', { kind: 'status', status: 500 }, /HTTP 500/],
    ['a timeout on info', 'info', { kind: 'delay', ms: 60_000 }, /no answer within 4000 ms/],
    ['garbage from info', 'info', { kind: 'json', body: { hash: 'h', data: { apps: 'nope' } } }, /data\.apps/],
    ['an HTML page from details', 'details', { kind: 'not-json' }, /not JSON/i],
    ['an oversized details answer', 'details', { kind: 'oversized', bytes: 2 * 1024 * 1024 }, /larger than/i],
    [
      'an index with no apps',
      'info',
      { kind: 'json', body: { hash: 'emptied', data: { apps: {} } } },
      /lists no apps while/,
    ],
  ] as const)(
    '%s keeps the last good catalogue, shows in the syncer component, then recovers',
    async (_name, endpoint, fault, reason) => {
      const good = await catalog(server);
      fake.change('photos', { version: `${good.length}.${Date.now() % 1000}.0` });
      fake.fault(endpoint, fault);
      const failed = await syncNow(server);
      expect(failed.consecutiveFailures).toBe(1);
      expect(failed.lastError).toMatch(reason);
      expect(await catalog(server)).toEqual(good);
      const component = await waitFor(async () => {
        const found = await syncerComponent(server);
        return found?.state === 'ERROR' ? found : undefined;
      }, 'the syncer component to show the failure');
      expect(component.healthy).toBe(false);
      expect(component.message).toMatch(reason);

      fake.fault(endpoint, null);
      const recovered = await syncNow(server);
      expect(recovered).toMatchObject({ lastError: null, consecutiveFailures: 0 });
      expect((await catalog(server)).find((app) => app.name === 'photos')?.version).toBe(fake.entry('photos')?.version);
      await waitFor(async () => ((await syncerComponent(server))?.state === 'RUNNING' ? true : undefined), 'recovery');
    },
    60_000,
  );
});

describe('sources and subscribers', () => {
  const [kind] = databases;
  let good: FakeMarketSource;
  let v1: FakeMarketSource;
  let server: TestServer;

  beforeAll(async () => {
    good = await startFakeMarketSource({ entries: [fakeEntry('alpha'), fakeEntry('beta')] });
    v1 = await startFakeMarketSource({ entries: [fakeEntry('gamma')], v1Only: true });
    server = await startTestServer(kind ?? 'sqlite', {
      env: {
        DEMO_DATA: '0',
        MARKET_SOURCE_URL: good.url,
        SYNC_INTERVAL_MS: '3600000',
        SIMULATED_STEP_MS: '20',
        COLLECT_INTERVAL_MS: '200',
      },
    });
    await waitFor(async () => ((await catalog(server)).length === 2 ? true : undefined), 'the first sync');
  });
  afterAll(async () => {
    await server?.stop();
    await good?.close();
    await v1?.close();
  });

  test('a second source that speaks only v1 syncs; one failing source never stops the other', async () => {
    const add = await rawRequest(server, {
      query: `mutation { addMarketSource(input: { sourceId: "old.market", title: "Old", baseUrl: "${v1.url}" }) { __typename } }`,
    });
    expect(add.body?.data?.addMarketSource).toEqual({ __typename: 'AddMarketSourceSuccess' });
    await syncNow(server, 'old.market');
    expect((await catalog(server, 'old.market')).map((app) => app.name)).toEqual(['gamma']);
    expect(v1.requests.filter((request) => request.api === 'v1').length).toBeGreaterThan(0);
    // An inactive source's apps are listed only when asked for by name.
    expect((await catalog(server, null)).map((app) => app.name)).toEqual(['alpha', 'beta']);

    v1.fault('hash', { kind: 'status', status: 503 });
    good.put(fakeEntry('delta'));
    expect((await syncNow(server, 'old.market')).consecutiveFailures).toBe(1);
    expect(await syncNow(server, 'market.olares')).toMatchObject({ consecutiveFailures: 0, appCount: 3 });
    // The inactive source's failure is named, and the syncer stays RUNNING: users' catalogue is the
    // active source's, which syncs.
    const component = await waitFor(async () => {
      const found = await syncerComponent(server);
      return found?.message ? found : undefined;
    }, 'one source failing');
    expect(component).toMatchObject({ state: 'RUNNING', healthy: true, metrics: { sources: 2, failing: 1 } });
    expect(component.message).toMatch(/^old\.market: /);
    expect((await catalog(server, 'old.market')).map((app) => app.name)).toEqual(['gamma']);
    // What an operator reads in the log: which source, why, and when it is tried again.
    expect(logsAbout(server, 'old.market').at(-1)).toMatchObject({
      level: 40,
      msg: 'a market source could not be synced; its catalogue stays as the last good sync wrote it',
      error: 'hash: HTTP 503 from /api/v1/appstore/hash: internal error',
      consecutiveFailures: 1,
      nextSyncAt: expect.any(String),
    });
  });

  test('two apps that swap names, and an entry taking the name of an app whose new entry is refused', async () => {
    good.put(fakeEntry('left'));
    good.put(fakeEntry('right'));
    await syncNow(server);
    const leftId = fakeAppId('left');
    const rightId = fakeAppId('right');
    good.change(leftId, { name: 'right' });
    good.change(rightId, { name: 'left' });
    expect(await syncNow(server)).toMatchObject({ lastError: null, consecutiveFailures: 0 });
    const rows = await server.app.db.catalogApp.findMany({ where: { appId: { in: [leftId, rightId] } } });
    expect(Object.fromEntries(rows.map((row) => [row.appId, row.name]))).toEqual({
      [leftId]: 'right',
      [rightId]: 'left',
    });

    // "left" (app rightId) gets an entry that is not an entry; "right" (app leftId) asks for its name.
    good.change(rightId, { version: 7 });
    good.change(leftId, { name: 'left' });
    const status = await syncNow(server);
    expect(status.consecutiveFailures).toBe(0);
    expect(status.lastError).toMatch(/2 entries rejected/);
    const after = await server.app.db.catalogApp.findMany({ where: { appId: { in: [leftId, rightId] } } });
    expect(Object.fromEntries(after.map((row) => [row.appId, row.name]))).toEqual({
      [leftId]: 'right',
      [rightId]: 'left',
    });
    good.remove(leftId);
    good.remove(rightId);
    await syncNow(server);
  });

  test('the scheduled sync goes on to the next source when one fails; local sources do not sync', async () => {
    v1.fault('hash', { kind: 'status', status: 500 });
    good.put(fakeEntry('scheduled'));
    await server.app.db.marketSource.updateMany({ data: { nextSyncAt: new Date(0) } });
    const outcomes = await server.app.services.catalogueSync.syncDue();
    const bySource = Object.fromEntries(outcomes.map((outcome) => [outcome.sourceId, outcome.error]));
    expect(bySource['old.market']).toMatch(/HTTP 500/);
    expect(bySource['market.olares']).toBeNull();
    expect((await catalog(server)).map((app) => app.name)).toContain('scheduled');
    v1.fault('hash', null);
    expect(await syncNow(server, 'old.market')).toMatchObject({ consecutiveFailures: 0 });
    expect(logsAbout(server, 'old.market').at(-1)).toMatchObject({
      msg: 'a market source syncs again after failures',
      failuresBefore: 2,
    });

    const local = await rawRequest(server, { query: SYNC, variables: { sourceId: 'upload' } });
    expect(local.body?.data?.syncMarketSource).toMatchObject({ __typename: 'ValidationError' });
  });

  test("a source due a moment after the job's tick syncs at that tick (its next time counts from its sync's start)", async () => {
    const { db } = server.app;
    await db.marketSource.updateMany({
      where: { sourceId: 'old.market' },
      data: { nextSyncAt: new Date(Date.now() + 300) },
    });
    await db.marketSource.updateMany({
      where: { sourceId: 'market.olares' },
      data: { nextSyncAt: new Date(Date.now() + 3_600_000) },
    });
    const outcomes = await server.app.services.catalogueSync.syncDue();
    expect(outcomes.map((outcome) => outcome.sourceId)).toEqual(['old.market']);
    await syncNow(server);
  });

  test('a slow source never holds up another: the scheduled syncs run side by side', async () => {
    // market.olares comes first by its id; this time it answers its hash seconds late.
    good.fault('hash', { kind: 'delay', ms: 3000, times: 1 });
    v1.put(fakeEntry('beside'));
    await server.app.db.marketSource.updateMany({ data: { nextSyncAt: new Date(0) } });
    const started = await server.app.services.catalogueSync.startDue();
    let allDone = false;
    const all = Promise.all(started).then((outcomes) => {
      allDone = true;
      return outcomes;
    });
    expect(await Promise.race(started)).toMatchObject({
      sourceId: 'old.market',
      error: null,
      added: [fakeAppId('beside')],
    });
    expect(allDone).toBe(false);
    expect((await all).map((outcome) => [outcome.sourceId, outcome.error])).toEqual([
      ['market.olares', null],
      ['old.market', null],
    ]);
    v1.remove('beside');
    await server.app.services.catalogueSync.syncNow('old.market');
  });

  test('catalogueChanged tells subscribers which apps a sync changed', async () => {
    const document = parse(
      'subscription { catalogueChanged(sourceId: "market.olares") { sourceId added updated removed } }',
    ) as TypedDocumentNode<{ catalogueChanged: unknown }, Record<string, never>>;
    const subscription = await subscribe(server, document, {});
    try {
      good.put(fakeEntry('epsilon'));
      good.change('alpha', { version: '9.0.0' });
      await syncNow(server);
      expect(await subscription.next()).toEqual({
        catalogueChanged: {
          sourceId: 'market.olares',
          added: [fakeAppId('epsilon')],
          updated: [fakeAppId('alpha')],
          removed: [],
        },
      });
    } finally {
      await subscription.close();
    }
  });

  test('a synced app installs and completes', async () => {
    const taskId = await installThroughApi(server, { appName: 'beta', version: servedVersion(good, 'beta') });
    await waitFor(async () => {
      const task = await rawRequest(server, { query: `{ task(taskId: "${taskId}") { status } }` });
      return (task.body?.data?.task as { status: string } | null)?.status === 'COMPLETED' ? true : undefined;
    }, 'the install to complete');
  });

  test('a newer version in the catalogue is pushed to the installed app: appUpdated, then upgradeAvailable', async () => {
    const query = `{ app(sourceId: "market.olares", appName: "beta") { installedVersion latestVersion upgradeAvailable } }`;
    const before = (await rawRequest(server, { query })).body?.data?.app as { installedVersion: string };
    expect(before).toMatchObject({ upgradeAvailable: false });
    const document = parse(
      'subscription { appUpdated(filter: { appName: "beta" }) { appName installedVersion } }',
    ) as TypedDocumentNode<{ appUpdated: unknown }, Record<string, never>>;
    const subscription = await subscribe(server, document, {});
    try {
      good.change('beta', { version: '99.0.0' });
      await syncNow(server);
      expect(await subscription.next()).toEqual({
        appUpdated: { appName: 'beta', installedVersion: before.installedVersion },
      });
      expect((await rawRequest(server, { query })).body?.data?.app).toEqual({
        installedVersion: before.installedVersion,
        latestVersion: '99.0.0',
        upgradeAvailable: true,
      });
    } finally {
      await subscription.close();
    }
  });
});

/** The version a fake source serves for an app. */
function servedVersion(source: FakeMarketSource, name: string): string {
  return String(source.entry(name)?.version);
}

describe.each(databases)('a large catalogue on %s', (kind) => {
  test('1,200 apps sync whole (more ids than one statement may name), then one removal and one change', async () => {
    const entries = Array.from({ length: 1200 }, (_, index) => fakeEntry(`bulk${index}`, { categories: ['Bulk'] }));
    const fake = await startFakeMarketSource({ entries });
    // Two of the 12 detail batches lose their connection, as on a flaky link: asked again, not failed.
    fake.fault('details', { kind: 'reset', times: 2 });
    const server = await startTestServer(kind, {
      env: { DEMO_DATA: '0', MARKET_SOURCE_URL: fake.url, SYNC_INTERVAL_MS: '3600000' },
    });
    try {
      const first = await waitFor(
        async () => {
          const [source] = await server.app.services.catalogueSync.status();
          return source?.lastAttemptAt ? source : undefined;
        },
        'the first sync',
        60_000,
      );
      expect(first).toMatchObject({ lastError: null, consecutiveFailures: 0, appCount: 1200 });
      // Its status is stored with the catalogue, before it announces the 1,200 additions: a sync
      // asked for meanwhile would join it and answer its outcome (appCount 1200), not sync again.
      await server.app.services.catalogueSync.idle();
      expect(fake.count('details')).toBe(12 + 2);
      expect(await server.app.db.catalogAppCategory.count()).toBe(1200);

      fake.remove('bulk7');
      fake.change('bulk8', { version: '9.9.9', categories: ['Bulk', 'Changed'] });
      expect(await syncNow(server)).toMatchObject({ lastError: null, appCount: 1199 });
      expect(await server.app.db.catalogAppCategory.count()).toBe(1200); // 1199 + bulk8's second
      const changed = await server.app.db.catalogApp.findFirst({ where: { name: 'bulk8' } });
      expect(changed?.version).toBe('9.9.9');
    } finally {
      await server.stop();
      await fake.close();
    }
  }, 120_000);
});

/** The server's log lines about one market source, oldest first. */
function logsAbout(server: TestServer, sourceId: string): Record<string, unknown>[] {
  return server.logs
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.sourceId === sourceId);
}
