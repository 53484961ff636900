import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { RuntimeEventsSubscription } from './support/operations.js';
import { startTestServer, type TestServer, waitFor } from './support/server.js';
import { subscribe } from './support/subscriptions.js';

/** A graphql-transport-ws connection by hand, acknowledged, so the test can stop reading its socket. */
async function acknowledgedSocket(url: string): Promise<WebSocket> {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const acknowledged = new Promise((resolve) => socket.once('message', resolve));
  socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
  await acknowledged;
  return socket;
}

/** A runtimeEvents subscriber by hand, whose event kinds are collected. */
async function rawSubscriber(url: string) {
  const socket = await acknowledgedSocket(url);
  socket.send(
    JSON.stringify({
      id: '1',
      type: 'subscribe',
      payload: { query: 'subscription { runtimeEvents { sequence kind component { name metrics } } }' },
    }),
  );
  const kinds: string[] = [];
  socket.on('message', (data) => {
    const message = JSON.parse(String(data)) as {
      type: string;
      payload?: { data?: { runtimeEvents?: { kind: string } } };
    };
    const kind = message.payload?.data?.runtimeEvents?.kind;
    if (kind) kinds.push(kind);
  });
  return { socket, kinds };
}

describe('a subscriber that stops reading', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      env: { SUBSCRIPTION_MAX_BUFFERED_BYTES: '65536', COLLECT_INTERVAL_MS: '3600000' },
    });
  });
  afterAll(() => server?.stop());

  test('gets RESYNC once more than RUNTIME_SUBSCRIBER_BUFFER events (or 4 MiB of them) wait for it; others get every event meanwhile', async () => {
    const slow = await rawSubscriber(server.url);
    // `since` makes delivery independent of when the server registers the subscription.
    const healthy = await subscribe(server, RuntimeEventsSubscription, {
      since: server.app.services.store.lastSequence,
    });
    try {
      // The slow client stops reading: once the sockets' buffers are full, its events wait in
      // the server (graphql-ws sends one message at a time).
      (slow.socket as unknown as { _socket: { pause(): void } })._socket.pause();
      const { store } = server.app.services;
      const first = store.lastSequence + 1;
      const bulky = 'x'.repeat(64 * 1024); // enough to outgrow the kernel's socket buffers
      // Changes come in bursts the healthy subscriber keeps up with (each within its buffer).
      const seen: number[] = [];
      for (let burst = 0; burst < 30; burst += 1) {
        for (let i = 0; i < 50; i += 1) {
          // The message makes each an event (metrics alone are not pushed); the bulk rides along.
          const metrics = { bulky };
          store.putComponent({
            name: 'probe',
            healthy: true,
            state: 'RUNNING',
            message: `${burst}/${i}`,
            lastCheck: new Date(),
            metrics,
          });
        }
        const last = store.lastSequence;
        const events = await healthy.until((e) => e.runtimeEvents.sequence === last);
        seen.push(...events.map((e) => e.runtimeEvents.sequence));
      }
      const expected = Array.from({ length: store.lastSequence - first + 1 }, (_, i) => first + i);
      expect(seen.filter((sequence) => sequence >= first)).toEqual(expected);

      // It reads again: it gets what was waiting, then RESYNC (refetch the snapshot) instead of
      // everything it missed, and never more than the buffer held.
      (slow.socket as unknown as { _socket: { resume(): void } })._socket.resume();
      await waitFor(
        async () => (slow.kinds.includes('RESYNC') ? true : undefined),
        'the slow subscriber to get RESYNC',
      );
      expect(slow.kinds.length).toBeLessThan(1500);
    } finally {
      slow.socket.terminate();
      await healthy.close();
    }
  });
});

