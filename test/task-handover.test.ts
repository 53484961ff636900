import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import type { TaskRow } from '../src/db/models.js';
import { availableDatabases, createTestDatabase, type DatabaseKind, type TestDatabase } from './support/databases.js';
import { type FakeAppService, sendEvent, startFakeAppService } from './support/fake-app-service.js';
import { listeningUrl, SERVER_COMMAND, serverEnv, skewedClockEnv, startProcess } from './support/process.js';
import { seed } from './support/seed.js';
import { installThroughApi, waitFor } from './support/server.js';

/**
 * Rolling restarts: a server process that stops (SIGTERM) or dies (SIGKILL) while the app service
 * runs its tasks. Another server process on the same database adopts those tasks and follows them
 * to their real end by their op id; none is sent to the app service twice, and only one the app
 * service has no record of fails. The app service is the HTTP fake, in this process; the servers
 * are real processes.
 */

const databases = await availableDatabases();

const SECRET = 'app-service-event-secret-0001';
const VERSION = '1.0.0';
/** Longer than any of these tests: a task taken over before it expires was handed over, not recovered. */
const LONG_LEASE_MS = '120000';

interface ChildServer {
  process: ChildProcess;
  graphqlUrl: string;
  /** Where the app service posts its state events to this server. */
  intake: string;
  /** Every line the server wrote to stdout and stderr, for failure messages. */
  output: string[];
}

/** Every server process, fake app service, database client and database a test started: none outlives it. */
const children = new Set<ChildProcess>();
const disposers: (() => Promise<void>)[] = [];

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitForExit(child: ChildProcess): Promise<void> {
  if (!exited(child)) await once(child, 'exit');
}

/** `node --import tsx src/index.ts` against the fake app service; resolves once it logs that it listens. */
async function startServer(
  databaseUrl: string,
  fake: FakeAppService,
  leaseMs: string,
  clockSkewMs = 0,
): Promise<ChildServer> {
  const server = startProcess(
    SERVER_COMMAND,
    serverEnv(databaseUrl, {
      ...(clockSkewMs ? skewedClockEnv(clockSkewMs) : {}),
      APP_SERVICE_URL: fake.url,
      // The test's own catalogue rows only: no bundled catalogue synced over them.
      BUNDLED_CATALOGUE_FILE: 'off',
      APP_SERVICE_EVENT_SECRET: SECRET,
      APP_SERVICE_TIMEOUT_MS: '5000',
      // Only the adoption asks the app service; no periodic reconciliation during a test.
      RECONCILE_INTERVAL_MS: '3600000',
      TASK_CONCURRENCY: '8',
      TASK_POLL_INTERVAL_MS: '200',
      TASK_LEASE_MS: leaseMs,
    }),
  );
  children.add(server.child);
  const url = (await listeningUrl(server)).origin;
  return {
    process: server.child,
    graphqlUrl: `${url}/graphql`,
    intake: `${url}/events/app-state`,
    output: server.output,
  };
}

/** SIGTERM, as a rolling restart sends it: the server must stop by itself, cleanly. */
async function stopGracefully(server: ChildServer): Promise<void> {
  server.process.kill('SIGTERM');
  await waitForExit(server.process);
  expect(server.process.exitCode, server.output.slice(-20).join('\n')).toBe(0);
}

interface Setup {
  database: TestDatabase;
  db: Db;
  fake: FakeAppService;
}

async function setUp(kind: DatabaseKind, appNames: string[]): Promise<Setup> {
  const database = await createTestDatabase(kind);
  disposers.push(() => database.drop());
  const db = createPrismaClient(database.url);
  disposers.push(() => db.$disconnect());
  const fake = await startFakeAppService();
  disposers.push(() => fake.stop());
  const seeder = seed(db);
  await seeder.remoteSource();
  for (const name of appNames) await seeder.catalogApp({ name, versions: [VERSION] });
  return { database, db, fake };
}

