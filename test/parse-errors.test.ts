import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from './support/server.js';

/**
 * Yoga caches what a document text parses to, errors included, for every transport. A syntax
 * error parsed first for a WebSocket or SSE client used to be cached without the code and status
 * HTTP gives it, so HTTP then answered that text with a bare error and 200. Whichever transport
 * sees a malformed document first, every one answers it with GRAPHQL_PARSE_FAILED, and HTTP with 400.
 */

/** The errors a graphql-ws client gets for `query`. */
async function overWebSocket(server: TestServer, query: string): Promise<{ message: string; extensions?: unknown }[]> {
  const client = createClient({
    url: `${server.url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
  });
  try {
    return await new Promise((resolve, reject) => {
      client.subscribe(
        { query },
        {
          next: (result) => reject(new Error(`unexpected result ${JSON.stringify(result)}`)),
          error: (errors) => (Array.isArray(errors) ? resolve(errors) : reject(errors)),
          complete: () => reject(new Error('completed without an error')),
        },
      );
    });
  } finally {
    await client.dispose();
  }
}

async function overHttp(server: TestServer, query: string) {
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query }),
  });
  const body = (await response.json()) as { errors: { message: string; extensions?: { code?: string } }[] };
  return { status: response.status, errors: body.errors };
}

describe('a syntax error is answered the same whichever transport saw it first', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  test('first over a WebSocket, then over HTTP: both carry GRAPHQL_PARSE_FAILED, HTTP answers 400', async () => {
    const query = '{ viewer { userId ';
    const [wsError] = await overWebSocket(server, query);
    expect(wsError).toMatchObject({
      message: expect.stringContaining('Syntax Error'),
      extensions: { code: 'GRAPHQL_PARSE_FAILED' },
    });
    // On a stream the HTTP status an error asks for is dropped.
    expect(JSON.stringify(wsError)).not.toContain('"http"');

    const http = await overHttp(server, query);
    expect(http.status).toBe(400);
    expect(http.errors[0]).toMatchObject({
      message: expect.stringContaining('Syntax Error'),
      extensions: { code: 'GRAPHQL_PARSE_FAILED' },
    });
  });

  test('first over HTTP, then over a WebSocket: the same', async () => {
    const query = '{ viewer { isAdmin ';
    const http = await overHttp(server, query);
    expect(http.status).toBe(400);
    expect(http.errors[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
    const [wsError] = await overWebSocket(server, query);
    expect(wsError).toMatchObject({ extensions: { code: 'GRAPHQL_PARSE_FAILED' } });
  });
});
