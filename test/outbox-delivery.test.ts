import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { verifySignature } from '../src/platform/signature.js';
import { deliverOnce, receiversAgent } from '../src/services/outbox-delivery.js';

/** One delivery attempt against a real receiver on port 0, answering as `answer` says. */
const SECRET = 'delivery-test-secret-0123456789';
const servers: Server[] = [];
const agent = receiversAgent(2_000);

async function receiver(answer: (request: IncomingMessage, body: string, response: ServerResponse) => void) {
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => {
      body += chunk;
    });
    request.on('end', () => answer(request, body, response));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?from=test`;
}

function message(url: string) {
  return { url, body: '{"event":"TASK_FINISHED"}', topic: 'task.finished', idempotencyKey: 'key-1', attempts: 1 };
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('one delivery attempt', () => {
  test('POSTs the body to the URL with its headers and a valid signature; a 2xx delivers it', async () => {
    const seen: { path?: string; headers?: IncomingMessage['headers']; body?: string } = {};
    const url = await receiver((request, body, response) => {
      Object.assign(seen, { path: request.url, headers: request.headers, body });
      response.writeHead(202).end('accepted');
    });
    expect(await deliverOnce(message(url), SECRET, 2_000, agent)).toEqual({ ok: true, statusCode: 202 });
    expect(seen.path).toBe('/hook?from=test');
    expect(seen.body).toBe('{"event":"TASK_FINISHED"}');
    expect(seen.headers).toMatchObject({
      'content-type': 'application/json',
      'idempotency-key': 'key-1',
      'x-event-topic': 'task.finished',
      'x-delivery-attempt': '1',
    });
    expect(verifySignature(SECRET, seen.body as string, seen.headers?.['x-signature'] as string)).toBe(true);
  });

  test('a 2xx with a long answer (1 MiB) is delivered', async () => {
    const url = await receiver((_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' });
      // The attempt settles once 64 KiB came in and cuts the rest (outbox-delivery.ts).
      response.end('x'.repeat(1024 * 1024));
    });
    expect(await deliverOnce(message(url), SECRET, 2_000, agent)).toEqual({ ok: true, statusCode: 200 });
  });

  test('a refusal is a failed attempt whose error quotes the start of the answer, without the secret', async () => {
    const url = await receiver((_request, _body, response) => {
      response.writeHead(503).end(`busy   now\n\tsecret ${SECRET} ${'y'.repeat(2_000)}`);
    });
    const outcome = await deliverOnce(message(url), SECRET, 2_000, agent);
    expect(outcome).toMatchObject({ ok: false, statusCode: 503 });
    const error = (outcome as { error: string }).error;
    expect(error.startsWith('the receiver answered HTTP 503: busy now secret ')).toBe(true);
    expect(error).not.toContain(SECRET);
    expect(error.length).toBeLessThanOrEqual(500);
  });

  test('a receiver that is not there is unreachable, named by the network error', async () => {
    const url = await receiver(() => {});
    const closed = servers.pop() as Server;
    await new Promise((resolve) => closed.close(resolve));
    expect(await deliverOnce(message(url), SECRET, 2_000, agent)).toEqual({
      ok: false,
      statusCode: null,
      error: 'unreachable: ECONNREFUSED',
    });
  });

  test('a receiver that never answers is cut at the timeout', async () => {
    const url = await receiver(() => {}); // reads the request, never answers
    const started = Date.now();
    expect(await deliverOnce(message(url), SECRET, 300, agent)).toEqual({
      ok: false,
      statusCode: null,
      error: 'no answer within 300 ms',
    });
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
