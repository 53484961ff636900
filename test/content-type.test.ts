import { deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS } from './support/server.js';

/**
 * Media types are case-insensitive (RFC 9110 §8.3.1): a client that writes `Application/JSON` sends
 * JSON, and a page that writes `Text/Plain` sends a form. Each route that reads a request's
 * Content-Type is driven here with real HTTP requests; the JSON cases failed before the fix (415,
 * from Yoga with an empty body, and from the SSE transport).
 */

const ALLOWED = 'https://console.example.com';
const VIEWER = 'query { viewer { userId isAdmin } }';
const ALICE = { data: { viewer: { userId: 'alice', isAdmin: false } } };
const INSTALL =
  'mutation { installApp(input: { sourceId: "market.olares", appName: "n8n", version: "1.70.1" }) { __typename } }';
const MIXED_CASE_JSON = ['Application/JSON', 'application/JSON; charset=UTF-8', 'APPLICATION/JSON;charset=utf-8'];

describe('Content-Type is read case-insensitively, and the cross-site rule with it', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { ...AUTH_ENV, CORS_ORIGINS: ALLOWED } });
  });
  afterAll(() => server?.stop());

  const auth = { authorization: `Bearer ${TOKENS.alice}` };

  /** POSTs `body` as text under `contentType`; the status, the headers and the body as text. */
  async function post(path: string, contentType: string, body: string, headers: Record<string, string> = {}) {
    const response = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': contentType, accept: 'application/graphql-response+json', ...headers },
      body,
    });
    return { status: response.status, headers: response.headers, text: await response.text() };
  }

  test('a mixed-case JSON POST to /graphql is answered as application/json is: on the lean path and through Yoga', async () => {
    const cases: { what: string; body: object; headers: Record<string, string> }[] = [
      { what: 'lean path', body: { query: VIEWER }, headers: {} },
      // An allowed origin's request needs CORS headers, which Yoga adds: it goes through Yoga.
      { what: 'Yoga (CORS)', body: { query: VIEWER }, headers: { origin: ALLOWED } },
      // A document that does not validate is answered by Yoga too.
      { what: 'Yoga (invalid)', body: { query: '{ viewer { nope } }' }, headers: {} },
      // So is a body with a key the lean path does not know.
      { what: 'Yoga (unknown key)', body: { query: VIEWER, extra: 1 }, headers: {} },
    ];
    for (const { what, body, headers } of cases) {
      const expected = await post('/graphql', 'application/json', JSON.stringify(body), headers);
      expect(expected.text, what).not.toBe('');
      for (const contentType of MIXED_CASE_JSON) {
        const answer = await post('/graphql', contentType, JSON.stringify(body), headers);
        expect({ status: answer.status, text: answer.text }, `${what}, ${contentType}`).toEqual({
          status: expected.status,
          text: expected.text,
        });
        expect(answer.headers.get('content-type')).toBe('application/graphql-response+json; charset=utf-8');
      }
    }
    const throughYoga = await post('/graphql', 'Application/JSON', JSON.stringify({ query: VIEWER }), {
      origin: ALLOWED,
    });
    expect(JSON.parse(throughYoga.text)).toEqual(ALICE);
    expect(throughYoga.headers.get('access-control-allow-origin')).toBe(ALLOWED);
  });

  test('a mixed-case JSON POST opens an SSE stream, on /graphql/stream and on /graphql', async () => {
    for (const path of ['/graphql/stream', '/graphql']) {
      for (const contentType of MIXED_CASE_JSON) {
        const answer = await post(path, contentType, JSON.stringify({ query: VIEWER }), {
          accept: 'text/event-stream',
        });
        expect({ status: answer.status, type: answer.headers.get('content-type') }, `${path} ${contentType}`).toEqual({
          status: 200,
          type: 'text/event-stream; charset=utf-8',
        });
        expect(answer.text).toContain(`event: next\ndata: ${JSON.stringify(ALICE)}\n`);
      }
    }
  });

  test('a mixed-case Accept: Text/Event-Stream on /graphql is served by the SSE transport (its limits), not by Yoga', async () => {
    for (const accept of ['Text/Event-Stream', 'TEXT/EVENT-STREAM']) {
      const answer = await post('/graphql', 'application/json', JSON.stringify({ query: VIEWER }), { accept });
      // The transport's own headers: what it answers with is the stream whose budget it counted.
      expect({ status: answer.status, buffering: answer.headers.get('x-accel-buffering') }, accept).toEqual({
        status: 200,
        buffering: 'no',
      });
      expect(answer.text).toContain(`event: next\ndata: ${JSON.stringify(ALICE)}\n`);
    }
  });

  test('a mixed-case multipart POST with the preflight header is parsed as multipart', async () => {
    const boundary = 'market-boundary';
    const part = (name: string, value: string) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
    const body = `${part('operations', JSON.stringify({ query: VIEWER }))}${part('map', '{}')}--${boundary}--\r\n`;
    for (const type of ['multipart/form-data', 'Multipart/Form-Data', 'MULTIPART/FORM-DATA']) {
      const answer = await post('/graphql', `${type}; boundary=${boundary}`, body, { 'x-graphql-yoga-csrf': '1' });
      expect({ status: answer.status, body: answer.text }, type).toEqual({ status: 200, body: JSON.stringify(ALICE) });
    }
  });

  test('form types in any case (what a page sends without a preflight) are still refused with 415, nothing run', async () => {
    const before = await server.app.db.task.count();
    const forms = [
      ['Text/Plain', JSON.stringify({ query: INSTALL })],
      ['TEXT/PLAIN; charset=UTF-8', JSON.stringify({ query: INSTALL })],
      ['Application/X-WWW-Form-Urlencoded', new URLSearchParams({ query: INSTALL }).toString()],
      [
        'Multipart/Form-Data; boundary=x',
        `--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{}\r\n--x--\r\n`,
      ],
    ] as const;
    for (const path of ['/graphql', '/graphql/stream']) {
      for (const [contentType, body] of forms) {
        const answer = await post(path, contentType, body);
        expect(answer.status, `${path} ${contentType}`).toBe(415);
        expect(JSON.parse(answer.text)).toEqual({
          errors: [expect.objectContaining({ message: expect.stringContaining('forms are not accepted') })],
        });
      }
    }
    expect(await server.app.db.task.count()).toBe(before);
  });

  test('a compressed body (Content-Encoding gzip, deflate, any case) is refused with 415 naming the coding', async () => {
    const json = Buffer.from(JSON.stringify({ query: VIEWER }));
    const send = (body: Buffer, encoding: string, path = '/graphql') =>
      fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', 'content-encoding': encoding },
        body: new Uint8Array(body),
      });
    for (const [encoding, body, shown] of [
      ['gzip', gzipSync(json), 'gzip'],
      ['Deflate', deflateSync(json), 'Deflate'],
      ['identity, gzip', gzipSync(json), 'identity, gzip'],
    ] as const) {
      for (const path of ['/graphql', '/graphql/stream']) {
        const answer = await send(body, encoding, path);
        expect(answer.status, `${path} ${encoding}`).toBe(415);
        expect(await answer.json()).toEqual({
          errors: [
            {
              message: `Request bodies are read as sent: Content-Encoding ${shown} is not accepted (send it uncompressed)`,
              extensions: { code: 'VALIDATION' },
            },
          ],
        });
      }
    }
    // No coding: the body as sent.
    const plain = await send(json, 'identity');
    expect({ status: plain.status, body: await plain.json() }).toEqual({ status: 200, body: ALICE });
  });
});
