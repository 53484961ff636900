import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { startTestServer, type TestServer, TOKENS } from './support/server.js';
import { rawRequest } from './support/untyped.js';

/**
 * MAX_QUERY_COST (src/http/query-cost.ts): each selected field counts once per item of the pages
 * around it, whether the page size is written in the document or sent as a variable. The server
 * here allows 1,000, so that the figures stay small enough to work out by hand.
 */

/** The README's example: 1 for `apps`, and per item totalCount, pageInfo and its 2, edges, node, 5 fields, activeTask and its 3. */
const APPS_FIELDS = `totalCount pageInfo { hasNextPage endCursor }
  edges { node { appName userId stage health reason activeTask { type status progress } } }`;
const PER_APP = 15;

describe('the query cost limit', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { MAX_QUERY_COST: '1000' } });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  const ask = (query: string, variables?: Record<string, unknown>) => rawRequest(server, { query, variables });
  const refusal = async (query: string, variables?: Record<string, unknown>) => {
    const response = await ask(query, variables);
    expect(response.body?.data ?? null, response.text).toBeNull();
    return { status: response.status, error: response.body?.errors?.[0] };
  };

  test('a page written in the document and the same page sent as a variable cost the same', async () => {
    const accepted = await ask(`{ apps(first: 50) { ${APPS_FIELDS} } }`);
    expect(accepted.status, accepted.text).toBe(200);
    expect(accepted.body?.errors).toBeUndefined();

    const cost = 1 + 100 * PER_APP;
    const literal = await refusal(`{ apps(first: 100) { ${APPS_FIELDS} } }`);
    const variable = await refusal(`query ($n: Int) { apps(first: $n) { ${APPS_FIELDS} } }`, { n: 100 });
    for (const { status, error } of [literal, variable]) {
      expect(status).toBe(400);
      expect(error).toMatchObject({
        message: expect.stringMatching(/^Query cost 1501 exceeds the limit of 1000 \(MAX_QUERY_COST\)/),
        extensions: { code: 'LIMIT_EXCEEDED', cost, maxCost: 1000 },
      });
    }
    // A variable's default counts as sent when it is not.
    const withDefault = `query ($n: Int = 60) { apps(first: $n) { ${APPS_FIELDS} } }`;
    expect((await ask(withDefault)).body?.errors).toBeUndefined();
    expect((await refusal(withDefault, { n: 100 })).error?.extensions).toMatchObject({ cost });
  });

  test('pages inside pages multiply, a page without a size counts 20 items, and aliases add up', async () => {
    // apps (1) + 20 × (edges, node, tasks + 20 × (edges, node, taskId)) = 1 + 20 × 63.
    const unsized = await refusal('{ apps { edges { node { tasks { edges { node { taskId } } } } } } }');
    expect(unsized.error?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', cost: 1261 });
    const aliased = Array.from(
      { length: 15 },
      (_, i) => `a${i}: apps(first: $n) { edges { node { tasks(first: $n) { edges { node { taskId status } } } } } }`,
    ).join(' ');
    const nested = await refusal(`query ($n: Int) { ${aliased} }`, { n: 100 });
    // 15 × (1 + 100 × (3 + 100 × 4)): what was 150,000 tasks in one request.
    expect(nested.error?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', cost: 15 * (1 + 100 * 403) });
    // Small pages of the same shape run.
    const small = await ask(`query ($n: Int) { ${aliased} }`, { n: 2 });
    expect(small.body?.errors, small.text).toBeUndefined();
  });

  test('first and last count alike, the larger of those given, whether written or sent', async () => {
    const page = `{ ${APPS_FIELDS} }`; // 1 + 100 × 15
    for (const [query, variables] of [
      [`{ apps(last: 100) ${page} }`, {}],
      [`query ($a: Int) { apps(first: $a, last: 100) ${page} }`, {}],
      [`query ($a: Int, $b: Int) { apps(first: $a, last: $b) ${page} }`, { b: 100 }],
      [`query ($a: Int = 100) { apps(last: $a) ${page} }`, {}],
    ] as const) {
      expect((await refusal(query, variables)).error?.extensions, query).toMatchObject({
        code: 'LIMIT_EXCEEDED',
        cost: 1501,
      });
    }
    // A negative size is refused by its own page, and lowers no one's cost: 20 items (the default)
    // for it, 100 for the other.
    const negative = await refusal(`{ a: apps(first: -100000) ${page} b: apps(first: 100) ${page} }`);
    expect(negative.error?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', cost: 1 + 20 * 15 + 1501 });
    // An explicit null is no size: the page's default (20) counts, well within the limit.
    const defaulted = await ask(`query ($a: Int = 100) { apps(last: $a) ${page} }`, { a: null });
    expect(defaulted.body?.errors, defaulted.text).toBeUndefined();
  });

  test('a named fragment spread many times is costed once: a document of fragments spreading fragments is refused at once', async () => {
    // 5 fragments, each spreading the next 80 times: 80^4 × 2 fields once expanded.
    const spreads = (next: string) => Array.from({ length: 80 }, () => `...${next}`).join(' ');
    const fragments = [0, 1, 2, 3].map((i) => `fragment F${i} on Query { ${spreads(`F${i + 1}`)} }`).join(' ');
    const query = `{ ...F0 } ${fragments} fragment F4 on Query { viewer { userId } }`;
    const { status, error } = await refusal(query);
    expect(status).toBe(400);
    expect(error?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', cost: 2 * 80 ** 4 });
  });

  test("a snapshot's apps and tasks count 1,000 items each, however few there are, and pages inside them multiply", async () => {
    expect((await ask('{ runtimeSnapshot { sequence } }')).body?.errors).toBeUndefined();
    // runtimeSnapshot, apps, then 1,000 × appName: the demo store holds a few apps, the cost is of what it could hold.
    const apps = await refusal('{ runtimeSnapshot { apps { appName } } }');
    expect(apps).toMatchObject({ status: 400, error: { extensions: { code: 'LIMIT_EXCEEDED', cost: 1002 } } });
    const tasks = await refusal('{ runtimeSnapshot { tasks { taskId } } }');
    expect(tasks.error?.extensions).toMatchObject({ cost: 1002 });
    // A page of tasks inside every app, and in every task's app: each counted 1,000 times.
    const nested = await refusal(
      '{ runtimeSnapshot { tasks { app { tasks(first: 99) { edges { node { taskId } } } } } } }',
    );
    expect(nested.error?.extensions).toMatchObject({ cost: 2 + 1000 * (2 + 99 * 3) });
  });

  test('over SSE a query over the limit is refused before it runs: its error as the one `next` of the stream', async () => {
    for (const path of ['/graphql/stream', '/graphql']) {
      const response = await fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: `{ apps(first: 100) { ${APPS_FIELDS} } }` }),
      });
      // graphql-sse's protocol: errors before execution go through an accepted stream, not a 400.
      expect(response.status, path).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const text = await response.text();
      const nexts = [...text.matchAll(/event: next\ndata: (.*)\n\n/g)].map((m) => JSON.parse(m[1] as string));
      expect(nexts, path).toHaveLength(1);
      const body = nexts[0] as { data?: unknown; errors: { extensions: Record<string, unknown> }[] };
      expect(body).not.toHaveProperty('data');
      expect(body.errors[0]?.extensions).toEqual({ code: 'LIMIT_EXCEEDED', cost: 1501, maxCost: 1000 });
      expect(text.endsWith('event: complete\ndata:\n\n'), path).toBe(true);
    }
    // Asked for as JSON (no event stream), the same query still gets the 400 POST answers with.
    const json = await fetch(`${server.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ apps(first: 100) { ${APPS_FIELDS} } }` }),
    });
    expect(json.status).toBe(400);
    expect(((await json.json()) as { errors: { extensions: unknown }[] }).errors[0]?.extensions).toMatchObject({
      code: 'LIMIT_EXCEEDED',
    });
  });

  test('over a WebSocket the same operation is refused the same way', async () => {
    const client = createClient({
      url: `${server.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
    });
    try {
      const result = await new Promise<{ errors?: readonly { message: string; extensions?: unknown }[] }>(
        (resolve, reject) => {
          client.subscribe(
            { query: `{ apps(first: 100) { ${APPS_FIELDS} } }` },
            { next: resolve, error: reject, complete: () => {} },
          );
        },
      );
      expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', cost: 1501 });
    } finally {
      await client.dispose();
    }
  });
});

describe('the list of webhooks in the query cost', () => {
  let server: TestServer;
  // webhooks (1) + MAX_WEBHOOKS × (deliveries + 50 × id): the limit one below it.
  const cost = 1 + 20 * (1 + 50);
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { MAX_WEBHOOKS: '20', MAX_QUERY_COST: String(cost - 1) } });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  test('counts MAX_WEBHOOKS webhooks, however few there are, and the deliveries page inside each', async () => {
    const ask = (last: number) =>
      rawRequest(server, { query: `{ webhooks { deliveries(last: ${last}) { id } } }` }, { token: TOKENS.ops });
    const refused = await ask(50);
    expect(refused.status, refused.text).toBe(400);
    expect(refused.body?.data ?? null).toBeNull();
    expect(refused.body?.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', cost, maxCost: cost - 1 });
    const smaller = await ask(49);
    expect(smaller.status, smaller.text).toBe(200);
    expect(smaller.body?.errors, smaller.text).toBeUndefined();
    expect(smaller.body?.data).toEqual({ webhooks: [] });
  });
});
