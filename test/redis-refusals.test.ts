import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  as,
  completedOn,
  type Instance,
  installOn,
  redisConnected,
  runtimeContent,
  startInstance,
} from './support/cluster.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { readinessOf } from './support/metrics.js';
import { RuntimeEventsSubscription, RuntimeSnapshotQuery, UninstallAppMutation } from './support/operations.js';
import { killLeftovers, LISTENING, type LogLine, SERVER_COMMAND, serverEnv, startProcess } from './support/process.js';
import { uniquePrefix } from './support/redis.js';
import { type OwnRedis, redisServerInstalled, startOwnRedis } from './support/redis-server.js';
import { dataOf, execute, waitFor } from './support/server.js';
import { subscribe } from './support/subscriptions.js';

/**
 * Cluster mode against a Redis that is there but refuses the log's writes, as deployments meet
 * one: `maxmemory` reached under `noeviction` (OOM). Two server processes on PostgreSQL and a
 * redis-server of this file's own (the shared one must not be made to refuse).
 */

const databases = await availableDatabases();
const runnable = databases.includes('postgresql') && redisServerInstalled();

/** A user's apps in the instance's runtime state, as `name:STAGE`. */
async function appsOf(instance: Instance, userId: string): Promise<string[]> {
  const { runtimeSnapshot } = dataOf(await execute(instance, RuntimeSnapshotQuery, { filter: { userId } }, as('ops')));
  return runtimeSnapshot.apps.map((app) => `${app.appName}:${app.stage}`);
}

/** The README's "Redis permissions", as ACL rules (beside `~<REDIS_PREFIX>*` and `resetchannels -@all`). */
const PERMISSIONS = [
  ...['+eval', '+evalsha', '+get', '+set', '+incrby', '+time', '+xadd', '+pexpire', '+del'],
  ...['+xrevrange', '+xrange', '+xread', '+zadd', '+zremrangebyrank', '+zrevrangebyscore'],
  ...['+client|setname', '+select', '+ping', '+quit'],
];

