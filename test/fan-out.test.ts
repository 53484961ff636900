import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import WebSocket from 'ws';
import {
  HistoryAddedSubscription,
  RuntimeEventsSubscription,
  RuntimeSnapshotSubscription,
} from './support/operations.js';
import { AUTH_ENV, announceHistory, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { type Subscription, subscribe } from './support/subscriptions.js';

/** A graphql-transport-ws client by hand, to see the protocol's frames and close codes as sent. */
async function rawClient(
  server: TestServer,
  init: Record<string, unknown> | null = { authorization: `Bearer ${TOKENS.ops}` },
  { answerPings = true } = {},
) {
  const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws', {
    autoPong: answerPings,
  });
  const frames: Record<string, unknown>[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  socket.on('message', (data) => frames.push(JSON.parse(String(data)) as Record<string, unknown>));
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const send = (message: unknown) => socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  if (init) {
    send({ type: 'connection_init', payload: init });
    await waitFor(async () => (frames.some((f) => f.type === 'connection_ack') ? true : undefined), 'connection_ack');
  }
  return { socket, frames, closed, send };
}

describe('subscription fan-out over graphql-ws', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: AUTH_ENV });
  });
  afterAll(() => server?.stop());

  /** Announces until every subscriber has received something: from then on all are live. */
  async function untilAllLive(subscribers: Subscription<unknown>[]): Promise<void> {
    await waitFor(async () => {
      if (subscribers.every((s) => s.received.length > 0)) return true;
      await announceHistory(server);
      return undefined;
    }, 'every subscription to be live');
  }

  /** Subscribes `count` clients, counting how many executions (history streams) the server starts. */
  async function subscribeCounting(count: number, variables: (i: number) => Record<string, unknown>) {
    // Subscribers of the test before have left (the server sees a close a moment later).
    await waitFor(
      async () => (server.app.subscriptionStats().subscriptions === 0 ? true : undefined),
      'no subscription to be left over',
    );
    const executions = vi.spyOn(server.app.services.history, 'subscribe');
    try {
      const subscribers = await Promise.all(
        Array.from({ length: count }, (_, i) =>
          subscribe(server, HistoryAddedSubscription, variables(i), { token: TOKENS.ops }),
        ),
      );
      await untilAllLive(subscribers);
      return { subscribers, executions: executions.mock.calls.length };
    } finally {
      executions.mockRestore();
    }
  }

  test('subscribers of the same document, variables and scope share one execution', async () => {
    const { subscribers, executions } = await subscribeCounting(20, () => ({}));
    try {
      expect(executions).toBe(1);
      expect(server.app.subscriptionStats()).toMatchObject({ cohorts: 1, subscriptions: 20 });
      // Every one of them got the same results.
      const received = subscribers.map((s) => JSON.stringify(s.received[0]));
      expect(new Set(received).size).toBe(1);
    } finally {
      await Promise.all(subscribers.map((s) => s.close()));
    }
  });

  test('different variables are different executions (the count above can tell)', async () => {
    const { subscribers, executions } = await subscribeCounting(20, (i) => ({
      filter: { from: new Date(Date.UTC(2000, 0, 1 + i)).toISOString() },
    }));
    try {
      expect(executions).toBe(20);
      expect(server.app.subscriptionStats()).toMatchObject({ cohorts: 20, subscriptions: 20 });
    } finally {
      await Promise.all(subscribers.map((s) => s.close()));
    }
  });

  test('the last subscriber to leave ends the execution; the next one starts a new one', async () => {
    const first = await subscribeCounting(3, () => ({}));
    await Promise.all(first.subscribers.map((s) => s.close()));
    const second = await subscribeCounting(1, () => ({}));
    try {
      expect(second.executions).toBe(1);
    } finally {
      await Promise.all(second.subscribers.map((s) => s.close()));
    }
  });

  test('the same document under two users is two cohorts: each sees only their own events', async () => {
    const alice = await subscribe(server, HistoryAddedSubscription, {}, { token: TOKENS.alice });
    const bob = await subscribe(server, HistoryAddedSubscription, {}, { token: TOKENS.bob });
    try {
      await waitFor(async () => {
        if (alice.received.length && bob.received.length) return true;
        await announceHistory(server);
        await announceHistory(server, 'bob');
        return undefined;
      }, 'both subscriptions to be live');
      expect(alice.received.every((r) => r.historyAdded.userId === 'alice')).toBe(true);
      expect(bob.received.every((r) => r.historyAdded.userId === 'bob')).toBe(true);
    } finally {
      await Promise.all([alice.close(), bob.close()]);
    }
  });

  test('a late subscriber to a shared runtimeSnapshot gets the latest snapshot at once', async () => {
    const first = await subscribe(server, RuntimeSnapshotSubscription, {}, { token: TOKENS.ops });
    try {
      const initial = await first.next();
      const late = await subscribe(server, RuntimeSnapshotSubscription, {}, { token: TOKENS.ops });
      try {
        // No change happens in between: the late one can only have been given the cohort's latest.
        expect((await late.next(5000)).runtimeSnapshot.sequence).toBe(initial.runtimeSnapshot.sequence);
      } finally {
        await late.close();
      }
    } finally {
      await first.close();
    }
  });

  test('runtimeEvents with `since` is never shared: a later subscriber from the same point gets its own replay', async () => {
    const { store } = server.app.services;
    const since = store.lastSequence;
    let probes = 0;
    // Each probe says something new (an unchanged component, or new metrics alone, is no event).
    const probe = () =>
      store.putComponent({
        name: 'fan-out-probe',
        healthy: true,
        state: 'RUNNING',
        message: `probe ${++probes}`,
        lastCheck: new Date(),
        metrics: {},
      });
    probe();
    const first = await subscribe(server, RuntimeEventsSubscription, { since }, { token: TOKENS.ops });
    try {
      expect((await first.next()).runtimeEvents.sequence).toBe(since + 1);
      probe();
      await first.next();
      const second = await subscribe(server, RuntimeEventsSubscription, { since }, { token: TOKENS.ops });
      try {
        const replayed = await second.until((e) => e.runtimeEvents.sequence === since + 2);
        expect(replayed.map((e) => e.runtimeEvents.sequence)).toEqual([since + 1, since + 2]);
      } finally {
        await second.close();
      }
    } finally {
      await first.close();
    }
  });

  test('a subscriber that leaves stops receiving; the cohort goes on for the others', async () => {
    const staying = await subscribe(server, HistoryAddedSubscription, {}, { token: TOKENS.ops });
    const leaving = await rawClient(server);
    leaving.send({ id: 'h', type: 'subscribe', payload: { query: 'subscription { historyAdded { id } }' } });
    const other = await rawClient(server);
    other.send({ id: 'h', type: 'subscribe', payload: { query: 'subscription { historyAdded { id } }' } });
    try {
      await waitFor(async () => {
        if (staying.received.length && leaving.frames.length > 1 && other.frames.length > 1) return true;
        await announceHistory(server);
        return undefined;
      }, 'all three to be live');
      // The raw clients asked the same thing: their frames are byte-for-byte the same.
      expect(JSON.stringify(leaving.frames[1])).toBe(JSON.stringify(other.frames[1]));
      leaving.send({ id: 'h', type: 'complete' });
      const left = leaving.frames.length;
      const before = staying.received.length;
      const otherBefore = other.frames.length;
      // The socket is ordered: once this ping's pong is back, the server has handled `complete`.
      leaving.send({ type: 'ping' });
      await waitFor(async () => (leaving.frames.at(-1)?.type === 'pong' ? true : undefined), 'pong');
      await announceHistory(server);
      await waitFor(
        async () => (staying.received.length > before && other.frames.length > otherBefore ? true : undefined),
        'the others to get the next event',
      );
      expect(leaving.frames.slice(left).map((f) => f.type)).toEqual(['pong']);
    } finally {
      leaving.socket.close();
      other.socket.close();
      await staying.close();
    }
  });
});

