import { readFileSync } from 'node:fs';
import { print } from 'graphql';
import { createClient as createSseClient } from 'graphql-sse';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { HistoryAddedSubscription } from './support/operations.js';
import { openRawSocket } from './support/raw-ws.js';
import {
  AUTH_ENV,
  announceHistory,
  dataOf,
  installThroughApi,
  startTestServer,
  type TestServer,
  TOKENS,
} from './support/server.js';
import { subscribe } from './support/subscriptions.js';

/** One sample of the exposition: `name{labels} value`. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format, as far as these tests read it: samples and `# TYPE` lines. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1] as string, type[2] as string);
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key as string] = value as string;
    }
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return { samples, types };
}

async function scrape(server: TestServer, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}/metrics`, { headers });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const parsed = parseExposition(await response.text());
  /** The value of the sample with exactly these labels (among others); 0 when absent. */
  const value = (name: string, labels: Record<string, string> = {}) =>
    parsed.samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);
  return { ...parsed, value };
}

const value = async (server: TestServer, name: string, labels: Record<string, string> = {}) =>
  (await scrape(server)).value(name, labels);

function post(server: TestServer, body: unknown) {
  return fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify(body),
  });
}

const REQUESTS = 'market_graphql_requests_total';
const ERRORS = 'market_graphql_errors_total';
const FOLDED = 'market_metric_label_values_folded_total';

