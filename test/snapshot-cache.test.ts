import { readFileSync } from 'node:fs';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { parse, print } from 'graphql';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readsOnlyRuntimeState } from '../src/http/snapshot-selection.js';
import { VersionedLru } from '../src/platform/versioned-lru.js';
import { type ComponentStatus, StateStore } from '../src/runtime/state-store.js';
import { schema } from '../src/schema/index.js';
import { RuntimeEventsSubscription } from './support/operations.js';
import { AUTH_ENV, installThroughApi, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { subscribe } from './support/subscriptions.js';

/**
 * runtimeSnapshot results are computed once per store revision and viewer scope (every admin, or
 * one user) and served to every later request of that scope until the store changes
 * (http/snapshot-result-cache.ts). What a client sees: the same bytes, `generatedAt` included,
 * for every viewer of the scope; never another scope's apps; a change seen by the next query.
 */

const ROOT = 'root-admin-token-0004';
// Printed, as the graphql-ws client sends it: the same text over HTTP and the WebSocket.
const SNAPSHOT = print(
  parse(`query Snap($filter: SnapshotFilter) {
  runtimeSnapshot(filter: $filter) {
    sequence generatedAt
    summary { totalApps totalTasks }
    apps { userId appName stage }
    tasks { taskId userId status }
    components { name state metrics }
  }
}`),
);

interface Snap {
  sequence: number;
  generatedAt: string;
  apps: { userId: string; appName: string }[];
  tasks: { userId: string }[];
}
interface Reply {
  status: number;
  text: string;
  snapshot: Snap | undefined;
  codes: string[];
}

async function post(server: TestServer, token: string, variables: object = {}, query = SNAPSHOT): Promise<Reply> {
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  const body = JSON.parse(text) as { data?: { runtimeSnapshot?: Snap }; errors?: { extensions?: { code?: string } }[] };
  const codes = (body.errors ?? []).map((error) => error.extensions?.code ?? '');
  return { status: response.status, text, snapshot: body.data?.runtimeSnapshot ?? undefined, codes };
}

/** Two reads in a row that answer the same bytes (the store may still settle from start-up). */
function sameTwice(server: TestServer, tokens: [string, string], variables: object = {}): Promise<Reply> {
  return waitFor(async () => {
    const first = await post(server, tokens[0], variables);
    const second = await post(server, tokens[1], variables);
    return first.text === second.text ? second : undefined;
  }, 'two reads of the same revision');
}

describe('runtimeSnapshot served from one computation per store revision and scope', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      // No periodic collect: component metrics would move the revision during the test.
      env: {
        AUTH_TOKENS: `${AUTH_ENV.AUTH_TOKENS},root:admin:${ROOT}`,
        SIMULATED_STEP_MS: '0',
        COLLECT_INTERVAL_MS: '3600000',
      },
    });
  });
  afterAll(() => server?.stop());

  test('every admin gets the same computed snapshot; each user only theirs, never from another scope', async () => {
    const admins = await sameTwice(server, [TOKENS.ops, ROOT]);
    const owners = new Set(admins.snapshot?.apps.map((app) => app.userId));
    expect(owners.has('alice') && owners.has('bob')).toBe(true);

    const alice = await sameTwice(server, [TOKENS.alice, TOKENS.alice]);
    const bob = await post(server, TOKENS.bob);
    expect(alice.snapshot?.apps.length).toBeGreaterThan(0);
    expect(alice.snapshot?.apps.every((app) => app.userId === 'alice')).toBe(true);
    expect(alice.snapshot?.tasks.every((task) => task.userId === 'alice')).toBe(true);
    expect(bob.snapshot?.apps.length).toBeGreaterThan(0);
    expect(bob.snapshot?.apps.every((app) => app.userId === 'bob')).toBe(true);
    // Asked after the admins' and alice's, with the same document and variables: computed for bob.
    expect(bob.text).not.toBe(alice.text);

    // An admin's filtered read is kept; a user sending the same variables is still refused.
    const bobsAsAdmin = await post(server, TOKENS.ops, { filter: { userId: 'bob' } });
    expect(bobsAsAdmin.snapshot?.apps.every((app) => app.userId === 'bob')).toBe(true);
    const refused = await post(server, TOKENS.alice, { filter: { userId: 'bob' } });
    expect(refused.codes).toEqual(['FORBIDDEN']);
    expect(refused.snapshot).toBeUndefined();
    expect((await post(server, TOKENS.ops, { filter: { userId: 'bob' } })).text).toBe(bobsAsAdmin.text);
  });

  test('Yoga’s own HTTP handling (a GET) answers the kept result with the same bytes as the lean path', async () => {
    const overPost = await sameTwice(server, [TOKENS.alice, TOKENS.alice]);
    const query = new URLSearchParams({ query: SNAPSHOT, variables: '{}' });
    const response = await fetch(`${server.graphqlUrl}?${query}`, {
      headers: { accept: 'application/json', authorization: `Bearer ${TOKENS.alice}` },
    });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe(overPost.text);
  });

  test('a query over a WebSocket answered from the kept result gets the same data', async () => {
    const overHttp = await sameTwice(server, [TOKENS.alice, TOKENS.alice]);
    const document = parse(SNAPSHOT) as TypedDocumentNode<{ runtimeSnapshot: Snap }, object>;
    const socket = await subscribe(server, document, {}, { token: TOKENS.alice });
    try {
      expect((await socket.next()).runtimeSnapshot).toEqual(overHttp.snapshot);
    } finally {
      await socket.close();
    }
  });

  test('texts of one operation that differ by comments, whitespace and unused variables share one computation', async () => {
    // The same operation as another client might write it: a comment, its own layout, commas.
    const written = `# the dashboard's snapshot\n${SNAPSHOT.replace(/\s*\n\s*/g, ' , ')}`;
    expect(written).not.toBe(SNAPSHOT);
    const { first, other } = await waitFor(async () => {
      const first = await post(server, TOKENS.alice);
      // A computation from now on would show another generatedAt.
      while (Date.now() <= Date.parse(first.snapshot?.generatedAt ?? '')) await new Promise(setImmediate);
      const other = await post(server, TOKENS.alice, { unused: 'x' }, written);
      const again = await post(server, TOKENS.alice);
      // The store did not move meanwhile: all three were asked of one revision.
      return again.text === first.text ? { first, other } : undefined;
    }, 'three reads of one revision');
    expect(other.snapshot?.apps.length).toBeGreaterThan(0);
    expect(other.text).toBe(first.text);
  });

  test('a change of the store is seen by the next query', async () => {
    const before = await sameTwice(server, [TOKENS.alice, TOKENS.alice]);
    expect(before.snapshot?.apps.some((app) => app.appName === 'ghost')).toBe(false);
    const events = await subscribe(server, RuntimeEventsSubscription, {}, { token: TOKENS.alice });
    try {
      await installThroughApi(server, { appName: 'ghost', version: '5.104.2' }, TOKENS.alice);
      // The event is delivered after the store applied the change: the next query must show it.
      const [event] = (await events.until((e) => e.runtimeEvents.app?.appName === 'ghost')).slice(-1);
      const after = await post(server, TOKENS.alice);
      expect(after.snapshot?.apps.some((app) => app.appName === 'ghost')).toBe(true);
      expect(after.snapshot?.sequence).toBeGreaterThanOrEqual(event?.runtimeEvents.sequence ?? Number.NaN);
      expect(after.snapshot?.generatedAt).not.toBe(before.snapshot?.generatedAt);
    } finally {
      await events.close();
    }
  });
});

