import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AppService } from '../src/adapters/app-service/port.js';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { claimPendingTasks } from '../src/db/hot-path-sql.js';
import type { OperationRequest } from '../src/domain/operations.js';
import { TaskEngine } from '../src/engine/task-engine.js';
import { ChangeFeed, createEventBus } from '../src/events/change-feed.js';
import { createLogger } from '../src/platform/logger.js';
import { HistoryService } from '../src/services/history-service.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { createPendingInstall } from './support/rows.js';
import { waitFor } from './support/server.js';

/**
 * The engine claims pending tasks taking turns between users (claimPendingTasks): one user's many
 * pending tasks no longer hold every worker while another user's task waits behind them.
 */

const databases = await availableDatabases();
const T0 = new Date('2026-11-22T18:14:09.003Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const SOURCE = 'market.olares';

describe.each(databases)('fair claims on %s', (kind) => {
  let database: TestDatabase;
  let db: Db;
  let clock = 0;
  beforeAll(async () => {
    database = await createTestDatabase(kind);
    db = createPrismaClient(database.url);
  });
  afterAll(async () => {
    await db?.$disconnect();
    await database?.drop();
  });

  /** Pending installs of `userId`, ids in the order of `appNames`; returns their task ids. */
  async function pending(userId: string, appNames: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const appName of appNames) {
      const taskId = `${userId}-${appName}`;
      await createPendingInstall(db, { userId, sourceId: SOURCE, appName }, taskId, at(clock++));
      ids.push(taskId);
    }
    return ids;
  }
  const names = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${i}`);
  const claim = async (worker: string, limit: number) =>
    (await claimPendingTasks(db, worker, at(clock++), limit)).map((task) => task.taskId);
  const endAll = () =>
    db.task.updateMany({
      where: { status: { in: ['PENDING', 'RUNNING'] } },
      data: { status: 'CANCELED', activeKey: null },
    });

  test('users take turns, and a user with fewer running tasks goes first', async () => {
    await endAll();
    const alice = await pending('alice', names('a', 6));
    const bob = await pending('bob', names('b', 2));
    const carol = await pending('carol', names('c', 1));
    // Each user's first task, oldest first; then each one's second.
    expect(await claim('w1', 4)).toEqual([alice[0], alice[1], bob[0], carol[0]].sort());
    // alice runs 2, bob 1, carol 0 and has nothing pending: bob's second (1 + 1) before alice's third (1 + 2).
    expect(await claim('w1', 1)).toEqual([bob[1]]);
    expect(await claim('w1', 2)).toEqual([alice[2], alice[3]]);
    // Only alice is left: her tasks in id order.
    expect(await claim('w1', 5)).toEqual([alice[4], alice[5]]);
    expect(await claim('w1', 5)).toEqual([]);
  });

  test('a task submitted behind 600 of another user is claimed in the next free slot', async () => {
    await endAll();
    await pending('mallory', names('clone', 600));
    expect(await claim('w1', 4)).toHaveLength(4);
    const [victim] = await pending('victor', ['install']);
    // One of mallory's ends: the worker it frees takes victor's install, not her fifth clone.
    await db.task.updateMany({
      where: { userId: 'mallory', status: 'RUNNING', appName: 'clone0' },
      data: { status: 'COMPLETED', activeKey: null },
    });
    expect(await claim('w1', 1)).toEqual([victim]);
  });

  test('a task waiting to be sent again is neither claimed nor counted in its turn before its time, and is claimed at it', async () => {
    await endAll();
    const [waiting, second] = await pending('alice', ['waiting', 'second']);
    const [bob, bobsSecond] = await pending('bob', ['turn0', 'turn1']);
    const due = at(clock + 1000);
    await db.task.updateMany({
      where: { taskId: waiting },
      data: { notBefore: due, startAttempts: 1, message: 'busy' },
    });
    // alice's second task has her first turn while the other waits: it comes before bob's second.
    expect(await claim('w1', 2)).toEqual([second, bob].sort());
    expect(await claim('w1', 5)).toEqual([bobsSecond]);
    const [claimed] = await claimPendingTasks(db, 'w1', due, 5);
    expect(claimed).toMatchObject({ taskId: waiting, status: 'RUNNING', startAttempts: 1, message: null });
    clock += 1001;
  });

  test('claims racing from several connections never take a task twice', async () => {
    await endAll();
    const all = [...(await pending('dave', names('d', 30))), ...(await pending('erin', names('e', 10)))];
    const clients = Array.from({ length: 4 }, () => createPrismaClient(database.url));
    try {
      const claimed = await Promise.all(
        clients.flatMap((client, index) =>
          Array.from({ length: 5 }, async (_, round) =>
            (await claimPendingTasks(client, `w${index}-${round}`, at(clock), 3)).map((task) => task.taskId),
          ),
        ),
      );
      const taken = claimed.flat();
      expect(new Set(taken).size).toBe(taken.length);
      const running = await db.task.count({ where: { taskId: { in: all }, status: 'RUNNING' } });
      expect(running).toBe(taken.length);
    } finally {
      await Promise.all(clients.map((client) => client.$disconnect()));
    }
  });

  test('the engine gives the worker freed by one user to the task another user is waiting with', async () => {
    await endAll();
    const started: string[] = [];
    const appService = {
      kind: 'simulated',
      start: async (operation: OperationRequest) => {
        started.push(`${operation.userId}/${operation.appName}`);
        return { opId: `op-${operation.appName}`, response: { code: 200 } };
      },
      close: async () => {},
      lookup: async () => [],
    } as unknown as AppService;
    const bus = createEventBus();
    const engine = new TaskEngine(
      db,
      appService,
      new HistoryService(db, 100, bus),
      new ChangeFeed(bus),
      createLogger('error'),
      {
        concurrency: 2,
        timeoutMs: 600_000,
        pollIntervalMs: 600_000,
        leaseMs: 600_000,
        maxActivePerUser: 1000,
        startRetry: { attempts: 1, firstDelayMs: 1000, maxDelayMs: 1000 },
      },
    );
    const clones = await pending('mallory', names('engine-clone', 20));
    await engine.start();
    try {
      await engine.settled();
      await waitFor(async () => (started.length === 2 ? true : undefined), 'both workers to send their task');
      // Sent side by side: in either order.
      expect([...started].sort()).toEqual(['mallory/engine-clone0', 'mallory/engine-clone1']);

      const [install] = await pending('victor', ['engine-install']);
      engine.notify();
      await engine.settled(); // no worker is free: it waits
      expect(await db.task.findUnique({ where: { taskId: install } })).toMatchObject({ status: 'PENDING' });

      expect(await engine.finish(clones[0] as string, 'CANCELED', { error: 'test' })).toBe(true);
      await engine.settled();
      await waitFor(async () => (started.length === 3 ? true : undefined), 'the freed worker to send a task');
      expect(started[2]).toBe('victor/engine-install');
      const running = await db.task.findMany({ where: { status: 'RUNNING' }, orderBy: { id: 'asc' } });
      expect(running.map((task) => task.taskId)).toEqual([clones[1], install]);
    } finally {
      await engine.stop();
    }
  });
});
