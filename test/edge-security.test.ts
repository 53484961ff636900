import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient } from 'graphql-ws';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { Authenticator } from '../src/auth/viewer.js';
import { loadConfig } from '../src/platform/config.js';
import { ViewerQuery } from './support/operations.js';
import { openRawSocket } from './support/raw-ws.js';
import { AUTH_ENV, dataOf, execute, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * The edge of the server probed as an attacker would: who a connection is, which pages may drive
 * the API, and the limits every client-controlled resource has. Each case failed before its fix.
 */

const VIEWER = 'query { viewer { userId isAdmin } }';
const INSTALL =
  'mutation { installApp(input: { sourceId: "market.olares", appName: "n8n", version: "1.70.1" }) { __typename } }';

async function taskCount(server: TestServer): Promise<number> {
  return server.app.db.task.count();
}

/** Authenticates a raw socket and asks who it is. */
async function viewerOverSocket(
  url: string,
  headers: Record<string, string>,
  payload: Record<string, unknown>,
): Promise<unknown> {
  const socket = await openRawSocket(url, { headers });
  socket.send({ type: 'connection_init', payload });
  await socket.nextOfType('connection_ack');
  socket.send({ id: '1', type: 'subscribe', payload: { query: VIEWER } });
  const next = await socket.nextOfType('next');
  socket.socket.close();
  return (next.payload as { data: unknown }).data;
}

describe('gateway mode: the identity comes from the gateway, never from the client', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      env: { ...AUTH_ENV, AUTH_USER_HEADER: 'X-Bfl-User', AUTH_ADMIN_USERS: 'ops' },
    });
  });
  afterAll(() => server?.stop());

  test('a user name in connectionParams is no identity: 4403 without a gateway header', async () => {
    for (const payload of [{ 'X-Bfl-User': 'admin' }, { 'X-Bfl-User': 'ops', authorization: '' }, {}]) {
      const socket = await openRawSocket(server.url);
      socket.send({ type: 'connection_init', payload });
      expect(await socket.closed).toMatchObject({ code: 4403 });
    }
  });

  test('the header the gateway set on the upgrade request names the user; the payload cannot change it', async () => {
    expect(await viewerOverSocket(server.url, { 'X-Bfl-User': 'alice' }, {})).toEqual({
      viewer: { userId: 'alice', isAdmin: false },
    });
    expect(await viewerOverSocket(server.url, { 'X-Bfl-User': 'alice' }, { 'X-Bfl-User': 'ops' })).toEqual({
      viewer: { userId: 'alice', isAdmin: false },
    });
    expect(await viewerOverSocket(server.url, { 'X-Bfl-User': 'ops' }, {})).toEqual({
      viewer: { userId: 'ops', isAdmin: true },
    });
  });

  test('a bearer token in connectionParams still works, and a bad one is refused, not downgraded', async () => {
    expect(await viewerOverSocket(server.url, {}, { authorization: `Bearer ${TOKENS.bob}` })).toEqual({
      viewer: { userId: 'bob', isAdmin: false },
    });
    const socket = await openRawSocket(server.url, { headers: { 'X-Bfl-User': 'alice' } });
    socket.send({ type: 'connection_init', payload: { authorization: 'Bearer not-a-valid-token' } });
    expect(await socket.closed).toMatchObject({ code: 4403 });
    // A credential that is not text is no credential to fall back from.
    for (const authorization of [{}, [`Bearer ${TOKENS.bob}`], 5, true]) {
      const other = await openRawSocket(server.url, { headers: { 'X-Bfl-User': 'alice' } });
      other.send({ type: 'connection_init', payload: { authorization } });
      expect(await other.closed, JSON.stringify(authorization)).toMatchObject({ code: 4403 });
    }
  });

  test('a gateway header that is not a user id is refused', async () => {
    const response = await execute(server, ViewerQuery, {}, { headers: { 'X-Bfl-User': 'a'.repeat(500) } });
    expect(response.status).toBe(401);
  });
});