describe('what may be cached', () => {
  const cacheable = (text: string, operationName?: string) => readsOnlyRuntimeState(schema, parse(text), operationName);

  test('only queries of runtimeSnapshot over fields of the store’s content', () => {
    expect(cacheable(SNAPSHOT)).toBe(true);
    expect(
      cacheable(`query { a: runtimeSnapshot { ...S } b: runtimeSnapshot(filter: { stage: [FAILED] }) { __typename } }
        fragment S on RuntimeSnapshot { apps { ... on App { appName entrances { url } } } chartRepo { reachable } }`),
    ).toBe(true);
    // Read from the catalogue or the database, not the store: their revision is not the store's.
    expect(cacheable('{ runtimeSnapshot { apps { appName latestVersion } } }')).toBe(false);
    expect(cacheable('{ runtimeSnapshot { apps { activeTask { taskId } } } }')).toBe(false);
    expect(cacheable('{ runtimeSnapshot { tasks { app { appName } } } }')).toBe(false);
    expect(cacheable('{ viewer { userId } runtimeSnapshot { sequence } }')).toBe(false);
    expect(cacheable('{ components { name } }')).toBe(false);
    expect(cacheable('subscription { runtimeSnapshot { sequence } }')).toBe(false);
    expect(cacheable('query A { runtimeSnapshot { sequence } } query B { viewer { userId } }', 'B')).toBe(false);
  });

  test('the dashboard’s snapshot, as dashboard.js sends it, waiting tasks’ messages included', () => {
    const source = readFileSync(new URL('../src/dashboard/dashboard.js', import.meta.url), 'utf8');
    const [snapshot] = [...source.matchAll(/\/\* GraphQL \*\/ `([^`]*)`/g)].map((m) => m[1] as string);
    expect(snapshot).toContain('error message progress');
    expect(cacheable(snapshot as string)).toBe(true);
    expect(cacheable('{ runtimeSnapshot { tasks { taskId status message } } }')).toBe(true);
  });
});

describe('the store revision a cached result is keyed on', () => {
  const component = (metrics: Record<string, unknown>): ComponentStatus => ({
    name: 'collector',
    healthy: true,
    state: 'RUNNING',
    message: null,
    lastCheck: new Date(),
    metrics,
  });

  test('moves with changes that make no event (component metrics, the chart repo’s lastUpdate)', () => {
    const store = new StateStore({ bufferSize: 10, recentFinishedTasks: 10 });
    store.putComponent(component({ cycles: 1 }));
    const sequence = store.lastSequence;
    const revision = store.revision;
    store.putComponent(component({ cycles: 2 })); // metrics alone: not pushed (componentMetricsPushMs 0)
    expect(store.lastSequence).toBe(sequence);
    expect(store.revision).toBeGreaterThan(revision);
    const status = {
      reachable: true,
      lastError: null,
      lastUpdate: new Date(1),
      system: null,
      apps: [],
      images: [],
      tasks: null,
    };
    store.setChartRepo(status);
    const afterFirst = store.revision;
    store.setChartRepo({ ...status, lastUpdate: new Date(2) });
    expect(store.revision).toBeGreaterThan(afterFirst);
  });
});

describe('VersionedLru', () => {
  test('holds one version only, at most maxEntries and maxWeight, least recently used out first', () => {
    const cache = new VersionedLru<string>({ maxEntries: 3, maxWeight: 10 });
    cache.set(1, 'a', 'A', 2);
    cache.set(1, 'b', 'B', 2);
    cache.set(1, 'c', 'C', 2);
    expect(cache.get(1, 'a')).toBe('A'); // a is now the most recently used
    cache.set(1, 'd', 'D', 2);
    expect([cache.get(1, 'b'), cache.size]).toEqual([undefined, 3]);
    cache.set(1, 'e', 'E', 8); // over the weight: the oldest (c, then a) leave until it fits
    expect([cache.get(1, 'c'), cache.get(1, 'a'), cache.get(1, 'd'), cache.get(1, 'e')]).toEqual([
      undefined,
      undefined,
      'D',
      'E',
    ]);
    expect([cache.size, cache.totalWeight]).toEqual([2, 10]);
    cache.set(1, 'f', 'F', 11); // heavier than the bound alone: not kept
    expect([cache.get(1, 'f'), cache.size]).toEqual([undefined, 2]);
    expect(cache.get(2, 'e')).toBeUndefined(); // a new version: everything older is dropped
    expect([cache.size, cache.totalWeight]).toEqual([0, 0]);
    for (let i = 0; i < 100; i += 1) cache.set(2, `k${i}`, 'v', 1);
    expect(cache.size).toBe(3);
  });
});
