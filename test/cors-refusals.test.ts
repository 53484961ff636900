import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS } from './support/server.js';

/**
 * The server's own early refusals on the GraphQL path carry CORS headers for an allowed origin,
 * as Yoga's answers and the 401 before the body do: without them its frontend sees an opaque
 * network error instead of the reason (a body too large, a form POST).
 */

const FRONT = 'https://front.example';

describe('early refusals read by an allowed origin', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { ...AUTH_ENV, CORS_ORIGINS: FRONT, MAX_BODY_BYTES: '4096' } });
  });
  afterAll(() => server?.stop());

  function post(body: string, contentType: string, origin = FRONT): Promise<Response> {
    return fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { origin, authorization: `Bearer ${TOKENS.alice}`, 'content-type': contentType },
      body,
    });
  }

  function expectReadableBy(response: Response, origin: string): void {
    expect(response.headers.get('access-control-allow-origin')).toBe(origin);
    expect(response.headers.get('access-control-allow-credentials')).toBe('true');
    expect(response.headers.get('access-control-expose-headers')).toContain('x-request-id');
  }

  test('a body over MAX_BODY_BYTES: 413 with CORS headers', async () => {
    const response = await post(
      JSON.stringify({ query: `{ viewer { userId } } # ${'x'.repeat(5000)}` }),
      'application/json',
    );
    expect(response.status).toBe(413);
    expectReadableBy(response, FRONT);
    const body = (await response.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors[0]?.extensions.code).toBe('VALIDATION');
  });

  test('a POST that is not JSON: 415 with CORS headers', async () => {
    const response = await post(JSON.stringify({ query: '{ viewer { userId } }' }), 'text/plain');
    expect(response.status).toBe(415);
    expectReadableBy(response, FRONT);
  });

  test('an origin not allowed gets no CORS headers on its refusal', async () => {
    const response = await post(
      JSON.stringify({ query: '{ viewer { userId } }' }),
      'application/json',
      'https://other.example',
    );
    expect(response.status).toBe(403);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });

  test('as the 401 before the body already did', async () => {
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { origin: FRONT, authorization: 'Bearer wrong-token-000', 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ viewer { userId } }' }),
    });
    expect(response.status).toBe(401);
    expectReadableBy(response, FRONT);
  });
});