describe('cross-site requests cannot change anything', () => {
  let server: TestServer;
  const ALLOWED = 'https://console.example.com';
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { ...AUTH_ENV, CORS_ORIGINS: ALLOWED } });
  });
  afterAll(() => server?.stop());

  const auth = { authorization: `Bearer ${TOKENS.alice}` };

  test('mutations never run over GET: /graphql/stream, /graphql with text/event-stream, plain /graphql', async () => {
    const before = await taskCount(server);
    const query = encodeURIComponent(INSTALL);
    const streamGet = await fetch(`${server.url}/graphql/stream?query=${query}`, { headers: auth });
    expect(streamGet.status).toBe(405);
    const sseGet = await fetch(`${server.url}/graphql?query=${query}`, {
      headers: { ...auth, accept: 'text/event-stream' },
    });
    expect(sseGet.status).toBe(405);
    const plainGet = await fetch(`${server.url}/graphql?query=${query}`, {
      headers: { ...auth, accept: 'application/json' },
    });
    expect(plainGet.status).toBe(405);
    expect(await taskCount(server)).toBe(before);
    // The same mutation as a JSON POST does run: the refusals above are about the method alone.
    const post = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ query: INSTALL }),
    });
    expect(await post.json()).toEqual({ data: { installApp: { __typename: 'InstallAppSuccess' } } });
    expect(await taskCount(server)).toBe(before + 1);
  });

  test("a user's answers are not kept by caches: GET and POST, on the lean path and through Yoga", async () => {
    const get = await fetch(`${server.url}/graphql?query=${encodeURIComponent(VIEWER)}`, {
      headers: { ...auth, accept: 'application/json' },
    });
    expect(await get.json()).toEqual({ data: { viewer: { userId: 'alice', isAdmin: false } } });
    expect(get.headers.get('cache-control')).toBe('no-store');
    // A plain JSON POST takes the lean path; one from an allowed origin goes through Yoga (CORS).
    for (const origin of [null, ALLOWED]) {
      const post = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', ...(origin ? { origin } : {}) },
        body: JSON.stringify({ query: VIEWER }),
      });
      expect(await post.json()).toEqual({ data: { viewer: { userId: 'alice', isAdmin: false } } });
      expect(post.headers.get('cache-control'), String(origin)).toBe('no-store');
    }
  });

  test('form and multipart POSTs (what a page can send without a preflight) are refused with 415', async () => {
    const before = await taskCount(server);
    const form = new URLSearchParams({ query: INSTALL });
    const multipart = new FormData();
    multipart.set('operations', JSON.stringify({ query: INSTALL }));
    for (const url of [`${server.url}/graphql`, `${server.url}/graphql/stream`]) {
      for (const body of [form, multipart, JSON.stringify({ query: INSTALL })]) {
        const response = await fetch(url, { method: 'POST', headers: auth, body });
        expect(response.status, `${url} ${typeof body}`).toBe(415);
      }
    }
    expect(await taskCount(server)).toBe(before);
  });

  test('CORS: only the allow-list gets CORS headers; other origins are refused before running', async () => {
    const preflight = (origin: string) =>
      fetch(`${server.url}/graphql`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
    const evil = await preflight('https://evil.example');
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const allowed = await preflight(ALLOWED);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
    // An answer for one origin says so to caches, which must not hand it to another.
    expect(allowed.headers.get('vary')).toMatch(/\borigin\b/i);

    const before = await taskCount(server);
    const post = (origin: string) =>
      fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { ...auth, origin, 'content-type': 'application/json' },
        body: JSON.stringify({ query: VIEWER }),
      });
    expect((await post('https://evil.example')).status).toBe(403);
    expect((await post('null')).status).toBe(403);
    const allowedPost = await post(ALLOWED);
    expect(allowedPost.status).toBe(200);
    expect(allowedPost.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(allowedPost.headers.get('vary')).toMatch(/\borigin\b/i);
    expect((await post(server.url)).status).toBe(200); // the server's own pages
    expect(await taskCount(server)).toBe(before);
  });

  test('WebSockets: an Origin outside the list is refused at the upgrade; no Origin (not a browser) is fine', async () => {
    await expect(openRawSocket(server.url, { headers: { origin: 'https://evil.example' } })).rejects.toThrow(/403/);
    for (const headers of [{}, { origin: ALLOWED }, { origin: server.url }] as Record<string, string>[]) {
      const socket = await openRawSocket(server.url, { headers });
      socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${TOKENS.alice}` } });
      await socket.nextOfType('connection_ack');
      socket.socket.close();
    }
  });
});

describe('local development mode (every request is the admin) is not drivable by other sites', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
  });
  afterAll(() => server?.stop());

  test('a page of another site can neither POST nor open a socket', async () => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'application/json' },
      body: JSON.stringify({ query: INSTALL }),
    });
    expect(response.status).toBe(403);
    await expect(openRawSocket(server.url, { headers: { origin: 'https://evil.example' } })).rejects.toThrow(/403/);
  });

  test('DNS rebinding: a page of another name resolved to 127.0.0.1 is its own origin, yet refused by its Host', async () => {
    const { port } = new URL(server.url);
    const rebound = { host: `evil.example:${port}`, origin: `http://evil.example:${port}` };
    const tasksBefore = await taskCount(server);
    const post = await rawRequest(server.url, 'POST', { ...rebound, 'content-type': 'application/json' }, INSTALL);
    expect(post.status).toBe(403);
    expect(post.body).toMatch(/Host evil\.example:\d+ is not a loopback name/);
    expect(await taskCount(server)).toBe(tasksBefore);
    // A GET query sends no Origin in some browsers, and its answer is readable by the page.
    const get = await rawRequest(`${server.url}/graphql?query=${encodeURIComponent(VIEWER)}`, 'GET', {
      host: rebound.host,
    });
    expect(get.status).toBe(403);
    await expect(openRawSocket(server.url, { headers: rebound })).rejects.toThrow(/403/);
    // Nor may it read the metrics, the dashboard or the readiness (before: 200 to any Host).
    for (const path of ['/metrics', '/dashboard', '/readiness', '/health']) {
      const read = await rawRequest(`${server.url}${path}`, 'GET', { host: rebound.host });
      expect(read.status, path).toBe(403);
      expect(read.body).toMatch(/Host evil\.example:\d+ is not a loopback name/);
    }
    expect((await rawRequest(`${server.url}/readiness`, 'GET', { host: `127.0.0.1:${port}` })).status).toBe(200);
    // The loopback names keep working, with or without their port.
    for (const host of [
      `localhost:${port}`,
      `localhost.:${port}`,
      `127.0.0.1:${port}`,
      `[::1]:${port}`,
      `[::ffff:127.0.0.1]:${port}`,
      'localhost',
    ]) {
      const ok = await rawRequest(`${server.url}/graphql?query=${encodeURIComponent(VIEWER)}`, 'GET', { host });
      expect(ok.status, host).toBe(200);
    }
  });
});