describe('subscribe / unsubscribe churn', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: AUTH_ENV });
  });
  afterAll(() => server?.stop());

  test('leaves no listener, cohort or subscription behind', async () => {
    const { store, runtime } = server.app.services;
    // Counts the runtime store's listeners as the runtime service adds and removes them (it
    // holds one while any of its streams is open), and the streams the subscriptions open.
    let listening = 0;
    const onEvent = store.onEvent.bind(store);
    const spy = vi.spyOn(store, 'onEvent').mockImplementation((listener) => {
      listening += 1;
      const off = onEvent(listener);
      return () => {
        listening -= 1;
        return off();
      };
    });
    const opened = [vi.spyOn(runtime, 'events'), vi.spyOn(runtime, 'snapshots')];
    try {
      for (let round = 0; round < 20; round += 1) {
        const clients = await Promise.all(
          Array.from({ length: 5 }, async (_, i) => {
            const client = await rawClient(server);
            // Shared cohorts, one alone (`since`), and a snapshot stream.
            client.send({
              id: 'a',
              type: 'subscribe',
              payload: { query: 'subscription { runtimeEvents { sequence } }' },
            });
            client.send({
              id: 'b',
              type: 'subscribe',
              payload: { query: `subscription { runtimeEvents(since: ${store.lastSequence}) { sequence } }` },
            });
            client.send({
              id: 'c',
              type: 'subscribe',
              payload: { query: 'subscription { runtimeSnapshot { sequence } }' },
            });
            if (i % 2) client.send({ id: 'a', type: 'complete' });
            return client;
          }),
        );
        await waitFor(
          async () => (server.app.subscriptionStats().subscriptions >= 10 ? true : undefined),
          'the subscriptions to start',
        );
        for (const client of clients) client.socket.close();
      }
      await waitFor(async () => {
        const stats = server.app.subscriptionStats();
        return stats.connections === 0 &&
          stats.subscriptions === 0 &&
          stats.cohorts === 0 &&
          runtime.liveStreams === 0 &&
          listening === 0
          ? true
          : undefined;
      }, 'everything to be released');
      expect(spy.mock.calls.length).toBeGreaterThan(0);
      expect(opened.reduce((sum, stream) => sum + stream.mock.calls.length, 0)).toBeGreaterThan(20);
    } finally {
      spy.mockRestore();
      for (const stream of opened) stream.mockRestore();
    }
  });
});

