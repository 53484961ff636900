import pg from 'pg';
import { afterEach, describe, expect, test } from 'vitest';
import { parseAppStateEvent } from '../src/adapters/app-service/state-event.js';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { seedDemoData } from '../src/db/demo-data.js';
import type { TaskRow } from '../src/db/models.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { type AppStateEventBody, startFakeAppService } from './support/fake-app-service.js';
import { RuntimeSnapshotQuery } from './support/operations.js';
import { UNINSTALLED_APPS } from './support/rows.js';
import { dataOf, execute, installThroughApi, startTestServer, type TestServer, waitFor } from './support/server.js';
import { proxyDatabase, type TcpProxy } from './support/tcp-proxy.js';

/**
 * Database faults with tasks in flight, against real processes: the server talks to the shared
 * PostgreSQL through a TCP proxy that a test cuts and restores (PostgreSQL itself keeps running).
 * After the database returns, every task ends within seconds and new ones run; a report the
 * database could not take is never acknowledged.
 */

const databases = await availableDatabases();
const _SOURCE = 'market.olares';
const SECRET = 'app-service-event-secret-0001';
/** Short, so an outage of a few seconds outlasts it: the engine must not give up its own tasks. */
const LEASE_MS = 1500;
const APPS = UNINSTALLED_APPS;

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

/** A fresh database, and a proxy in front of it that the test can cut. */
async function proxiedDatabase(): Promise<{ database: TestDatabase; proxy: TcpProxy; proxiedUrl: string }> {
  const database = await createTestDatabase('postgresql');
  disposers.push(() => database.drop());
  const { proxy, url: proxiedUrl } = await proxyDatabase(database.url);
  disposers.push(() => proxy.close());
  return { database, proxy, proxiedUrl };
}

interface Rig {
  server: TestServer;
  proxy: TcpProxy;
  /** The database as it is, read directly (not through the proxy). */
  direct: Db;
  directUrl: string;
  /** Tasks in the database when the server had started (the demo's). */
  tasksBefore: number;
}

/** A server on a fresh database that it reaches only through the proxy. */
async function startRig(env: Record<string, string>): Promise<Rig> {
  const { database, proxy, proxiedUrl } = await proxiedDatabase();
  const direct = createPrismaClient(database.url);
  disposers.push(() => direct.$disconnect());
  // The demo data goes in directly: the server's start is about the engine, not bulk inserts through the proxy.
  await seedDemoData(direct);
  const server = await startTestServer('postgresql', {
    database: { ...database, url: proxiedUrl },
    env: { TASK_POLL_INTERVAL_MS: '200', TASK_LEASE_MS: String(LEASE_MS), ...env },
  });
  disposers.push(async () => {
    proxy.restore(); // a server stopping during a cut would wait for its database in vain
    await server.stop();
  });
  return { server, proxy, direct, directUrl: database.url, tasksBefore: await direct.task.count() };
}

/**
 * POSTs a state event the way the app service does; resolves with the HTTP status and body, or
 * 'no answer' when there is none within 10 s (an intake that hangs on its database).
 */