/** One request with headers fetch() will not send (a Host of our choosing); to /graphql unless `url` has a path. */
function rawRequest(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: string }> {
  const target = new URL(url).pathname === '/' ? `${url}/graphql` : url; // the server's URL: its endpoint
  return new Promise((resolve, reject) => {
    const request = httpRequest(target, { method, headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** Sends `bytes` on a new connection and resolves with all the server sends until it closes it. */
function rawExchange(url: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
    socket.write(bytes);
  });
}

/** POSTs `size` bytes with chunked encoding (no content-length); the status the server answers. */
function postChunked(url: string, size: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.alice}` },
    });
    request.on('response', (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    // The server may close the connection while we are still writing: that is the point.
    request.on('error', (error) => (request.writableEnded ? undefined : reject(error)));
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    const write = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!request.write(chunk)) return void request.once('drain', write);
      }
      request.end();
    };
    write();
  });
}

describe('every client-controlled resource has a limit, enforced before its cost is paid', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      env: {
        ...AUTH_ENV,
        MAX_BODY_BYTES: String(64 * 1024),
        MAX_SUBSCRIPTIONS_PER_CONNECTION: '3',
        MAX_CONNECTIONS_PER_USER: '2',
      },
    });
  });
  afterAll(() => server?.stop());

  test('a WebSocket frame larger than MAX_BODY_BYTES is refused (1009) before connection_init', async () => {
    const socket = await openRawSocket(server.url);
    socket.socket.send(Buffer.alloc(256 * 1024, 0x20));
    expect(await socket.closed).toMatchObject({ code: 1009 });
  });

  test('a chunked body over MAX_BODY_BYTES gets 413 on /graphql and /graphql/stream', async () => {
    expect(await postChunked(`${server.url}/graphql`, 1024 * 1024)).toBe(413);
    expect(await postChunked(`${server.url}/graphql/stream`, 1024 * 1024)).toBe(413);
  });

  test('a POST without accepted credentials is refused from its headers, its body never waited for (/graphql, /graphql/stream)', async () => {
    for (const path of ['/graphql', '/graphql/stream']) {
      for (const authorization of ['', 'Authorization: Bearer not-a-token-of-anyone\r\n']) {
        // Declares 60,000 bytes (within MAX_BODY_BYTES) and sends 20: the answer comes, the connection closes.
        const answer = await rawExchange(
          server.url,
          `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: text/event-stream, application/json\r\n${authorization}Content-Length: 60000\r\n\r\n{"query":"{ viewer {`,
        );
        expect(answer, `${path} ${authorization}`).toMatch(/^HTTP\/1\.1 401 /);
        expect(answer).toMatch(/\r\nconnection: close\r\n/i);
        expect(answer).toMatch(/\r\nwww-authenticate: Bearer\r\n/i);
        expect(answer).toContain('"code":"UNAUTHENTICATED"');
      }
    }
    // The other ways in name the scheme too (RFC 9110: a 401 carries a challenge).
    const query = encodeURIComponent('{ viewer { userId } }');
    for (const [path, accept] of [
      [`/graphql?query=${query}`, 'application/json'],
      [`/graphql/stream?query=${query}`, 'text/event-stream'],
    ] as const) {
      const response = await fetch(`${server.url}${path}`, { headers: { accept } });
      expect([path, response.status, response.headers.get('www-authenticate')]).toEqual([path, 401, 'Bearer']);
      await response.text();
    }
  });

  test('operations per connection are capped: the one over the limit gets LIMIT_EXCEEDED, the others go on', async () => {
    const socket = await openRawSocket(server.url);
    socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${TOKENS.alice}` } });
    await socket.nextOfType('connection_ack');
    for (const id of ['1', '2', '3', '4']) {
      socket.send({ id, type: 'subscribe', payload: { query: `subscription S${id} { taskUpdated { taskId } }` } });
    }
    const refused = await socket.nextOfType('error');
    expect(refused).toMatchObject({ id: '4', payload: [{ extensions: { code: 'LIMIT_EXCEEDED' } }] });
    socket.send({ id: '1', type: 'complete' });
    socket.send({ id: '5', type: 'subscribe', payload: { query: VIEWER } });
    expect(await socket.nextOfType('next')).toMatchObject({
      id: '5',
      payload: { data: { viewer: { userId: 'alice' } } },
    });
    socket.socket.close();
  });

  test('connections and streams per user are capped (1013 / 429); other users are unaffected', async () => {
    const open = async (token: string) => {
      const socket = await openRawSocket(server.url);
      socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } });
      return socket;
    };
    const first = await open(TOKENS.alice);
    await first.nextOfType('connection_ack');
    const second = await open(TOKENS.alice);
    await second.nextOfType('connection_ack');
    const third = await open(TOKENS.alice);
    expect(await third.closed).toMatchObject({ code: 1013 });
    const stream = await fetch(`${server.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.alice}` },
      body: JSON.stringify({ query: 'subscription { taskUpdated { taskId } }' }),
    });
    expect(stream.status).toBe(429);
    expect(JSON.stringify(await stream.json())).toContain('LIMIT_EXCEEDED');
    const bobs = await open(TOKENS.bob);
    await bobs.nextOfType('connection_ack');
    // A place is given back when a connection closes.
    first.socket.close();
    await first.closed;
    const again = await open(TOKENS.alice);
    await again.nextOfType('connection_ack');
    for (const socket of [second, bobs, again]) socket.socket.close();
  });

  test('a stock graphql-ws client refused over the per-user cap retries and gets through once a place is free', async () => {
    const holders = [];
    for (let index = 0; index < 2; index += 1) {
      const socket = await openRawSocket(server.url);
      socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${TOKENS.alice}` } });
      await socket.nextOfType('connection_ack');
      holders.push(socket);
    }
    const closeCodes: number[] = [];
    let refused!: () => void;
    const wasRefused = new Promise<void>((resolve) => {
      refused = resolve;
    });
    const client = createClient({
      url: `${server.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${TOKENS.alice}` },
      // The client's own backoff policy, shortened; its default retries 5 times over ~30 s.
      retryAttempts: 50,
      retryWait: () => new Promise((resolve) => setTimeout(resolve, 50)),
    });
    client.on('closed', (event) => {
      closeCodes.push((event as { code: number }).code);
      refused();
    });
    const answer = new Promise<unknown>((resolve, reject) => {
      client.subscribe({ query: VIEWER }, { next: resolve, error: reject, complete: () => {} });
    });
    try {
      await wasRefused;
      // A place is given back: the client, still retrying, connects and is answered.
      holders[0]?.socket.close();
      expect(await answer).toEqual({ data: { viewer: { userId: 'alice', isAdmin: false } } });
      expect(closeCodes[0]).toBe(1013);
    } finally {
      await client.dispose();
      for (const socket of holders) socket.socket.close();
    }
  });
});