describe.runIf(runnable)('cluster mode: a Redis that refuses writes', () => {
  let database: TestDatabase;
  let redis: OwnRedis;
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    database = await createTestDatabase('postgresql');
    redis = await startOwnRedis();
    const env = { DATABASE_URL: database.url, REDIS_URL: redis.url, REDIS_PREFIX: uniquePrefix() };
    a = await startInstance({ ...env, DEMO_DATA: '1', INSTANCE_NAME: 'a' });
    b = await startInstance({ ...env, DEMO_DATA: '0', INSTANCE_NAME: 'b' });
  }, 90_000);

  afterEach(async (context) => {
    await redis.admin.config('SET', 'maxmemory', '0');
    if (context.task.result?.state !== 'fail') return;
    for (const instance of [a, b]) {
      const problems = instance.server.logs.filter((line) => (line.level ?? 0) >= 40).slice(-20);
      console.error(`${instance.env.INSTANCE_NAME}'s warnings:\n${problems.map((l) => JSON.stringify(l)).join('\n')}`);
    }
  });

  afterAll(async () => {
    for (const instance of [a, b]) {
      instance?.server.child.kill('SIGTERM');
      await instance?.server.exited;
    }
    await killLeftovers();
    await redis?.stop();
    await database?.drop();
  }, 60_000);

  test('out of memory under noeviction: the instances say so (log, readiness, metric), then catch up and agree', async () => {
    for (const instance of [a, b]) {
      await waitFor(async () => ((await readinessOf(instance)).status === 200 ? true : undefined), 'ready');
    }
    // Every write refused: `-OOM command not allowed when used memory > 'maxmemory'`.
    await redis.admin.config('SET', 'maxmemory-policy', 'noeviction');
    await redis.admin.config('SET', 'maxmemory', '1');
    const taskId = await installOn(a, 'dora', 'n8n', '1.70.1');

    const refused = (line: LogLine) => line.command === 'append' && /OOM/.test(String(line.error));
    const warning = await waitFor(async () => a.server.logs.find(refused), 'the refused append to be logged');
    expect(warning).toMatchObject({ level: 40 });
    expect(warning.msg).toMatch(
      /^Redis refuses the cluster log's commands \(127\.0\.0\.1:\d+\): cluster changes cannot be appended/,
    );
    expect(await readinessOf(a)).toEqual({
      status: 503,
      body: { status: 'not ready', error: "Redis refuses the change log's commands (see the log)" },
    });
    expect(await redisConnected(a)).toBe('0');
    expect(a.server.logs.filter(refused)).toHaveLength(1); // one line for the whole refusal, not one per retry

    await redis.admin.config('SET', 'maxmemory', '0');
    await a.server.waitForLog(
      (line) =>
        line.command === 'append' &&
        line.msg === "Redis takes the cluster log's commands again: cluster changes are appended again",
      'the appends to be logged as working again',
    );
    await waitFor(async () => ((await readinessOf(a)).status === 200 ? true : undefined), 'A to be ready again');
    expect(await redisConnected(a)).toBe('1');
    // What waited went through: B sees the install, and both runtime states end equal.
    await completedOn(b, taskId);
    await waitFor(async () => {
      const [onA, onB] = await Promise.all([runtimeContent(a), runtimeContent(b)]);
      return JSON.stringify(onA) === JSON.stringify(onB) ? true : undefined;
    }, 'both runtime states to agree');
    const { runtimeSnapshot } = dataOf(
      await execute(b, RuntimeSnapshotQuery, { filter: { userId: 'dora' } }, as('ops')),
    );
    expect(runtimeSnapshot.apps.map((app) => `${app.appName}:${app.stage}`)).toEqual(['n8n:RUNNING']);
  }, 120_000);

  test('the log lost, then back as an older copy (a replica after a failover): nothing old is applied again', async () => {
    const user = 'frank';
    const changes = `${a.env.REDIS_PREFIX}changes`;
    const agree = () =>
      waitFor(async () => {
        const [onA, onB] = await Promise.all([runtimeContent(a), runtimeContent(b)]);
        return JSON.stringify(onA) === JSON.stringify(onB) ? onA : undefined;
      }, 'both runtime states to agree');
    await completedOn(b, await installOn(a, user, 'n8n', '1.70.1'));
    await agree();
    const olderCopy = await redis.admin.dumpBuffer(changes);
    // After the copy: n8n uninstalled (the database has it gone), jellyfin installed.
    const { uninstallApp } = dataOf(
      await execute(a, UninstallAppMutation, { input: { sourceId: 'market.olares', appName: 'n8n' } }, as(user)),
    );
    if (uninstallApp.__typename !== 'UninstallAppSuccess') throw new Error(JSON.stringify(uninstallApp));
    await completedOn(b, uninstallApp.task.taskId);
    await completedOn(b, await installOn(a, user, 'jellyfin', '1.2.0'));
    await waitFor(async () => ((await appsOf(b, user)).join() === 'jellyfin:RUNNING' ? true : undefined), 'B');

    const events = await subscribe(b, RuntimeEventsSubscription, { filter: { userId: user } }, as('ops'));
    try {
      // Redis loses the log and drops every connection (a failover to an empty replica), and takes
      // no write from the instances for a while, so that they find the log empty ...
      const missed = (line: LogLine) => line.msg === 'cluster log: entries may have been missed';
      const before = [a, b].map((instance) => instance.server.logs.filter(missed).length);
      await redis.admin.acl('SETUSER', 'test-admin', 'on', '>test-admin', '~*', '&*', '+@all');
      const admin = new Redis(redis.url, { username: 'test-admin', password: 'test-admin' });
      try {
        await admin.acl('SETUSER', 'default', '-@write');
        await admin.del(changes);
        await admin.client('KILL', 'USER', 'default');
        await waitFor(
          async () =>
            [a, b].every((x, i) => x.server.logs.filter(missed).length > (before[i] ?? 0)) ? true : undefined,
          'both instances to find the log lost',
        );
        // ... then the older copy comes back (the replica synced from an old primary).
        await admin.restore(changes, 0, olderCopy);
        await admin.acl('SETUSER', 'default', '+@all');
      } finally {
        admin.disconnect();
      }
      const taskId = await installOn(a, user, 'gitea', '1.22.0');
      await completedOn(b, taskId);
      const seen = await events.until((event) => event.runtimeEvents.app?.appName === 'gitea');
      expect(seen.filter((event) => event.runtimeEvents.app?.appName === 'n8n')).toEqual([]);
      expect(seen.filter((event) => event.runtimeEvents.task?.appName === 'n8n')).toEqual([]);
    } finally {
      await events.close();
    }
    await waitFor(async () => ((await appsOf(b, user)).includes('gitea:RUNNING') ? true : undefined), 'gitea on B');
    await agree();
    // As the database has it: n8n uninstalled, on both instances.
    expect((await appsOf(a, user)).sort()).toEqual(['gitea:RUNNING', 'jellyfin:RUNNING']);
    expect((await appsOf(b, user)).sort()).toEqual(['gitea:RUNNING', 'jellyfin:RUNNING']);
  }, 120_000);
});

