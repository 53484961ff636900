import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { MAX_INDEX_APPS } from '../src/adapters/market-source/answers.js';
import { BundledCatalogue } from '../src/adapters/market-source/bundled.js';
import { createMarketSourceClient } from '../src/adapters/market-source/factory.js';
import { HttpMarketSource } from '../src/adapters/market-source/http.js';
import { collectDetails, type MarketSourceClient, MarketSourceError } from '../src/adapters/market-source/port.js';
import {
  type FakeMarketSource,
  type FakeMarketSourceOptions,
  fakeAppId,
  fakeEntry,
  fakePrice,
  startFakeMarketSource,
} from './support/fake-market-source.js';

/**
 * The market-source clients against a fake source on a real port (test/support/fake-market-source.ts)
 * and against real files: what a sync reads from a good source, and how each way a source can fail
 * comes back (always a MarketSourceError with a reason and words that name what is wrong).
 */

const NINE_DIGITS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/;
const sources: FakeMarketSource[] = [];
const directories: string[] = [];
const movedServers: Server[] = [];

afterAll(async () => {
  await Promise.all(sources.map((source) => source.close()));
  await Promise.all(directories.map((directory) => rm(directory, { recursive: true, force: true })));
  for (const server of movedServers) server.close();
});

async function fakeSource(options: FakeMarketSourceOptions = {}): Promise<FakeMarketSource> {
  const source = await startFakeMarketSource({
    entries: [fakeEntry('notes'), fakeEntry('paint', { categories: ['Creativity'], price: fakePrice() })],
    ...options,
  });
  sources.push(source);
  return source;
}

function client(source: FakeMarketSource, options: Partial<ConstructorParameters<typeof HttpMarketSource>[0]> = {}) {
  return new HttpMarketSource({ baseUrl: source.url, timeoutMs: 2_000, ...options });
}

/** The MarketSourceError a call fails with (the test fails if it succeeds or throws anything else). */
async function failure(call: Promise<unknown>): Promise<MarketSourceError> {
  const error = await call.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(MarketSourceError);
  return error as MarketSourceError;
}

