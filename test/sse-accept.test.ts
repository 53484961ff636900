import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AUTH_ENV, announceHistory, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { readAsItArrives } from './support/subscriptions.js';

/** The Accept urql (@urql/core 5) sends with every query, mutation and fetched subscription. */
const URQL_ACCEPT =
  'application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed';
const HISTORY = 'subscription { historyAdded { userId } }';

describe('the Accept header decides between JSON and an event stream on /graphql', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: AUTH_ENV });
  });
  afterAll(() => server?.stop());

  const headers = (accept: string, token: string = TOKENS.alice) => ({
    authorization: `Bearer ${token}`,
    'content-type': 'application/json',
    accept,
  });
  const post = (accept: string, query: string) =>
    fetch(server.graphqlUrl, { method: 'POST', headers: headers(accept), body: JSON.stringify({ query }) });

  test('a query with urql Accept is answered as JSON on a kept-alive connection, by POST and by GET', async () => {
    const byPost = await post(URQL_ACCEPT, '{ viewer { userId } }');
    const byGet = await fetch(`${server.graphqlUrl}?query=${encodeURIComponent('{ viewer { userId } }')}`, {
      headers: { authorization: `Bearer ${TOKENS.alice}`, accept: URQL_ACCEPT },
    });
    for (const response of [byPost, byGet]) {
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^application\/graphql-response\+json/);
      expect(response.headers.get('connection')).not.toBe('close');
      expect(await response.json()).toEqual({ data: { viewer: { userId: 'alice' } } });
    }
  });

  test('a mutation and a document that does not parse, with urql Accept, get JSON answers as without it', async () => {
    const mutation = await post(URQL_ACCEPT, 'mutation { cancelTask(input: { taskId: "nope" }) { __typename } }');
    expect(mutation.headers.get('content-type')).toMatch(/^application\/graphql-response\+json/);
    expect(await mutation.json()).toHaveProperty('data.cancelTask.__typename');
    const broken = await post(URQL_ACCEPT, '{ viewer {');
    expect(broken.status).toBe(400);
    expect(broken.headers.get('content-type')).toMatch(/^application\/graphql-response\+json/);
    expect(await broken.json()).toMatchObject({ errors: [{ extensions: { code: 'GRAPHQL_PARSE_FAILED' } }] });
  });

  test('a multipart upload with urql Accept reaches the upload path, not the event stream', async () => {
    const form = new FormData();
    const mutation = 'mutation ($chart: File!) { uploadChart(chart: $chart) { __typename } }';
    form.set('operations', JSON.stringify({ query: mutation, variables: { chart: null } }));
    form.set('map', JSON.stringify({ 0: ['variables.chart'] }));
    form.set('0', new File([Buffer.from('not a chart')], 'chart.tgz', { type: 'application/gzip' }));
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKENS.ops}`, 'x-graphql-yoga-csrf': '1', accept: URQL_ACCEPT },
      body: form,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/graphql-response\+json/);
    expect(await response.json()).toHaveProperty('data.uploadChart.__typename');
  });

  test('a subscription with urql Accept (fetchSubscriptions) is still streamed, by POST and by GET', async () => {
    const requests: [string, RequestInit][] = [
      [server.graphqlUrl, { method: 'POST', headers: headers(URQL_ACCEPT), body: JSON.stringify({ query: HISTORY }) }],
      [`${server.graphqlUrl}?query=${encodeURIComponent(HISTORY)}`, { headers: headers(URQL_ACCEPT) }],
    ];
    for (const [url, init] of requests) {
      const abort = new AbortController();
      const response = await fetch(url, { ...init, signal: abort.signal });
      const stream = readAsItArrives(response, abort);
      try {
        expect(response.status, init.method).toBe(200);
        expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
        await waitFor(async () => {
          if (stream.text.includes('event: next')) return true;
          await announceHistory(server);
          return undefined;
        }, 'an event');
        expect(stream.text).toContain('"historyAdded":{"userId":"alice"}');
      } finally {
        await stream.close();
      }
    }
  });

  test('q-values and order decide which type a query is answered in; a JSON type liked as much wins', async () => {
    const answers: Record<string, string | null> = {};
    for (const accept of [
      'text/event-stream',
      'text/event-stream, application/json',
      'application/json;q=0.5, text/event-stream',
      'text/event-stream;q=0.5, application/json',
      'application/json, text/event-stream',
      'text/event-stream;q=0.5, */*',
    ]) {
      const response = await post(accept, '{ viewer { userId } }');
      answers[accept] = response.headers.get('content-type');
      await response.text();
    }
    expect(answers).toEqual({
      'text/event-stream': 'text/event-stream; charset=utf-8',
      'text/event-stream, application/json': 'text/event-stream; charset=utf-8',
      'application/json;q=0.5, text/event-stream': 'text/event-stream; charset=utf-8',
      'text/event-stream;q=0.5, application/json': 'application/json; charset=utf-8',
      'application/json, text/event-stream': 'application/json; charset=utf-8',
      'text/event-stream;q=0.5, */*': 'application/json; charset=utf-8',
    });
  });

  test('a subscription refused before it runs, asked with urql Accept, gets its errors as JSON', async () => {
    const response = await post(URQL_ACCEPT, 'subscription { historyAdded { noSuchField } }');
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/^application\/(graphql-response\+)?json/);
    expect(await response.json()).toMatchObject({ errors: [{ message: expect.stringMatching(/noSuchField/) }] });
    expect(server.app.subscriptionStats()).toMatchObject({ streams: 0 });
  });
});