/** Installs each app through the server and waits until the app service runs every one (an op id recorded). */
async function installAll(server: ChildServer, { db }: Setup, appNames: string[]): Promise<TaskRow[]> {
  const taskIds: string[] = [];
  for (const appName of appNames) taskIds.push(await installThroughApi(server, { appName, version: VERSION }));
  return waitFor(async () => {
    const rows = await tasksOf(db, taskIds);
    return rows.every((row) => row.status === 'RUNNING' && row.opId) ? rows : undefined;
  }, 'every install to run on the app service');
}

/** The rows of these tasks, in the same order. */
async function tasksOf(db: Db, taskIds: string[]): Promise<TaskRow[]> {
  const rows = await db.task.findMany({ where: { taskId: { in: taskIds } } });
  return taskIds.map((taskId) => rows.find((row) => row.taskId === taskId)!);
}

/** Waits until every one of these tasks has ended, and returns their rows. */
function allEnded(db: Db, taskIds: string[], timeoutMs = 20_000): Promise<TaskRow[]> {
  return waitFor(
    async () => {
      const rows = await tasksOf(db, taskIds);
      return rows.every((row) => row.status !== 'RUNNING' && row.status !== 'PENDING') ? rows : undefined;
    },
    'every task to end',
    timeoutMs,
  );
}

/** How the app service lists an app whose operation is in this state (GET /all/apps). */
function listed(task: TaskRow, state: string, opId = task.opId) {
  return {
    name: task.appName,
    owner: task.userId,
    marketSource: task.sourceId,
    opID: opId,
    opType: 'install',
    state,
    statusTime: new Date().toISOString(),
  };
}

/** The app service reports an install ended, to one server's intake. */
async function reportRunning(server: ChildServer, task: TaskRow): Promise<void> {
  const status = await sendEvent(server.intake, SECRET, {
    name: task.appName,
    user: task.userId,
    marketSource: task.sourceId,
    opID: task.opId!,
    opType: 'install',
    state: 'running',
    createTime: new Date().toISOString(),
  });
  expect(status).toBe(202);
}

/** How often the app service was asked to install each app. */
function installCalls(fake: FakeAppService): Map<string, number> {
  const calls = new Map<string, number>();
  for (const request of fake.requests) {
    const match = /^\/app-service\/v1\/apps\/([^/]+)\/install$/.exec(request.path);
    if (request.method === 'POST' && match) calls.set(match[1]!, (calls.get(match[1]!) ?? 0) + 1);
  }
  return calls;
}

function expectSentOnce(fake: FakeAppService, appNames: string[]): void {
  const calls = installCalls(fake);
  expect(Object.fromEntries(appNames.map((name) => [name, calls.get(name) ?? 0]))).toEqual(
    Object.fromEntries(appNames.map((name) => [name, 1])),
  );
}

function expectCompleted(rows: TaskRow[]): void {
  for (const row of rows) {
    expect({ app: row.appName, status: row.status, error: row.error, progress: row.progress }).toEqual({
      app: row.appName,
      status: 'COMPLETED',
      error: null,
      progress: 100,
    });
  }
}