describe.runIf(runnable)('cluster mode: a Redis it cannot work with', () => {
  // A test that timed out leaves its server and redis-server behind: ended here.
  afterAll(() => killLeftovers());

  test('a Redis Cluster node stops the start in one line that says so', async () => {
    // A one-node Redis Cluster holding every slot: single-key commands work, the log's script does not.
    await withOwnRedis(
      ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'],
      async ({ database, redis }) => {
        await redis.admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
        const server = startProcess(SERVER_COMMAND, serverEnv(database.url, { REDIS_URL: redis.url }));
        expect(await server.exited).toEqual({ code: 1, signal: null });
        expect(server.output.at(-1)).toBe(
          `Redis at 127.0.0.1:${redis.port} (REDIS_URL) is a Redis Cluster node (cluster_enabled:1), which is not ` +
            'supported: point REDIS_URL at one Redis (a primary, or a managed service’s primary endpoint)',
        );
      },
    );
  }, 60_000);

  test('a Redis that evicts keys under memory pressure is warned of once at start, naming the policy to set', async () => {
    await withOwnRedis(['--maxmemory-policy', 'volatile-lru'], async ({ database, redis }) => {
      const instance = await startInstance({ DATABASE_URL: database.url, REDIS_URL: redis.url, INSTANCE_NAME: 'e' });
      const evicts = (line: LogLine) => line.maxmemoryPolicy === 'volatile-lru';
      const warning = await instance.server.waitForLog(evicts, 'the eviction policy to be warned of');
      expect(warning).toMatchObject({
        level: 40,
        msg: `Redis at 127.0.0.1:${redis.port} evicts keys under memory pressure (maxmemory-policy volatile-lru): the leader lease and the change log's markers can go, giving two leaders at once; set maxmemory-policy noeviction`,
      });
      instance.server.child.kill('SIGTERM');
      expect(await instance.server.exited).toEqual({ code: 0, signal: null });
      expect(instance.server.logs.filter(evicts)).toHaveLength(1);
    });
  }, 60_000);

  test('a Redis user with only the permissions the README lists (no INFO, no CONFIG) runs the cluster log, in JSON lines only', async () => {
    const prefix = uniquePrefix();
    await withOwnRedis([], async ({ database, redis }) => {
      await redis.admin.acl(
        'SETUSER',
        'market',
        'on',
        '>market-pass',
        `~${prefix}*`,
        'resetchannels',
        '-@all',
        ...PERMISSIONS,
      );
      const url = `redis://market:market-pass@127.0.0.1:${redis.port}/3`;
      const instance = await startInstance({
        DATABASE_URL: database.url,
        REDIS_URL: url,
        REDIS_PREFIX: prefix,
        INSTANCE_NAME: 'acl',
      });
      expect(instance.server.logs.find((line) => line.msg === LISTENING)?.cluster).toBe(
        `Redis at 127.0.0.1:${redis.port}, database 3, instance acl`,
      );
      // The change log works (the runtime state follows it) and the lease too (the leader's jobs run).
      await completedOn(instance, await installOn(instance, 'gail', 'n8n', '1.70.1'));
      await waitFor(async () => ((await appsOf(instance, 'gail')).join() === 'n8n:RUNNING' ? true : undefined), 'n8n');
      await waitFor(async () => ((await readinessOf(instance)).status === 200 ? true : undefined), 'ready');
      await instance.server.waitForLog((line) => line.msg === 'leading the cluster', 'the lease to be taken');
      instance.server.child.kill('SIGTERM');
      expect(await instance.server.exited).toEqual({ code: 0, signal: null });
      expect(instance.server.output.filter((line) => !line.startsWith('{'))).toEqual([]);
      // ioredis's notice that INFO is refused is a log line like any warning, and the only one about Redis.
      const notice = (line: LogLine) =>
        line.source === 'console.warn' && /^Skipping the ready check/.test(String(line.msg));
      expect(instance.server.logs.filter(notice).length).toBeGreaterThan(0); // one per connection
      const aboutRedis = (line: LogLine) => (line.level ?? 0) >= 40 && /redis|lease|cluster/i.test(String(line.msg));
      expect(instance.server.logs.filter((line) => aboutRedis(line) && !notice(line))).toEqual([]);
    });
  }, 60_000);

  test('a Redis user refused a command the log needs stops the start in one line that says so', async () => {
    await withOwnRedis([], async ({ database, redis }) => {
      const without = PERMISSIONS.filter((permission) => permission !== '+xrevrange');
      await redis.admin.acl('SETUSER', 'market', 'on', '>market-pass', '~*', 'resetchannels', '-@all', ...without);
      const url = `redis://market:market-pass@127.0.0.1:${redis.port}`;
      const server = startProcess(SERVER_COMMAND, serverEnv(database.url, { REDIS_URL: url }));
      expect(await server.exited).toEqual({ code: 1, signal: null });
      expect(server.output.at(-1)).toMatch(
        new RegExp(
          `^Redis at 127\\.0\\.0\\.1:${redis.port} \\(REDIS_URL\\) refused a command to this user: NOPERM .*xrevrange.* \\(give it the permissions the README lists under "Redis permissions"\\)$`,
        ),
      );
    });
  }, 60_000);
});

/** A database and a redis-server of the test's own (started with `extra`), both gone once `run` has ended. */
async function withOwnRedis(
  extra: string[],
  run: (parts: { database: TestDatabase; redis: OwnRedis }) => Promise<void>,
): Promise<void> {
  const database = await createTestDatabase('postgresql');
  const redis = await startOwnRedis(extra);
  try {
    await run({ database, redis });
  } finally {
    await redis.stop();
    await database.drop();
  }
}