async function post(
  intake: string,
  event: AppStateEventBody,
): Promise<{ status: number | 'no answer'; body?: unknown }> {
  try {
    const response = await fetch(intake, {
      method: 'POST',
      headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
      body: JSON.stringify(event),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: response.status, body: await response.json() };
  } catch {
    return { status: 'no answer' };
  }
}

/** GET /readiness; undefined when it gives no answer within 4 s (a probe that hangs). */
async function readiness(server: TestServer): Promise<number | undefined> {
  try {
    const response = await fetch(`${server.url}/readiness`, { signal: AbortSignal.timeout(4000) });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return undefined;
  }
}

function waitForReadiness(server: TestServer, status: 200 | 503): Promise<number> {
  return waitFor(
    async () => ((await readiness(server)) === status ? status : undefined),
    `readiness to answer ${status}`,
    10_000,
  );
}

/** Keeps the database away until `end` (the outage the test injects), readiness saying so all along. */
async function outageUntil(server: TestServer, end: number): Promise<void> {
  await waitFor(async () => {
    expect(await readiness(server)).toBe(503);
    return Date.now() >= end ? true : undefined;
  }, 'the end of the outage');
}

const ACTIVE = { status: { in: ['PENDING', 'RUNNING'] } };

async function tasksOf(direct: Db, taskIds: string[]): Promise<TaskRow[]> {
  return direct.task.findMany({ where: { taskId: { in: taskIds } }, orderBy: { id: 'asc' } });
}

/** No task was lost or added: each app has the one task it was given, and there are no others. */
async function expectOneTaskPerApp(direct: Db, apps: { appName: string }[], tasksBefore: number) {
  const appNames = apps.map((app) => app.appName);
  const tasks = await direct.task.findMany({ where: { appName: { in: appNames } } });
  expect(tasks.map((task) => task.appName).sort()).toEqual(appNames.sort());
  expect(await direct.task.count()).toBe(tasksBefore + apps.length);
}

describe.runIf(databases.includes('postgresql'))('task engine through a database outage (PostgreSQL)', () => {
  test('HTTP mode: reports the database cannot take are answered 503, and after it returns every task ends and new ones run, none sent twice', async () => {
    const fake = await startFakeAppService();
    disposers.push(() => fake.stop());
    const rig = await startRig({
      APP_SERVICE_URL: fake.url,
      APP_SERVICE_EVENT_SECRET: SECRET,
      APP_SERVICE_TIMEOUT_MS: '2000',
      RECONCILE_INTERVAL_MS: '3600000',
      TASK_CONCURRENCY: '4',
    });
    const intake = `${rig.server.url}/events/app-state`;
    const report = async (event: AppStateEventBody) => (await post(intake, event)).status;
    const eventOf = (task: TaskRow, state: string, progress?: string): AppStateEventBody => ({
      name: task.appName,
      user: task.userId,
      marketSource: task.sourceId,
      ...(task.opId ? { opID: task.opId } : {}),
      opType: 'install',
      state,
      createTime: new Date().toISOString(),
      ...(progress ? { progress } : {}),
    });

    const apps = APPS.slice(0, 6);
    const taskIds: string[] = [];
    for (const app of apps) taskIds.push(await installThroughApi(rig.server, app));
    // Four workers: the demo's two pending installs and two of ours run on the app service, the rest wait.
    const inFlight = await waitFor(async () => {
      const running = await rig.direct.task.findMany({ where: { status: 'RUNNING', opId: { not: null } } });
      return running.length === 4 ? running : undefined;
    }, 'four installs running on the app service');
    for (const task of inFlight) expect(await report(eventOf(task, 'downloading', '50'))).toBe(202);
    expect(await rig.direct.task.count({ where: { taskId: { in: taskIds }, status: 'PENDING' } })).toBe(4);

    // A blackhole: every new connection hangs. Readiness still answers, 503, all along; the
    // outage outlasts the lease, and the engine must not give its own tasks up for abandoned.
    const outageEnd = Date.now() + 2 * LEASE_MS;
    rig.proxy.cut('hold');
    await waitForReadiness(rig.server, 503);
    await outageUntil(rig.server, outageEnd);
    // The app service reports all four done while the database is away: not taken, so not acknowledged.
    const finals = inFlight.map((task) => eventOf(task, 'running'));
    const answers = await Promise.all(finals.map((event) => post(intake, event)));
    expect(answers.map((answer) => answer.status)).toEqual([503, 503, 503, 503]);
    expect(answers[0]?.body).toEqual({ error: expect.stringMatching(/^database unavailable/) });
    rig.proxy.restore();
    await waitForReadiness(rig.server, 200);
    const late = APPS[6]!;
    taskIds.push(await installThroughApi(rig.server, late));

    // Meanwhile the app service finishes whatever it is sent; it has not retried its refused reports yet.
    const finished = new Set(inFlight.map((task) => task.taskId));
    await waitFor(
      async () => {
        const started = await rig.direct.task.findMany({ where: { status: 'RUNNING', opId: { not: null } } });
        for (const task of started.filter((candidate) => !finished.has(candidate.taskId))) {
          finished.add(task.taskId);
          expect(await report(eventOf(task, 'running'))).toBe(202);
        }
        return (await rig.direct.task.count({ where: ACTIVE })) === 0 ? true : undefined;
      },
      'every task to end after the database returned',
      15_000,
    );

    // The app service retries its refused reports: now they are taken (the tasks had ended already).
    expect(await Promise.all(finals.map(report))).toEqual([202, 202, 202, 202]);
    const tasks = await tasksOf(rig.direct, taskIds);
    expect(tasks.map((task) => [task.appName, task.status, task.progress])).toEqual(
      [...apps, late].map((app) => [app.appName, 'COMPLETED', 100]),
    );
    const states = await rig.direct.appState.findMany({
      where: { userId: 'admin', appName: { in: tasks.map((t) => t.appName) } },
    });
    expect(states.map((state) => [state.appName, state.state, state.installedVersion]).sort()).toEqual(
      [...apps, late].map((app) => [app.appName, 'running', app.version]).sort(),
    );
    // Nothing was sent to the app service twice, and no task was lost or added.
    const installs = fake.requests.filter((request) => request.path.endsWith('/install')).map((r) => r.path);
    expect(installs.length).toBe(new Set(installs).size);
    expect(installs.length).toBe(2 + apps.length + 1);
    await expectOneTaskPerApp(rig.direct, [...apps, late], rig.tasksBefore);
  }, 60_000);

  test('simulated app service: after an outage longer than the lease, every task in flight ends, the pending ones and a new one run', async () => {
    const rig = await startRig({ SIMULATED_STEP_MS: '150', TASK_CONCURRENCY: '3', COLLECT_INTERVAL_MS: '300' });
    const apps = APPS.slice(0, 8);
    const taskIds: string[] = [];
    for (const app of apps) taskIds.push(await installThroughApi(rig.server, app));
    await waitFor(async () => {
      const tasks = await tasksOf(rig.direct, taskIds);
      const running = tasks.filter((task) => task.status === 'RUNNING' && task.progress > 0);
      return running.length >= 2 && tasks.some((task) => task.status === 'PENDING') ? true : undefined;
    }, 'installs running on the app service while others wait');

    // Long enough for the running installs to report their end into the outage, and for the lease to pass.
    const outageEnd = Date.now() + 2 * LEASE_MS;
    rig.proxy.cut('refuse');
    await waitForReadiness(rig.server, 503);
    // The outage on the components every user sees: what it means, not Prisma's message quoting
    // the server's source files (the runtime state answers from memory meanwhile).
    const failing = await waitFor(async () => {
      const { runtimeSnapshot } = dataOf(await execute(rig.server, RuntimeSnapshotQuery, {}));
      const failed = runtimeSnapshot.components.filter((component) => component.state === 'ERROR');
      return failed.some((component) => component.name.startsWith('task_engine')) ? failed : undefined;
    }, 'the components to show the outage');
    for (const component of failing) {
      expect(component.message, component.name).not.toMatch(/invocation|\/src\/|\n/);
      if (/^(task_engine|database)@/.test(component.name)) expect(component.message).toBe('database unavailable');
    }
    await outageUntil(rig.server, outageEnd);
    rig.proxy.restore();
    await waitForReadiness(rig.server, 200);
    const late = APPS[8]!;
    taskIds.push(await installThroughApi(rig.server, late));

    await waitFor(
      async () => ((await rig.direct.task.count({ where: ACTIVE })) === 0 ? true : undefined),
      'every task to end after the database returned',
      15_000,
    );
    const tasks = await tasksOf(rig.direct, taskIds);
    expect(tasks.map((task) => [task.appName, task.status, task.progress, task.error])).toEqual(
      [...apps, late].map((app) => [app.appName, 'COMPLETED', 100, null]),
    );
    await expectOneTaskPerApp(rig.direct, [...apps, late], rig.tasksBefore);
    // The reports that ended the tasks during the outage waited with their ends: each app's row
    // took its report, and the log did not say that a task ended without it.
    const states = await rig.direct.appState.findMany({ where: { appName: { in: apps.map((app) => app.appName) } } });
    expect(states.map((state) => state.state)).toEqual(apps.map(() => 'running'));
    expect(rig.server.logs.filter((line) => line.includes('ending a task without the report'))).toEqual([]);
  }, 60_000);
});

describe('state event values PostgreSQL cannot store', () => {
  const event = { name: 'n8n', user: 'admin', state: 'installFailed', createTime: '2026-11-22T10:00:00Z' };

  test('U+0000 is dropped from free text, and an event with one in a name or identifier is malformed', () => {
    expect(
      parseAppStateEvent({ ...event, message: 'disk\u0000 full', reason: '\u0000', progress: '4\u00002' }),
    ).toMatchObject({ message: 'disk full', reason: null, progress: '42' });
    expect(() => parseAppStateEvent({ ...event, opID: 'op-1\u0000' })).toThrow(/opID must not contain U\+0000/);
    expect(() => parseAppStateEvent({ ...event, user: '\u0000admin' })).toThrow(/user must not contain U\+0000/);
  });
});

describe.runIf(databases.includes('postgresql'))('state events PostgreSQL would refuse (HTTP mode)', () => {
  test('a NUL byte in a message is dropped and the event applied; an event the database refuses is answered 503 and taken once it can be', async () => {
    const fake = await startFakeAppService();
    disposers.push(() => fake.stop());
    const rig = await startRig({
      APP_SERVICE_URL: fake.url,
      APP_SERVICE_EVENT_SECRET: SECRET,
      RECONCILE_INTERVAL_MS: '3600000',
      TASK_CONCURRENCY: '4',
    });
    const intake = `${rig.server.url}/events/app-state`;
    const report = async (event: AppStateEventBody) => (await post(intake, event)).status;
    const [nul, refused] = [APPS[0]!, APPS[1]!];
    const nulTask = await installThroughApi(rig.server, nul);
    const refusedTask = await installThroughApi(rig.server, refused);
    const running = await waitFor(async () => {
      const tasks = await tasksOf(rig.direct, [nulTask, refusedTask]);
      return tasks.every((task) => task.status === 'RUNNING' && task.opId) ? tasks : undefined;
    }, 'both installs running on the app service');
    const eventOf = (task: TaskRow, state: string, message: string): AppStateEventBody => ({
      name: task.appName,
      user: task.userId,
      marketSource: task.sourceId,
      opID: task.opId!,
      opType: 'install',
      state,
      message,
      createTime: new Date().toISOString(),
    });

    // PostgreSQL refuses NUL in text; the parser drops it, so the failure is recorded, not lost.
    expect(await report(eventOf(running[0]!, 'installFailed', 'disk\u0000 full'))).toBe(202);
    const failed = await waitFor(
      async () => {
        const [task] = await tasksOf(rig.direct, [nulTask]);
        return task?.status === 'FAILED' ? task : undefined;
      },
      'the install to fail',
      5000,
    );
    expect(failed.error).toMatch(/installFailed\): disk full$/);
    // A NUL in a name is not a name: the event is malformed.
    expect(await report({ ...eventOf(running[0]!, 'running', ''), name: 'n8n\u0000' })).toBe(400);

    // A database that refuses the report for reasons of its own (here a trigger the test adds).
    const admin = new pg.Client({ connectionString: rig.directUrl });
    await admin.connect();
    disposers.push(() => admin.end());
    await admin.query(`
      CREATE FUNCTION refuse_report() RETURNS trigger AS $$
      BEGIN
        IF NEW.message = 'refuse me' THEN RAISE EXCEPTION 'report refused by the test'; END IF;
        RETURN NEW;
      END $$ LANGUAGE plpgsql;
      CREATE TRIGGER refuse_report BEFORE INSERT OR UPDATE ON "AppState" FOR EACH ROW EXECUTE FUNCTION refuse_report();`);
    const poison = eventOf(running[1]!, 'running', 'refuse me');
    const answer = await post(intake, poison);
    expect(answer).toEqual({ status: 503, body: { error: expect.stringMatching(/^database unavailable/) } });
    expect(JSON.stringify(answer.body)).not.toMatch(/refused by the test|AppState|UPDATE|\.ts:/);
    // The install did end on the app service: its task ends (and frees its worker) all the same.
    const completed = await waitFor(
      async () => {
        const [task] = await tasksOf(rig.direct, [refusedTask]);
        return task?.status === 'COMPLETED' ? task : undefined;
      },
      'the install to complete',
      5000,
    );
    expect(completed.progress).toBe(100);
    const stateOf = () =>
      rig.direct.appState.findFirstOrThrow({ where: { userId: 'admin', appName: refused.appName } });
    expect((await stateOf()).state).not.toBe('running');

    // Once the database takes it again, the app service's retry lands.
    await admin.query('DROP TRIGGER refuse_report ON "AppState"');
    expect(await report(poison)).toBe(202);
    expect(await stateOf()).toMatchObject({
      state: 'running',
      message: 'refuse me',
      installedVersion: refused.version,
    });
  }, 60_000);
});