describe('request logs and error bodies', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: AUTH_ENV });
  });
  afterAll(() => server?.stop());

  test('a huge operationName is not copied into the log', async () => {
    const operationName = 'A'.repeat(900 * 1024);
    const query = encodeURIComponent(VIEWER);
    const response = await fetch(`${server.url}/graphql/stream?query=${query}&operationName=${'B'.repeat(8000)}`, {
      headers: { authorization: `Bearer ${TOKENS.alice}` },
    });
    await response.text();
    const posted = await fetch(`${server.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.alice}` },
      body: JSON.stringify({ query: VIEWER, operationName }),
    });
    await posted.text();
    expect(Math.max(...server.logs.map((line) => line.length))).toBeLessThan(2000);
    expect(server.logs.some((line) => line.includes('"operation":"[invalid name]"'))).toBe(true);
  });

  test('over graphql-ws and SSE, errors carry their code but not the HTTP status meant for Yoga (extensions.http)', async () => {
    // A variable of the wrong type: a VALIDATION error that asks HTTP for status 400.
    const request = { query: 'query Q($first: Int) { apps(first: $first) { totalCount } }', variables: { first: 'x' } };
    const socket = await openRawSocket(server.url);
    socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${TOKENS.alice}` } });
    await socket.nextOfType('connection_ack');
    socket.send({ id: '1', type: 'subscribe', payload: request });
    const overSocket = await socket.nextOfType('next');
    socket.socket.close();
    const stream = await fetch(`${server.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.alice}` },
      body: JSON.stringify(request),
    });
    // Over SSE it is refused before any stream: the status is the response's, not the error's.
    expect(stream.status).toBe(400);
    const overSse = await stream.json();
    for (const result of [overSocket.payload, overSse] as { errors: { extensions: Record<string, unknown> }[] }[]) {
      expect(result.errors[0]?.extensions.code).toBe('VALIDATION');
      expect(result.errors[0]?.extensions).not.toHaveProperty('http');
    }
  });

  test('SSE error bodies carry the code, not the transport internals (extensions.http)', async () => {
    const response = await fetch(`${server.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: VIEWER }),
    });
    expect(response.status).toBe(401);
    const body = (await response.json()) as { errors: { extensions: Record<string, unknown> }[] };
    expect(body.errors[0]?.extensions).toEqual({ code: 'UNAUTHENTICATED' });
  });
});

