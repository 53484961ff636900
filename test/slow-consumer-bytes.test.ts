import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import type { RuntimeApp } from '../src/runtime/state-store.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * Slow subscribers of big results: each snapshot here is 1.5 MB of JSON (1,500 apps with a long
 * reason each), and each view (filter, fields) is its own cohort, so what waits for a slow
 * subscriber of one view is that view's alone. Counted by results only, each slow subscriber could
 * hold RUNTIME_SUBSCRIBER_BUFFER (1,000) of them; the queue is bounded by bytes as well
 * (QUEUED_BYTES_LIMIT), so it overflows (and catches up once it reads again) long before that,
 * and the server's heap stays bounded. Without the bound, the 60 snapshots of this test took the
 * heap from 118 to 516 MB; with it, from 123 to 161 MB.
 */

const APPS = 1_500;
const SLOW_PER_TRANSPORT = 2;
/** Snapshots pushed while the slow subscribers read nothing: far fewer than RUNTIME_SUBSCRIBER_BUFFER. */
const CHANGES = 60;
const at = new Date('2026-01-01T00:00:00Z');

function app(index: number): RuntimeApp {
  return {
    id: index + 1,
    userId: `user${index % 50}`,
    sourceId: 'market.olares',
    appName: `app-${index}`,
    rawAppName: null,
    title: `App number ${index}`,
    cfgType: 'app',
    installedVersion: '1.0.0',
    targetVersion: null,
    state: 'running',
    reason: `Running since the last upgrade; ${'all checks passed, '.repeat(50)}nothing to report`,
    message: 'running normally',
    progress: '100',
    opType: null,
    opId: null,
    eventTime: at,
    entrances: null,
    createdAt: at,
    updatedAt: at,
    derived: { stage: 'RUNNING', health: 'HEALTHY' },
  } as RuntimeApp;
}

/** A dashboard's view of every app; each `name` is its own cohort (its own executions and results). */
const wall = (name: string) => `subscription ${name} { runtimeSnapshot { sequence apps { appName reason } } }`;

/** The sequence of one received snapshot, if the text carries one. */
const sequenceIn = (text: string) => Number(/"sequence":(\d+)/.exec(text)?.[1] ?? Number.NaN);

/** A graphql-transport-ws subscriber by hand, so the test can stop reading its socket. */
async function wsSubscriber(url: string, name: string) {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const acknowledged = new Promise((resolve) => socket.once('message', resolve));
  socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${TOKENS.ops}` } }));
  await acknowledged;
  const sequences: number[] = [];
  socket.on('message', (data) => sequences.push(sequenceIn(String(data))));
  socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: wall(name) } }));
  const raw = (socket as unknown as { _socket: Socket })._socket;
  return { sequences, pause: () => raw.pause(), resume: () => raw.resume(), close: () => socket.terminate() };
}

/** A graphql-sse (distinct connections) subscriber over a bare socket, so the test can stop reading it. */
async function sseSubscriber(url: string, name: string) {
  const { hostname, host, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => {});
  const body = JSON.stringify({ query: wall(name) });
  socket.write(
    `POST /graphql/stream HTTP/1.1\r\nHost: ${host}\r\nAccept: text/event-stream\r\n` +
      `Authorization: Bearer ${TOKENS.ops}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  const sequences: number[] = [];
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    text += chunk;
    const events = text.split('\n\n');
    text = events.pop() ?? '';
    for (const event of events) if (event.includes('event: next')) sequences.push(sequenceIn(event));
  });
  await waitFor(async () => (sequences.length > 0 ? true : undefined), `${name}'s first snapshot`);
  return { sequences, pause: () => socket.pause(), resume: () => socket.resume(), close: () => socket.destroy() };
}

/** Values of one metric from /metrics, by its label set as written (`{transport="ws"}`). */
async function metric(server: TestServer, name: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const [series, value] = line.split(' ');
    values.set(series?.slice(name.length) ?? '', Number(value));
  }
  return values;
}

const heapUsed = async (server: TestServer) => (await metric(server, 'nodejs_heap_size_used_bytes')).get('') ?? 0;
const MB = 1024 * 1024;

