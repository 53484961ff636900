import type { ResultOf } from '@graphql-typed-document-node/core';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { as, installOn, USER_HEADER } from './support/cluster.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { type FakeAppService, startFakeAppService } from './support/fake-app-service.js';
import { RuntimeEventsSubscription, RuntimeSnapshotQuery, TaskDetailQuery } from './support/operations.js';
import {
  killLeftovers,
  listeningUrl,
  SERVER_COMMAND,
  type ServerProcess,
  serverEnv,
  startProcess,
} from './support/process.js';
import { deleteKeys, REDIS_URL, redisAvailable, redisTarget, redisUrlVia, uniquePrefix } from './support/redis.js';
import { dataOf, execute, waitFor } from './support/server.js';
import { type Subscription, subscribe } from './support/subscriptions.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

/**
 * Cluster mode, real processes on PostgreSQL and Redis: an instance that starts while another
 * one's appends to the change log lag (its Redis paused) loads a state that already holds that
 * one's change, and applies its entry only after its own log position. A client resuming there
 * with a `since` from before must get every event the other instances sent, or RESYNC: never the
 * same sequences with an event missing.
 */

const databases = await availableDatabases();
const runnable = databases.includes('postgresql') && (await redisAvailable());

const SECRET = 'app-service-event-secret-since-gap';
const USER = 'ivy';
const APP = 'n8n';

interface Instance {
  server: ServerProcess;
  url: string;
  graphqlUrl: string;
}

type RuntimeEventResult = ResultOf<typeof RuntimeEventsSubscription>;

async function startInstance(name: string, env: Record<string, string>): Promise<Instance> {
  const server = startProcess(
    SERVER_COMMAND,
    serverEnv(env.DATABASE_URL as string, {
      INSTANCE_NAME: name,
      AUTH_USER_HEADER: USER_HEADER,
      AUTH_ADMIN_USERS: 'ops',
      MUTATION_RATE_PER_S: '0',
      DEMO_DATA: '0',
      APP_SERVICE_EVENT_SECRET: SECRET,
      // Nothing but this test's changes in the log meanwhile: no lease renewals or checks.
      TASK_LEASE_MS: '600000',
      COLLECT_INTERVAL_MS: '600000',
      RECONCILE_INTERVAL_MS: '600000',
      ...env,
    }),
  );
  const url = (await listeningUrl(server)).origin;
  return { server, url, graphqlUrl: `${url}/graphql` };
}

/** The app and task events of a runtimeEvents stream (components are each instance's own to time). */
function rowEvents(events: RuntimeEventResult[]) {
  return events
    .map(({ runtimeEvents: { sequence, kind, app, task } }) => ({ sequence, kind, app, task }))
    .filter((event) => event.app || event.task);
}

