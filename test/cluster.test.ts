import { print } from 'graphql';
import { createClient as createSseClient } from 'graphql-sse';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import {
  as,
  completedOn,
  eventContents,
  type Instance,
  installOn,
  redisConnected,
  runtimeContent,
  startInstance,
  stopRunning,
} from './support/cluster.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { fakeEntry, startFakeMarketSource } from './support/fake-market-source.js';
import {
  AppUpdatedSubscription,
  CatalogQuery,
  HistoryAddedSubscription,
  InstallAppMutation,
  RuntimeEventsSubscription,
  RuntimeSnapshotQuery,
  TaskDetailQuery,
  TaskUpdatedSubscription,
  UninstallAppMutation,
} from './support/operations.js';
import { killLeftovers } from './support/process.js';
import { deleteKeys, REDIS_URL, redisAvailable, redisTarget, redisUrlVia, uniquePrefix } from './support/redis.js';
import { dataOf, execute, waitFor } from './support/server.js';
import { subscribe } from './support/subscriptions.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

/**
 * Cluster mode (REDIS_URL): two server processes on one PostgreSQL database and one Redis. A
 * change committed on one instance reaches the subscribers (graphql-ws and SSE) and the runtime
 * state of the other; installs spread over both run exactly once; both runtime states end equal.
 */

const databases = await availableDatabases();
const runnable = databases.includes('postgresql') && (await redisAvailable());

/** SIGTERM, and once it has exited, the same instance again (on a new port). */
async function restart(instance: Instance): Promise<Instance> {
  instance.server.child.kill('SIGTERM');
  expect(await instance.server.exited).toEqual({ code: 0, signal: null });
  return startInstance(instance.env);
}

/** A user's apps in the instance's runtime state, as `name:STAGE`. */
async function appsOf(instance: Instance, userId: string): Promise<string[]> {
  const { runtimeSnapshot } = dataOf(await execute(instance, RuntimeSnapshotQuery, { filter: { userId } }, as('ops')));
  return runtimeSnapshot.apps.map((app) => `${app.appName}:${app.stage}`);
}

