import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type WebSocket from 'ws';
import { STALL_PERIODS } from '../src/transports/read-progress.js';
import { metricValue } from './support/metrics.js';
import { openRawSocket, type RawSocket } from './support/raw-ws.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * Clients that stop reading their socket while the TCP connection stays open, and clients that
 * read slowly: the first are closed within (STALL_PERIODS + 1) keep-alive periods of bytes
 * waiting for them, and their connection slot comes free; the second never are.
 */

const EVENTS = 'subscription { runtimeEvents { sequence kind component { name metrics } } }';
/** Enough per event that a few dozen outgrow the kernel's socket buffers (about 4 MB over loopback). */
const BULKY = 'x'.repeat(64 * 1024);

/** One runtime event of about 64 kB for every subscriber (the message makes it an event). */
function produce(server: TestServer, count: number): void {
  for (let i = 0; i < count; i += 1) {
    server.app.services.store.putComponent({
      name: 'probe',
      healthy: true,
      state: 'RUNNING',
      message: `${Date.now()}/${i}`,
      lastCheck: new Date(),
      metrics: { bulky: BULKY },
    });
  }
}

/** A burst of `count` events, yielding now and then so that the writes go out to the sockets. */
async function burst(server: TestServer, count: number): Promise<void> {
  for (let done = 0; done < count; done += 10) {
    produce(server, 10);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** An SSE subscription over a bare TCP socket (graphql-sse's distinct connections), and its answer's head. */
async function rawSseStream(server: TestServer, token: string): Promise<{ socket: Socket; head: string }> {
  const url = new URL(server.url);
  const socket = connect(Number(url.port), url.hostname);
  socket.on('error', () => {});
  const body = JSON.stringify({ query: EVENTS });
  socket.write(
    `POST /graphql/stream HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n` +
      `Authorization: Bearer ${token}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  let text = '';
  const head = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      resolve(text.slice(0, end));
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('closed before the answer')));
  });
  return { socket, head };
}

/** A graphql-ws connection of `token`'s user, acknowledged; the close code if the server refused it instead. */
async function rawWs(server: TestServer, token: string): Promise<RawSocket> {
  const raw = await openRawSocket(server.url);
  raw.socket.on('error', () => {});
  raw.send({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } });
  return raw;
}

/** The net.Socket under a ws client, which the test pauses to stop reading. */
function tcpOf(socket: WebSocket): Socket {
  return (socket as unknown as { _socket: Socket })._socket;
}

const CUT_SSE = 'market_subscription_clients_cut_total{transport="sse",reason="stalled"}';
const CUT_WS = 'market_subscription_clients_cut_total{transport="ws",reason="stalled"}';

/** Log lines (parsed) with this message. */
function logged(server: TestServer, msg: string): Record<string, unknown>[] {
  return server.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === msg);
}

/**
 * Each transport with a client that stops reading after a burst, while events keep coming: writes
 * every period made the WebSocket look alive (no ping), and neither transport held more than
 * SUBSCRIPTION_MAX_BUFFERED_BYTES, so neither closed it (at the default 1 MB and events of a few
 * kB a minute, it would have taken hours). 16 MB here models that: nothing queues in the test.
 */
describe('a subscriber that stops reading while its events keep coming', () => {
  const KEEPALIVE_MS = 1000;
  /** The bound, plus a margin for timers on a busy machine. */
  const BOUND_MS = (STALL_PERIODS + 1) * KEEPALIVE_MS + 1500;
  let server: TestServer;
  let trickle: NodeJS.Timeout | undefined;
  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      env: {
        ...AUTH_ENV,
        MAX_CONNECTIONS_PER_USER: '1',
        SUBSCRIPTION_KEEPALIVE_MS: String(KEEPALIVE_MS),
        SUBSCRIPTION_MAX_BUFFERED_BYTES: String(16 * 1024 * 1024),
        COLLECT_INTERVAL_MS: '3600000',
      },
    });
  });
  afterAll(async () => {
    clearInterval(trickle);
    await server?.stop();
  });

  /** Fills the stalled client's buffers, then keeps an event coming every 200 ms; resolves when the burst is out. */
  async function stallWithTrickle(): Promise<number> {
    await burst(server, 100); // 6.4 MB: the kernel's buffers full, the rest waits in the process
    const burstEnded = Date.now();
    trickle = setInterval(() => produce(server, 1), 200);
    return burstEnded;
  }

  test('SSE: closed within the bound, logged and counted; its slot comes free (the refusal said when to retry)', async () => {
    expect(await metricValue(server, CUT_SSE)).toBe(0);
    const stalled = await rawSseStream(server, TOKENS.alice);
    try {
      expect(stalled.head).toMatch(/^HTTP\/1\.1 200/);
      await waitFor(async () => (server.app.subscriptionStats().streams === 1 ? true : undefined), 'the stream');
      stalled.socket.pause();

      // alice holds her one stream: another is refused, and told when to try again.
      const refused = await fetch(`${server.url}/graphql/stream`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKENS.alice}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: EVENTS }),
      });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe(String(((STALL_PERIODS + 1) * KEEPALIVE_MS) / 1000));
      expect(await refused.json()).toMatchObject({ errors: [{ extensions: { code: 'LIMIT_EXCEEDED' } }] });

      const burstEnded = await stallWithTrickle();
      await waitFor(
        async () => (server.app.subscriptionStats().streams === 0 ? true : undefined),
        'the stalled stream to be closed',
      );
      expect(Date.now() - burstEnded).toBeLessThan(BOUND_MS);
      expect(logged(server, 'sse stream closed: client stalled')).toEqual([
        expect.objectContaining({ userId: 'alice', reason: expect.stringMatching(/^Client read nothing for 2 s/) }),
      ]);
      expect(await metricValue(server, CUT_SSE)).toBe(1);
      expect(await metricValue(server, CUT_WS)).toBe(0);

      // Her place is free again.
      const next = await rawSseStream(server, TOKENS.alice);
      expect(next.head).toMatch(/^HTTP\/1\.1 200/);
      next.socket.destroy();
    } finally {
      clearInterval(trickle);
      stalled.socket.destroy();
    }
  }, 30_000);

  test('WebSocket: cut within the bound, logged with its user and 1008, and counted; its slot comes free', async () => {
    await waitFor(async () => (server.app.subscriptionStats().streams === 0 ? true : undefined), 'no stream left');
    const stalled = await rawWs(server, TOKENS.alice);
    try {
      await stalled.nextOfType('connection_ack');
      stalled.send({ id: '1', type: 'subscribe', payload: { query: EVENTS } });
      await waitFor(async () => (server.app.subscriptionStats().subscriptions === 1 ? true : undefined), 'the sub');
      tcpOf(stalled.socket).pause();

      // alice holds her one connection: another is refused with 1013, the reason naming the limit.
      const refused = await rawWs(server, TOKENS.alice);
      expect(await refused.closed).toEqual({
        code: 1013,
        reason: 'Too many connections for this user on this instance (MAX_CONNECTIONS_PER_USER)',
      });

      const burstEnded = await stallWithTrickle();
      await waitFor(
        async () => (server.app.subscriptionStats().connections === 0 ? true : undefined),
        'the stalled connection to be cut',
      );
      expect(Date.now() - burstEnded).toBeLessThan(BOUND_MS);
      const closes = logged(server, 'websocket closed').filter((line) => line.code === 1008);
      expect(closes).toEqual([
        expect.objectContaining({ userId: 'alice', closedBy: 'server', reason: expect.stringMatching(/read nothing/) }),
      ]);
      expect(await metricValue(server, CUT_WS)).toBe(1);

      const next = await rawWs(server, TOKENS.alice);
      await next.nextOfType('connection_ack');
      next.socket.terminate();
    } finally {
      clearInterval(trickle);
      stalled.socket.terminate();
    }
  }, 30_000);
});

const EVENT_KIND = '"kind":"';

/**
 * A bare TCP reader taking about `bytesPerSecond`, in pieces: it pauses after each until its share
 * of time passed. Counts the runtime events in what it read (both transports carry them as JSON).
 */
function readSlowly(socket: Socket, bytesPerSecond: number) {
  const state = { bytes: 0, events: 0, closed: false };
  const started = Date.now();
  let carry = ''; // the end of the last piece, too short to hold a whole marker
  socket.on('data', (chunk: Buffer) => {
    state.bytes += chunk.length;
    const text = carry + chunk.toString('latin1');
    state.events += text.split(EVENT_KIND).length - 1;
    carry = text.slice(-(EVENT_KIND.length - 1));
    const due = started + (state.bytes / bytesPerSecond) * 1000;
    if (due <= Date.now()) return;
    socket.pause();
    setTimeout(() => socket.resume(), due - Date.now());
  });
  socket.once('close', () => {
    state.closed = true;
  });
  socket.resume();
  return state;
}

/**
 * Clients reading 1 MB/s of events produced at several: they fall behind and skip what their
 * queue cannot hold, but bytes keep leaving for them. The WebSocket was cut for an unanswered ping
 * whenever a period passed with nothing written to it (its queue waiting for a drain): the pong
 * waited behind megabytes the client had not read yet.
 */
describe('subscribers that read slowly but steadily', () => {
  const KEEPALIVE_MS = 2000;
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      env: {
        ...AUTH_ENV,
        SUBSCRIPTION_KEEPALIVE_MS: String(KEEPALIVE_MS),
        SUBSCRIPTION_MAX_BUFFERED_BYTES: String(4 * 1024 * 1024),
        RUNTIME_SUBSCRIBER_BUFFER: '20',
        COLLECT_INTERVAL_MS: '3600000',
      },
    });
  });
  afterAll(() => server?.stop());

  test('stay connected over SSE and WebSocket and keep receiving events', async () => {
    const RATE = 1024 * 1024;
    const sse = await rawSseStream(server, TOKENS.alice);
    const ws = await rawWs(server, TOKENS.bob);
    await ws.nextOfType('connection_ack');
    ws.send({ id: '1', type: 'subscribe', payload: { query: EVENTS } });
    await waitFor(async () => (server.app.subscriptionStats().subscriptions === 2 ? true : undefined), 'both');
    const sseReader = readSlowly(sse.socket, RATE);
    const wsReader = readSlowly(tcpOf(ws.socket), RATE);
    const producer = setInterval(() => produce(server, 4), 50); // about 5 MB/s
    try {
      // Five keep-alive periods of reading behind: a stalled client would have been cut twice over.
      await waitFor(
        async () => (sseReader.bytes > 10 * RATE && wsReader.bytes > 10 * RATE ? true : undefined),
        'ten seconds of reading',
        30_000,
      );
      expect({ sse: sseReader.closed, ws: wsReader.closed }).toEqual({ sse: false, ws: false });
      // About 64 kB each: most of what they read was events.
      expect(sseReader.events).toBeGreaterThan(100);
      expect(wsReader.events).toBeGreaterThan(100);
      expect(server.app.subscriptionStats()).toMatchObject({ streams: 1, connections: 1, subscriptions: 2 });
      expect(logged(server, 'sse stream closed: client stalled')).toEqual([]);
      expect(logged(server, 'websocket closed')).toEqual([]);
      expect(await metricValue(server, CUT_SSE)).toBe(0);
      expect(await metricValue(server, CUT_WS)).toBe(0);
    } finally {
      clearInterval(producer);
      sse.socket.destroy();
      ws.socket.terminate();
    }
  }, 60_000);
});