describe('slow subscribers of big results', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      env: {
        ...AUTH_ENV,
        SUBSCRIPTION_MAX_BUFFERED_BYTES: '65536',
        // The stalled clients are kept: this test is about what waits for them, not about closing them.
        SUBSCRIPTION_KEEPALIVE_MS: '600000',
        COLLECT_INTERVAL_MS: '3600000',
        SNAPSHOT_MAX_HZ: '100',
      },
    });
    const { store } = server.app.services;
    for (let index = 0; index < APPS; index += 1) store.putApp(app(index));
  });
  afterAll(() => server?.stop());

  test('each overflows by bytes long before RUNTIME_SUBSCRIBER_BUFFER results and catches up when it reads again; the heap stays bounded', async () => {
    const { store } = server.app.services;
    // Four views, each watched by a slow subscriber and by one that keeps reading (who shares
    // the results, so they are serialized while the slow one's queue holds them).
    const names = Array.from({ length: 2 * SLOW_PER_TRANSPORT }, (_, n) => `Wall${n}`);
    const readers = await Promise.all(names.map((name) => wsSubscriber(server.url, name)));
    const slow = await Promise.all(
      names.map((name, n) => (n < SLOW_PER_TRANSPORT ? wsSubscriber : sseSubscriber)(server.url, name)),
    );
    const everyone = [...readers, ...slow];
    try {
      await waitFor(async () => (everyone.every((s) => s.sequences.length > 0) ? true : undefined), 'first snapshots');
      for (const subscriber of slow) subscriber.pause();
      const heapBefore = await heapUsed(server);

      // Each change is pushed to every view, paced by the readers getting it.
      let heapPeak = heapBefore;
      const sequences: number[] = [];
      for (let change = 0; change < CHANGES; change += 1) {
        const probe = { name: 'probe', healthy: true, state: 'RUNNING' as const, metrics: {} };
        store.putComponent({ ...probe, message: String(change), lastCheck: new Date() });
        const sequence = store.lastSequence;
        sequences.push(sequence);
        await waitFor(
          async () => (readers.every((r) => r.sequences.at(-1) === sequence) ? true : undefined),
          `snapshot ${sequence}`,
        );
        if (change % 10 === 9) heapPeak = Math.max(heapPeak, await heapUsed(server));
      }
      for (const reader of readers) expect(reader.sequences.slice(-CHANGES)).toEqual(sequences);

      // A member that overflowed queues nothing more until it drained, so while they read nothing
      // each slow subscriber overflows once at most: the counts say every one of them did.
      const overflows = await metric(server, 'market_slow_consumer_overflows_total');
      expect([overflows.get('{transport="ws"}'), overflows.get('{transport="sse"}')]).toEqual([
        SLOW_PER_TRANSPORT,
        SLOW_PER_TRANSPORT,
      ]);
      heapPeak = Math.max(heapPeak, await heapUsed(server));
      // Queued were at most QUEUED_BYTES_LIMIT and one snapshot each (1.5 MB): without the bound,
      // every snapshot of the 60 (90 MB a view, 360 MB in all).
      expect(heapPeak - heapBefore).toBeLessThan(150 * MB);

      // They read again: each gets what reached its socket before, then the latest snapshot as
      // its catch-up instead of the backlog.
      const last = sequences.at(-1);
      for (const subscriber of slow) subscriber.resume();
      for (const subscriber of slow) {
        await waitFor(async () => (subscriber.sequences.at(-1) === last ? true : undefined), 'the catch-up');
        expect(subscriber.sequences.length).toBeLessThan(CHANGES / 2);
      }
      const catchUps = await metric(server, 'market_slow_consumer_catchups_total');
      expect([catchUps.get('{transport="ws"}'), catchUps.get('{transport="sse"}')]).toEqual([
        SLOW_PER_TRANSPORT,
        SLOW_PER_TRANSPORT,
      ]);
    } finally {
      for (const subscriber of everyone) subscriber.close();
    }
  }, 120_000);
});