describe.runIf(runnable)('runtimeEvents(since:) on an instance started while another’s appends lagged', () => {
  let database: TestDatabase;
  let prefix: string;
  let fake: FakeAppService;
  /** A reaches Redis through this proxy, which the test pauses. */
  let aToRedis: TcpProxy;
  const instances: Instance[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('postgresql');
    prefix = uniquePrefix();
    fake = await startFakeAppService();
    aToRedis = await startTcpProxy(redisTarget());
  }, 60_000);

  afterEach((context) => {
    if (context.task.result?.state !== 'fail') return;
    for (const instance of instances) {
      const problems = instance.server.logs.filter((line) => (line.level ?? 0) >= 40).slice(-20);
      console.error(`warnings and errors:\n${problems.map((line) => JSON.stringify(line)).join('\n')}`);
    }
  });

  afterAll(async () => {
    for (const { server } of instances) {
      if (server.child.exitCode === null && server.child.signalCode === null) {
        server.child.kill('SIGTERM');
        await server.exited;
      }
    }
    await killLeftovers();
    await aToRedis?.close();
    await fake?.stop();
    await database?.drop();
    await deleteKeys(prefix);
  }, 60_000);

  test('a since from before the start resumed on the new instance gets RESYNC or every event, never a silent gap', async () => {
    const env = { DATABASE_URL: database.url, REDIS_PREFIX: prefix, APP_SERVICE_URL: fake.url };
    const a = await startInstance('a', { ...env, REDIS_URL: redisUrlVia(aToRedis) });
    instances.push(a);
    const intake = `${a.url}/events/app-state`;
    const onA = await subscribe(a, RuntimeEventsSubscription, { filter: { userId: USER } }, as('ops'));
    const redis = new Redis(REDIS_URL);
    const subscribers: Subscription<RuntimeEventResult>[] = [onA];
    try {
      const taskId = await installOn(a, USER, APP, '1.70.1');
      const opID = await waitFor(async () => {
        const task = dataOf(await execute(a, TaskDetailQuery, { taskId }, as('ops'))).task;
        return task?.status === 'RUNNING' && task.opId ? task.opId : undefined;
      }, 'the install to be accepted');
      // Each report a second after the one before: an instance ignores one no newer than the app's state.
      let reportedAt = Date.now();
      const report = (state: string, progress?: string) => {
        reportedAt += 1000;
        const createTime = new Date(reportedAt).toISOString();
        const event = {
          name: APP,
          user: USER,
          marketSource: 'market.olares',
          opID,
          opType: 'install',
          state,
          createTime,
        };
        return fake.sendEvent(intake, SECRET, { ...event, ...(progress ? { progress } : {}) });
      };
      const progressed = (progress: number) => (event: RuntimeEventResult) =>
        event.runtimeEvents.task?.taskId === taskId && event.runtimeEvents.task.progress === progress;

      // Where the client leaves off: an event of A's, which A has recorded for later instances.
      // (The task's progress first, then the app's state: one entry, one commit.)
      expect(await report('downloading', '0')).toBe(202);
      await onA.until(progressed(10));
      const seen = await onA.until((event) => event.runtimeEvents.kind === 'APP_CHANGED');
      const since = (seen.at(-1) as RuntimeEventResult).runtimeEvents.sequence;
      await waitFor(async () => {
        const [, score] = await redis.zrevrangebyscore(`${prefix}events`, '+inf', '-inf', 'WITHSCORES', 'LIMIT', 0, 1);
        return Number(score) >= since ? true : undefined;
      }, 'A to have recorded its events');

      // A commits a change while its appends cannot reach Redis; B starts and loads it.
      aToRedis.freeze();
      expect(await report('downloading', '50')).toBe(202);
      const b = await startInstance('b', { ...env, REDIS_URL });
      instances.push(b);
      const liveOnB = await subscribe(b, RuntimeEventsSubscription, { filter: { userId: USER }, since }, as('ops'));
      subscribers.push(liveOnB);

      // A's entry reaches the log, after B's position.
      aToRedis.restore();
      const lagged = await onA.until(progressed(35));
      const laggedAt = (lagged.at(-1) as RuntimeEventResult).runtimeEvents.sequence;
      await waitFor(async () => {
        const { runtimeSnapshot } = dataOf(await execute(b, RuntimeSnapshotQuery, {}, as('ops')));
        return runtimeSnapshot.sequence >= laggedAt ? true : undefined;
      }, 'B to have applied A’s entry');
      const laterOnB = await subscribe(b, RuntimeEventsSubscription, { filter: { userId: USER }, since }, as('ops'));
      subscribers.push(laterOnB);

      // One more change, so that every stream has gone past A's lagging entry.
      expect(await report('installing')).toBe(202);
      const sentByA = [...lagged, ...(await onA.until(progressed(70)))];
      const last = (sentByA.at(-1) as RuntimeEventResult).runtimeEvents.sequence;
      for (const onB of [liveOnB, laterOnB]) {
        const events = await onB.until((event) => event.runtimeEvents.sequence >= last);
        const resynced = events.some((event) => event.runtimeEvents.kind === 'RESYNC');
        const shown = new Set(rowEvents(events).map((event) => JSON.stringify(event)));
        const missing = rowEvents(sentByA).filter((event) => !shown.has(JSON.stringify(event)));
        expect(resynced ? [] : missing).toEqual([]);
      }
    } finally {
      for (const subscriber of subscribers) await subscriber.close();
      redis.disconnect();
      aToRedis.restore();
    }
  }, 120_000);
});
