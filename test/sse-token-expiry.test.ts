import { createClient, NetworkError } from 'graphql-sse';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { announceHistory, startTestServer, type TestServer, waitFor } from './support/server.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const HISTORY = 'subscription { historyAdded { userId } }';

/** A token for alice that expires at `exp` (seconds since the epoch). */
const tokenUntil = (exp: number) =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('alice')
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(SECRET));
const inSeconds = (seconds: number) => Math.floor(Date.now() / 1000) + seconds;

describe('an SSE stream whose JWT expires', () => {
  let server: TestServer;
  beforeAll(async () => {
    // AUTH_JWT_CLOCK_SKEW_S as small as it goes but one: the stream ends a second after `exp`.
    server = await startTestServer('sqlite', { env: { AUTH_JWT_SECRET: SECRET, AUTH_JWT_CLOCK_SKEW_S: '1' } });
  });
  afterAll(() => server?.stop());

  test('ends without `complete`, so the graphql-sse client reconnects with a fresh token and goes on', async () => {
    const tokens: string[] = [];
    const events: unknown[] = [];
    const ends: unknown[] = [];
    const client = createClient({
      url: `${server.url}/graphql/stream`,
      // The first token lives for a couple of seconds, the next one for long.
      headers: async () => {
        tokens.push(await tokenUntil(inSeconds(tokens.length === 0 ? 2 : 600)));
        return { authorization: `Bearer ${tokens.at(-1)}` };
      },
      retryAttempts: 2,
      retry: async () => {},
    });
    const dispose = client.subscribe(
      { query: HISTORY },
      {
        next: (value) => events.push(value),
        error: (error) => ends.push({ error }),
        complete: () => ends.push('complete'),
      },
    );
    try {
      await waitFor(async () => {
        if (events.length) return true;
        await announceHistory(server);
        return undefined;
      }, 'an event on the first token');
      // Waiting out the first token's lifetime (and the skew) is the behaviour under test.
      await waitFor(async () => (tokens.length === 2 || ends.length ? true : undefined), 'a reconnect', 10_000);
      expect(ends).toEqual([]);
      expect(tokens).toHaveLength(2);
      const before = events.length;
      await waitFor(async () => {
        if (events.length > before) return true;
        await announceHistory(server);
        return undefined;
      }, 'an event on the fresh token');
      expect(events.at(-1)).toEqual({ data: { historyAdded: { userId: 'alice' } } });
      expect(ends).toEqual([]);
    } finally {
      dispose();
      client.dispose();
    }
  });

  test('a client whose token is gone learns why on reconnecting: 401 UNAUTHENTICATED', async () => {
    const token = await tokenUntil(inSeconds(1));
    const outcome = await new Promise<unknown>((resolve) => {
      const client = createClient({
        url: `${server.url}/graphql/stream`,
        headers: { authorization: `Bearer ${token}` },
        retryAttempts: 1,
        retry: async () => {},
      });
      client.subscribe(
        { query: HISTORY },
        { next: () => {}, error: (error) => resolve(error), complete: () => resolve('complete') },
      );
    });
    expect(outcome).toBeInstanceOf(NetworkError);
    const response = (outcome as NetworkError<Response>).response as Response;
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] });
  });

  test('the raw stream says why in a comment and sends no `complete`', async () => {
    const token = await tokenUntil(inSeconds(1));
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: HISTORY }),
    });
    expect(response.status).toBe(200);
    const text = await response.text(); // ends when the token does
    expect(text).toMatch(/\n: Token expired \(UNAUTHENTICATED\)[^\n]*\n\n$/);
    expect(text).not.toContain('event: complete');
  });

  test('a client that prefers JSON and streams its subscriptions (urql) gets UNAUTHENTICATED and `complete`', async () => {
    const token = await tokenUntil(inSeconds(1));
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        // urql's Accept (@urql/core 5): JSON first, the event stream for its fetched subscriptions.
        accept:
          'application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed',
        authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ query: HISTORY }),
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await response.text(); // ends when the token does
    expect(text).toContain('"code":"UNAUTHENTICATED"');
    expect(text).toMatch(/event: complete\ndata:[^\n]*\n\n$/);
  });
});