describe('HttpMarketSource against a source that answers', () => {
  test('hash, index and details read the catalogue with its fields, sending the Olares version', async () => {
    const source = await fakeSource();
    const market = client(source, { version: '1.12.3' });
    const notes = fakeAppId('notes');
    const paint = fakeAppId('paint');

    const hash = await market.hash();
    expect(hash.hash).toBe(source.hash);
    expect(hash.lastUpdated).toMatch(NINE_DIGITS);

    const index = await market.index();
    expect(index.hash).toBe(source.hash);
    expect(index.skipped).toEqual([]);
    expect(index.apps.map(({ id, name, version }) => ({ id, name, version }))).toEqual([
      { id: notes, name: 'notes', version: '1.0.0' },
      { id: paint, name: 'paint', version: '1.0.0' },
    ]);
    expect(index.apps[0]?.updatedAt).toMatch(NINE_DIGITS);
    expect(index.apps[1]?.raw).toMatchObject({ id: paint, category: 'Creativity', source: 1 });
    expect(Object.keys(index.others).sort()).toEqual(
      ['latest', 'pages', 'recommends', 'tags', 'topic_lists', 'topics', 'tops'].sort(),
    );
    expect(Object.keys(index.others.tags as object).sort()).toEqual(['Creativity', 'Productivity']);

    const details = await collectDetails(market, [notes, paint]);
    expect(details.notFound).toEqual([]);
    expect(details.skipped).toEqual([]);
    expect(details.apps.get(notes)).toMatchObject({
      name: 'notes',
      title: { 'en-US': 'Notes' },
      supportArch: ['amd64', 'arm64'],
      requiredMemory: String(512 * 1024 * 1024),
      entrances: [{ name: 'notes', port: 8080 }],
      versionHistory: [{ version: '1.0.0', mergedAt: expect.stringMatching(NINE_DIGITS) }],
    });
    expect(details.apps.get(paint)).toMatchObject({
      price: {
        paid: {
          price: [
            { chain: 'optimism', token_symbol: 'USDC' },
            { chain: 'eth', token_symbol: 'USDT' },
          ],
        },
      },
    });

    expect(source.requests.map(({ endpoint, api, method, version }) => ({ endpoint, api, method, version }))).toEqual([
      { endpoint: 'hash', api: 'v2', method: 'GET', version: '1.12.3' },
      { endpoint: 'info', api: 'v2', method: 'GET', version: '1.12.3' },
      { endpoint: 'details', api: 'v2', method: 'POST', version: '1.12.3' },
    ]);
    expect(source.detailCalls).toEqual([[notes, paint]]);
  });

  test('the hash moves when an app changes, and only then', async () => {
    const source = await fakeSource();
    const market = client(source);
    const before = (await market.hash()).hash;
    expect((await market.hash()).hash).toBe(before);

    source.change('notes', { version: '1.1.0' });
    const after = (await market.hash()).hash;
    expect(after).not.toBe(before);
    const summary = (await market.index()).apps.find((app) => app.name === 'notes');
    expect(summary?.version).toBe('1.1.0');

    source.remove('paint');
    const index = await market.index();
    expect(index.hash).not.toBe(after);
    expect(index.apps.map((app) => app.name)).toEqual(['notes']);
  });

  test('ids the source does not have come back as not found, and apps not asked for are ignored', async () => {
    const source = await fakeSource();
    const market = client(source);
    const notes = fakeAppId('notes');

    const details = await collectDetails(market, [notes, 'deadbeef']);
    expect([...details.apps.keys()]).toEqual([notes]);
    expect(details.notFound).toEqual(['deadbeef']);

    // A source that answers more than it was asked, and forgets an id without saying so.
    source.fault('details', {
      kind: 'json',
      body: { apps: { [notes]: fakeEntry('notes'), cafecafe: fakeEntry('intruder'), badbadba: 'oops' }, version: '1' },
    });
    const odd = await collectDetails(market, [notes, 'badbadba', 'feedfeed']);
    expect([...odd.apps.keys()]).toEqual([notes]);
    expect(odd.notFound).toEqual(['feedfeed']);
    expect(odd.skipped).toEqual([{ id: 'badbadba', reason: 'the entry is not an object' }]);
  });

  test('more ids than one batch holds are asked in batches, and no ids cost no call', async () => {
    const source = await fakeSource();
    const market = client(source);
    const ids = Array.from({ length: 150 }, (_, index) => `a${String(index).padStart(7, '0')}`);
    const details = await collectDetails(market, [...ids, ...ids]);
    expect(details.notFound).toHaveLength(150);
    expect(source.detailCalls.map((batch) => batch.length)).toEqual([100, 50]);

    await collectDetails(market, []);
    expect(source.count('details')).toBe(2);
  });

  test('a v1-only source is asked under /api/v1/ after one 404, and the client remembers it', async () => {
    const source = await fakeSource({ v1Only: true });
    const market = client(source);
    expect(market.apiVersion).toBe('v2');

    expect((await market.hash()).hash).toBe(source.hash);
    expect(market.apiVersion).toBe('v1');
    expect((await market.index()).apps).toHaveLength(2);
    expect((await collectDetails(market, [fakeAppId('notes')])).apps.size).toBe(1);
    await market.hash();

    expect(source.requests.map(({ endpoint, api, status }) => `${endpoint} ${api} ${status}`)).toEqual([
      'hash v2 404',
      'hash v1 200',
      'info v1 200',
      'details v1 200',
      'hash v1 200',
    ]);
  });

  test('a v2-only source that answers one 404 (a deploy) is asked under v2 again, not lost to v1 for good', async () => {
    const source = await fakeSource({ v2Only: true });
    const market = client(source);
    await market.hash();
    source.fault('hash', { kind: 'status', status: 404, times: 1 });
    expect((await failure(market.hash())).message).toMatch(/HTTP 404 from \/api\/v2\/appstore\/hash/);
    expect((await market.hash()).hash).toBe(source.hash);
    expect(market.apiVersion).toBe('v2');
    expect(source.requests.map(({ endpoint, api, status }) => `${endpoint} ${api} ${status}`)).toEqual([
      'hash v2 200',
      'hash v2 404',
      'hash v1 404',
      'hash v2 200',
    ]);
  });

  test('a source that speaks v2 is never asked under v1', async () => {
    const source = await fakeSource();
    const market = client(source);
    await market.hash();
    await market.index();
    await collectDetails(market, [fakeAppId('notes')]);
    expect(source.requests.every((request) => request.api === 'v2')).toBe(true);
    expect(market.apiVersion).toBe('v2');
  });

  test('answers in a {code, msg, data} envelope are opened, and a refusal in one is a status failure', async () => {
    const source = await fakeSource();
    const market = client(source);
    source.fault('hash', {
      kind: 'json',
      times: 1,
      body: { code: 0, msg: 'success', data: { hash: 'abc123', last_updated: '2026-05-01T10:00:00.123456789Z' } },
    });
    expect(await market.hash()).toEqual({ hash: 'abc123', lastUpdated: '2026-05-01T10:00:00.123456789Z' });

    source.fault('hash', { kind: 'json', times: 1, body: { code: 1001, msg: 'version not supported', data: null } });
    const refused = await failure(market.hash());
    expect(refused.reason).toBe('status');
    expect(refused.message).toBe('hash: the source refused with code 1001: version not supported');
  });
});