describe('/metrics', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { SIMULATED_STEP_MS: '10' } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  test('a query over the lean path and one over Yoga (a GET) are each counted once, with their latency', async () => {
    const servedBefore = server.app.fastPath?.served ?? 0;
    const fast = await post(server, { query: 'query MetricsFast { viewer { userId } }' });
    expect(fast.status).toBe(200);
    expect(server.app.fastPath?.served).toBe(servedBefore + 1);
    const query = encodeURIComponent('query MetricsGet { viewer { userId } }');
    const get = await fetch(`${server.graphqlUrl}?query=${query}`, { headers: { accept: 'application/json' } });
    expect(get.status).toBe(200);
    expect(server.app.fastPath?.served).toBe(servedBefore + 1);

    const metrics = await scrape(server);
    expect(metrics.value(REQUESTS, { operation: 'MetricsFast', type: 'query' })).toBe(1);
    expect(metrics.value(REQUESTS, { operation: 'MetricsGet', type: 'query' })).toBe(1);
    const count = 'market_graphql_operation_duration_seconds_count';
    expect(metrics.value(count, { operation: 'MetricsFast', type: 'query' })).toBe(1);
    expect(metrics.value(count, { operation: 'MetricsGet', type: 'query' })).toBe(1);
    expect(
      metrics.value('market_graphql_operation_duration_seconds_sum', { operation: 'MetricsFast' }),
    ).toBeGreaterThan(0);
  });

  test('failing requests are counted once each, with their errors by code', async () => {
    const before = await scrape(server);
    // Both are declined by the lean path and answered by Yoga: still one request each.
    expect((await post(server, { query: 'query Broken { viewer {' })).status).toBe(400);
    expect((await post(server, { query: 'query NoSuchField { viewer { shoeSize } }' })).status).toBe(400);
    // Executed on the lean path: a variable that does not coerce.
    const servedBefore = server.app.fastPath?.served ?? 0;
    const badVariable = await post(server, {
      query: 'query MetricsBadVar($first: Int) { apps(first: $first) { totalCount } }',
      variables: { first: 'many' },
    });
    expect(badVariable.status).toBe(400);
    expect(server.app.fastPath?.served).toBe(servedBefore + 1);

    const after = await scrape(server);
    const delta = (name: string, labels: Record<string, string>) =>
      after.value(name, labels) - before.value(name, labels);
    expect(delta(ERRORS, { code: 'GRAPHQL_PARSE_FAILED' })).toBe(1);
    expect(delta(ERRORS, { code: 'GRAPHQL_VALIDATION_FAILED' })).toBe(1);
    expect(delta(REQUESTS, { type: 'unknown' })).toBe(2);
    expect(delta(REQUESTS, { operation: 'MetricsBadVar', type: 'query' })).toBe(1);
    expect(delta(ERRORS, { code: 'VALIDATION' })).toBe(1);
  });

  test('an argument a resolver refuses counts under the code the client gets, not as an internal error', async () => {
    const before = await scrape(server);
    const refused = [
      { query: 'query MetricsBigPage { apps(first: 101) { totalCount } }' },
      {
        query: 'query MetricsLongId($id: String!) { task(taskId: $id) { taskId } }',
        variables: { id: 'x'.repeat(65) },
      },
    ];
    for (const body of refused) {
      const answer = await post(server, body);
      expect(JSON.stringify(await answer.json())).toContain('"code":"VALIDATION"');
    }
    const after = await scrape(server);
    const delta = (labels: Record<string, string>) => after.value(ERRORS, labels) - before.value(ERRORS, labels);
    expect({ validation: delta({ code: 'VALIDATION' }), internal: delta({ code: 'INTERNAL_SERVER_ERROR' }) }).toEqual({
      validation: 2,
      internal: 0,
    });
  });

  test('health probes and scrapes are not GraphQL requests', async () => {
    const before = await value(server, REQUESTS);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await fetch(`${server.url}/readiness`)).status).toBe(200);
    await scrape(server);
    expect(await value(server, REQUESTS)).toBe(before);
  });

  test('an install is counted by type and status, with its duration, and the engine and queue are shown', async () => {
    const finished = { type: 'INSTALL', status: 'COMPLETED' };
    const before = await value(server, 'market_tasks_finished_total', finished);
    const taskId = await installThroughApi(server, { appName: 'jellyfin', version: '1.2.0' });
    await expect
      .poll(async () => (await server.app.db.task.findUniqueOrThrow({ where: { taskId } })).status, { timeout: 15_000 })
      .toBe('COMPLETED');
    await expect.poll(() => value(server, 'market_tasks_finished_total', finished)).toBe(before + 1);
    const metrics = await scrape(server);
    expect(
      metrics.value('market_task_duration_seconds_count', { type: 'INSTALL', status: 'COMPLETED' }),
    ).toBeGreaterThanOrEqual(1);
    expect(metrics.value('market_tasks', { status: 'COMPLETED' })).toBeGreaterThanOrEqual(1);
    expect(metrics.value('market_engine_workers')).toBeGreaterThan(0);
    expect(metrics.samples.some((s) => s.name === 'market_task_queue_depth')).toBe(true);
    expect(metrics.value('market_runtime_event_sequence')).toBeGreaterThan(0);
    expect(metrics.value('market_runtime_events_total', { kind: 'TASK_CHANGED' })).toBeGreaterThan(0);
    expect(metrics.value('market_component_healthy', { component: 'database' })).toBe(1);
    expect(metrics.value('market_collector_source_up', { source: 'database' })).toBe(1);
    expect(metrics.value('market_database_ping_seconds')).toBeGreaterThan(0);
    // Node's default metrics, once.
    expect(metrics.types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(metrics.types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
    expect(metrics.types.get('nodejs_heap_size_used_bytes')).toBe('gauge');
    expect(metrics.types.get('nodejs_version_info')).toBe('gauge');
    // Left out for their cost on every request or scrape (src/platform/metrics.ts says why).
    expect(metrics.types.has('nodejs_gc_duration_seconds')).toBe(false);
    expect(metrics.types.has('process_open_fds')).toBe(false);
  });

  test('a subscription over graphql-ws and one over SSE show in the gauges and deliveries of their transport', async () => {
    const ws = await subscribe(server, HistoryAddedSubscription, {});
    const sse = createSseClient({ url: `${server.url}/graphql/stream`, retryAttempts: 0 });
    const sseEvents: unknown[] = [];
    const sseErrors: unknown[] = [];
    const unsubscribe = sse.subscribe(
      { query: print(HistoryAddedSubscription), variables: {} },
      { next: (event) => sseEvents.push(event), error: (error) => sseErrors.push(error), complete: () => {} },
    );
    await expect.poll(() => value(server, 'market_subscriptions', { transport: 'sse' })).toBe(1);
    await expect.poll(() => value(server, 'market_subscriptions', { transport: 'ws' })).toBe(1);
    const open = await scrape(server);
    expect(open.value('market_connections', { transport: 'ws' })).toBe(1);
    expect(open.value('market_connections', { transport: 'sse' })).toBe(1);
    expect(open.value('market_cohorts')).toBe(1); // same document and scope: one shared execution
    expect(open.value('market_subscriptions_started_total', { transport: 'ws' })).toBe(1);
    expect(open.value(REQUESTS, { operation: 'HistoryAdded', type: 'subscription' })).toBe(2);

    await announceHistory(server);
    await ws.next();
    await expect.poll(() => sseEvents.length).toBe(1);
    const delivered = await scrape(server);
    // One cohort: each of its results went to both members, one per transport.
    expect(delivered.value('market_deliveries_total', { transport: 'ws' })).toBeGreaterThanOrEqual(1);
    expect(delivered.value('market_deliveries_total', { transport: 'sse' })).toBe(
      delivered.value('market_deliveries_total', { transport: 'ws' }),
    );

    await ws.close();
    unsubscribe();
    sse.dispose();
    expect(sseErrors).toEqual([]);
    await expect.poll(() => value(server, 'market_subscriptions', { transport: 'ws' })).toBe(0);
    await expect.poll(() => value(server, 'market_subscriptions', { transport: 'sse' })).toBe(0);
  });

  test('a subscription refused before its operation is known takes no label of its own, whatever name it gives', async () => {
    const before = await scrape(server);
    const socket = await openRawSocket(server.url);
    try {
      socket.send({ type: 'connection_init', payload: {} });
      await socket.nextOfType('connection_ack');
      for (let index = 0; index < 30; index += 1) {
        // Not a valid document: refused before it runs, under the name the client gave.
        socket.send({
          id: String(index),
          type: 'subscribe',
          payload: { query: 'subscription { nope }', operationName: `Ghost${index}` },
        });
        await socket.nextOfType('error');
      }
    } finally {
      socket.socket.terminate();
    }
    const after = await scrape(server);
    const labels = after.samples.filter((s) => s.name === REQUESTS).map((s) => s.labels.operation ?? '');
    expect(labels.filter((label) => label.startsWith('Ghost'))).toEqual([]);
    const unknown = { operation: 'other', type: 'unknown' };
    expect(after.value(REQUESTS, unknown) - before.value(REQUESTS, unknown)).toBe(30);
    const refused = { metric: REQUESTS, reason: 'refused' };
    expect(after.value(FOLDED, refused) - before.value(FOLDED, refused)).toBe(30);
  });

  test('operation names are folded: 500 distinct names keep the label set bounded', async () => {
    const before = await scrape(server);
    expect(before.types.get(FOLDED)).toBe('counter');
    for (let index = 0; index < 500; index += 25) {
      await Promise.all(
        Array.from({ length: 25 }, (_, offset) =>
          post(server, { query: `query Flood${index + offset} { viewer { userId } }` }).then((r) => r.text()),
        ),
      );
    }
    const metrics = await scrape(server);
    const labels = new Set(metrics.samples.filter((s) => s.name === REQUESTS).map((s) => s.labels.operation));
    expect(labels.size).toBeLessThanOrEqual(210);
    expect(labels.has('other')).toBe(true);
    const flood = metrics.samples
      .filter(
        (s) =>
          s.name === REQUESTS &&
          s.labels.type === 'query' &&
          (s.labels.operation?.startsWith('Flood') || s.labels.operation === 'other'),
      )
      .reduce((sum, s) => sum + s.value, 0);
    expect(flood).toBe(500);
    // Each request counted as `other` is counted as a fold, so an operator sees it: one user (the
    // local development viewer) brought them all, so past its share of the labels.
    const other = { operation: 'other', type: 'query' };
    const perUser = { metric: REQUESTS, reason: 'per_user' };
    const folded = metrics.value(FOLDED, perUser) - before.value(FOLDED, perUser);
    expect(folded).toBeGreaterThanOrEqual(480);
    expect(folded).toBe(metrics.value(REQUESTS, other) - before.value(REQUESTS, other));
  });

  test('an operation name longer than a label may be is counted as other, and its fold as invalid', async () => {
    const before = await scrape(server);
    const name = `Long${'x'.repeat(120)}`;
    expect((await post(server, { query: `query ${name} { viewer { userId } }` })).status).toBe(200);
    const after = await scrape(server);
    const invalid = { metric: REQUESTS, reason: 'invalid' };
    expect(after.value(FOLDED, invalid) - before.value(FOLDED, invalid)).toBe(1);
    expect(after.samples.some((s) => s.labels.operation === name)).toBe(false);
    // The bound of error codes reports its folds too, from the start at 0.
    expect(after.samples.some((s) => s.name === FOLDED && s.labels.metric === ERRORS && s.value === 0)).toBe(true);
  });

  test('a single process without REDIS_URL shows no Redis metric: it talks to no Redis', async () => {
    const { types } = await scrape(server);
    expect(types.get(REQUESTS)).toBe('counter');
    expect([...types.keys()].filter((name) => name.includes('redis'))).toEqual([]);
  });

  test('the Grafana dashboard reads only metrics that /metrics exposes', async () => {
    const dashboard = JSON.parse(readFileSync('deploy/grafana/market-runtime.json', 'utf8')) as {
      panels: { targets?: { expr: string }[] }[];
    };
    const expressions = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));
    expect(expressions.length).toBeGreaterThan(10);
    const { types } = await scrape(server);
    const exposed = new Set<string>();
    for (const [name, type] of types) {
      exposed.add(name);
      if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exposed.add(name + suffix);
    }
    // Exposed in cluster mode only (REDIS_URL), where test/cluster.test.ts reads them from /metrics.
    exposed.add('market_redis_connected');
    for (const suffix of ['_bucket', '_sum', '_count']) exposed.add(`market_redis_append_duration_seconds${suffix}`);
    const referenced = new Set(expressions.flatMap((expr) => expr.match(/\b(market|process|nodejs)_\w+/g) ?? []));
    expect(referenced.size).toBeGreaterThan(10);
    expect([...referenced].filter((name) => !exposed.has(name))).toEqual([]);
  });
});

