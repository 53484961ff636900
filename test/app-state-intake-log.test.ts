import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type FakeAppService, startFakeAppService } from './support/fake-app-service.js';
import { startTestServer, type TestServer, waitFor } from './support/server.js';

/**
 * The app service's state events refused at the intake (HTTP mode): the operator reads why in the
 * request's log line, as for every other refusal. Seen before as `status 400` alone, so an app
 * service upgraded to send events this server cannot read left apps standing still with nothing
 * saying why.
 */

const SECRET = 'app-service-event-secret-0001';

describe('the state-event intake', () => {
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

  const send = (requestId: string, secret: string, body: unknown) =>
    fetch(`${server.url}/events/app-state`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}`, 'x-request-id': requestId },
      body: JSON.stringify(body),
    });
  const lineOf = (requestId: string) =>
    waitFor(
      async () =>
        server.logs
          .map((line) => JSON.parse(line) as Record<string, unknown>)
          .find((line) => line.msg === 'request' && line.requestId === requestId),
      `the request line of ${requestId}`,
    );

  test('a wrong secret and a malformed event are logged with their code and reason, never the secret sent', async () => {
    expect((await send('intake-401', 'not-the-secret-INTAKEFIX', { name: 'x' })).status).toBe(401);
    expect(await lineOf('intake-401')).toMatchObject({
      status: 401,
      code: 'UNAUTHENTICATED',
      reason: 'invalid event secret',
    });
    const malformed = await send('intake-400', SECRET, { state: 'running' });
    expect(malformed.status).toBe(400);
    const { error } = (await malformed.json()) as { error: string };
    expect(await lineOf('intake-400')).toMatchObject({ status: 400, code: 'VALIDATION', reason: error });
    expect(error).toMatch(/name/);
    expect(server.logs.join('\n')).not.toContain('INTAKEFIX');
  });

  test('an event with a Content-Encoding gets 415 naming it before its body is read, as the GraphQL endpoint answers', async () => {
    const event = {
      name: 'gzipped-app',
      user: 'alice',
      state: 'running',
      opType: 'install',
      opID: 'op-gzip',
      createTime: new Date().toISOString(),
    };
    const encoded = (requestId: string, encoding: string, body: Uint8Array<ArrayBuffer>) =>
      fetch(`${server.url}/events/app-state`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-encoding': encoding,
          authorization: `Bearer ${SECRET}`,
          'x-request-id': requestId,
        },
        body,
      });
    const gzipped = await encoded('intake-415', 'gzip', new Uint8Array(gzipSync(JSON.stringify(event))));
    expect(gzipped.status).toBe(415);
    const { error } = (await gzipped.json()) as { error: string };
    expect(error).toBe('Request bodies are read as sent: Content-Encoding gzip is not accepted (send it uncompressed)');
    expect(await lineOf('intake-415')).toMatchObject({ status: 415, code: 'VALIDATION', reason: error });
    const graphql = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: new Uint8Array(gzipSync(JSON.stringify({ query: '{ __typename }' }))),
    });
    expect(graphql.status).toBe(415);
    expect(((await graphql.json()) as { errors: { message: string }[] }).errors[0]?.message).toBe(error);

    // Refused before its body is read: one over MAX_BODY_BYTES (1 MiB) gets 415 too, not 413.
    expect((await encoded('intake-415-large', 'br', new Uint8Array(2 * 1024 * 1024).fill(1))).status).toBe(415);
    expect(
      (
        await encoded(
          'intake-identity',
          'identity',
          new TextEncoder().encode(JSON.stringify(event)) as Uint8Array<ArrayBuffer>,
        )
      ).status,
    ).toBe(202);
  });
});
