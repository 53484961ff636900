import { afterEach, describe, expect, test } from 'vitest';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { as, installOn, USER_HEADER, workerIdOf } from './support/cluster.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { type FakeAppService, sendEvent, startFakeAppService } from './support/fake-app-service.js';
import { HistoryQuery, TaskDetailQuery } from './support/operations.js';
import { listeningUrl, SERVER_COMMAND, type ServerProcess, serverEnv, startProcess } from './support/process.js';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './support/redis.js';
import { seed } from './support/seed.js';
import { dataOf, execute, waitFor } from './support/server.js';

/**
 * A task whose request to the app service is still open when its instance stops (SIGTERM: the
 * send is handed over once the stop's budget is spent) or dies (SIGKILL: its lease lapses). The
 * app service may answer that request (to no one) and run the install long after another instance
 * adopted the task, and a first install is not in its list before that: the adopter does not take
 * the task for lost while the request may still be open (APP_SERVICE_TIMEOUT_MS from its send),
 * follows it once the app service lists it, and fails it as lost only when the window has passed
 * with still no trace of it. Two server processes (one PostgreSQL database, one Redis) and the
 * HTTP fake app service, in this process, which holds the install's request open.
 */

const databases = await availableDatabases();
const runnable = databases.includes('postgresql') && (await redisAvailable());

const SECRET = 'app-service-event-secret-open-send';
const VERSION = '1.0.0';
const USER = 'alice';
const SOURCE = 'market.olares';
const HANDED_OVER = 'adopted a task handed over by a stopping instance';
const DIED = 'adopted a task whose worker died while the app service ran it';
/** Longer than any test here: a task taken over was handed over, not recovered from an expired lease. */
const LONG_LEASE_MS = 120_000;

interface Instance {
  name: string;
  server: ServerProcess;
  graphqlUrl: string;
  /** Where the app service posts its state events to this instance. */
  intake: string;
}

const started: ServerProcess[] = [];
const disposers: (() => Promise<void>)[] = [];

async function gone(server: ServerProcess): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
  await server.exited;
}

interface World {
  db: Db;
  fake: FakeAppService;
  /** Two instances on the database, with these settings. */
  start(options: { leaseMs: number; requestTimeoutMs: number }): Promise<[Instance, Instance]>;
}

async function world(appName: string): Promise<World> {
  const database: TestDatabase = await createTestDatabase('postgresql');
  disposers.push(() => database.drop());
  const db = createPrismaClient(database.url);
  disposers.push(() => db.$disconnect());
  const prefix = uniquePrefix();
  disposers.push(() => deleteKeys(prefix));
  // Another user's app, so that the list is not empty (an empty one proves nothing: it is asked again).
  const other = { name: 'someone-else', owner: 'bob', marketSource: SOURCE, state: 'running' };
  const fake = await startFakeAppService({ apps: [{ ...other, statusTime: new Date().toISOString() }] });
  disposers.push(() => fake.stop());
  await seed(db).remoteSource();
  await seed(db).catalogApp({ name: appName, versions: [VERSION] });
  const startOne = async (
    name: string,
    { leaseMs, requestTimeoutMs }: { leaseMs: number; requestTimeoutMs: number },
  ) => {
    const server = startProcess(
      SERVER_COMMAND,
      serverEnv(database.url, {
        REDIS_URL,
        REDIS_PREFIX: prefix,
        INSTANCE_NAME: name,
        COLLECT_INTERVAL_MS: '1000',
        BUNDLED_CATALOGUE_FILE: 'off',
        AUTH_USER_HEADER: USER_HEADER,
        AUTH_ADMIN_USERS: 'ops',
        APP_SERVICE_URL: fake.url,
        APP_SERVICE_EVENT_SECRET: SECRET,
        APP_SERVICE_TIMEOUT_MS: String(requestTimeoutMs),
        SHUTDOWN_TIMEOUT_MS: '1000',
        RECONCILE_INTERVAL_MS: '3600000',
        TASK_POLL_INTERVAL_MS: '200',
        TASK_LEASE_MS: String(leaseMs),
      }),
    );
    started.push(server);
    const url = await listeningUrl(server);
    const base = url.toString().replace(/\/graphql$/, '');
    return { name, server, graphqlUrl: `${base}/graphql`, intake: `${base}/events/app-state` };
  };
  const start: World['start'] = async (settings) => Promise.all([startOne('a', settings), startOne('b', settings)]);
  return { db, fake, start };
}

