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
import { RuntimeSnapshotQuery } from './support/operations.js';
import { killLeftovers, type LogLine, SERVER_COMMAND, serverEnv, startProcess } from './support/process.js';
import { uniquePrefix } from './support/redis.js';
import { type OwnRedis, redisServerInstalled, startOwnRedis } from './support/redis-server.js';
import { dataOf, execute, waitFor } from './support/server.js';

/**
 * Cluster mode against a Redis that is there but refuses the log's writes, as deployments meet
 * one: `maxmemory` reached under `noeviction` (OOM). Two server processes on PostgreSQL and a
 * redis-server of this file's own (the shared one must not be made to refuse).
 */

const databases = await availableDatabases();
const runnable = databases.includes('postgresql') && redisServerInstalled();

const readiness = async (instance: Instance) => {
  const answer = await fetch(`${instance.url}/readiness`);
  return { status: answer.status, body: await answer.json() };
};

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
      await waitFor(async () => ((await readiness(instance)).status === 200 ? true : undefined), 'ready');
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
    expect(await readiness(a)).toEqual({
      status: 503,
      body: { status: 'not ready', error: "Redis refuses the change log's commands (see the log)" },
    });
    expect(await redisConnected(a)).toBe('0');
    expect(a.server.logs.filter(refused)).toHaveLength(1); // one line for the whole refusal, not one per retry

    await redis.admin.config('SET', 'maxmemory', '0');
    await a.server.waitForLog(
      (line) => line.command === 'append' && line.msg === 'Redis reachable again: cluster changes are appended again',
      'the appends to be logged as working again',
    );
    await waitFor(async () => ((await readiness(a)).status === 200 ? true : undefined), 'A to be ready again');
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
});

describe.runIf(runnable)('cluster mode: a Redis it cannot work with', () => {
  test('a Redis Cluster node stops the start in one line that says so', async () => {
    const database = await createTestDatabase('postgresql');
    // A one-node Redis Cluster holding every slot: single-key commands work, the log's script does not.
    const redis = await startOwnRedis(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf']);
    try {
      await redis.admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
      const server = startProcess(SERVER_COMMAND, serverEnv(database.url, { REDIS_URL: redis.url }));
      expect(await server.exited).toEqual({ code: 1, signal: null });
      expect(server.output.at(-1)).toBe(
        `Redis at 127.0.0.1:${redis.port} (REDIS_URL) is a Redis Cluster node (cluster_enabled:1), which is not ` +
          'supported: point REDIS_URL at one Redis (a primary, or a managed service’s primary endpoint)',
      );
    } finally {
      await redis.stop();
      await database.drop();
    }
  }, 60_000);
});