describe('JWT bearer tokens', () => {
  const SECRET = 'a-test-secret-of-at-least-32-characters!';
  const key = new TextEncoder().encode(SECRET);
  let server: TestServer;
  /** A token as the identity provider signs it; `other` changes one thing to see it refused. */
  const sign = (
    claims: Record<string, unknown>,
    subject: string,
    expires: string | number = '10m',
    other: { issuer?: string; audience?: string; key?: Uint8Array } = {},
  ) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(subject)
      .setIssuer(other.issuer ?? 'https://id.example')
      .setAudience(other.audience ?? 'market')
      .setIssuedAt()
      .setExpirationTime(expires)
      .sign(other.key ?? key);

  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      env: {
        AUTH_JWT_SECRET: SECRET,
        AUTH_JWT_ISSUER: 'https://id.example',
        AUTH_JWT_AUDIENCE: 'market',
        AUTH_JWT_CLOCK_SKEW_S: '1',
      },
    });
  });
  afterAll(() => server?.stop());

  test('HTTP: the subject is the user, the role claim makes an admin; wrong issuer, audience, key or expiry are 401', async () => {
    const alice = await sign({}, 'alice');
    expect(dataOf(await execute(server, ViewerQuery, {}, { token: alice })).viewer).toEqual({
      userId: 'alice',
      isAdmin: false,
    });
    const ops = await sign({ role: ['user', 'admin'] }, 'ops');
    expect(dataOf(await execute(server, ViewerQuery, {}, { token: ops })).viewer.isAdmin).toBe(true);

    const refused = [
      await sign({}, 'alice', '10m', { issuer: 'https://other' }),
      await sign({}, 'alice', '10m', { audience: 'other' }),
      await sign({}, 'alice', '10m', { key: new TextEncoder().encode('another-secret-of-at-least-32-characters') }),
      await sign({}, 'alice', Math.floor(Date.now() / 1000) - 120),
      // alg "none": an unsigned token with the right claims
      `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'admin', role: 'admin', iss: 'https://id.example', aud: 'market' })).toString('base64url')}.`,
    ];
    for (const token of refused) {
      const response = await execute(server, ViewerQuery, {}, { token });
      expect(response.status).toBe(401);
      expect(response.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
  });

  test('a socket and an SSE stream whose token expires are closed when it does, the clock skew allowed', async () => {
    const expires = Math.floor(Date.now() / 1000) + 2;
    const shortLived = await sign({}, 'alice', expires);
    const socket = await openRawSocket(server.url);
    socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${shortLived}` } });
    await socket.nextOfType('connection_ack');
    const stream = await fetch(`${server.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${shortLived}` },
      body: JSON.stringify({ query: 'subscription { taskUpdated { taskId } }' }),
    });
    expect(stream.status).toBe(200);
    // Waiting out the token's lifetime is the behaviour under test.
    expect(await socket.closed).toMatchObject({ code: 4403, reason: 'Token expired' });
    // Not before HTTP stops taking the token: its expiry plus AUTH_JWT_CLOCK_SKEW_S (1 s here).
    expect(Date.now()).toBeGreaterThanOrEqual((expires + 1) * 1000 - 50);
    const text = await stream.text();
    expect(text).toContain('Token expired');
    expect(text).toContain('UNAUTHENTICATED');
    // No `complete`: a graphql-sse client reconnects with a fresh token (test/sse-token-expiry.test.ts).
    expect(text).not.toContain('event: complete');
  });

  test('RS256 with a PEM public key and ES256 with a JWKS file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'jwt-keys-'));
    const rsa = await generateKeyPair('RS256');
    const ec = await generateKeyPair('ES256');
    const jwks = path.join(dir, 'jwks.json');
    writeFileSync(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(ec.publicKey)), kid: 'k1', alg: 'ES256' }] }));
    const byPem = new Authenticator(loadConfig({ AUTH_JWT_PUBLIC_KEY: await exportSPKI(rsa.publicKey) }).auth);
    const byJwks = new Authenticator(loadConfig({ AUTH_JWT_JWKS_FILE: jwks }).auth);
    const rs = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'RS256' })
      .setSubject('ops')
      .setExpirationTime('5m')
      .sign(rsa.privateKey);
    const es = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setSubject('bob')
      .setExpirationTime('5m')
      .sign(ec.privateKey);
    expect(await byPem.authenticate({ authorization: `Bearer ${rs}`, gatewayUser: null })).toMatchObject({
      userId: 'ops',
      isAdmin: true,
    });
    expect(await byJwks.authenticate({ authorization: `Bearer ${es}`, gatewayUser: null })).toMatchObject({
      userId: 'bob',
      isAdmin: false,
    });
    // Keys are not interchangeable, and an HS256 token signed with the public key is refused.
    await expect(byPem.authenticate({ authorization: `Bearer ${es}`, gatewayUser: null })).rejects.toThrow();
    await expect(byJwks.authenticate({ authorization: `Bearer ${rs}`, gatewayUser: null })).rejects.toThrow();
    const confused = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('ops')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(await exportSPKI(rsa.publicKey)));
    await expect(byPem.authenticate({ authorization: `Bearer ${confused}`, gatewayUser: null })).rejects.toThrow(
      /algorithm|Invalid/,
    );
  });
});

describe('distinct subscriptions per user (MAX_DISTINCT_SUBSCRIPTIONS_PER_USER)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { ...AUTH_ENV, MAX_DISTINCT_SUBSCRIPTIONS_PER_USER: '3' } });
  });
  afterAll(() => server?.stop());

  const open = async (token: string) => {
    const socket = await openRawSocket(server.url);
    socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } });
    await socket.nextOfType('connection_ack');
    return socket;
  };
  const subscription = (name: string) => ({ query: `subscription ${name} { taskUpdated { taskId } }` });

  test('equal subscriptions share a place, on any connection or stream; the one over the limit gets LIMIT_EXCEEDED until a place is free', async () => {
    const first = await open(TOKENS.alice);
    for (const id of ['1', '2', '3', '4']) first.send({ id, type: 'subscribe', payload: subscription(`S${id}`) });
    // Messages of one connection are handled in order: the first error is the first refusal.
    expect(await first.nextOfType('error')).toMatchObject({
      id: '4',
      payload: [
        {
          message: expect.stringContaining(
            'at most 3 distinct subscriptions at once on this instance (MAX_DISTINCT_SUBSCRIPTIONS_PER_USER)',
          ),
          extensions: { code: 'LIMIT_EXCEEDED' },
        },
      ],
    });
    // The same document again, on another connection, takes no new place; a new one is refused.
    const second = await open(TOKENS.alice);
    second.send({ id: 'a', type: 'subscribe', payload: subscription('S1') });
    second.send({ id: 'b', type: 'subscribe', payload: subscription('S5') });
    expect(await second.nextOfType('error')).toMatchObject({
      id: 'b',
      payload: [{ extensions: { code: 'LIMIT_EXCEEDED' } }],
    });
    // Over SSE too: the places are the user's, not the transport's.
    const stream = await fetch(`${server.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.alice}` },
      body: JSON.stringify(subscription('S6')),
    });
    expect(stream.status).toBe(429);
    expect(JSON.stringify(await stream.json())).toContain('MAX_DISTINCT_SUBSCRIPTIONS_PER_USER');
    // Another user has places of their own.
    const bobs = await open(TOKENS.bob);
    bobs.send({ id: 'x', type: 'subscribe', payload: subscription('S7') });
    bobs.send({ id: 'y', type: 'subscribe', payload: { query: VIEWER } });
    expect(await bobs.nextOfType('next')).toMatchObject({ id: 'y' });
    expect(bobs.messages.filter((message) => message.type === 'error')).toEqual([]);
    // Completing one gives its place back (S1 is still held by the second connection).
    first.send({ id: '2', type: 'complete' });
    first.send({ id: '8', type: 'subscribe', payload: subscription('S8') });
    first.send({ id: '9', type: 'subscribe', payload: { query: VIEWER } });
    expect(await first.nextOfType('next')).toMatchObject({ id: '9' });
    expect(first.messages.filter((message) => message.type === 'error')).toEqual([]);
    // Closed connections give back all of their places.
    for (const socket of [first, second]) {
      socket.socket.close();
      await socket.closed;
    }
    const third = await open(TOKENS.alice);
    /** Subscribes `names` (distinct), then a query: true when none of them was refused before its answer. */
    const accepted = async (names: string[]) => {
      for (const name of names) third.send({ id: name, type: 'subscribe', payload: subscription(name) });
      third.send({ id: `viewer-${names[0]}`, type: 'subscribe', payload: { query: VIEWER } });
      await third.nextOfType('next');
      return third.messages.some((message) => message.type === 'error' && names.includes(message.id ?? ''))
        ? undefined
        : true;
    };
    // The server may handle the closes a moment after the client saw them: asked again until it has.
    let probe = 0;
    await waitFor(() => accepted([`P${++probe}`]), 'a place given back by the closed connections');
    expect(await accepted(['Q1', 'Q2'])).toBe(true);
    for (const socket of [third, bobs]) socket.socket.close();
  });
});
