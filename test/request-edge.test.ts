import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { rawExchange } from './support/raw-http.js';
import { startTestServer, type TestServer } from './support/server.js';

/**
 * Requests a browser or a client library would never send, as an attacker (or a flaky network)
 * does: cut-off bodies, odd spellings of the GraphQL path, request targets and Host headers that
 * do not parse. Each case failed before its fix (found by probing the running server).
 */

const WEBHOOK =
  'mutation { addWebhook(input: { url: "http://127.0.0.1:9/steal", events: [TASK_FINISHED] }) { __typename } }';

const statusOf = (answer: string) => Number(answer.split(' ')[1]);

describe('requests off the beaten path', () => {
  let server: TestServer;
  let port: number;
  const unhandled: unknown[] = [];
  const record = (reason: unknown) => unhandled.push(reason);

  beforeAll(async () => {
    process.on('unhandledRejection', record);
    server = await startTestServer('sqlite', { env: { MAX_BODY_BYTES: String(64 * 1024) } });
    port = Number(new URL(server.url).port);
  });
  afterAll(async () => {
    process.off('unhandledRejection', record);
    await server?.stop();
  });

  async function serverAnswers(): Promise<boolean> {
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ viewer { userId } }' }),
    });
    return response.status === 200;
  }

  test('a POST whose body is cut off mid-way is dropped; the server goes on serving', async () => {
    for (const path of ['/graphql', '/graphql/stream']) {
      const head = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`;
      await rawExchange(port, `${head}{"query": "{ viewer { userId } }"`, { cutAfterWrite: true });
    }
    expect(await serverAnswers()).toBe(true);
    expect(unhandled).toEqual([]);
    expect(server.logs.filter((line) => JSON.parse(line).level >= 50)).toEqual([]);
  });

  test('a body sent in chunks is read whole, on both GraphQL routes', async () => {
    const query = JSON.stringify({ query: '{ viewer { userId } }' });
    const pieces = [query.slice(0, 5), query.slice(5, 17), query.slice(17)];
    const chunked = pieces.map((piece) => `${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`).join('');
    for (const path of ['/graphql', '/graphql/stream']) {
      const answer = await rawExchange(
        port,
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked}0\r\n\r\n`,
      );
      expect(statusOf(answer), `${path}: ${answer}`).toBe(200);
      expect(answer, path).toContain('"viewer":{"userId":"admin"}');
    }
  });

  test('other spellings of /graphql are not GraphQL endpoints: 404, before the body is read', async () => {
    const webhooksBefore = await server.app.db.webhook.count();
    for (const path of ['/graphql/', '//graphql', '/./graphql', '/x/../graphql', '/GRAPHQL']) {
      // A form POST from another site: refused on /graphql (403), and must not run anywhere else.
      const form = `query=${encodeURIComponent(WEBHOOK)}`;
      const answer = await rawExchange(
        port,
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\nConnection: close\r\n\r\n${form}`,
      );
      expect(statusOf(answer), `${path}: ${answer}`).toBe(404);
      // An event stream that would skip the per-user stream limit.
      const stream = await rawExchange(
        port,
        `GET ${path}?query=${encodeURIComponent('subscription { taskUpdated { taskId } }')} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n`,
      );
      expect(statusOf(stream), `${path}: ${stream}`).toBe(404);
    }
    expect(await server.app.db.webhook.count()).toBe(webhooksBefore);
  });

  test('an absolute-form target or a Host that does not parse gets a 4xx without a stack trace', async () => {
    const answers = [
      await rawExchange(
        port,
        `GET http://127.0.0.1:${port}/graphql?query=%7B__typename%7D HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      ),
      ...(await Promise.all(
        ['[', 'a b', 'x:99999', '%'].map((host) =>
          rawExchange(
            port,
            `GET /graphql?query=%7B__typename%7D HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
          ),
        ),
      )),
    ];
    for (const answer of answers) {
      expect(statusOf(answer), answer).toBeGreaterThanOrEqual(400);
      expect(statusOf(answer), answer).toBeLessThan(500);
      expect(answer).not.toMatch(/node_modules|\n\s+at /);
    }
    expect(await serverAnswers()).toBe(true);
  });
});
