import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Viewer } from '../src/auth/viewer.js';
import type { Topics } from '../src/events/change-feed.js';
import { AUTH_ENV, startTestServer, type TestServer } from './support/server.js';

/**
 * A subscription ended before it read anything (its client gone while it was set up: Cohort.run
 * returns it without a `next()`) stops listening to the bus. Built on graphql-yoga's
 * `pipe(map, filter)`, whose Repeaters reach their source only from their first `next()`, each
 * such one left its listener, and its queue of every later event, for the life of the process.
 */
describe('subscriptions of the services', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: AUTH_ENV });
  });
  afterAll(() => server?.stop());

  const alice: Viewer = { userId: 'alice', isAdmin: false };
  const kinds: [string, keyof Topics, () => AsyncIterable<unknown>][] = [
    ['taskUpdated', 'task:updated', () => server.app.services.tasks.subscribe(alice, {})],
    ['taskUpdated(taskId:)', 'task:updated', () => server.app.services.tasks.subscribe(alice, {}, 'some-task')],
    ['appUpdated', 'app:updated', () => server.app.services.apps.subscribe(alice, {})],
    ['historyAdded', 'history:added', () => server.app.services.history.subscribe(alice, {})],
    ['paymentUpdated', 'payment:updated', () => server.app.services.payments.subscribe(alice, {})],
    ['catalogueChanged', 'catalogue:changed', () => server.app.services.catalogueChanges.subscribe(alice, null)],
  ];

  test.each(kinds)('%s returned before its first read stops listening', async (_name, topic, subscribe) => {
    const { bus } = server.app.services;
    const before = bus.listenerCount(topic);
    const iterators = Array.from({ length: 5 }, () => subscribe()[Symbol.asyncIterator]());
    expect(bus.listenerCount(topic)).toBe(before + 5);
    await Promise.all(iterators.map((iterator) => iterator.return?.()));
    expect(bus.listenerCount(topic)).toBe(before);
  });

  test.each(kinds)('%s returned while it waits for an event stops listening', async (_name, topic, subscribe) => {
    const { bus } = server.app.services;
    const before = bus.listenerCount(topic);
    const iterator = subscribe()[Symbol.asyncIterator]();
    const waiting = iterator.next();
    await iterator.return?.();
    expect(await waiting).toMatchObject({ done: true });
    expect(bus.listenerCount(topic)).toBe(before);
  });
});
