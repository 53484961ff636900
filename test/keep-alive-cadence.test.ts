import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS } from './support/server.js';

/**
 * How often the server writes to a quiet subscription: at least once a SUBSCRIPTION_KEEPALIVE_MS
 * (a proxy closing connections idle for longer than the setting must not cut them), and about once
 * a period, not more (thousands of idle subscribers each cost their keep-alives).
 */

const PERIOD_MS = 1000;
/** Keep-alives to wait for on each connection: gaps between them are what is measured. */
const COUNT = 6;
/** A subscription that stays quiet: the simulated app service stands still in tests. */
const QUIET = 'subscription { runtimeEvents { sequence kind } }';

/** The largest gap between consecutive arrival times, and the average one. */
function gaps(times: number[]): { largest: number; average: number } {
  const each = times.slice(1).map((time, i) => time - (times[i] as number));
  return { largest: Math.max(...each), average: (times.at(-1)! - times[0]!) / each.length };
}

/** Resolves with the arrival times of the first `count` events `on` reports. */
function arrivals(count: number, on: (note: () => void) => void): Promise<number[]> {
  return new Promise((resolve) => {
    const times: number[] = [];
    on(() => {
      times.push(performance.now());
      if (times.length === count) resolve(times);
    });
  });
}

describe('keep-alive cadence', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { ...AUTH_ENV, SUBSCRIPTION_KEEPALIVE_MS: String(PERIOD_MS) } });
  });
  afterAll(() => server?.stop());

  /** An acknowledged graphql-ws connection holding a quiet subscription. */
  async function quietSocket(autoPong: boolean): Promise<WebSocket> {
    const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws', { autoPong });
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    const acked = new Promise((resolve) => socket.once('message', resolve));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${TOKENS.alice}` } }));
    await acked;
    socket.send(JSON.stringify({ id: 's', type: 'subscribe', payload: { query: QUIET } }));
    return socket;
  }

  test('a quiet WebSocket that answers pings gets one at least once a period, and about once a period', async () => {
    const socket = await quietSocket(true);
    const times = await arrivals(COUNT, (note) => {
      socket.on('ping', note);
      socket.on('message', note);
    });
    socket.close();
    const { largest, average } = gaps(times);
    // Ticking once a period, the pong made the next tick skip the connection: a ping every 2 periods.
    expect(largest).toBeLessThan(1.6 * PERIOD_MS);
    expect(average).toBeGreaterThan(0.8 * PERIOD_MS);
  });

  test('a WebSocket that never answers pings is cut a period after its first ping', async () => {
    const socket = await quietSocket(false);
    const pinged = new Promise<number>((resolve) => socket.once('ping', () => resolve(performance.now())));
    const closed = new Promise<{ code: number; at: number }>((resolve) =>
      socket.once('close', (code) => resolve({ code, at: performance.now() })),
    );
    const [pingAt, { code, at }] = await Promise.all([pinged, closed]);
    expect(code).toBe(1006);
    expect(at - pingAt).toBeGreaterThan(0.8 * PERIOD_MS);
    expect(at - pingAt).toBeLessThan(1.6 * PERIOD_MS);
  });

  test('a quiet SSE stream gets a comment at least once a period, and about once a period', async () => {
    const response = await fetch(`${server.url}/graphql/stream`, {
      method: 'POST',
      headers: {
        accept: 'text/event-stream',
        authorization: `Bearer ${TOKENS.alice}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ query: QUIET }),
    });
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const chunks: string[] = [];
    const times = await arrivals(COUNT, async (note) => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        chunks.push(Buffer.from(value).toString());
        note();
      }
    });
    await reader.cancel();
    expect(chunks.slice(1).every((chunk) => chunk === ':\n\n')).toBe(true);
    const { largest, average } = gaps(times);
    // Ticking once a period, the comment made the next tick skip the stream: one every 2 periods.
    expect(largest).toBeLessThan(1.6 * PERIOD_MS);
    expect(average).toBeGreaterThan(0.8 * PERIOD_MS);
  });
});
