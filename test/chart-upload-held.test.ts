import http from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UPLOADS_AT_ONCE } from '../src/http/held-uploads.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * How many chart upload bodies the instance holds at once (UPLOADS_AT_ONCE). The uploads run one at
 * a time, but every body waiting its turn was read whole and copied twice: 48 concurrent 10 MiB
 * uploads took the process from 274 to 855 MB. Uploads are held open by sending their headers with
 * `Expect: 100-continue` and no body: the server asks for the body (100 Continue) only once the
 * upload holds a place, and a refused one is answered before a byte of it is sent.
 */

const BOUNDARY = 'held-upload';
const DECLARED_BYTES = 5 * 1024 * 1024;

/** What became of an upload whose headers were sent: asked for its body, or answered without it. */
type Outcome =
  | { kind: 'continue'; request: http.ClientRequest }
  | { kind: 'answer'; status: number; headers: http.IncomingHttpHeaders; body: string };

/** Sends an upload's headers (a 5 MiB body declared, none sent) as `token`, and says what the server did. */
function startUpload(server: TestServer, token: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const request = http.request(server.graphqlUrl, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
        'content-length': String(DECLARED_BYTES),
        'x-graphql-yoga-csrf': '1',
        expect: '100-continue',
      },
    });
    request.on('continue', () => resolve({ kind: 'continue', request }));
    request.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () =>
        resolve({ kind: 'answer', status: response.statusCode ?? 0, headers: response.headers, body }),
      );
    });
    // A held upload is cut by the test: its error is expected.
    request.on('error', reject);
    request.flushHeaders();
  });
}

describe('chart uploads held at once', () => {
  let server: TestServer;
  const held: http.ClientRequest[] = [];

  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: AUTH_ENV });
  });
  afterAll(async () => {
    for (const request of held) request.destroy();
    await server?.stop();
  });

  test('past UPLOADS_AT_ONCE uploads an admin upload is refused 429 before its body is read; a place comes back when one ends', async () => {
    for (let index = 0; index < UPLOADS_AT_ONCE; index++) {
      const outcome = await startUpload(server, TOKENS.ops);
      expect(outcome.kind).toBe('continue');
      if (outcome.kind === 'continue') {
        outcome.request.on('error', () => {});
        held.push(outcome.request);
      }
    }
    const refused = await startUpload(server, TOKENS.ops);
    expect(refused).toMatchObject({
      kind: 'answer',
      status: 429,
      headers: { 'retry-after': '5', connection: 'close' },
    });
    expect(refused.kind === 'answer' && JSON.parse(refused.body)).toEqual({
      errors: [
        {
          message: `Too many chart uploads at once on this instance (at most ${UPLOADS_AT_ONCE}): retry shortly.`,
          extensions: { code: 'LIMIT_EXCEEDED' },
        },
      ],
    });
    // Another user's multipart POST has an ordinary body limit and takes no place: refused for its size, not 429.
    const alices = await startUpload(server, TOKENS.alice);
    expect(alices.kind === 'answer' ? alices.status : alices.kind).toBe(413); // 5 MiB is past MAX_BODY_BYTES
    // One upload ends (its client goes away): its place is the next upload's.
    held.shift()?.destroy();
    const next = await waitFor(async () => {
      const outcome = await startUpload(server, TOKENS.ops);
      return outcome.kind === 'continue' ? outcome.request : undefined;
    }, 'a place for an upload');
    next.on('error', () => {});
    held.push(next);
    expect(await startUpload(server, TOKENS.ops)).toMatchObject({ kind: 'answer', status: 429 });
  });
});
