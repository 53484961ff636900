import type { IncomingMessage } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { type Instance, startInstance, stopRunning, USER_HEADER } from './support/cluster.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { type Nginx, nginxAvailable, startNginx } from './support/nginx.js';
import { killLeftovers } from './support/process.js';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './support/redis.js';

/**
 * The shipped deploy/nginx.conf in front of two instances (cluster mode: one PostgreSQL database,
 * one Redis) through a rolling restart. nginx's passive health check (max_fails) brings a peer
 * back only when a request to it completes, and lets one request through every fail_timeout to
 * find out: when that one is a WebSocket or SSE stream, which does not complete, the restarted
 * instance stayed cut off and took one new connection every 5 s, and clients closed with 1012 by
 * the other instance reconnected at that pace ("no live upstreams", a 502 for a mutation).
 */

const databases = await availableDatabases();
const runnable =
  databases.includes('postgresql') && (await redisAvailable()) && nginxAvailable('the nginx rolling-restart test');

const QUERY = JSON.stringify({ query: '{ viewer { userId } }' });
const SUBSCRIPTION = JSON.stringify({ query: 'subscription { appUpdated { appName } }' });
const HEADERS = { 'content-type': 'application/json', [USER_HEADER]: 'alice' };

describe.runIf(runnable)('deploy/nginx.conf in front of two instances', () => {
  let database: TestDatabase;
  let prefix: string;
  let one: Instance;
  let two: Instance;
  let nginx: Nginx;
  const streams: IncomingMessage[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('postgresql');
    prefix = uniquePrefix();
    const env = { DATABASE_URL: database.url, REDIS_URL, REDIS_PREFIX: prefix };
    one = await startInstance({ ...env, INSTANCE_NAME: 'one' });
    two = await startInstance({ ...env, INSTANCE_NAME: 'two' });
    nginx = await startNginx([one, two].map((instance) => Number(new URL(instance.url).port)));
  }, 90_000);

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.error(`nginx said:\n${nginx?.output.join('\n')}`);
  });

  afterAll(async () => {
    for (const stream of streams) stream.destroy();
    await nginx?.stop();
    await stopRunning([one, two]);
    await killLeftovers();
    await database?.drop();
    if (prefix) await deleteKeys(prefix);
  });

  /** A query through nginx: its status, and the instance whose request log names its request id. */
  async function query(): Promise<{ status: number; servedBy: string }> {
    const answer = await nginx.request('POST', '/graphql', HEADERS, QUERY);
    expect(JSON.parse(answer.body), answer.body).toEqual({ data: { viewer: { userId: 'alice' } } });
    const requestId = answer.headers['x-request-id'];
    const running = Object.entries({ one: one.server, two: two.server }).filter(
      ([, server]) => server.child.exitCode === null && server.child.signalCode === null,
    );
    const servedBy = await Promise.race(
      running.map(([name, server]) =>
        server
          .waitForLog((line) => line.msg === 'request' && line.requestId === requestId, `request ${requestId}`)
          .then(() => name),
      ),
    );
    return { status: answer.status, servedBy };
  }

  test('a restarted instance takes new requests at once while streams are open, and none fails', async () => {
    two.server.child.kill('SIGTERM');
    expect(await two.server.exited).toEqual({ code: 0, signal: null });
    // With max_fails above 0 nginx marks instance two down here; proxy_next_upstream answers every one from one.
    const whileDown = [];
    for (let i = 0; i < 4; i++) whileDown.push(await query());
    expect(whileDown).toEqual(Array(4).fill({ status: 200, servedBy: 'one' }));

    two = await startInstance({ ...two.env, PORT: new URL(two.url).port });
    // A deployment always has streams open: nginx must not hand the restarted instance one of them
    // as the only request that could bring it back.
    for (let i = 0; i < 4; i++) {
      const stream = await nginx.openStream(
        '/graphql/stream',
        { ...HEADERS, accept: 'text/event-stream' },
        SUBSCRIPTION,
      );
      streams.push(stream);
      expect(stream.statusCode).toBe(200);
    }
    const afterRestart = [];
    for (let i = 0; i < 20; i++) afterRestart.push(await query());
    expect(afterRestart.filter(({ status }) => status !== 200)).toEqual([]);
    expect(afterRestart.map(({ servedBy }) => servedBy)).toContain('two');
  }, 60_000);
});