describe('HttpMarketSource against a source that fails', () => {
  test('a 500 is a status failure with the source’s own words, and the next call succeeds again', async () => {
    const source = await fakeSource();
    const market = client(source);
    source.fault('info', { kind: 'status', status: 500, body: { message: 'database is down' }, times: 2 });

    for (let attempt = 0; attempt < 2; attempt++) {
      const error = await failure(market.index());
      expect(error.reason).toBe('status');
      expect(error.message).toBe('info: HTTP 500 from /api/v2/appstore/info: database is down');
    }
    expect((await market.index()).apps).toHaveLength(2);
    // A 500 under v2 is not a reason to ask under v1.
    expect(source.count('info', 'v1')).toBe(0);
  });

  test('a source still loading (202) is a status failure, not an empty answer', async () => {
    const source = await fakeSource();
    source.fault('details', { kind: 'status', status: 202, body: { message: 'loading 1.12.0' } });
    const error = await failure(collectDetails(client(source), [fakeAppId('notes')]));
    expect(error.reason).toBe('status');
    expect(error.message).toBe(
      'details: HTTP 202 from /api/v2/applications/info: the source is still loading (loading 1.12.0)',
    );
  });

  test('a source slower than the timeout is a timeout failure, within the configured time', async () => {
    const source = await fakeSource();
    const market = client(source, { timeoutMs: 300 });
    source.fault('hash', { kind: 'delay', ms: 10_000 });

    const started = performance.now();
    const error = await failure(market.hash());
    const elapsed = performance.now() - started;
    expect(error.reason).toBe('timeout');
    expect(error.message).toBe('hash: no answer within 300 ms');
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2_000);
    // A timeout is the source's answer: not asked again.
    expect(source.count('hash')).toBe(1);
  });

  test('a body that is not JSON is garbage', async () => {
    const source = await fakeSource();
    source.fault('hash', { kind: 'not-json' });
    const error = await failure(client(source).hash());
    expect(error.reason).toBe('garbage');
    expect(error.message).toBe('hash: the answer is not JSON');
  });

  test.each(['gzip', 'deflate', 'deflate (raw)', 'br'])(
    'an answer compressed with %s although none was asked for is read',
    async (encoding) => {
      const source = await fakeSource();
      const market = client(source);
      source.fault('info', { kind: 'compressed', encoding, times: 1 });
      source.fault('details', { kind: 'compressed', encoding, times: 1 });
      const index = await market.index();
      expect(index.hash).toBe(source.hash);
      expect(index.apps.map((app) => app.name)).toEqual(['notes', 'paint']);
      const details = await collectDetails(market, [fakeAppId('notes')]);
      expect(details.apps.get(fakeAppId('notes'))).toMatchObject({ name: 'notes' });
    },
  );

  test('an answer in a compression that is not read, or corrupt in its own, is garbage naming the encoding', async () => {
    const source = await fakeSource();
    source.fault('hash', { kind: 'compressed', encoding: 'zstd', times: 1 });
    const zstd = await failure(client(source).hash());
    expect(zstd.reason).toBe('garbage');
    expect(zstd.message).toBe('hash: the answer is compressed (content-encoding: zstd) and could not be decoded');
    // Labelled gzip, sent plain.
    source.fault('hash', { kind: 'compressed', encoding: 'GZIP ', times: 1 });
    expect((await failure(client(source).hash())).message).toBe(
      'hash: the answer is compressed (content-encoding: gzip) and could not be decoded',
    );
  });

  test('a compressed answer larger than the limit once decompressed is too large (a zip bomb is refused)', async () => {
    const source = await fakeSource();
    source.fault('info', { kind: 'gzip-bomb', bytes: 16 * 1024 * 1024 });
    const error = await failure(client(source, { maxResponseBytes: 1024 * 1024 }).index());
    expect(error.reason).toBe('too_large');
    expect(error.message).toBe(`info: the answer is larger than ${1024 * 1024} bytes`);
  });

  test.each([
    ['hash', { hash: 5 }, 'hash: hash is not a string'],
    ['hash', { last_updated: '2026-05-01T10:00:00.000000000Z' }, 'hash: hash is missing'],
    ['hash', [], 'hash: the answer is not an object'],
    ['info', { hash: 'abc', data: { apps: [] } }, 'info: data.apps is not an object'],
    ['info', { hash: 'abc' }, 'info: data is missing'],
    ['info', { hash: 'abc', data: { apps: {}, tags: 'music' } }, 'info: data.tags is not an object or a list'],
    [
      'info',
      { hash: 'abc', data: { apps: { a1b2c3d4: { id: 'a1b2c3d4', version: '1.0.0' }, b1b2c3d4: 7 } } },
      'info: none of the 2 apps in data.apps can be read (data.apps.a1b2c3d4: name is missing)',
    ],
    ['details', { apps: 'none' }, 'details: apps is not an object'],
    ['details', { version: '1.12.0' }, 'details: apps is missing'],
    ['details', { apps: {}, not_found: 'x' }, 'details: not_found is not an array'],
  ] as const)('a %s answer of the wrong shape is garbage naming the field (%j)', async (endpoint, body, message) => {
    const source = await fakeSource();
    source.fault(endpoint, { kind: 'json', body });
    const market = client(source);
    const call =
      endpoint === 'hash' ? market.hash() : endpoint === 'info' ? market.index() : collectDetails(market, ['a1b2c3d4']);
    const error = await failure(call);
    expect(error.reason).toBe('garbage');
    expect(error.message).toBe(message);
  });

  test('summaries that cannot be read are skipped with a reason, the rest of the index is kept', async () => {
    const source = await fakeSource();
    const good = { id: 'a1b2c3d4', name: 'good', version: '1.0.0', updated_at: '2026-05-01T10:00:00.000000001Z' };
    source.fault('info', {
      kind: 'json',
      body: {
        hash: 'abc',
        last_updated: 'yesterday',
        data: {
          apps: {
            a1b2c3d4: good,
            b1b2c3d4: { id: 'b1b2c3d4', name: 'x'.repeat(129), version: '1.0.0' },
            c1b2c3d4: { id: 'ffffffff', name: 'elsewhere', version: '1.0.0' },
            'not an id': { name: 'spaced', version: '1.0.0' },
            d1b2c3d4: { id: 'd1b2c3d4', name: 'good', version: '2.0.0' },
          },
        },
      },
    });
    const index = await client(source).index();
    expect(index.lastUpdated).toBeNull();
    expect(index.apps).toEqual([
      { id: 'a1b2c3d4', name: 'good', version: '1.0.0', updatedAt: good.updated_at, raw: good },
    ]);
    expect(index.skipped).toEqual([
      { id: 'b1b2c3d4', reason: 'name is longer than 128 characters' },
      { id: 'c1b2c3d4', reason: 'its id is not its key' },
      { id: 'not an id', reason: 'the key is not an app id' },
      { id: 'd1b2c3d4', reason: 'another app is already named good' },
    ]);
  });

  test('an index with more apps than the bound is garbage', async () => {
    const source = await fakeSource();
    const apps: Record<string, unknown> = {};
    for (let index = 0; index <= MAX_INDEX_APPS; index++) apps[`a${index}`] = { name: `a${index}`, version: '1' };
    source.fault('info', { kind: 'json', body: { hash: 'abc', data: { apps } } });
    const error = await failure(client(source, { maxResponseBytes: 64 * 1024 * 1024 }).index());
    expect(error.reason).toBe('garbage');
    expect(error.message).toBe(`info: data.apps has ${MAX_INDEX_APPS + 1} apps, more than ${MAX_INDEX_APPS}`);
  });

  test('an answer larger than the limit is too large, and is not read to its end', async () => {
    const source = await fakeSource();
    source.fault('info', { kind: 'oversized', bytes: 512 * 1024 });
    const error = await failure(client(source, { maxResponseBytes: 64 * 1024 }).index());
    expect(error.reason).toBe('too_large');
    expect(error.message).toBe(`info: the answer is larger than ${64 * 1024} bytes`);
  });

  test('a connection dropped once is asked again, each retry told, and the call succeeds', async () => {
    const source = await fakeSource();
    const retries: unknown[] = [];
    const market = client(source, { onRetry: (retry) => retries.push(retry) });
    source.fault('hash', { kind: 'reset', times: 1 });
    expect((await market.hash()).hash).toBe(source.hash);
    source.fault('details', { kind: 'reset', times: 2 });
    const details = await collectDetails(market, [fakeAppId('notes')]);
    expect([...details.apps.keys()]).toEqual([fakeAppId('notes')]);
    expect(source.requests.map((request) => request.endpoint)).toEqual([
      'hash',
      'hash',
      'details',
      'details',
      'details',
    ]);
    expect(retries).toEqual([
      { call: 'hash', attempt: 1, problem: 'UND_ERR_SOCKET' },
      { call: 'details', attempt: 1, problem: 'UND_ERR_SOCKET' },
      { call: 'details', attempt: 2, problem: 'UND_ERR_SOCKET' },
    ]);
  });

  test('a connection dropped at every attempt is unreachable after the bounded attempts, a closed port at once', async () => {
    const source = await fakeSource();
    source.fault('hash', { kind: 'reset' });
    const dropped = await failure(client(source).hash());
    expect(dropped.reason).toBe('unreachable');
    expect(dropped.message).toBe(`hash: ${source.url} is unreachable (UND_ERR_SOCKET, 3 attempts)`);
    expect(source.count('hash')).toBe(3);

    const port = await closedPort();
    const error = await failure(new HttpMarketSource({ baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 2_000 }).hash());
    expect(error.reason).toBe('unreachable');
    expect(error.message).toBe(`hash: http://127.0.0.1:${port} is unreachable (ECONNREFUSED)`);
  });

  test('a moved source is not followed: each call fails naming the redirect', async () => {
    const source = await fakeSource();
    const moved = await movedTo(source.url);
    const market = client(source, { baseUrl: moved });
    // Followed for the reads, a sync took one host's index and another's details, and succeeded.
    expect((await failure(market.hash())).message).toBe(
      "hash: HTTP 301 from /api/v2/appstore/hash: a redirect not followed since the index and its details must come from the same place; give the source's new URL instead",
    );
    expect((await failure(market.index())).reason).toBe('status');
    expect(source.requests).toEqual([]);
    // Followed, the 301 would have turned the POST into a GET and the source answered 404.
    const details = await failure(market.detailsEach([fakeAppId('notes')], () => {}));
    expect(details.reason).toBe('status');
    expect(details.message).toBe(
      "details: HTTP 301 from /api/v2/applications/info: a redirect not followed since the POST would arrive as a GET without its body; give the source's new URL instead",
    );
    expect(source.requests.filter((request) => request.endpoint === 'details')).toEqual([]);
    // A 307 or 308 would keep the POST and its body: what stands against it is the other host.
    for (const status of [307, 308]) {
      const kept = await failure(
        client(source, { baseUrl: await movedTo(source.url, status) }).detailsEach([fakeAppId('notes')], () => {}),
      );
      expect(kept.message).toBe(
        `details: HTTP ${status} from /api/v2/applications/info: a redirect not followed since the index and its details must come from the same place; give the source's new URL instead`,
      );
    }

    const withCredentials = await failure(
      client(source, { baseUrl: moved.replace('http://', 'http://u:secret-pw@') }).hash(),
    );
    expect(withCredentials.message).toBe(
      "hash: HTTP 301 from /api/v2/appstore/hash: a redirect not followed since it would carry the credentials; give the source's new URL instead",
    );
  });

  test('credentials in the base URL are sent as Basic authentication and never shown', async () => {
    const password = 'pa55-word-for-the-market';
    const source = await fakeSource({ credentials: { username: 'olares', password } });
    const withCredentials = source.url.replace('http://', `http://olares:${password}@`);
    const market = client(source, { baseUrl: withCredentials });
    expect(market.describe).toBe(source.url);
    expect((await market.hash()).hash).toBe(source.hash);
    expect(source.requests[0]?.user).toBe('olares');

    source.fault('hash', { kind: 'status', status: 500, body: { message: `cannot log in with ${password}` } });
    const quoted = await failure(market.hash());
    expect(quoted.message).toBe('hash: HTTP 500 from /api/v2/appstore/hash: cannot log in with [redacted]');

    const wrong = await failure(
      client(source, { baseUrl: source.url.replace('http://', 'http://olares:nope@') }).hash(),
    );
    expect(wrong.reason).toBe('status');
    expect(wrong.message).toBe('hash: HTTP 401 from /api/v2/appstore/hash: unauthorized');

    const port = await closedPort();
    const down = await failure(
      client(source, { baseUrl: `http://olares:${password}@127.0.0.1:${port}/market/` }).hash(),
    );
    expect(down.message).toBe(`hash: http://127.0.0.1:${port}/market is unreachable (ECONNREFUSED)`);
  });

  test('credentials with malformed percent-encoding are refused as unreachable, without quoting them', () => {
    for (const userinfo of ['olares:se%zzcret', 'ol%E0%A4ares:secret', 'olares:100%']) {
      let thrown: unknown;
      try {
        new HttpMarketSource({ baseUrl: `https://${userinfo}@market.example/` });
      } catch (error) {
        thrown = error;
      }
      expect(thrown, userinfo).toBeInstanceOf(MarketSourceError);
      const error = thrown as MarketSourceError;
      expect(error.reason).toBe('unreachable');
      expect(error.message).toBe('the base URL has malformed credentials');
      expect(error.message).not.toContain('secret');
      expect(error.message).not.toContain('olares');
    }
  });
});