describe.each(databases)('task handover on %s', (kind) => {
  afterEach(async () => {
    for (const child of children) {
      if (!exited(child)) child.kill('SIGKILL');
      await waitForExit(child);
      children.delete(child);
    }
    for (const dispose of disposers.splice(0).reverse()) await dispose().catch(() => {});
  });

  test('a server restarted after SIGTERM adopts the tasks the app service runs and follows each to its real end', async () => {
    const apps = ['handover-done-1', 'handover-done-2', 'handover-busy-1', 'handover-busy-2'];
    const setup = await setUp(kind, apps);
    const { db, fake } = setup;
    const first = await startServer(setup.database.url, fake, LONG_LEASE_MS);
    const sent = await installAll(first, setup, apps);

    await stopGracefully(first);
    // Handed over: still RUNNING, with their op ids, but with no worker and no lease to wait for.
    for (const row of await tasksOf(
      db,
      sent.map((task) => task.taskId),
    )) {
      expect(row).toMatchObject({ status: 'RUNNING', workerId: null, heartbeatAt: null, opId: expect.any(String) });
    }

    // While no server listened, the app service finished two installs (their events went nowhere)
    // and still runs the other two.
    const [done1, done2, busy1, busy2] = sent as [TaskRow, TaskRow, TaskRow, TaskRow];
    fake.apps = [
      listed(done1, 'running'),
      listed(done2, 'running'),
      listed(busy1, 'installing'),
      listed(busy2, 'downloading'),
    ];

    const second = await startServer(setup.database.url, fake, LONG_LEASE_MS);
    // The finished ones end as soon as the new server has asked the app service about them.
    expectCompleted(await allEnded(db, [done1.taskId, done2.taskId]));
    // The others are the new server's own, and end with the app service's state events to it.
    const adopted = await waitFor(async () => {
      const rows = await tasksOf(db, [busy1.taskId, busy2.taskId]);
      // Adopted, and the app service asked where they stand (progress from its listing).
      return rows.every((row) => row.status === 'RUNNING' && row.workerId && row.heartbeatAt && row.progress > 0)
        ? rows
        : undefined;
    }, 'the new server to adopt the tasks still running');
    expect(adopted.map((row) => row.progress)).toEqual([70, 10]); // from the listing: installing, downloading
    for (const task of [busy1, busy2]) await reportRunning(second, task);

    const final = await allEnded(
      db,
      sent.map((task) => task.taskId),
    );
    expectCompleted(final);
    for (const row of final) expect(row.opId).toBe(sent.find((task) => task.taskId === row.taskId)?.opId);
    const states = await db.appState.findMany({ where: { appName: { in: apps } } });
    expect(states.map((state) => [state.appName, state.installedVersion]).sort()).toEqual(
      apps.map((name) => [name, VERSION]).sort(),
    );
    expectSentOnce(fake, apps);
    await stopGracefully(second);
  }, 120_000);

  test('when one of two instances stops, the other adopts its running tasks at once, long before their lease would expire', async () => {
    const apps = ['pair-1', 'pair-2', 'pair-3'];
    const setup = await setUp(kind, apps);
    const { db, fake } = setup;
    const first = await startServer(setup.database.url, fake, LONG_LEASE_MS);
    const sent = await installAll(first, setup, apps);
    const firstWorker = sent[0]!.workerId;
    expect(sent.every((task) => task.workerId === firstWorker)).toBe(true);

    // The second instance starts while the first runs them: it leaves them alone.
    const second = await startServer(setup.database.url, fake, LONG_LEASE_MS);
    expect(
      (
        await tasksOf(
          db,
          sent.map((task) => task.taskId),
        )
      ).map((row) => row.workerId),
    ).toEqual(sent.map(() => firstWorker));

    fake.apps = sent.map((task) => listed(task, 'installing'));
    await stopGracefully(first);
    const stoppedAt = Date.now();
    const adopted = await waitFor(
      async () => {
        const rows = await tasksOf(
          db,
          sent.map((task) => task.taskId),
        );
        return rows.every((row) => row.status === 'RUNNING' && row.workerId && row.workerId !== firstWorker)
          ? rows
          : undefined;
      },
      'the other instance to adopt the tasks',
      20_000,
    );
    // Its poll interval (200 ms) away, not the lease (120 s).
    expect(Date.now() - stoppedAt).toBeLessThan(20_000);
    expect(new Set(adopted.map((row) => row.workerId)).size).toBe(1);

    for (const task of sent) await reportRunning(second, task);
    expectCompleted(
      await allEnded(
        db,
        sent.map((task) => task.taskId),
      ),
    );
    expectSentOnce(fake, apps);
    await stopGracefully(second);
  }, 120_000);

  test('after a SIGKILL, another instance adopts the running tasks of the dead one once their lease expires, and completes them', async () => {
    const apps = ['killed-1', 'killed-2', 'killed-3'];
    const setup = await setUp(kind, apps);
    const { db, fake } = setup;
    const leaseMs = 1500;
    const first = await startServer(setup.database.url, fake, String(leaseMs));
    const sent = await installAll(first, setup, apps);
    const firstWorker = sent[0]!.workerId;
    const second = await startServer(setup.database.url, fake, String(leaseMs));

    fake.apps = sent.map((task) => listed(task, 'installing'));
    first.process.kill('SIGKILL');
    await waitForExit(first.process);
    expect(first.process.signalCode).toBe('SIGKILL');
    // Nothing was handed over: the dead instance still holds them until the lease runs out.
    const atKill = await tasksOf(
      db,
      sent.map((task) => task.taskId),
    );
    expect(atKill.map((row) => [row.status, row.workerId])).toEqual(sent.map(() => ['RUNNING', firstWorker]));

    const adopted = await waitFor(async () => {
      const rows = await tasksOf(
        db,
        sent.map((task) => task.taskId),
      );
      // Adopted, and the app service asked where they stand (progress from its listing).
      const followed = (row: TaskRow) => row.workerId !== firstWorker && row.progress > 0;
      return rows.every((row) => row.status === 'RUNNING' && row.workerId && followed(row)) ? rows : undefined;
    }, 'the other instance to adopt the tasks');
    // Taken over only once the lease had expired: each new heartbeat is at least a lease after the dead one's last.
    for (const [index, row] of adopted.entries()) {
      expect(row.heartbeatAt!.getTime()).toBeGreaterThanOrEqual(atKill[index]!.heartbeatAt!.getTime() + leaseMs);
    }
    expect(adopted.map((row) => row.progress)).toEqual(sent.map(() => 70)); // from the listing: installing

    for (const task of sent) await reportRunning(second, task);
    expectCompleted(
      await allEnded(
        db,
        sent.map((task) => task.taskId),
      ),
    );
    expectSentOnce(fake, apps);
    await stopGracefully(second);
  }, 120_000);

  test.runIf(kind === 'postgresql')(
    'an instance whose clock runs 45 s ahead leaves the running tasks of a live one alone, whatever their heartbeats say on its clock',
    async () => {
      const apps = ['skew-1', 'skew-2'];
      const setup = await setUp(kind, apps);
      const { db, fake } = setup;
      const leaseMs = 2000;
      const first = await startServer(setup.database.url, fake, String(leaseMs));
      const sent = await installAll(first, setup, apps);
      const owner = sent[0]!.workerId;
      fake.apps = sent.map((task) => listed(task, 'installing'));
      const ahead = await startServer(setup.database.url, fake, String(leaseMs), 45_000);
      const since = Date.now();
      // Two leases on: the instance ahead has looked for abandoned tasks (every 200 ms) all along,
      // and the owner has renewed its heartbeats (every lease / 3) past the end of the first lease.
      const rows = await waitFor(async () => {
        const now = await tasksOf(
          db,
          sent.map((task) => task.taskId),
        );
        const renewed = (row: TaskRow) => row.workerId !== owner || row.heartbeatAt!.getTime() > since + 2 * leaseMs;
        return now.every(renewed) ? now : undefined;
      }, 'two leases to pass');
      expect(rows.map((row) => [row.status, row.workerId])).toEqual(sent.map(() => ['RUNNING', owner]));
      expect(ahead.output.join('\n')).not.toMatch(/adopted a task/);
      // The instance ahead says so, to whoever looks at its task engine.
      const engine = await waitFor(async () => {
        const response = await fetch(ahead.graphqlUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: '{ components { name state message metrics } }' }),
        });
        const { data } = (await response.json()) as { data: { components: Record<string, unknown>[] } };
        const found = data.components.find((component) => component.name === 'task_engine');
        return found?.state === 'DEGRADED' ? found : undefined;
      }, 'the task engine of the instance ahead to say its clock is off');
      expect(engine.message).toMatch(/^this machine's clock is 4[45]\.\d s ahead of the database's/);
      expect((engine.metrics as { clockOffsetMs: number }).clockOffsetMs).toBeGreaterThan(44_000);
      for (const task of sent) await reportRunning(first, task);
      expect(
        (
          await allEnded(
            db,
            sent.map((task) => task.taskId),
          )
        ).map((row) => row.status),
      ).toEqual(sent.map(() => 'COMPLETED'));
    },
    120_000, // two processes started, two leases waited out: 20-28 s on a loaded 2-core machine, near the 30 s default
  );

  test('an app service that lists no apps at all (just restarted) fails no adopted task: it is asked again, and the task followed', async () => {
    const apps = ['after-empty-list'];
    const setup = await setUp(kind, apps);
    const { db, fake } = setup;
    const first = await startServer(setup.database.url, fake, LONG_LEASE_MS);
    const [task] = (await installAll(first, setup, apps)) as [TaskRow];
    fake.apps = [];
    await stopGracefully(first);
    const second = await startServer(setup.database.url, fake, LONG_LEASE_MS);
    await waitFor(
      async () => second.output.some((line) => line.includes('the app service listed no apps at all')) || undefined,
      'the lookup of the adopted task to be refused',
    );
    expect((await tasksOf(db, [task.taskId]))[0]).toMatchObject({ status: 'RUNNING', error: null });

    fake.apps = [listed(task, 'installing')];
    await reportRunning(second, task);
    expectCompleted(await allEnded(db, [task.taskId]));
    expectSentOnce(fake, apps);
    await stopGracefully(second);
  }, 120_000);

  test('a task the app service has no record of fails with the reason; the others are still followed', async () => {
    const apps = ['known-op', 'unlisted-op', 'superseded-op'];
    const setup = await setUp(kind, apps);
    const { db, fake } = setup;
    const first = await startServer(setup.database.url, fake, LONG_LEASE_MS);
    const [known, unlisted, superseded] = (await installAll(first, setup, apps)) as [TaskRow, TaskRow, TaskRow];

    // The app service lost one app altogether, and runs another operation on another.
    fake.apps = [listed(known, 'installing'), listed(superseded, 'installing', 'op-someone-else')];
    await stopGracefully(first);
    const second = await startServer(setup.database.url, fake, LONG_LEASE_MS);

    const [lost, replaced] = await allEnded(db, [unlisted.taskId, superseded.taskId]);
    expect(lost).toMatchObject({
      status: 'FAILED',
      error: `lost: the app service lists no app unlisted-op of ${unlisted.userId}, so it has no record of operation ${unlisted.opId}; check the app and retry the task`,
    });
    expect(replaced).toMatchObject({
      status: 'FAILED',
      error: `lost: the app service now runs operation op-someone-else on superseded-op and no longer reports operation ${superseded.opId}; check the app and retry the task`,
    });
    // The app shows the failure too; but status correction's first run, which lists no such app
    // either, removes it when its list was asked for after the failure (its record then says what
    // the app showed). Which comes first is the two start-up jobs' race, not the handover's.
    const lostApp = await db.appState.findFirst({ where: { appName: 'unlisted-op' } });
    if (lostApp) {
      expect(lostApp).toMatchObject({ state: 'installFailed', installedVersion: null });
      expect(lostApp.reason).toMatch(/^lost: the app service lists no app unlisted-op/);
    } else {
      const removal = await db.historyRecord.findFirst({ where: { app: 'unlisted-op', type: 'system' } });
      expect(removal?.message).toBe('unlisted-op is gone from the app service: removed (last state installFailed)');
    }

    await reportRunning(second, known);
    expectCompleted(await allEnded(db, [known.taskId]));
    expectSentOnce(fake, apps);
    await stopGracefully(second);
  }, 120_000);
});
