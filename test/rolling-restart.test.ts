import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { as, runtimeContent, USER_HEADER, workerIdOf } from './support/cluster.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { type FakeAppServiceProcess, startFakeAppServiceProcess } from './support/fake-app-service-process.js';
import { type LoadBalancer, startLoadBalancer } from './support/load-balancer.js';
import {
  InstallAppMutation,
  RuntimeEventsSubscription,
  TaskDetailQuery,
  TaskUpdatedSubscription,
} from './support/operations.js';
import {
  killLeftovers,
  listeningUrl,
  SERVER_COMMAND,
  type ServerProcess,
  serverEnv,
  startProcess,
} from './support/process.js';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './support/redis.js';
import { seed } from './support/seed.js';
import { dataOf, execute, type GraphQLResponse, waitFor } from './support/server.js';
import { type Subscription, subscribe } from './support/subscriptions.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

/**
 * Issue 12, rolling restarts and a PostgreSQL outage, with real processes all the way: two server
 * instances (cluster mode: one PostgreSQL database, one Redis) behind a TCP load balancer, and the
 * HTTP app service (the tests' fake, as a process of its own) playing each operation out over a
 * couple of seconds and posting its state events to the load balancer, as a deployment's app
 * service posts to the Service in front of the pods.
 */

const SECRET = 'app-service-event-secret-rolling';
const VERSION = '1.0.0';
const HANDED_OVER = 'handed the running tasks over (another instance, or this one after its restart, adopts them)';

const databases = await availableDatabases();
const runnable = databases.includes('postgresql') && (await redisAvailable());

interface Instance {
  name: string;
  server: ServerProcess;
  port: number;
  url: string;
  graphqlUrl: string;
}

async function readiness(instance: Instance): Promise<number> {
  return (await fetch(`${instance.url}/readiness`)).status;
}

async function install(instance: Instance, user: string, appName: string): Promise<string> {
  const { installApp } = dataOf(
    await execute(
      instance,
      InstallAppMutation,
      { input: { sourceId: 'market.olares', appName, version: VERSION } },
      as(user),
    ),
  );
  if (installApp.__typename !== 'InstallAppSuccess') throw new Error(`install refused: ${JSON.stringify(installApp)}`);
  return installApp.task.taskId;
}

/** Waits until every one of these tasks has ended; returns their statuses by task id. */
async function allEnded(db: Db, taskIds: string[], timeoutMs: number) {
  return waitFor(
    async () => {
      const rows = await db.task.findMany({ where: { taskId: { in: taskIds } } });
      return rows.length === taskIds.length && rows.every((row) => row.status !== 'PENDING' && row.status !== 'RUNNING')
        ? rows
        : undefined;
    },
    `${taskIds.length} tasks to end`,
    timeoutMs,
  );
}

