import { describe, expect, test, vi } from 'vitest';
import { UserPlaces, WAITING_PER_USER } from '../src/http/operations-in-flight.js';
import { availableDatabases, createTestDatabase } from './support/databases.js';
import { AUTH_ENV, startTestServer, TOKENS } from './support/server.js';
import { proxyDatabase } from './support/tcp-proxy.js';

/**
 * One user's queries and mutations executing at once (MAX_OPERATIONS_IN_FLIGHT_PER_USER): without
 * a bound, one user's reads held every connection of the PostgreSQL pool and the others waited or
 * got 503. The database's answers are held by a TCP proxy, so that operations stay in flight.
 */

const databases = await availableDatabases();
const TASKS = JSON.stringify({ query: '{ tasks(first: 1) { totalCount } }' });

describe('UserPlaces', () => {
  test('a place that frees goes to the first operation waiting, and the user leaves once none runs or waits', async () => {
    const places = new UserPlaces(1, 2);
    expect(places.take('alice')).toBe(true);
    const order: string[] = [];
    const second = places.take('alice') as Promise<boolean>;
    const third = places.take('alice') as Promise<boolean>;
    void second.then(() => order.push('second'));
    void third.then(() => order.push('third'));
    expect(places.take('alice')).toBe(false);
    expect(places.take('bob')).toBe(true);
    places.release('alice');
    expect(await second).toBe(true);
    places.release('alice');
    expect(await third).toBe(true);
    expect(order).toEqual(['second', 'third']);
    places.release('alice');
    places.release('bob');
    expect(places.size).toBe(0);
  });

  test('an operation that waited longer than its limit is told so, and leaves the queue', async () => {
    vi.useFakeTimers();
    try {
      const places = new UserPlaces(1, 2, 1000);
      expect(places.take('alice')).toBe(true);
      const waiting = places.take('alice') as Promise<boolean>;
      vi.advanceTimersByTime(1000);
      expect(await waiting).toBe(false);
      // The place it no longer waits for is not handed to it: the user leaves once it comes back.
      places.release('alice');
      expect(places.size).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe.runIf(databases.includes('postgresql'))('operations in flight per user, on a server', () => {
  test('past its places and the operations waiting, a user gets 429; the waiting ones run once places free; other users are not refused', async () => {
    const database = await createTestDatabase('postgresql');
    const { proxy, url } = await proxyDatabase(database.url);
    const server = await startTestServer('postgresql', {
      database: { ...database, url },
      env: { ...AUTH_ENV, MAX_OPERATIONS_IN_FLIGHT_PER_USER: '2' },
    });
    const ask = (token: string) =>
      fetch(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: TASKS,
      });
    try {
      proxy.holdAnswers();
      // Two run (their statements held), a thousand wait: whichever arrives last of these is refused.
      const alices = Array.from({ length: 2 + WAITING_PER_USER + 1 }, () => ask(TOKENS.alice));
      const refused = await Promise.race(
        alices.map((answer) =>
          answer.then((response) => (response.status === 429 ? response : new Promise<never>(() => {}))),
        ),
      );
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(await refused.json()).toMatchObject({
        errors: [
          {
            message: expect.stringContaining('MAX_OPERATIONS_IN_FLIGHT_PER_USER'),
            extensions: { code: 'LIMIT_EXCEEDED' },
          },
        ],
      });
      // Another user's places are his own: a read needing no database is answered while alice's wait.
      const viewer = await fetch(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.bob}` },
        body: JSON.stringify({ query: '{ viewer { userId } }' }),
      });
      expect(await viewer.json()).toEqual({ data: { viewer: { userId: 'bob' } } });
      const bobs = ask(TOKENS.bob);
      proxy.releaseAnswers();
      const statuses = (await Promise.all(alices)).map((response) => response.status);
      expect(statuses.filter((status) => status === 200)).toHaveLength(2 + WAITING_PER_USER);
      expect(statuses.filter((status) => status === 429)).toHaveLength(1);
      expect((await bobs).status).toBe(200);
      // Every place came back: a burst as large as the places and the waiting ones is answered in full.
      const again = await Promise.all(Array.from({ length: 2 + WAITING_PER_USER }, () => ask(TOKENS.alice)));
      expect(again.map((response) => response.status).filter((status) => status !== 200)).toEqual([]);
    } finally {
      proxy.releaseAnswers();
      await server.stop();
      await proxy.close();
      await database.drop();
    }
  }, 60_000);
});
