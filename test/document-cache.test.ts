import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  DOCUMENT_BYTES_KEPT,
  DOCUMENTS_KEPT,
  documentHeapBytes,
  HEAP_COST,
  REFUSED_DOCUMENT_BYTES_KEPT,
} from '../src/http/document-cache.js';
import { BoundedLru } from '../src/platform/bounded-lru.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { serversOfThisFile, startTestServer, type TestServer } from './support/server.js';

/**
 * Parsed documents and validation results are kept (src/http/document-cache.ts): a document sent
 * again must get the same answer as the first time, whichever rule refused it, on the lean path
 * and through Yoga alike.
 */

describe('BoundedLru (the parser caches weigh each entry by the heap it holds)', () => {
  test('keeps at most its bound, the least recently used leaving first', () => {
    const cache = new BoundedLru<string, number>({ maxEntries: 3 });
    for (const [index, key] of ['a', 'b', 'c'].entries()) cache.set(key, index);
    expect(cache.get('a')).toBe(0); // a is now the most recently used
    expect(cache.peek('b')).toBe(1); // b is not
    cache.set('d', 3);
    expect(cache.size).toBe(3);
    expect(cache.get('b')).toBeUndefined();
    expect([cache.get('a'), cache.get('c'), cache.get('d')]).toEqual([0, 2, 3]);
    cache.set('c', 20); // replaced, not added
    expect(cache.size).toBe(3);
    expect(cache.get('c')).toBe(20);
  });

  test('a hit among the newer half leaves the order as it is, one in the older half moves last', () => {
    const cache = new BoundedLru<string, number>({ maxEntries: 4 });
    for (const [index, key] of ['a', 'b', 'c', 'd'].entries()) cache.set(key, index);
    expect(cache.get('c')).toBe(2); // among the newer half: stays before d
    expect(cache.get('a')).toBe(0); // the oldest: moved last
    cache.set('e', 4); // b leaves
    cache.set('f', 5); // c leaves: placed before d, though hit after it
    expect(['a', 'b', 'c', 'd', 'e', 'f'].map((key) => cache.peek(key))).toEqual([0, undefined, undefined, 3, 4, 5]);
  });

  test('keeps at most its total key length: long texts push out the oldest, one too long is not kept', () => {
    const cache = new BoundedLru<string, number>({ maxEntries: 100, maxWeight: 10 });
    const set = (text: string, value: number) => cache.set(text, value, text.length);
    set('aaaa', 1);
    set('bbbb', 2);
    set('cccc', 3); // 12 characters: the oldest leaves
    expect([cache.get('aaaa'), cache.get('bbbb'), cache.get('cccc')]).toEqual([undefined, 2, 3]);
    expect(cache.totalWeight).toBe(8);
    set('x'.repeat(11), 4);
    expect(cache.get('x'.repeat(11))).toBeUndefined();
    expect(cache.totalWeight).toBe(8);
    set('bbbb', 5); // replaced: counted once
    expect(cache.totalWeight).toBe(8);
    cache.delete('bbbb');
    cache.delete('bbbb'); // not held: nothing to let go
    expect([cache.get('bbbb'), cache.size, cache.totalWeight]).toEqual([undefined, 1, 4]);
  });
});

/** Status and body of the answer to a POST, or with `viaYoga` to a GET (which the lean path leaves to Yoga). */
async function postTo(server: TestServer, query: string, viaYoga = false) {
  const accept = 'application/graphql-response+json';
  const response = viaYoga
    ? await fetch(`${server.graphqlUrl}?${new URLSearchParams({ query })}`, { headers: { accept } })
    : await fetch(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept },
        body: JSON.stringify({ query }),
      });
  const body = (await response.json()) as { data?: unknown; errors?: { message: string; extensions?: object }[] };
  return { status: response.status, body };
}

/** `{ __typename ×990 }`: within the token limit, refused (too many repeated fields), 686 kB of heap as parsed. */
const dense = (name: string) => `query ${name} { ${'__typename '.repeat(990)}}`;