describe('BundledCatalogue', () => {
  async function catalogueFile(content: unknown): Promise<string> {
    const directory = await mkdtemp(join(tmpdir(), 'bundled-catalogue-'));
    directories.push(directory);
    const path = join(directory, 'catalogue.json');
    await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  }

  function fileOf(...names: string[]) {
    const entries = names.map((name) => fakeEntry(name));
    return {
      last_updated: '2026-05-01T10:00:00.000000000Z',
      data: {
        apps: Object.fromEntries(
          entries.map((entry) => [entry.id, { id: entry.id, name: entry.name, version: entry.version }]),
        ),
        tags: { Productivity: { name: 'Productivity' } },
        latest: names,
      },
      details: Object.fromEntries(entries.map((entry) => [entry.id, entry])),
    };
  }

  test('answers hash, index and details from the file, its hash being the SHA-256 of its bytes', async () => {
    const content = JSON.stringify(fileOf('notes', 'paint'));
    const path = await catalogueFile(content);
    const bundled = new BundledCatalogue({ path });
    expect(bundled.describe).toBe('bundled catalogue');

    const sha = createHash('sha256').update(content).digest('hex');
    expect(await bundled.hash()).toEqual({ hash: sha, lastUpdated: '2026-05-01T10:00:00.000000000Z' });
    const index = await bundled.index();
    expect(index.hash).toBe(sha);
    expect(index.apps.map((app) => app.name)).toEqual(['notes', 'paint']);
    expect(index.others).toEqual({ tags: { Productivity: { name: 'Productivity' } }, latest: ['notes', 'paint'] });

    const details = await collectDetails(bundled, [fakeAppId('paint'), 'deadbeef']);
    expect(details.apps.get(fakeAppId('paint'))).toMatchObject({ name: 'paint', title: { 'en-US': 'Paint' } });
    expect(details.notFound).toEqual(['deadbeef']);
  });

  test('an edited file has a new hash and a new index at the next read', async () => {
    const path = await catalogueFile(fileOf('notes'));
    const bundled = new BundledCatalogue({ path });
    const before = await bundled.hash();
    expect(await bundled.hash()).toEqual(before);

    await writeFile(path, JSON.stringify(fileOf('notes', 'paint')));
    const after = await bundled.hash();
    expect(after.hash).not.toBe(before.hash);
    expect((await bundled.index()).apps.map((app) => app.name)).toEqual(['notes', 'paint']);
    expect((await collectDetails(bundled, [fakeAppId('paint')])).apps.size).toBe(1);
  });

  test.each([
    ['{"data": {', 'is not JSON'],
    [{ data: { apps: {} } }, 'bundled catalogue: details is missing'],
    [{ data: { apps: [] }, details: {} }, 'bundled catalogue: data.apps is not an object'],
    [
      { data: { apps: { a1b2c3d4: { id: 'a1b2c3d4', name: 'lonely', version: '1.0.0' } } }, details: {} },
      'bundled catalogue: details.a1b2c3d4 is missing',
    ],
    [
      {
        data: { apps: { a1b2c3d4: { name: 'fine', version: '1' }, b1b2c3d4: { name: 'broken' } } },
        details: { a1b2c3d4: { name: 'fine', version: '1' } },
      },
      'bundled catalogue: data.apps.b1b2c3d4: version is missing',
    ],
  ] as const)('a broken file is garbage (%j)', async (content, message) => {
    const path = await catalogueFile(content);
    const error = await failure(new BundledCatalogue({ path }).index());
    expect(error.reason).toBe('garbage');
    expect(error.message).toContain(message);
  });

  test('a missing file is unreachable, a file above the size bound too large', async () => {
    const path = join(tmpdir(), 'no-such-directory-for-market', 'catalogue.json');
    const missing = await failure(new BundledCatalogue({ path }).hash());
    expect(missing.reason).toBe('unreachable');
    expect(missing.message).toBe(`bundled catalogue: no file at ${path}`);

    const big = await catalogueFile(fileOf('notes'));
    const error = await failure(new BundledCatalogue({ path: big, maxBytes: 100 }).hash());
    expect(error.reason).toBe('too_large');
  });
});