/**
 * Installs the app and waits until the fake app service holds its request open. Either instance
 * may have claimed the task: the one that sent it, then the other.
 */
async function installHeld(instances: [Instance, Instance], { db, fake }: World, appName: string) {
  const taskId = await installOn(instances[0], USER, appName, VERSION);
  await waitFor(async () => installRequests(fake, appName) === 1 || undefined, 'the install to reach the app service');
  const { workerId } = await db.task.findUniqueOrThrow({ where: { taskId } });
  const firstSent = (await workerIdOf(instances[0])) === workerId;
  const [sender, adopter] = firstSent ? instances : [instances[1], instances[0]];
  return { taskId, sender, adopter };
}

function installRequests(fake: FakeAppService, appName: string): number {
  const path = `/app-service/v1/apps/${appName}/install`;
  return fake.requests.filter((request) => request.method === 'POST' && request.path === path).length;
}

function listRequests(fake: FakeAppService): number {
  return fake.requests.filter((request) => request.path === '/app-service/v1/all/apps').length;
}

async function taskOn(instance: Instance, taskId: string) {
  const { task } = dataOf(await execute(instance, TaskDetailQuery, { taskId }, as('ops')));
  if (!task) throw new Error(`no task ${taskId}`);
  return task;
}

/** The owner's history of the app: the record types, oldest first. */
async function historyTypes(instance: Instance, appName: string): Promise<string[]> {
  const { history } = dataOf(await execute(instance, HistoryQuery, { filter: { app: appName }, first: 50 }, as(USER)));
  return history.edges.map(({ node }) => node.type).reverse();
}

/**
 * Waits until the adopter has asked the app service about the adopted task a few times (each of
 * its rounds lists every app; the leader's status correction lists them too, once at most here),
 * or the task has ended meanwhile; it must still run, as it was: not listed yet is not lost.
 */
async function stillFollowed(fake: FakeAppService, adopter: Instance, taskId: string): Promise<void> {
  const before = listRequests(fake);
  const askedAgainOrEnded = async () =>
    listRequests(fake) >= before + 3 || (await taskOn(adopter, taskId)).status !== 'RUNNING' || undefined;
  await waitFor(askedAgainOrEnded, 'the adopter to ask the app service again');
  expect(await taskOn(adopter, taskId)).toMatchObject({ status: 'RUNNING', error: null });
}

/**
 * The app service finally answers the held request (to an instance that is gone) and runs the
 * install: it lists the app under its op id and reports each state to the adopter.
 */
async function appServiceInstalls(world: World, adopter: Instance, appName: string, taskId: string) {
  const { fake } = world;
  const listed = (state: string, statusTime: string) => ({
    name: appName,
    owner: USER,
    marketSource: SOURCE,
    opID: 'op-held',
    opType: 'install',
    state,
    statusTime,
  });
  const report = async (state: string) => {
    const createTime = new Date().toISOString();
    fake.apps = [...fake.apps.filter((app) => (app as { name: string }).name !== appName), listed(state, createTime)];
    const event = { name: appName, user: USER, marketSource: SOURCE, opID: 'op-held', opType: 'install' };
    expect(await sendEvent(adopter.intake, SECRET, { ...event, state, createTime })).toBe(202);
  };
  await report('downloading');
  // Followed from the list by the op id it names (its progress moves), then by its events.
  await waitFor(async () => ((await taskOn(adopter, taskId)).progress > 0 ? true : undefined), 'the task to follow');
  await report('running');
  return waitFor(async () => {
    const task = await taskOn(adopter, taskId);
    return task.status !== 'RUNNING' ? task : undefined;
  }, 'the task to end');
}

/** Holds every install request open until the returned function is called; it is then accepted as `op-held`. */
function holdInstalls(fake: FakeAppService): () => void {
  let release!: () => void;
  fake.setBehaviour('install', {
    respond: 'accept-when',
    released: new Promise<void>((resolve) => (release = resolve)),
    opId: 'op-held',
  });
  return () => release();
}