describe('/metrics with METRICS_TOKEN', () => {
  let server: TestServer;
  const token = 'scrape-token-0123456789';

  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      env: { ...AUTH_ENV, METRICS_TOKEN: token, MUTATION_BURST: '1', MUTATION_RATE_PER_S: '0.001' },
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  test('answers 401 without the bearer token or with a wrong one, and the metrics with it', async () => {
    const without = await fetch(`${server.url}/metrics`);
    expect(without.status).toBe(401);
    expect(without.headers.get('www-authenticate')).toBe('Bearer');
    expect(await without.text()).not.toContain('market_');
    const wrong = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${token}x` } });
    expect(wrong.status).toBe(401);
    // A user's API token is not the scrape token.
    const user = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TOKENS.ops}` } });
    expect(user.status).toBe(401);
    const metrics = await scrape(server, { authorization: `Bearer ${token}` });
    expect(metrics.types.get(REQUESTS)).toBe('counter');
    // The scheme is case-insensitive (RFC 9110), as on /graphql.
    expect((await fetch(`${server.url}/metrics`, { headers: { authorization: `bearer ${token}` } })).status).toBe(200);
  });

  test('a query by an authenticated user is counted under its operation name', async () => {
    const before = (await scrape(server, { authorization: `Bearer ${token}` })).value(REQUESTS, {
      operation: 'MetricsViewer',
    });
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.alice}` },
      body: JSON.stringify({ query: 'query MetricsViewer { viewer { userId } }' }),
    });
    expect(dataOf({ status: response.status, headers: response.headers, ...(await response.json()) })).toEqual({
      viewer: { userId: 'alice' },
    });
    const after = (await scrape(server, { authorization: `Bearer ${token}` })).value(REQUESTS, {
      operation: 'MetricsViewer',
    });
    expect(after - before).toBe(1);
  });

  test('a mutation refused by the rate limit on the lean path is counted, with its code', async () => {
    const scrapeValue = async (name: string, labels: Record<string, string>) =>
      (await scrape(server, { authorization: `Bearer ${token}` })).value(name, labels);
    const mutation = { operation: 'MetricsCancel', type: 'mutation' };
    const before = await scrapeValue(REQUESTS, mutation);
    const limitedBefore = await scrapeValue(ERRORS, { code: 'RATE_LIMITED' });
    const cancel = () =>
      fetch(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.bob}` },
        body: JSON.stringify({
          query: 'mutation MetricsCancel { cancelTask(input: { taskId: "no-such-task" }) { __typename } }',
        }),
      });
    expect((await cancel()).status).toBe(200);
    expect((await cancel()).status).toBe(429);
    expect((await scrapeValue(REQUESTS, mutation)) - before).toBe(2);
    expect((await scrapeValue(ERRORS, { code: 'RATE_LIMITED' })) - limitedBefore).toBe(1);
  });

  test('names past the labels one user may bring are counted as other, each fold as per_user', async () => {
    const metrics = async () => scrape(server, { authorization: `Bearer ${token}` });
    const before = await metrics();
    const names = Array.from({ length: 25 }, (_, index) => `OpsShare${index}`);
    for (const name of names) {
      const response = await fetch(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.ops}` },
        body: JSON.stringify({ query: `query ${name} { viewer { userId } }` }),
      });
      expect(response.status).toBe(200);
    }
    const after = await metrics();
    const labelled = names.filter((name) => after.value(REQUESTS, { operation: name }) === 1).length;
    const perUser = { metric: REQUESTS, reason: 'per_user' };
    // One user brings at most 20 names (OperationMetrics' maxOperationsPerUser); the other 5 are folds.
    expect(labelled).toBe(20);
    expect(after.value(FOLDED, perUser) - before.value(FOLDED, perUser)).toBe(5);
  });

  test('POSTs refused before their body is read (no token, a wrong one, a body past MAX_BODY_BYTES) are counted', async () => {
    const metrics = async () => scrape(server, { authorization: `Bearer ${token}` });
    // Their operation's name was never read: counted without one.
    const refused = { operation: 'anonymous', type: 'unknown' };
    const before = await metrics();
    const post = (headers: Record<string, string>, body = '{"query":"{ viewer { userId } }"}') =>
      fetch(server.graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    expect((await post({})).status).toBe(401);
    expect((await post({ authorization: 'Bearer not-a-token-of-anyone' })).status).toBe(401);
    const large = JSON.stringify({ query: '{ viewer { userId } }', variables: { pad: 'x'.repeat(1_100_000) } });
    expect((await post({ authorization: `Bearer ${TOKENS.bob}` }, large)).status).toBe(413);
    const after = await metrics();
    const delta = (name: string, labels: Record<string, string>) =>
      after.value(name, labels) - before.value(name, labels);
    expect(delta(REQUESTS, refused)).toBe(3);
    expect(delta(ERRORS, { code: 'UNAUTHENTICATED' })).toBe(2);
    expect(delta(ERRORS, { code: 'VALIDATION' })).toBe(1);
  });
});

describe('/metrics once every operation label is taken', () => {
  let server: TestServer;
  /** Eleven users of 20 names each bring more names than the 200 labels. */
  const users = Array.from({ length: 11 }, (_, index) => ({
    name: `user${index}`,
    token: `label-user-token-${index}`,
  }));

  beforeAll(async () => {
    const tokens = users.map(({ name, token }) => `${name}:user:${token}`).join(',');
    server = await startTestServer('sqlite', { env: { AUTH_TOKENS: tokens, DEMO_DATA: '0' } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  test('names past the 200 labels are counted as other, each fold as full', async () => {
    const before = await scrape(server);
    for (const { name: user, token } of users) {
      const names = Array.from({ length: 20 }, (_, index) => `Full${user}n${index}`);
      for (const name of names) {
        const response = await fetch(server.graphqlUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ query: `query ${name} { viewer { userId } }` }),
        });
        expect(response.status).toBe(200);
      }
    }
    const after = await scrape(server);
    const full = { metric: REQUESTS, reason: 'full' };
    const other = { operation: 'other', type: 'query' };
    const folded = after.value(FOLDED, full) - before.value(FOLDED, full);
    // 220 names for 200 labels: at least 20 folds (fewer labels are left when others were taken before).
    expect(folded).toBeGreaterThanOrEqual(20);
    expect(folded).toBe(after.value(REQUESTS, other) - before.value(REQUESTS, other));
    expect(after.value(FOLDED, { metric: REQUESTS, reason: 'per_user' })).toBe(0);
  });
});