describe('a client that sends queries over its WebSocket and reads none of the answers', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      env: { SUBSCRIPTION_MAX_BUFFERED_BYTES: '65536', SUBSCRIPTION_KEEPALIVE_MS: '1000' },
    });
  });
  afterAll(() => server?.stop());

  test('is not read from while its answers wait, and the keep-alive closes it; a client that reads again gets every answer', async () => {
    const QUERIES = 2000;
    // Each answer is four pages of the catalogue; each request carries 4 kB of comment.
    const page = 'catalog(first: 100) { edges { node { appId name title description versions categories } } }';
    const query = `# ${'x'.repeat(4096)}\nquery Bulky { a: ${page} b: ${page} c: ${page} d: ${page} }`;
    const executed = async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('market_graphql_requests_total{operation="Bulky"'));
      return Number(line?.split(' ').at(-1) ?? 0);
    };
    const raw = (socket: WebSocket) => (socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    const send = (socket: WebSocket) => {
      for (let id = 0; id < QUERIES; id += 1)
        socket.send(JSON.stringify({ id: String(id), type: 'subscribe', payload: { query } }));
    };

    // Reads nothing, ever: the server stops reading it, and closes it at the keep-alive.
    const deaf = await acknowledgedSocket(server.url);
    deaf.on('error', () => {});
    const closed = new Promise((resolve) => deaf.once('close', resolve));
    raw(deaf).pause();
    send(deaf);
    await closed;
    const deafExecuted = await executed();
    expect(deafExecuted).toBeLessThan(QUERIES / 4);

    // Reads again after a pause: nothing is lost, every query is answered.
    const slow = await acknowledgedSocket(server.url);
    let completed = 0;
    const allCompleted = new Promise<void>((resolve) =>
      slow.on('message', (data) => {
        if ((JSON.parse(String(data)) as { type: string }).type === 'complete' && ++completed === QUERIES) resolve();
      }),
    );
    raw(slow).pause();
    send(slow);
    await waitFor(async () => ((await executed()) > deafExecuted ? true : undefined), 'the first answers');
    raw(slow).resume();
    await allCompleted;
    expect((await executed()) - deafExecuted).toBe(QUERIES);
    slow.terminate();
  }, 120_000);
});

describe('an SSE client that stops reading', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      env: {
        SUBSCRIPTION_MAX_BUFFERED_BYTES: '65536',
        SUBSCRIPTION_KEEPALIVE_MS: '1000',
        COLLECT_INTERVAL_MS: '3600000',
      },
    });
  });
  afterAll(() => server?.stop());

  test('is closed once it read nothing for a keep-alive period while events waited; its slot is given back', async () => {
    const url = new URL(server.url);
    const socket = connect(Number(url.port), url.hostname);
    socket.on('error', () => {});
    const body = JSON.stringify({
      query: 'subscription { runtimeEvents { sequence kind component { name metrics } } }',
    });
    socket.write(
      `POST /graphql/stream HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    await waitFor(async () => (server.app.subscriptionStats().streams === 1 ? true : undefined), 'the stream');
    // Reads nothing more: once the sockets' buffers are full, its events wait in the server.
    socket.pause();
    const bulky = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 300; i += 1) {
      const metrics = { bulky };
      server.app.services.store.putComponent({
        name: 'probe',
        healthy: true,
        state: 'RUNNING',
        message: String(i),
        lastCheck: new Date(),
        metrics,
      });
      if (i % 50 === 49) await new Promise((resolve) => setImmediate(resolve)); // let the writes go out
    }
    try {
      // The server ends it (its end waits behind the unread bytes, so the paused client cannot see it yet).
      // A cut stream counts as open until its socket's 'close' gave its slot and subscription back:
      // once no stream is counted, neither is its subscription.
      const ended = await waitFor(async () => {
        const stats = server.app.subscriptionStats();
        return stats.streams === 0 ? stats : undefined;
      }, 'the stalled stream to be closed');
      expect(ended).toMatchObject({ streams: 0, subscriptions: 0 });
    } finally {
      socket.destroy();
    }
  }, 60_000);
});