describe.runIf(runnable)('cluster mode: two instances on PostgreSQL and Redis', () => {
  let database: TestDatabase;
  let prefix: string;
  let a: Instance;
  let b: Instance;
  /** B reaches Redis through this proxy, which a test cuts. */
  let bToRedis: TcpProxy;

  beforeAll(async () => {
    database = await createTestDatabase('postgresql');
    prefix = uniquePrefix();
    bToRedis = await startTcpProxy(redisTarget());
    const env = { DATABASE_URL: database.url, REDIS_PREFIX: prefix };
    // One after the other: the first seeds the demo data into the empty database.
    a = await startInstance({ ...env, REDIS_URL, DEMO_DATA: '1', INSTANCE_NAME: 'a' });
    b = await startInstance({ ...env, REDIS_URL: redisUrlVia(bToRedis), DEMO_DATA: '0', INSTANCE_NAME: 'b' });
  }, 90_000);

  afterEach((context) => {
    // What the servers said went wrong, to read beside a failed test.
    if (context.task.result?.state === 'fail') {
      for (const [name, instance] of [
        ['A', a],
        ['B', b],
      ] as const) {
        const problems = instance.server.logs.filter((line) => (line.level ?? 0) >= 40).slice(-20);
        console.error(`${name}'s warnings and errors:\n${problems.map((line) => JSON.stringify(line)).join('\n')}`);
      }
    }
    for (const instance of [a, b]) {
      const { child, output } = instance.server;
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`an instance died:\n${output.join('\n')}`);
    }
  });

  afterAll(async () => {
    await stopRunning([a, b]);
    await killLeftovers();
    await bToRedis?.close();
    await database?.drop();
    await deleteKeys(prefix);
  }, 60_000);

  test('each instance’s /metrics shows its own database ping and its components by their instance names', async () => {
    const scrape = async (instance: Instance) => (await (await fetch(`${instance.url}/metrics`)).text()).split('\n');
    const ping = (lines: string[]) =>
      Number(lines.find((line) => line.startsWith('market_database_ping_seconds '))?.split(' ')[1]);
    for (const [instance, name] of [
      [a, 'a'],
      [b, 'b'],
    ] as const) {
      // The collector's database check runs at start, then every COLLECT_INTERVAL_MS.
      const lines = await waitFor(async () => {
        const scraped = await scrape(instance);
        return ping(scraped) > 0 ? scraped : undefined;
      }, `${name}'s database ping`);
      expect(ping(lines)).toBeLessThan(5);
      expect(lines).toContain(`market_component_healthy{component="database@${name}"} 1`);
      expect(lines).toContain('market_redis_connected 1');
      // Registered in cluster mode only (single-process mode has no Redis: test/metrics.test.ts).
      expect(lines).toContain('# TYPE market_redis_append_duration_seconds histogram');
      expect(lines.some((line) => line.startsWith('market_redis_append_duration_seconds_count '))).toBe(true);
    }
  });

  test('an install on A reaches graphql-ws (taskUpdated, appUpdated, historyAdded) and SSE subscribers on B, and B’s runtime state', async () => {
    const user = 'carol';
    const filter = { userId: user };
    const overWs = await subscribe(b, TaskUpdatedSubscription, { filter }, as(user));
    const history = await subscribe(b, HistoryAddedSubscription, { filter }, as(user));
    const appsOnB = await subscribe(b, AppUpdatedSubscription, { filter }, as(user));
    const sse = createSseClient({ url: `${b.url}/graphql/stream`, headers: as(user).headers, retryAttempts: 0 });
    const sseEvents: { taskId: string; status: string }[] = [];
    const sseDone = new Promise<void>((resolve, reject) => {
      sse.subscribe<{ taskUpdated: { taskId: string; status: string } }>(
        { query: print(TaskUpdatedSubscription), variables: { filter } },
        {
          next: (result) => {
            if (result.data) sseEvents.push(result.data.taskUpdated);
          },
          error: reject,
          complete: resolve,
        },
      );
    });
    try {
      const taskId = await installOn(a, user, 'n8n', '1.70.1');

      const seen = await overWs.until(
        (event) => event.taskUpdated.taskId === taskId && event.taskUpdated.status === 'COMPLETED',
      );
      expect(seen.map((event) => event.taskUpdated.taskId)).toContain(taskId);
      await appsOnB.until((event) => event.appUpdated.appName === 'n8n' && event.appUpdated.stage === 'RUNNING');
      await history.until((event) => event.historyAdded.app === 'n8n');
      await waitFor(
        async () =>
          sseEvents.some((event) => event.taskId === taskId && event.status === 'COMPLETED') ? true : undefined,
        'the SSE subscriber on B to see the install on A complete',
      );
      await waitFor(async () => {
        const { runtimeSnapshot } = dataOf(await execute(b, RuntimeSnapshotQuery, { filter }, as('ops')));
        return runtimeSnapshot.apps.some((app) => app.appName === 'n8n' && app.stage === 'RUNNING') ? true : undefined;
      }, 'B’s runtime state to show the app A installed running');
    } finally {
      await Promise.all([overWs.close(), history.close(), appsOnB.close()]);
      sse.dispose();
      await sseDone.catch(() => {});
    }
  });

  test('an uninstall on A is an APP_REMOVED on B carrying the id the app had, for a client cache to evict', async () => {
    const user = 'erin';
    const onB = await subscribe(b, RuntimeEventsSubscription, { filter: { userId: user } }, as('ops'));
    try {
      await completedOn(a, await installOn(a, user, 'ghost', '5.104.2'));
      const installed = await onB.until(
        ({ runtimeEvents: { app } }) => app?.appName === 'ghost' && app.stage === 'RUNNING',
        30_000,
      );
      const id = installed.at(-1)?.runtimeEvents.app?.id;
      expect(id).toEqual(expect.any(String));

      const input = { sourceId: 'market.olares', appName: 'ghost' };
      const { uninstallApp } = dataOf(await execute(a, UninstallAppMutation, { input }, as(user)));
      if (uninstallApp.__typename !== 'UninstallAppSuccess') throw new Error(JSON.stringify(uninstallApp));
      await completedOn(a, uninstallApp.task.taskId);
      const removal = await onB.until(({ runtimeEvents }) => runtimeEvents.kind === 'APP_REMOVED', 30_000);
      expect(removal.at(-1)?.runtimeEvents.removedApp).toEqual({ id, userId: user, appName: 'ghost' });
    } finally {
      await onB.close();
    }
  });

  test('200 installs submitted across both instances run exactly once each; both runtime states end identical', async () => {
    const { catalog } = dataOf(await execute(a, CatalogQuery, { first: 100 }, as('ops')));
    const free = catalog.edges.map((edge) => edge.node).filter((app) => !app.paid && app.sourceId === 'market.olares');
    const apps = free.slice(0, 20);
    expect(apps.length).toBe(20);
    const users = Array.from({ length: 10 }, (_, i) => `cluster-user-${i}`);

    const taskIds = await Promise.all(
      users.flatMap((user, u) =>
        apps.map(async (app, i) => {
          const instance = (u + i) % 2 === 0 ? a : b;
          // As a client should: with an idempotency key, sent again on UNAVAILABLE (200 installs
          // at once on 2 cores can wait longer for a database connection than the pool allows).
          const input = {
            sourceId: 'market.olares',
            appName: app.name,
            version: app.version,
            idempotencyKey: `${user}/${app.name}`,
          };
          for (let attempt = 1; ; attempt += 1) {
            const response = await execute(instance, InstallAppMutation, { input }, as(user));
            const unavailable = response.errors?.some((error) => error.extensions?.code === 'UNAVAILABLE');
            if (unavailable && attempt < 5) continue;
            const { installApp } = dataOf(response);
            if (installApp.__typename !== 'InstallAppSuccess') throw new Error(JSON.stringify(installApp));
            return installApp.task.taskId;
          }
        }),
      ),
    );
    expect(new Set(taskIds).size).toBe(200);

    // Every task ends, completed, as seen from both instances.
    await waitFor(
      async () => {
        for (const instance of [a, b]) {
          const details = await Promise.all(
            taskIds.slice(0, 200).map(async (taskId) => {
              const { task } = dataOf(await execute(instance, TaskDetailQuery, { taskId }, as('ops')));
              return task?.status;
            }),
          );
          if (details.some((status) => status !== 'COMPLETED')) return undefined;
        }
        return true;
      },
      'all 200 installs to complete',
      90_000,
    );

    // Each install was claimed by one instance (the engine's conditional claim), and both worked.
    const db = createPrismaClient(database.url);
    try {
      const tasks = await db.task.findMany({ where: { taskId: { in: taskIds } } });
      expect(tasks).toHaveLength(200);
      expect(new Set(tasks.map((task) => task.workerId)).size, 'instances that ran installs').toBe(2);
    } finally {
      await db.$disconnect();
    }

    // Both runtime states converge on the same content, at the same sequence (between two
    // component reports, which also move the sequence).
    const final = await waitFor(
      async () => {
        const [onA, onB] = await Promise.all([runtimeContent(a), runtimeContent(b)]);
        // The store keeps the active tasks and the latest finished ones, and every app.
        const done = (content: typeof onA) =>
          content.apps.filter((app) => users.includes(app.userId) && app.stage === 'RUNNING').length === 200;
        return done(onA) && done(onB) && JSON.stringify(onA) === JSON.stringify(onB) ? { onA, onB } : undefined;
      },
      'both runtime states to hold the same content',
      30_000,
    ).catch(async (error) => {
      const [onA, onB] = await Promise.all([runtimeContent(a), runtimeContent(b)]);
      expect(onB, String(error)).toEqual(onA);
      throw error;
    });
    expect(final.onB).toEqual(final.onA);
    expect(final.onA.apps.filter((app) => users.includes(app.userId) && app.stage === 'RUNNING')).toHaveLength(200);
  }, 180_000);

  test('Redis cut away from B: B stays up, answers from the database and says it is not ready; once back, it catches up', async () => {
    const readiness = async (instance: Instance) => (await fetch(`${instance.url}/readiness`)).status;
    const pubsub = async (instance: Instance) => {
      const { runtimeSnapshot } = dataOf(await execute(instance, RuntimeSnapshotQuery, {}, as('ops')));
      return runtimeSnapshot.components.find((component) => component.name === 'pubsub@b');
    };
    expect(await readiness(b)).toBe(200);
    // Dashboards on both instances follow the user through the outage.
    const user = 'dave';
    const filter = { userId: user };
    const onA = await subscribe(a, RuntimeEventsSubscription, { filter }, as('ops'));
    const onB = await subscribe(b, RuntimeEventsSubscription, { filter }, as('ops'));
    bToRedis.cut('hold');
    try {
      await waitFor(async () => ((await readiness(b)) === 503 ? true : undefined), 'B to report not ready');
      // B's runtime state stands still meanwhile (its own changes wait to go through the log).
      expect(await readiness(a)).toBe(200);

      // Meanwhile on A: an install that B cannot hear of yet.
      const taskId = await installOn(a, user, 'ghost', '5.104.2');
      await completedOn(a, taskId);
      // B answers queries all along, from the database.
      const { task } = dataOf(await execute(b, TaskDetailQuery, { taskId }, as('ops')));
      expect(task?.status).toBe('COMPLETED');

      bToRedis.restore();
      await waitFor(async () => ((await readiness(b)) === 200 ? true : undefined), 'B to be ready again', 30_000);
      await waitFor(
        async () => {
          const { runtimeSnapshot } = dataOf(
            await execute(b, RuntimeSnapshotQuery, { filter: { userId: user } }, as('ops')),
          );
          return runtimeSnapshot.apps.some((app) => app.appName === 'ghost' && app.stage === 'RUNNING')
            ? true
            : undefined;
        },
        'B’s runtime state to catch up with the install made while it was cut off',
        30_000,
      );
      // B's components reach A again (collected every COLLECT_INTERVAL_MS).
      await waitFor(async () => ((await pubsub(a))?.healthy ? true : undefined), 'B’s pubsub component on A');

      // B's subscriber stayed open and received, once B was back, exactly what A's received.
      const done = (event: (typeof onA.received)[number]) =>
        event.runtimeEvents.task?.appName === 'ghost' && event.runtimeEvents.task.status === 'COMPLETED';
      const [seenOnA, seenOnB] = await Promise.all([onA.until(done, 30_000), onB.until(done, 30_000)]);
      expect(eventContents(seenOnB)).toEqual(eventContents(seenOnA));
    } finally {
      bToRedis.restore();
      await Promise.all([onA.close(), onB.close()]);
    }
  }, 120_000);

  test('B stopped while cut off from Redis: its changes never reached A; the next start has A re-read them', async () => {
    const user = 'ivy'; // one of its own: the apps it installs stay
    const appsOn = (instance: Instance) => appsOf(instance, user);
    let taskId = '';
    bToRedis.cut('hold');
    try {
      await waitFor(async () => ((await fetch(`${b.url}/readiness`)).status === 503 ? true : undefined), 'B not ready');
      // Run to its end on B, whose runtime changes wait for Redis.
      taskId = await installOn(b, user, 'ghost', '5.104.2');
      await completedOn(b, taskId);
      b.server.child.kill('SIGTERM');
      expect(await b.server.exited).toEqual({ code: 0, signal: null });
      expect(b.server.logs.map((line) => line.msg)).toContain(
        'cluster changes not appended before the stop (Redis unreachable): the next start has all re-read',
      );
      expect(await appsOn(a)).toEqual([]); // lost to A: nothing else would ever tell it
    } finally {
      bToRedis.restore();
    }
    b = await startInstance(b.env);
    await waitFor(
      async () => ((await appsOn(a)).includes('ghost:RUNNING') ? true : undefined),
      'A to re-read the state B stopped with',
      30_000,
    );
    // The task too (created and finished while A could not hear of it), as B, started since, has it:
    // the same content on both.
    await waitFor(
      async () => {
        const [onA, onB] = await Promise.all([runtimeContent(a), runtimeContent(b)]);
        return onA.tasks.some((task) => task.taskId === taskId) && JSON.stringify(onA) === JSON.stringify(onB)
          ? true
          : undefined;
      },
      'A and B to hold the same runtime state, with the task B ran',
      30_000,
    );
  }, 120_000);

  test('B killed while cut off from Redis, and not replaced: the leader has A re-read what B could not announce', async () => {
    const user = 'judy'; // one of its own: the apps it installs stay
    const appsOn = (instance: Instance) => appsOf(instance, user);
    const db = createPrismaClient(database.url);
    bToRedis.cut('hold');
    try {
      await waitFor(async () => ((await fetch(`${b.url}/readiness`)).status === 503 ? true : undefined), 'B not ready');
      const taskId = await installOn(b, user, 'ghost', '5.104.2');
      await completedOn(b, taskId);
      // B says in the database that it owes changes once an append of them has failed (5 s: the
      // command's timeout); a kill then has no stop to say it.
      await waitFor(
        async () => ((await db.jobCursor.count({ where: { name: 'cluster-log:resync-owed:b' } })) ? true : undefined),
        'B to record that it owes changes',
        30_000,
      );
      b.server.child.kill('SIGKILL');
      await b.server.exited;
    } finally {
      bToRedis.restore();
    }
    try {
      expect(await appsOn(a)).toEqual([]);
      // No instance starts: the leader finds the marker nobody writes any more (INSTANCE_SILENCE_MS,
      // 30 s by default) and has every instance re-read.
      await waitFor(
        async () => ((await appsOn(a)).includes('ghost:RUNNING') ? true : undefined),
        'A to re-read the state B died with',
        60_000,
      );
      expect(await db.jobCursor.count({ where: { name: { startsWith: 'cluster-log:resync-owed' } } })).toBe(0);
      expect(a.server.logs.map((line) => line.msg)).toContain(
        'an instance died owing cluster changes Redis never took: every instance re-reads its state',
      );
    } finally {
      await db.$disconnect();
      b = await startInstance(b.env);
    }
  }, 150_000);

  test('Redis that stops answering B (connections open, nothing through): B says it is not ready, and is ready again once Redis answers', async () => {
    const readiness = async (instance: Instance) => (await fetch(`${instance.url}/readiness`)).status;
    // (The test before ends by dropping B's connections to Redis: B may still be reconnecting.)
    await waitFor(async () => ((await readiness(b)) === 200 ? true : undefined), 'B to be ready', 30_000);
    bToRedis.freeze();
    try {
      // Found only by the commands' timeouts (ioredis still calls the connection ready).
      await waitFor(async () => ((await readiness(b)) === 503 ? true : undefined), 'B to report not ready', 30_000);
      expect(await (await fetch(`${b.url}/readiness`)).json()).toEqual({
        status: 'not ready',
        error: 'Redis unreachable',
      });
      expect(await readiness(a)).toBe(200);
      // Its metrics say so too (its pubsub component reaches its store through the log, which stands still).
      expect(await redisConnected(b)).toBe('0');
      expect(await redisConnected(a)).toBe('1');
    } finally {
      bToRedis.restore();
    }
    await waitFor(async () => ((await readiness(b)) === 200 ? true : undefined), 'B to be ready again', 30_000);
    expect(await redisConnected(b)).toBe('1');
  }, 90_000);

  test('runtimeEvents(since:) taken from A resumes on B with exactly the events A sent after it, same sequences', async () => {
    const user = 'erin';
    const filter = { userId: user };
    const onA = await subscribe(a, RuntimeEventsSubscription, { filter }, as('ops'));
    try {
      await installOn(a, user, 'n8n', '1.70.1');
      const untilFirst = await onA.until((event) => event.runtimeEvents.task?.status === 'COMPLETED');
      const since = (untilFirst.at(-1) as (typeof untilFirst)[number]).runtimeEvents.sequence;

      // A second install while "the client" is away; A's subscriber sees its events.
      await installOn(b, user, 'ghost', '5.104.2');
      const missed = await onA.until(
        (event) => event.runtimeEvents.task?.appName === 'ghost' && event.runtimeEvents.task.status === 'COMPLETED',
      );
      await waitFor(async () => {
        const { runtimeSnapshot } = dataOf(await execute(b, RuntimeSnapshotQuery, { filter }, as('ops')));
        return runtimeSnapshot.sequence >= (missed.at(-1) as (typeof missed)[number]).runtimeEvents.sequence
          ? true
          : undefined;
      }, 'B to have applied as far as A');

      // The client reconnects to B with the last sequence A gave it.
      const onB = await subscribe(b, RuntimeEventsSubscription, { filter, since }, as('ops'));
      try {
        const resumed = await onB.until(
          (event) => event.runtimeEvents.sequence === (missed.at(-1) as (typeof missed)[number]).runtimeEvents.sequence,
        );
        expect(resumed.map((event) => event.runtimeEvents.kind)).not.toContain('RESYNC');
        expect(eventContents(resumed)).toEqual(eventContents(missed));
      } finally {
        await onB.close();
      }
    } finally {
      await onA.close();
    }
  }, 60_000);

  test('runtimeEvents(since:) from A on B while B lags behind it: resumed once B has caught up, no RESYNC', async () => {
    const user = 'gina';
    const filter = { userId: user };
    const onA = await subscribe(a, RuntimeEventsSubscription, { filter }, as('ops'));
    try {
      await installOn(a, user, 'n8n', '1.70.1');
      await onA.until((event) => event.runtimeEvents.task?.status === 'COMPLETED');
      // B cut off from the log for a moment: A goes on without it.
      bToRedis.cut('refuse');
      await waitFor(async () => ((await fetch(`${b.url}/readiness`)).status === 503 ? true : undefined), 'B not ready');
      await installOn(a, user, 'ghost', '5.104.2');
      const seen = await onA.until(
        (event) => event.runtimeEvents.task?.appName === 'ghost' && event.runtimeEvents.task.status === 'COMPLETED',
      );
      const since = (seen.at(-1) as (typeof seen)[number]).runtimeEvents.sequence;
      // The client, cut off from A, reconnects to B, which has not applied that far yet.
      const onB = await subscribe(b, RuntimeEventsSubscription, { filter, since }, as('ops'));
      try {
        bToRedis.restore();
        await installOn(a, user, 'wordpress', '6.7.1');
        const resumed = await onB.until(
          (event) =>
            event.runtimeEvents.task?.appName === 'wordpress' && event.runtimeEvents.task.status === 'COMPLETED',
        );
        expect(resumed.map((event) => event.runtimeEvents.kind)).not.toContain('RESYNC');
        expect(resumed.every((event) => event.runtimeEvents.sequence > since)).toBe(true);
      } finally {
        await onB.close();
      }
    } finally {
      bToRedis.restore();
      await onA.close();
    }
  }, 90_000);

  test('runtimeEvents(since:) resumes after both instances restarted, on either of them', async () => {
    const user = 'frank';
    const filter = { userId: user };
    const onA = await subscribe(a, RuntimeEventsSubscription, { filter }, as('ops'));
    let missed: Awaited<ReturnType<typeof onA.until>>;
    let since: number;
    try {
      await installOn(a, user, 'wordpress', '6.7.1');
      const seen = await onA.until((event) => event.runtimeEvents.task?.status === 'COMPLETED');
      since = (seen.at(-1) as (typeof seen)[number]).runtimeEvents.sequence;
      await installOn(b, user, 'excalidraw', '0.17.6');
      missed = await onA.until(
        (event) =>
          event.runtimeEvents.task?.appName === 'excalidraw' && event.runtimeEvents.task.status === 'COMPLETED',
      );
    } finally {
      await onA.close();
    }

    // A rolling restart: A, then B (each SIGTERM, exit 0, start again).
    a = await restart(a);
    b = await restart(b);

    const lastMissed = (missed.at(-1) as (typeof missed)[number]).runtimeEvents.sequence;
    for (const instance of [a, b]) {
      const resumed = await subscribe(instance, RuntimeEventsSubscription, { filter, since }, as('ops'));
      try {
        const events = await resumed.until(
          (event) => event.runtimeEvents.kind === 'RESYNC' || event.runtimeEvents.sequence >= lastMissed,
        );
        expect(eventContents(events)).toEqual(eventContents(missed));
      } finally {
        await resumed.close();
      }
    }
  }, 120_000);

  test('Redis losing the log while B is cut off (a restart without persistence): B re-reads its state from the database', async () => {
    const user = 'grace';
    bToRedis.cut('hold');
    try {
      await waitFor(async () => ((await fetch(`${b.url}/readiness`)).status === 503 ? true : undefined), 'B not ready');
      const redis = new Redis(REDIS_URL);
      try {
        await redis.del(`${prefix}changes`, `${prefix}sequence`, `${prefix}events`);
      } finally {
        redis.disconnect();
      }
      await completedOn(a, await installOn(a, user, 'minio', '2024.11.7'));
    } finally {
      bToRedis.restore();
    }
    await waitFor(
      async () => {
        const { runtimeSnapshot } = dataOf(
          await execute(b, RuntimeSnapshotQuery, { filter: { userId: user } }, as('ops')),
        );
        return runtimeSnapshot.apps.some((app) => app.appName === 'minio' && app.stage === 'RUNNING')
          ? true
          : undefined;
      },
      'B to re-read the install it could not read from the lost log',
      30_000,
    );
    expect(b.server.logs.some((line) => line.msg === 'cluster log: entries may have been missed')).toBe(true);
    // And the two converge again.
    await waitFor(async () => {
      const [onA, onB] = await Promise.all([runtimeContent(a), runtimeContent(b)]);
      return JSON.stringify({ ...onA, sequence: 0 }) === JSON.stringify({ ...onB, sequence: 0 }) ? true : undefined;
    }, 'both runtime states to hold the same content');
  }, 120_000);

  test('an instance that stops says so: the other shows its components STOPPED until it is back', async () => {
    const componentsOf = async (on: Instance, instance: string) => {
      const { runtimeSnapshot } = dataOf(await execute(on, RuntimeSnapshotQuery, {}, as('ops')));
      return runtimeSnapshot.components.filter((component) => component.name.endsWith(`@${instance}`));
    };
    b.server.child.kill('SIGTERM');
    expect(await b.server.exited).toEqual({ code: 0, signal: null });
    // Told before B left (its last entries in the log), read by A in its own time.
    const seenOnA = await waitFor(async () => {
      const components = await componentsOf(a, 'b');
      return components.every((component) => component.state === 'STOPPED') ? components : undefined;
    }, 'B’s components to show STOPPED on A');
    expect(seenOnA.map((component) => component.name)).toEqual(
      expect.arrayContaining(['database@b', 'task_engine@b', 'pubsub@b', 'collector@b']),
    );
    for (const component of seenOnA) {
      expect(component, component.name).toMatchObject({
        state: 'STOPPED',
        healthy: false,
        message: 'instance stopped',
      });
    }
    b = await startInstance(b.env);
    await waitFor(async () => {
      const back = await componentsOf(a, 'b');
      return back.find((component) => component.name === 'database@b')?.state === 'RUNNING' ? true : undefined;
    }, 'B’s components to run again on A once B is back');
  }, 90_000);

  test('a source removed and added again on B is asked by A at its new URL only, never with the old credentials', async () => {
    const oldSource = await startFakeMarketSource({ entries: [fakeEntry('old-build')] });
    const newSource = await startFakeMarketSource({ entries: [fakeEntry('new-build')] });
    const admin = async (instance: Instance, query: string) => {
      const response = await fetch(instance.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...as('ops').headers },
        body: JSON.stringify({ query }),
      });
      const body = (await response.json()) as { data?: Record<string, { __typename: string }> };
      return Object.values(body.data ?? {})[0]?.__typename ?? JSON.stringify(body);
    };
    const add = (instance: Instance, url: string, user: string) =>
      admin(
        instance,
        `mutation { addMarketSource(input: { sourceId: "re-added", title: "R", baseUrl: "${url.replace('http://', `http://${user}:pw@`)}" }) { __typename } }`,
      );
    const sync = (instance: Instance) =>
      admin(instance, 'mutation { syncMarketSource(input: { sourceId: "re-added" }) { __typename } }');
    const remove = (instance: Instance) =>
      admin(instance, 'mutation { removeMarketSource(input: { sourceId: "re-added" }) { __typename } }');
    try {
      expect(await add(a, oldSource.url, 'old')).toBe('AddMarketSourceSuccess');
      // A syncs it twice: a full sync, then one that found the hash unchanged. The leader's own
      // look for due sources (every 5 s) may sync the new source too: one more hash asked.
      expect(await sync(a)).toBe('SyncMarketSourceSuccess');
      expect(await sync(a)).toBe('SyncMarketSourceSuccess');
      // Which endpoints a source was asked, with which user: its hash, catalogue and details, nothing else.
      const asked = (source: typeof oldSource) =>
        new Set(source.requests.map((request) => `${request.endpoint} ${request.user}`));
      expect(asked(oldSource)).toEqual(new Set(['hash old', 'info old', 'details old']));
      expect(await remove(b)).toBe('RemoveMarketSourceSuccess');
      expect(await add(b, newSource.url, 'new')).toBe('AddMarketSourceSuccess');
      oldSource.resetCounters();
      expect(await sync(a)).toBe('SyncMarketSourceSuccess');
      expect(oldSource.requests).toEqual([]);
      expect(asked(newSource)).toEqual(new Set(['hash new', 'info new', 'details new']));
    } finally {
      await remove(b);
      await oldSource.close();
      await newSource.close();
    }
  });
});