describe('keep-alive', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { ...AUTH_ENV, SUBSCRIPTION_KEEPALIVE_MS: '100' } });
  });
  afterAll(() => server?.stop());

  test('a silent connection is pinged and closed when it does not answer; one that answers stays', async () => {
    const answering = await rawClient(server);
    const silent = await rawClient(server, undefined, { answerPings: false });
    let pinged = false;
    silent.socket.once('ping', () => {
      pinged = true;
    });
    // Closing takes a tick without traffic (ping), then a tick without an answer: the answering
    // client has been through the same ticks by then.
    expect((await silent.closed).code).toBe(1006);
    expect(pinged).toBe(true);
    expect(answering.socket.readyState).toBe(WebSocket.OPEN);
    // Counted for the operator, apart from clients that stopped reading.
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain('market_subscription_clients_cut_total{transport="ws",reason="no_pong"} 1\n');
    expect(metrics).toContain('market_subscription_clients_cut_total{transport="ws",reason="stalled"} 0\n');
    answering.socket.close();
  });
});

describe('graphql-transport-ws protocol', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: AUTH_ENV });
  });
  afterAll(() => server?.stop());

  test('queries and mutations over the socket: one `next`, then `complete`', async () => {
    const client = await rawClient(server);
    client.send({ id: 'q', type: 'subscribe', payload: { query: '{ viewer { userId isAdmin } }' } });
    await waitFor(async () => (client.frames.some((f) => f.type === 'complete') ? true : undefined), 'complete');
    expect(client.frames.slice(1)).toEqual([
      { id: 'q', type: 'next', payload: { data: { viewer: { userId: 'ops', isAdmin: true } } } },
      { id: 'q', type: 'complete' },
    ]);
    client.socket.close();
  });

  test('an invalid document gets an `error` message and the connection stays open', async () => {
    const client = await rawClient(server);
    client.send({ id: 'bad', type: 'subscribe', payload: { query: 'subscription { noSuchField }' } });
    await waitFor(async () => (client.frames.some((f) => f.type === 'error') ? true : undefined), 'error');
    expect(client.frames[1]).toMatchObject({
      id: 'bad',
      type: 'error',
      payload: [{ message: expect.stringMatching(/noSuchField/) }],
    });
    client.send({ type: 'ping' });
    await waitFor(async () => (client.frames.at(-1)?.type === 'pong' ? true : undefined), 'pong');
    client.socket.close();
  });

  test('protocol violations close the socket with graphql-ws close codes', async () => {
    const early = await rawClient(server, null);
    early.send({ id: '1', type: 'subscribe', payload: { query: '{ viewer { userId } }' } });
    expect((await early.closed).code).toBe(4401);

    const twice = await rawClient(server);
    twice.send({ type: 'connection_init', payload: {} });
    expect((await twice.closed).code).toBe(4429);

    const duplicate = await rawClient(server);
    const subscription = { id: 'same', type: 'subscribe', payload: { query: 'subscription { historyAdded { id } }' } };
    duplicate.send(subscription);
    duplicate.send(subscription);
    expect((await duplicate.closed).code).toBe(4409);

    const garbage = await rawClient(server);
    garbage.send('{not json');
    expect((await garbage.closed).code).toBe(4400);

    const forbidden = await rawClient(server, null);
    forbidden.send({ type: 'connection_init', payload: { authorization: 'Bearer wrong-token-wrong-token' } });
    expect((await forbidden.closed).code).toBe(4403);
  });
});
