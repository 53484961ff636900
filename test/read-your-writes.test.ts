import { afterEach, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import { StoreBarrier } from '../src/runtime/store-barrier.js';
import { createTestDatabase } from './support/databases.js';
import { RuntimeSnapshotQuery } from './support/operations.js';
import { seed } from './support/seed.js';
import { dataOf, execute, installThroughApi, startTestServer } from './support/server.js';
import { proxyDatabase } from './support/tcp-proxy.js';

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

describe('read-your-writes', () => {
  test('a runtimeSnapshot sent right after installApp answered shows its task, though reading it back is slow', async () => {
    const database = await createTestDatabase('postgresql');
    disposers.push(() => database.drop());
    const direct = createPrismaClient(database.url);
    disposers.push(() => direct.$disconnect());
    const seeder = seed(direct);
    await seeder.remoteSource();
    await seeder.catalogApp({ name: 'notes', versions: ['1.0.0'] });
    const { proxy, url: proxiedUrl } = await proxyDatabase(database.url);
    disposers.push(() => proxy.close());
    const server = await startTestServer('postgresql', {
      database: { ...database, url: proxiedUrl },
      env: { DEMO_DATA: '0', BUNDLED_CATALOGUE_FILE: 'off' },
    });
    disposers.push(() => server.stop());

    // Every answer of the database now takes 40 ms: the collector's read-back of the new task
    // too, which the mutation's answer must wait for.
    proxy.slow(40);
    const started = Date.now();
    const taskId = await installThroughApi(server, { appName: 'notes', version: '1.0.0' });
    const { runtimeSnapshot } = dataOf(await execute(server, RuntimeSnapshotQuery, {}));
    expect(runtimeSnapshot.tasks.map((task) => task.taskId)).toContain(taskId);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('the store barrier', () => {
  const delivered = async () => {};

  test('a waiter resolves once the store holds the changes noted before it asked, not later ones', async () => {
    const barrier = new StoreBarrier();
    barrier.note();
    barrier.note();
    let done = false;
    const waiting = barrier.caughtUp(delivered, 10_000).then(() => {
      done = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    barrier.note(); // after it asked
    barrier.applied(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(false);
    barrier.applied(2);
    await waiting;
    expect(done).toBe(true);
  });

  test('with nothing noted it resolves at once; a stuck store holds a waiter only until the timeout', async () => {
    const barrier = new StoreBarrier();
    await barrier.caughtUp(delivered, 10_000);
    barrier.note();
    const started = Date.now();
    await barrier.caughtUp(delivered, 50);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });

  test('cluster mode: a read-back counts once it came back from the log; one that never did is given up with it', async () => {
    const barrier = new StoreBarrier();
    const [lost, first, second] = [{ n: 0 }, { n: 1 }, { n: 2 }];
    barrier.note();
    barrier.sent(lost, 1);
    barrier.note();
    barrier.sent(first, 2);
    barrier.note();
    barrier.sent(second, 3);
    let done = false;
    const waiting = barrier.caughtUp(delivered, 10_000).then(() => {
      done = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    barrier.returned({ n: 9 }); // another change: nothing
    barrier.returned(first); // `lost` never came back: given up with it
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(false);
    barrier.returned(second);
    await waiting;
    expect(done).toBe(true);
  });
});