describe.runIf(runnable)('rolling restarts and a PostgreSQL cut, two instances behind a load balancer', () => {
  let database: TestDatabase;
  let db: Db;
  let prefix: string;
  let fake: FakeAppServiceProcess;
  let balancer: LoadBalancer;
  /** B reaches PostgreSQL through this proxy, which the outage test cuts. */
  let bToPostgres: TcpProxy;
  let bDatabaseUrl: string;
  let a: Instance;
  let b: Instance;

  async function startInstance(name: string, databaseUrl: string): Promise<Instance> {
    const server = startProcess(
      SERVER_COMMAND,
      serverEnv(databaseUrl, {
        REDIS_URL,
        REDIS_PREFIX: prefix,
        INSTANCE_NAME: name,
        // The test's own catalogue rows only: no bundled catalogue synced over them.
        BUNDLED_CATALOGUE_FILE: 'off',
        AUTH_USER_HEADER: USER_HEADER,
        AUTH_ADMIN_USERS: 'ops',
        MUTATION_RATE_PER_S: '0',
        APP_SERVICE_URL: fake.url,
        APP_SERVICE_EVENT_SECRET: SECRET,
        APP_SERVICE_TIMEOUT_MS: '10000',
        TASK_CONCURRENCY: '4',
        TASK_POLL_INTERVAL_MS: '200',
        TASK_LEASE_MS: '10000',
        RECONCILE_INTERVAL_MS: '30000',
        COLLECT_INTERVAL_MS: '1000',
      }),
    );
    const url = await listeningUrl(server);
    const base = url.toString().replace(/\/graphql$/, '');
    return { name, server, port: Number(url.port), url: base, graphqlUrl: `${base}/graphql` };
  }

  const backend = (instance: Instance) => ({ host: '127.0.0.1', port: instance.port });

  /** For a failure message: where the tasks stand, and what the app service and the instances said last. */
  async function diagnose(taskIds: string[]): Promise<string> {
    const rows = await db.task.findMany({ where: { taskId: { in: taskIds } } });
    const unfinished = rows
      .filter((row) => row.status !== 'COMPLETED')
      .map(
        (row) => `${row.userId}/${row.appName} ${row.status} op=${row.opId} worker=${row.workerId} ${row.error ?? ''}`,
      );
    const alive = fake.child.exitCode === null && fake.child.signalCode === null;
    return [
      `unfinished: ${unfinished.length}`,
      ...unfinished.slice(0, 20),
      `fake app service ${alive ? 'alive' : `exited ${fake.child.exitCode ?? fake.child.signalCode}`}:`,
      ...fake.output.slice(-20),
      ...[a, b].flatMap((instance) => [
        `--- ${instance.name}:`,
        ...instance.server.output.slice(-15).map((line) => line.slice(0, 400)),
      ]),
    ].join('\n');
  }

  /**
   * One step of a rolling restart: out of the load balancer's rotation, SIGTERM, wait for a clean
   * exit, start its successor (new port) and put that in the rotation. Returns the successor and
   * how many running tasks the stopped one handed over.
   */
  async function restart(instance: Instance, others: Instance[], databaseUrl: string) {
    balancer.setBackends(others.map(backend));
    instance.server.child.kill('SIGTERM');
    const { code, signal } = await instance.server.exited;
    expect({ code, signal }, instance.server.output.slice(-30).join('\n')).toEqual({ code: 0, signal: null });
    const handover = instance.server.logs.find((line) => line.msg === HANDED_OVER);
    const successor = await startInstance(instance.name, databaseUrl);
    balancer.setBackends([...others, successor].map(backend));
    return { successor, handedOver: Number(handover?.handedOver ?? 0), requeued: Number(handover?.requeued ?? 0) };
  }

  beforeAll(async () => {
    database = await createTestDatabase('postgresql');
    db = createPrismaClient(database.url);
    const seeder = seed(db);
    await seeder.remoteSource();
    for (let i = 0; i < 10; i++) await seeder.catalogApp({ name: `roll-app-${i}`, versions: [VERSION] });
    for (let i = 0; i < 8; i++) await seeder.catalogApp({ name: `cut-app-${i}`, versions: [VERSION] });
    prefix = uniquePrefix();

    const direct = new URL(database.url);
    bToPostgres = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    const viaProxy = new URL(database.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(bToPostgres.port);
    bDatabaseUrl = viaProxy.toString();

    fake = await startFakeAppServiceProcess();
    balancer = await startLoadBalancer();
    // Each state lasts 400 ms: an install takes about 3 s on the app service.
    await fake.configure({ eventUrl: `${balancer.url}/events/app-state`, secret: SECRET, stepMs: 400 });
    [a, b] = await Promise.all([startInstance('a', database.url), startInstance('b', bDatabaseUrl)]);
    balancer.setBackends([backend(a), backend(b)]);
  }, 90_000);

  afterEach(() => {
    for (const instance of [a, b]) {
      if (instance && instance.server.child.exitCode !== null) {
        throw new Error(`instance ${instance.name} died:\n${instance.server.output.slice(-40).join('\n')}`);
      }
    }
  });

  afterAll(async () => {
    bToPostgres?.restore();
    await Promise.all(
      [a, b].map(async (instance) => {
        if (!instance || instance.server.child.exitCode !== null || instance.server.child.signalCode !== null) return;
        instance.server.child.kill('SIGTERM');
        await instance.server.exited;
      }),
    );
    await killLeftovers();
    await fake?.stop();
    await balancer?.close();
    await bToPostgres?.close();
    await db?.$disconnect();
    await database?.drop();
    await deleteKeys(prefix);
  }, 60_000);

  test('rolling restart of both instances while 50 installs run: all COMPLETED, each sent once, runtime states identical', async () => {
    const began = Date.now();
    const users = Array.from({ length: 5 }, (_, i) => `roll-user-${i}`);
    const apps = Array.from({ length: 10 }, (_, i) => `roll-app-${i}`);
    const [workerA, workerB] = await Promise.all([workerIdOf(a), workerIdOf(b)]);

    const taskIds = await Promise.all(
      users.flatMap((user, u) => apps.map((app, i) => install((u + i) % 2 === 0 ? a : b, user, app))),
    );
    expect(new Set(taskIds).size).toBe(50);

    /**
     * Waits until `worker` runs a task the app service has accepted (so a stop must hand it over)
     * and has at least four states still to play (progress at most 35: `downloading` 50 or
     * before). A task nearer its end could finish while the stopped instance still drains its
     * requests, its last event applied by the other instance, and leave the stop nothing to hand
     * over (CI, 2026-12-08: B handed over 0, with one task put back unsent).
     */
    const runningOn = (worker: string, what: string) =>
      waitFor(
        async () =>
          (await db.task.count({
            where: {
              taskId: { in: taskIds },
              status: 'RUNNING',
              workerId: worker,
              opId: { not: null },
              progress: { lte: 35 },
            },
          })) > 0
            ? true
            : undefined,
        what,
        30_000,
      );

    // A first: stopped while it runs installs the app service is playing out.
    await runningOn(workerA, 'A to run installs on the app service');
    const stepA = await restart(a, [b], database.url);
    a = stepA.successor;
    expect(stepA.handedOver, 'tasks A handed over').toBeGreaterThan(0);

    // Then B, once it runs installs (its own, or those it adopted from A). The app service plays
    // them out slower meanwhile: at 400 ms a state, under a loaded machine's full suite, every
    // install B had sent could end between this check and its stop (twice in CI: 0 handed over),
    // leaving only tasks claimed and not yet sent, which a stop puts back instead.
    await fake.configure({ eventUrl: `${balancer.url}/events/app-state`, secret: SECRET, stepMs: 2000 });
    await runningOn(workerB, 'B to run installs on the app service');
    const stepB = await restart(b, [a], bDatabaseUrl);
    b = stepB.successor;
    await fake.configure({ eventUrl: `${balancer.url}/events/app-state`, secret: SECRET, stepMs: 400 });
    expect(stepB.handedOver, `tasks B handed over (${stepB.requeued} put back unsent)`).toBeGreaterThan(0);
    const pendingAtLastRestart = await db.task.count({
      where: { taskId: { in: taskIds }, status: { in: ['PENDING', 'RUNNING'] } },
    });

    const rows = await allEnded(db, taskIds, 90_000).catch(async (error) => {
      throw new Error(`${error}\n${await diagnose(taskIds)}`);
    });
    const statuses = rows.map((row) => ({ app: `${row.userId}/${row.appName}`, status: row.status, error: row.error }));
    expect(statuses.filter((row) => row.status !== 'COMPLETED')).toEqual([]);
    expect(rows.every((row) => row.progress === 100)).toBe(true);

    // The app service was asked to install each (user, app) exactly once: nothing sent twice.
    const calls = await fake.calls();
    const installs = new Map<string, number>();
    for (const call of calls.filter((call) => call.kind === 'install' && call.app.startsWith('roll-app-'))) {
      const key = `${call.user}/${call.app}`;
      installs.set(key, (installs.get(key) ?? 0) + 1);
    }
    expect(installs.size).toBe(50);
    expect([...installs].filter(([, count]) => count !== 1)).toEqual([]);
    // Every task ended with the op id of that one call.
    const opIds = new Map(calls.map((call) => [`${call.user}/${call.app}`, call.opId]));
    expect(rows.filter((row) => row.opId !== opIds.get(`${row.userId}/${row.appName}`))).toEqual([]);

    // Both (restarted) instances converge on the same runtime content, at the same sequence.
    const final = await waitFor(
      async () => {
        const [onA, onB] = await Promise.all([runtimeContent(a), runtimeContent(b)]);
        const done = (content: typeof onA) =>
          content.apps.filter((app) => users.includes(app.userId) && app.stage === 'RUNNING').length === 50;
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
    const status = await fake.status();
    console.info(
      `rolling restart: handed over A=${stepA.handedOver} B=${stepB.handedOver}; ` +
        `${pendingAtLastRestart} of 50 unfinished after the last restart; ` +
        `events delivered ${status.delivered}, retried ${status.retries}; ${Date.now() - began} ms`,
    );
  }, 180_000);

  test('PostgreSQL cut away from B: B stays up, says it is not ready, fails requests with a code, keeps its subscriptions and catches up', async () => {
    const began = Date.now();
    const user = 'cut-user';
    expect(await readiness(b)).toBe(200);
    const taskEvents = await subscribe(b, TaskUpdatedSubscription, { filter: { userId: user } }, as(user));
    const runtimeEvents = await subscribe(b, RuntimeEventsSubscription, { filter: { userId: user } }, as('ops'));
    const taskIds: string[] = [];
    try {
      // Mutations before the cut, on A; B's subscribers see them.
      taskIds.push(await install(a, user, 'cut-app-0'), await install(a, user, 'cut-app-1'));
      await taskEvents.until(() =>
        taskIds.every((id) =>
          taskEvents.received.some(
            (event) => event.taskUpdated.taskId === id && event.taskUpdated.status === 'RUNNING',
          ),
        ),
      );

      bToPostgres.cut('hold');
      await waitFor(async () => ((await readiness(b)) === 503 ? true : undefined), 'B to report not ready', 30_000);
      const readinessBody = await (await fetch(`${b.url}/readiness`)).json();

      // Requests to B fail, with an error code, in bounded time.
      const query = await timed(() => execute(b, TaskDetailQuery, { taskId: taskIds[0]! }, as('ops')));
      const mutation = await timed(() =>
        execute(
          b,
          InstallAppMutation,
          { input: { sourceId: 'market.olares', appName: 'cut-app-7', version: VERSION } },
          as(user),
        ),
      );
      console.info(
        `during the cut: readiness 503 ${JSON.stringify(readinessBody)}; ` +
          `query → HTTP ${query.response.status} ${JSON.stringify(query.response.errors)} in ${query.ms} ms; ` +
          `mutation → HTTP ${mutation.response.status} ${JSON.stringify(mutation.response.errors ?? mutation.response.data)} in ${mutation.ms} ms`,
      );
      // A clear answer: UNAVAILABLE (retry shortly), and HTTP 503 for the query.
      for (const { response } of [query, mutation]) {
        expect(response.errors?.length, JSON.stringify(response)).toBeGreaterThan(0);
        expect(response.errors?.[0]?.extensions?.code, JSON.stringify(response.errors)).toBe('UNAVAILABLE');
      }
      expect(query.response.status).toBe(503);

      // Mutations go on on A during the cut: A takes them and sends them to the app service.
      const duringCut = [await install(a, user, 'cut-app-2'), await install(a, user, 'cut-app-3')];
      taskIds.push(...duringCut);
      await waitFor(
        async () =>
          (await db.task.count({ where: { taskId: { in: duringCut }, opId: { not: null } } })) === duringCut.length
            ? true
            : undefined,
        'A to send the installs made during the cut',
        30_000,
      );
      // The app service plays them out meanwhile; its events reach A, or B, which answers 503 until
      // its database is back, and are sent again.
      await waitFor(
        async () => ((await fake.status()).active === 0 ? true : undefined),
        'the app service to play every operation out',
        30_000,
      );
      expect(await readiness(b)).toBe(503);
      expect(b.server.child.exitCode).toBeNull();
      const cutStatus = await fake.status();

      bToPostgres.restore();
      await waitFor(async () => ((await readiness(b)) === 200 ? true : undefined), 'B to be ready again', 30_000);

      // B takes requests again: an install on B.
      const afterwards = await install(b, user, 'cut-app-4');
      taskIds.push(afterwards);
      const rows = await allEnded(db, taskIds, 60_000).catch(async (error) => {
        throw new Error(`${error}\n${await diagnose(taskIds)}`);
      });
      expect(rows.filter((row) => row.status !== 'COMPLETED')).toEqual([]);

      // B's subscribers, still open, see every install of the test end, those of the cut included.
      const taskFailure = await catchesUp(taskEvents, () =>
        taskIds.every((id) =>
          taskEvents.received.some(
            (event) => event.taskUpdated.taskId === id && event.taskUpdated.status === 'COMPLETED',
          ),
        ),
      );
      const runtimeFailure = await catchesUp(runtimeEvents, () =>
        taskIds.every((id) =>
          runtimeEvents.received.some(
            (event) => event.runtimeEvents.task?.taskId === id && event.runtimeEvents.task.status === 'COMPLETED',
          ),
        ),
      );
      console.info(
        `after the cut: taskUpdated on B ${taskFailure ?? 'caught up'}; runtimeEvents on B ${runtimeFailure ?? 'caught up'}`,
      );
      expect(taskFailure, 'taskUpdated on B through the cut').toBeNull();
      expect(runtimeFailure, 'runtimeEvents on B through the cut').toBeNull();
      // The install B was asked for during the cut was not made.
      expect(await db.task.count({ where: { userId: user, appName: 'cut-app-7' } })).toBe(0);
      console.info(
        `PostgreSQL cut: ${Date.now() - began} ms; event deliveries retried by the app service: ${cutStatus.retries}`,
      );
    } finally {
      bToPostgres.restore();
      await closeQuietly(taskEvents);
      await closeQuietly(runtimeEvents);
    }
  }, 180_000);
});

async function timed<T>(run: () => Promise<GraphQLResponse<T>>) {
  const start = Date.now();
  const response = await run();
  return { response, ms: Date.now() - start };
}

/**
 * Reads a subscription until `caughtUp` holds: null then, or how the subscription ended (a
 * GraphQL error, or the socket's close code) if it ended first.
 */
async function catchesUp<T>(subscription: Subscription<T>, caughtUp: () => boolean): Promise<string | null> {
  if (caughtUp()) return null;
  try {
    await subscription.until(caughtUp, 30_000);
    return null;
  } catch (error) {
    return `ended: ${(error as Error).message}`;
  }
}

async function closeQuietly(subscription: Subscription<unknown>): Promise<void> {
  await subscription.close().catch(() => {});
}