describe('createMarketSourceClient', () => {
  const settings = {
    bundledCataloguePath: '/nowhere.json',
    version: '1.12.0',
    timeoutMs: 1_000,
    maxResponseBytes: 1024,
  };

  test('no URL or a bundled: URL reads the bundled file; http(s) speaks the protocol', () => {
    const kind = (client: MarketSourceClient) => [client.constructor.name, client.describe];
    expect(kind(createMarketSourceClient(null, settings))).toEqual(['BundledCatalogue', 'bundled catalogue']);
    expect(kind(createMarketSourceClient('', settings))).toEqual(['BundledCatalogue', 'bundled catalogue']);
    expect(kind(createMarketSourceClient('bundled:', settings))).toEqual(['BundledCatalogue', 'bundled catalogue']);
    expect(kind(createMarketSourceClient('https://u:secret@market.example/store/', settings))).toEqual([
      'HttpMarketSource',
      'https://market.example/store',
    ]);
  });

  test.each(['ftp://market.example', 'file:///etc/passwd', 'market.example'])('%s is refused', (url) => {
    expect(() => createMarketSourceClient(url, settings)).toThrow(
      new MarketSourceError('unreachable', 'unsupported URL scheme'),
    );
  });
});

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A server on a real port that answers every request with a 301 to the same path under `target`. */
async function movedTo(target: string, status = 301): Promise<string> {
  const server = createHttpServer((request, response) => {
    response.writeHead(status, { location: `${target}${request.url}` }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  movedServers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
