import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { type FakeAppService, startFakeAppService } from './support/fake-app-service.js';
import { startTestServer, type TestServer } from './support/server.js';

/**
 * Requests are UTF-8 (JSON is, RFC 8259 §8.1). Bytes that are not were decoded leniently and
 * stored as U+FFFD (a Latin-1 `Café` became `Caf\uFFFD`), and a declared `charset=iso-8859-1` was
 * ignored. Now each way in refuses them: a JSON body on the lean path, through Yoga and on the SSE
 * transport (400 BAD_REQUEST, as a body that is not JSON), a charset other than UTF-8 (415, as
 * other media types), a query string (400), a binary WebSocket message (1007, as ws closes a text
 * frame that is not UTF-8) and the app service's state events (400).
 */

const ALLOWED = 'https://console.example.com';
const SECRET = 'app-service-event-secret-utf8';

/** The local admin's running app the tests clone (demo data). */
let original = '';

/** A cloneApp mutation whose title holds `title`'s bytes as they are (Latin-1 bytes stay single bytes). */
function cloneBody(title: Buffer, key: string): Buffer {
  const head = `{"query":"mutation{cloneApp(input:{sourceId:\\"market.olares\\",appName:\\"${original}\\",title:\\"`;
  const tail = `\\",idempotencyKey:\\"${key}\\"}){__typename ... on Error { message }}}"}`;
  return Buffer.concat([Buffer.from(head), title, Buffer.from(tail)]);
}

describe('text that is not UTF-8', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { CORS_ORIGINS: ALLOWED } });
    const app = await server.app.db.appState.findFirst({
      where: { userId: 'admin', sourceId: 'market.olares', state: 'running', rawAppName: null },
    });
    original = app?.appName ?? 'no running app in the demo data';
  });
  afterAll(() => server?.stop());

  async function post(path: string, body: Buffer, headers: Record<string, string> = {}) {
    const response = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
      body: new Uint8Array(body),
    });
    const text = await response.text();
    return {
      status: response.status,
      text,
      body: JSON.parse(text) as { errors?: { extensions?: { code?: string } }[] },
    };
  }

  test('a JSON body that is not UTF-8 is refused with 400 on the lean path, through Yoga and on SSE, nothing stored', async () => {
    const before = await server.app.db.task.count();
    const cases: [string, string, Record<string, string>][] = [
      ['lean path', '/graphql', {}],
      // An allowed origin's request goes through Yoga (it adds the CORS headers).
      ['Yoga', '/graphql', { origin: ALLOWED }],
      ['SSE on /graphql', '/graphql', { accept: 'text/event-stream' }],
      ['graphql-sse', '/graphql/stream', { accept: 'text/event-stream' }],
    ];
    for (const [what, path, headers] of cases) {
      for (const bytes of [
        Buffer.from([0xff, 0xfe]),
        Buffer.from('Caf\xe9', 'latin1'),
        Buffer.from([0xed, 0xa0, 0x80]),
      ]) {
        const answer = await post(path, cloneBody(bytes, `bad-${what}`), headers);
        expect({ status: answer.status, body: answer.body }, what).toEqual({
          status: 400,
          body: {
            errors: [{ message: expect.stringContaining('not valid UTF-8'), extensions: { code: 'BAD_REQUEST' } }],
          },
        });
      }
    }
    expect(await server.app.db.task.count()).toBe(before);
    // The same request in UTF-8 runs, and keeps its é.
    const good = await post('/graphql', cloneBody(Buffer.from('Café'), 'good'));
    expect(good.body).toEqual({ data: { cloneApp: { __typename: 'CloneAppSuccess' } } });
    expect(JSON.stringify(await server.app.db.task.findFirst({ orderBy: { createdAt: 'desc' } }))).toContain('Café');
  });

  test('a JSON body declared in another charset is refused with 415; utf-8 in any spelling is read', async () => {
    const before = await server.app.db.task.count();
    for (const charset of ['iso-8859-1', 'ISO-8859-1', 'utf-16', 'windows-1252']) {
      for (const path of ['/graphql', '/graphql/stream']) {
        const answer = await post(path, cloneBody(Buffer.from('Caf\xe9', 'latin1'), 'latin1'), {
          'content-type': `application/json; charset=${charset}`,
          ...(path === '/graphql/stream' ? { accept: 'text/event-stream' } : {}),
        });
        expect({ status: answer.status, code: answer.body.errors?.[0]?.extensions?.code }, charset).toEqual({
          status: 415,
          code: 'VALIDATION',
        });
        expect(answer.text).toContain('must be UTF-8');
      }
    }
    expect(await server.app.db.task.count()).toBe(before);
    for (const charset of ['utf-8', 'UTF-8', 'utf8', '"utf-8"']) {
      const answer = await post('/graphql', Buffer.from('{"query":"{ __typename }"}'), {
        'content-type': `application/json; charset=${charset}`,
      });
      expect({ status: answer.status, body: answer.body }, charset).toEqual({
        status: 200,
        body: { data: { __typename: 'Query' } },
      });
    }
  });

  test('a query string whose escapes are not UTF-8 is refused with 400 on both GraphQL paths', async () => {
    for (const path of ['/graphql', '/graphql/stream']) {
      const response = await fetch(`${server.url}${path}?query=%7B__typename%7D%23%FF`, {
        headers: { accept: path === '/graphql' ? 'application/json' : 'text/event-stream' },
      });
      expect({ status: response.status, body: await response.json() }, path).toEqual({
        status: 400,
        body: {
          errors: [{ message: expect.stringContaining('not valid UTF-8'), extensions: { code: 'BAD_REQUEST' } }],
        },
      });
    }
    // Escaped UTF-8, and a malformed escape (literal, as URLSearchParams reads it), are read.
    const response = await fetch(`${server.url}/graphql?query=%7B__typename%7D%23caf%C3%A9%zz`, {
      headers: { accept: 'application/json' },
    });
    expect(await response.json()).toEqual({ data: { __typename: 'Query' } });
  });

  test('a binary WebSocket message that is not UTF-8 closes the connection with 1007, unanswered', async () => {
    const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
    // Whichever comes first: before, the message was read (U+FFFD) and acknowledged.
    const outcome = new Promise<string>((resolve) => {
      socket.once('close', (code) => resolve(`closed ${code}`));
      socket.once('message', (data) => resolve(`answered ${String(data)}`));
    });
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    socket.send(Buffer.from('{"type":"connection_init","payload":{"x":"\xff"}}', 'latin1'), { binary: true });
    expect(await outcome).toBe('closed 1007');
    socket.terminate();
  });
});

describe('the app service state events', () => {
  let appService: FakeAppService;
  let server: TestServer;
  beforeAll(async () => {
    appService = await startFakeAppService();
    server = await startTestServer('sqlite', {
      env: { APP_SERVICE_URL: appService.url, APP_SERVICE_EVENT_SECRET: SECRET },
    });
  });
  afterAll(async () => {
    await server?.stop();
    await appService?.stop();
  });

  test('a state event that is not UTF-8 is refused with 400 at the intake', async () => {
    const event = `{"name":"gitea","user":"admin","state":"installFailed","createTime":"${new Date().toISOString()}","message":"caf\xe9"}`;
    const response = await fetch(`${server.url}/events/app-state`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRET}` },
      body: new Uint8Array(Buffer.from(event, 'latin1')),
    });
    expect({ status: response.status, body: await response.json() }).toEqual({
      status: 400,
      body: { error: expect.stringContaining('not valid UTF-8') },
    });
  });
});