describe('documents sent again', () => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    server = await startTestServer('sqlite', {
      database,
      env: { INTROSPECTION: '0', MAX_QUERY_DEPTH: '4' },
    });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    await database?.drop();
  });

  const post = (query: string, viaYoga = false) => postTo(server, query, viaYoga);

  const documents = {
    valid: '{ viewer { userId isAdmin } }',
    tooDeep: '{ apps { edges { node { activeTask { app { appName } } } } } }',
    introspection: '{ __schema { queryType { name } } }',
    unknownField: '{ viewer { userId nickname } }',
    syntaxError: '{ viewer { userId ',
  };

  test.each(Object.entries(documents))('%s: the same answer each time, on either path', async (_name, query) => {
    const first = await post(query);
    for (const viaYoga of [false, true, false]) {
      expect(await post(query, viaYoga)).toEqual(first);
    }
    if (query === documents.valid) expect(first).toMatchObject({ status: 200, body: { data: { viewer: {} } } });
    else expect(first.status).toBe(400);
  });

  test('the lean path answered the POSTs, Yoga the GETs', () => {
    expect(server.app.fastPath?.served).toBeGreaterThan(0);
  });

  test('each rule still refuses what it refuses, after the same document was accepted and refused', async () => {
    expect((await post(documents.tooDeep)).body.errors?.[0]?.message).toMatch(/depth/i);
    expect((await post(documents.introspection)).body.errors?.[0]?.message).toMatch(/introspection/i);
    expect((await post(documents.unknownField)).body.errors?.[0]?.message).toMatch(/nickname/);
    expect((await post(documents.syntaxError)).body.errors?.[0]?.extensions).toMatchObject({
      code: 'GRAPHQL_PARSE_FAILED',
    });
  });

  test('a refused document weighs its validation errors as well', async () => {
    const query = `query Unknown { ${Array.from({ length: 97 }, (_, k) => `f${k}`).join(' ')} }`;
    const before = server.app.documents.kept.unvalidated.bytes;
    const refused = await post(query);
    expect(refused.body.errors).toHaveLength(97);
    const added = server.app.documents.kept.unvalidated.bytes - before;
    expect(added).toBeGreaterThanOrEqual(documentHeapBytes(query, parse(query)) + 97 * HEAP_COST.error);
  });

  test('refused documents dense in tokens are kept up to their own heap budget, ordinary ones all the same', async () => {
    // `{ __typename ×990 }` held 548 kB of heap per document on a server (see HEAP_COST), refused or not.
    const sent = 200;
    for (let i = 0; i < sent; i++) {
      const { status, body } = await post(dense(`Dense${i}`));
      expect([status, body.errors?.[0]?.extensions]).toEqual([400, { code: 'GRAPHQL_VALIDATION_FAILED' }]);
    }
    const keptDense = Array.from({ length: sent }, (_, i) => i).filter((i) =>
      server.app.documents.keeps(dense(`Dense${i}`)),
    );
    expect(server.app.documents.kept.unvalidated.bytes).toBeLessThanOrEqual(REFUSED_DOCUMENT_BYTES_KEPT);
    expect(keptDense.length).toBeGreaterThan(0);
    expect(keptDense.length).toBeLessThanOrEqual(Math.floor(REFUSED_DOCUMENT_BYTES_KEPT / 480_000));
    // The most recently sent are the ones kept.
    expect(keptDense).toContain(sent - 1);

    const ordinary = [documents.valid, documents.tooDeep, documents.unknownField, '{ viewer { userId } }'];
    for (const query of ordinary) await post(query);
    expect(ordinary.filter((query) => server.app.documents.keeps(query))).toEqual(ordinary);
    // Their number, not their weight, bounds documents like these: 1,024 of the heaviest fit in the budget.
    const heaviest = Math.max(...ordinary.map((query) => documentHeapBytes(query, parse(query))));
    expect(heaviest * DOCUMENTS_KEPT).toBeLessThan(DOCUMENT_BYTES_KEPT);
  }, 60_000);
});

describe('refused documents have their own budget', () => {
  const serverWith = serversOfThisFile();

  test('a flood of dense refused documents leaves every document that validated kept', async () => {
    const server = await serverWith();
    const valid = ['{ viewer { userId isAdmin } }', '{ viewer { userId } }', 'query Mine { viewer { isAdmin } }'];
    for (const query of valid) expect((await postTo(server, query)).status).toBe(200);
    const validated = server.app.documents.kept.validated;

    // Twice what, sharing one budget with them, pushed every other document out (~97 fit in it).
    const sent = 2 * Math.ceil(DOCUMENT_BYTES_KEPT / documentHeapBytes(dense('F0'), parse(dense('F0'))));
    for (let i = 0; i < sent; i++) {
      const { status, body } = await postTo(server, dense(`Flood${i}`));
      expect([status, body.errors?.[0]?.extensions]).toEqual([400, { code: 'GRAPHQL_VALIDATION_FAILED' }]);
    }

    expect(valid.filter((query) => server.app.documents.keeps(query))).toEqual(valid);
    expect(server.app.documents.kept.validated).toEqual(validated);
    expect(validated.documents).toBe(valid.length);
    const { unvalidated } = server.app.documents.kept;
    expect(unvalidated.bytes).toBeLessThanOrEqual(REFUSED_DOCUMENT_BYTES_KEPT);
    expect(unvalidated.documents).toBeGreaterThan(0);
    expect(server.app.documents.keeps(dense(`Flood${sent - 1}`))).toBe(true);
    // Sent again, a document that validated is answered from what was kept, not parsed anew.
    expect((await postTo(server, valid[0] as string)).status).toBe(200);
    expect(server.app.documents.kept.validated).toEqual(validated);
  }, 60_000);
});