describe.runIf(databases.includes('postgresql'))('the PostgreSQL connection pool through an outage', () => {
  test('transactions an outage interrupts give their connections back: after more of them than the pool holds, queries still run', async () => {
    const { database, proxy, proxiedUrl } = await proxiedDatabase();
    const db = createPrismaClient(proxiedUrl);
    disposers.push(() => db.$disconnect());
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    disposers.push(() => admin.end());

    // Two rounds of five: as many as pg's pool holds (10), each cut in the middle of a statement.
    for (const round of [1, 2]) {
      const marker = `outage-round-${round}`;
      const transactions = Array.from({ length: 5 }, () =>
        db
          .$transaction(async (tx) => tx.$queryRawUnsafe(`SELECT pg_sleep(20) /* ${marker} */`), { timeout: 30_000 })
          .then(
            () => 'committed',
            () => 'failed',
          ),
      );
      await waitFor(async () => {
        const { rows } = await admin.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE $1',
          [`%${marker} */`],
        );
        return rows[0]?.n === 5 ? true : undefined;
      }, `five transactions in flight (round ${round})`);
      proxy.cut('refuse');
      expect(await Promise.all(transactions)).toEqual(Array(5).fill('failed'));
      proxy.restore();
    }
    // A leaked connection would leave this waiting for one (and failing after the connect timeout).
    expect(await db.$queryRawUnsafe('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });
});
