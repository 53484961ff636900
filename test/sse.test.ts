import { print } from 'graphql';
import { createClient } from 'graphql-sse';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { HistoryAddedSubscription } from './support/operations.js';
import { AUTH_ENV, announceHistory, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { readAsItArrives, subscribe } from './support/subscriptions.js';

const HISTORY = 'subscription { historyAdded { id userId type } }';

/** An SSE request read by hand: the raw text as it arrives, to see the wire format. */
async function rawStream(server: TestServer, path: string, init: RequestInit & { token?: string } = {}) {
  const abort = new AbortController();
  const response = await fetch(`${server.url}${path}`, {
    ...init,
    signal: abort.signal,
    headers: {
      accept: 'text/event-stream',
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      ...(init.body ? { 'content-type': 'application/json' } : {}),
    },
  });
  const stream = readAsItArrives(response, abort);
  return {
    response,
    get text() {
      return stream.text;
    },
    get ended() {
      return stream.ended;
    },
    /** The `data` of every `next` event so far. */
    nexts(): unknown[] {
      return [...stream.text.matchAll(/event: next\ndata: (.*)\n\n/g)].map((m) => JSON.parse(m[1] as string));
    },
    close: () => stream.close(),
  };
}

describe('server-sent events', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: AUTH_ENV });
  });
  afterAll(() => server?.stop());

  test("Yoga's plain SSE on /graphql (GET, Accept: text/event-stream): a comment at once, then `next` events", async () => {
    const stream = await rawStream(server, `/graphql?query=${encodeURIComponent(HISTORY)}`, { token: TOKENS.ops });
    try {
      expect(stream.response.status).toBe(200);
      expect(stream.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      // The stream runs until the connection closes: no chunk framing around every event.
      expect(stream.response.headers.get('transfer-encoding')).toBeNull();
      expect(stream.response.headers.get('connection')).toBe('close');
      await waitFor(async () => {
        if (stream.nexts().length) return true;
        await announceHistory(server);
        return undefined;
      }, 'an event');
      expect(stream.text.startsWith(':\n\n')).toBe(true);
      expect(stream.nexts()[0]).toMatchObject({ data: { historyAdded: { userId: 'alice' } } });
    } finally {
      await stream.close();
    }
  });

  test('a query over SSE (POST): one `next`, then `complete`, and the response ends', async () => {
    const stream = await rawStream(server, '/graphql/stream', {
      method: 'POST',
      token: TOKENS.alice,
      body: JSON.stringify({ query: '{ viewer { userId } }' }),
    });
    await waitFor(async () => (stream.ended ? true : undefined), 'the response to end');
    expect(stream.text).toBe('event: next\ndata: {"data":{"viewer":{"userId":"alice"}}}\n\nevent: complete\ndata:\n\n');
  });

  test('bad requests are refused before any stream starts, with nothing subscribed', async () => {
    const noToken = await fetch(`${server.url}/graphql/stream?query=${encodeURIComponent(HISTORY)}`);
    expect(noToken.status).toBe(401);
    expect(await noToken.json()).toMatchObject({ errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] });

    const headers = { authorization: `Bearer ${TOKENS.ops}`, 'content-type': 'application/json' };
    // Without Accept: text/event-stream, an invalid document is a 400 (graphql-sse's handler answers so too).
    const invalid = await fetch(`${server.url}/graphql/stream`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ query: 'subscription { noSuchField }' }),
    });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toMatchObject({ errors: [{ message: expect.stringMatching(/noSuchField/) }] });

    // As the GraphQL route answers the same mistakes: a code, and a 405 says what is allowed.
    const garbage = await fetch(`${server.url}/graphql/stream`, { method: 'POST', headers, body: '{not json' });
    expect(garbage.status).toBe(400);
    expect(await garbage.json()).toEqual({
      errors: [{ message: 'body is not valid JSON', extensions: { code: 'BAD_REQUEST' } }],
    });
    const badVariables = await fetch(
      `${server.url}/graphql/stream?query=${encodeURIComponent(HISTORY)}&variables=${encodeURIComponent('[1]')}`,
      { headers },
    );
    expect(badVariables.status).toBe(400);
    expect(await badVariables.json()).toMatchObject({ errors: [{ extensions: { code: 'BAD_REQUEST' } }] });
    const mutation = 'mutation { cancelTask(input: { taskId: "x" }) { __typename } }';
    const mutationByGet = await fetch(`${server.url}/graphql/stream?query=${encodeURIComponent(mutation)}`, {
      headers,
    });
    expect(mutationByGet.status).toBe(405);
    expect(mutationByGet.headers.get('allow')).toBe('POST');
    expect(await mutationByGet.json()).toMatchObject({ errors: [{ extensions: { code: 'BAD_REQUEST' } }] });
    expect(server.app.subscriptionStats()).toMatchObject({ streams: 0, subscriptions: 0 });
  });

  test('an invalid document asked for as an event stream gets its errors as one `next`, then `complete`, on both paths', async () => {
    // graphql-sse's PROTOCOL.md: errors of the steps before execution go through an accepted stream.
    for (const path of ['/graphql/stream', '/graphql']) {
      const stream = await rawStream(server, path, {
        method: 'POST',
        token: TOKENS.ops,
        body: JSON.stringify({ query: 'subscription { noSuchField }' }),
      });
      await waitFor(async () => (stream.ended ? true : undefined), 'the response to end');
      expect(stream.response.status, path).toBe(200);
      expect(stream.response.headers.get('content-type'), path).toMatch(/^text\/event-stream/);
      expect(stream.nexts(), path).toEqual([
        {
          errors: [
            expect.objectContaining({
              message: expect.stringMatching(/noSuchField/),
              extensions: expect.objectContaining({ code: 'GRAPHQL_VALIDATION_FAILED' }),
            }),
          ],
        },
      ]);
      expect(stream.text.endsWith('event: complete\ndata:\n\n'), path).toBe(true);
    }
    // No stream was counted for them, nothing subscribed.
    expect(server.app.subscriptionStats()).toMatchObject({ streams: 0, subscriptions: 0 });
  });

  test("graphql-sse's own client, with its default retries, gets an invalid subscription's errors at once, in one request", async () => {
    let requests = 0;
    const client = createClient({
      url: `${server.url}/graphql/stream`,
      headers: { authorization: `Bearer ${TOKENS.ops}`, 'x-request-id': 'sse-invalid-document' },
      fetchFn: (input: RequestInfo | URL, init?: RequestInit) => {
        requests += 1;
        return fetch(input, init);
      },
    });
    const started = performance.now();
    const outcome = new Promise<{ next?: unknown; error?: unknown }>((resolve) => {
      client.subscribe(
        { query: 'subscription { noSuchField }' },
        { next: (next) => resolve({ next }), error: (error) => resolve({ error }), complete: () => {} },
      );
    });
    // A deadline, not a wait: a 400 made the client retry for some 40 s before reporting a NetworkError.
    let deadline: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      deadline = setTimeout(() => resolve('late'), 5000);
    });
    try {
      const result = await Promise.race([outcome, late]);
      expect(result).toEqual({
        next: { errors: [expect.objectContaining({ message: expect.stringMatching(/noSuchField/) })] },
      });
      expect(performance.now() - started).toBeLessThan(1000);
      expect(requests).toBe(1);
    } finally {
      clearTimeout(deadline);
      client.dispose();
    }
    // The request's log line still says why it was refused, although its status is 200.
    const line = await waitFor(
      async () =>
        server.logs.find(
          (text) => text.includes('"requestId":"sse-invalid-document"') && text.includes('"msg":"request"'),
        ),
      'the request line',
    );
    expect(JSON.parse(line)).toMatchObject({ status: 200, code: 'GRAPHQL_VALIDATION_FAILED' });
  });

  test('a subscription to /graphql that does not ask for text/event-stream is refused (406), never streamed', async () => {
    // Yoga's own SSE answered these, outside every limit of the streaming transports.
    for (const accept of [undefined, '*/*', 'application/json']) {
      const headers: Record<string, string> = {
        authorization: `Bearer ${TOKENS.ops}`,
        'content-type': 'application/json',
      };
      if (accept) headers.accept = accept;
      const refused = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ query: HISTORY }),
      });
      expect(refused.status, String(accept)).toBe(406);
      expect(refused.headers.get('accept'), String(accept)).toBe('text/event-stream');
    }
    const plain = await fetch(`${server.url}/graphql?query=${encodeURIComponent(HISTORY)}`, {
      headers: { authorization: `Bearer ${TOKENS.ops}` },
    });
    expect(plain.status).toBe(406);
    expect(await plain.json()).toMatchObject({
      errors: [
        { message: expect.stringMatching(/Accept: text\/event-stream/), extensions: { code: 'NOT_ACCEPTABLE' } },
      ],
    });
    expect(server.app.subscriptionStats()).toMatchObject({ streams: 0, subscriptions: 0 });
  });

  test("a non-admin asking for another user's history gets FORBIDDEN as an event, then `complete`", async () => {
    const stream = await rawStream(server, '/graphql/stream', {
      method: 'POST',
      token: TOKENS.bob,
      body: JSON.stringify({ query: 'subscription { historyAdded(filter: { userId: "alice" }) { id } }' }),
    });
    await waitFor(async () => (stream.ended ? true : undefined), 'the response to end');
    expect(stream.nexts()).toMatchObject([{ errors: [{ extensions: { code: 'FORBIDDEN' } }] }]);
    expect(stream.text.endsWith('event: complete\ndata:\n\n')).toBe(true);
  });

  test("graphql-sse's single-connection mode is refused: no reservation is created, the client is told", async () => {
    // A reservation is state any client could create before authenticating (and never expired).
    const reserve = await fetch(`${server.url}/graphql/stream`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKENS.ops}` },
    });
    expect(reserve.status).toBe(405);
    expect(reserve.headers.get('allow')).toBe('GET, POST');
    expect(await reserve.json()).toMatchObject({
      errors: [{ message: expect.stringContaining('single-connection'), extensions: { code: 'BAD_REQUEST' } }],
    });

    const outcome = await new Promise<unknown>((resolve) => {
      const client = createClient({
        singleConnection: true,
        url: `${server.url}/graphql/stream`,
        headers: { authorization: `Bearer ${TOKENS.ops}` },
        retryAttempts: 0,
      });
      client.subscribe(
        { query: HISTORY },
        {
          next: (value) => resolve({ value }),
          error: (error) => resolve({ error }),
          complete: () => resolve('complete'),
        },
      );
    });
    expect(outcome).toHaveProperty('error');
  });

  test('graphql-sse and graphql-ws subscribers of the same document share one execution', async () => {
    await waitFor(
      async () => (server.app.subscriptionStats().subscriptions === 0 ? true : undefined),
      'no subscription left over',
    );
    const executions = vi.spyOn(server.app.services.history, 'subscribe');
    const sseEvents: unknown[] = [];
    const client = createClient({
      url: `${server.url}/graphql/stream`,
      headers: { authorization: `Bearer ${TOKENS.ops}` },
      retryAttempts: 0,
    });
    const dispose = client.subscribe(
      { query: print(HistoryAddedSubscription), variables: {} },
      { next: (value) => sseEvents.push(value), error: (error) => sseEvents.push({ error }), complete: () => {} },
    );
    const ws = await subscribe(server, HistoryAddedSubscription, {}, { token: TOKENS.ops });
    try {
      await waitFor(async () => {
        if (sseEvents.length && ws.received.length) return true;
        await announceHistory(server);
        return undefined;
      }, 'both to be live');
      expect(executions.mock.calls.length).toBe(1);
      expect(server.app.subscriptionStats()).toMatchObject({ cohorts: 1, subscriptions: 2, streams: 1 });
      expect(sseEvents[0]).toEqual({ data: ws.received[0] });
    } finally {
      executions.mockRestore();
      dispose();
      client.dispose();
      await ws.close();
    }
  });
});