describe.runIf(runnable)('an adopted task whose send may still be open', () => {
  afterEach(async () => {
    for (const server of started.splice(0)) await gone(server);
    for (const dispose of disposers.splice(0).reverse()) await dispose().catch(() => {});
  });

  test('SIGTERM mid-send: the other instance adopts the task, waits for the app service; it completes', async () => {
    const appName = 'held-then-stopped';
    const setup = await world(appName);
    const release = holdInstalls(setup.fake);
    const instances = await setup.start({ leaseMs: LONG_LEASE_MS, requestTimeoutMs: 30_000 });
    const { taskId, sender: first, adopter: second } = await installHeld(instances, setup, appName);

    first.server.child.kill('SIGTERM');
    expect(await first.server.exited).toEqual({ code: 0, signal: null });
    await second.server.waitForLog((line) => line.msg === HANDED_OVER && line.taskId === taskId, 'the adoption');
    // Not listed yet (a first install is listed once the app service has taken it), and not lost for that.
    await stillFollowed(setup.fake, second, taskId);

    release();
    const ended = await appServiceInstalls(setup, second, appName, taskId);
    expect(ended).toMatchObject({
      status: 'COMPLETED',
      error: null,
      progress: 100,
      opId: 'op-held',
      app: { stage: 'RUNNING', installedVersion: VERSION },
    });
    const history = await historyTypes(second, appName);
    expect(history).toContain('SYSTEM_INSTALL_SUCCEED');
    expect(history).not.toContain('SYSTEM_INSTALL_FAILED');
    expect(installRequests(setup.fake, appName)).toBe(1);
  }, 150_000);

  test('SIGKILL mid-send: the task adopted once the lease lapses completes when the app service answers', async () => {
    const appName = 'held-then-killed';
    const setup = await world(appName);
    const release = holdInstalls(setup.fake);
    const leaseMs = 3000;
    const instances = await setup.start({ leaseMs, requestTimeoutMs: 30_000 });
    const { taskId, sender: first, adopter: second } = await installHeld(instances, setup, appName);

    first.server.child.kill('SIGKILL');
    await first.server.exited;
    await second.server.waitForLog((line) => line.msg === DIED && line.taskId === taskId, 'the adoption');
    await stillFollowed(setup.fake, second, taskId);

    release();
    const ended = await appServiceInstalls(setup, second, appName, taskId);
    expect(ended).toMatchObject({ status: 'COMPLETED', error: null, app: { stage: 'RUNNING' } });
    expect(await historyTypes(second, appName)).not.toContain('SYSTEM_INSTALL_FAILED');
    expect(installRequests(setup.fake, appName)).toBe(1);
  }, 150_000);

  test('a send that vanished (never answered nor listed) fails as lost once its request cannot be open', async () => {
    const appName = 'held-and-vanished';
    const setup = await world(appName);
    setup.fake.setBehaviour('install', { respond: 'hang' });
    // Long enough for the sender's stop to hand the send over before its own timeout fails the task.
    const requestTimeoutMs = 15_000;
    const instances = await setup.start({ leaseMs: LONG_LEASE_MS, requestTimeoutMs });
    const { taskId, sender: first, adopter: second } = await installHeld(instances, setup, appName);

    first.server.child.kill('SIGTERM');
    await first.server.exited;
    await second.server.waitForLog((line) => line.msg === HANDED_OVER && line.taskId === taskId, 'the adoption');
    const failed = await waitFor(
      async () => {
        const task = await taskOn(second, taskId);
        return task.status !== 'RUNNING' ? task : undefined;
      },
      'the task to fail',
      60_000,
    );
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatch(
      new RegExp(
        `^lost: the app service lists no app ${appName} of ${USER}, so it has no record of the operation ` +
          `\\(its op id was never recorded\\), \\d+ s after it was sent, longer than its request can stay open ` +
          `\\(${requestTimeoutMs} ms\\); check the app and retry the task$`,
      ),
    );
    // Not before the window (the request's timeout and 5 s for the clocks) had passed since it was sent.
    const row = await setup.db.task.findUniqueOrThrow({ where: { taskId } });
    expect(row.completedAt!.getTime() - row.dispatchedAt!.getTime()).toBeGreaterThanOrEqual(requestTimeoutMs + 5000);
    expect(await historyTypes(second, appName)).toContain('SYSTEM_INSTALL_FAILED');
    expect(installRequests(setup.fake, appName)).toBe(1);
  }, 150_000);
});
