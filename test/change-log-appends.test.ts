import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { RedisChangeLog } from '../src/events/redis-change-log.js';
import { createLogger } from '../src/platform/logger.js';
import { deleteKeys, REDIS_URL, redisAvailable, redisTarget, redisUrlVia, uniquePrefix } from './support/redis.js';
import { waitFor } from './support/server.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

/**
 * The cluster's change log (src/events/redis-change-log.ts) on a real Redis, through a TCP proxy
 * that a test slows down: an append whose answer comes after the command timeout is sent again,
 * though Redis ran it. Each change must still be in the log once, or an older change appended
 * again after a newer one leaves every instance on the older state.
 */

const runnable = await redisAvailable();
/** Past the log's command timeout (5 s): the append times out though Redis ran it. */
const LATER_THAN_THE_TIMEOUT_MS = 6000;

describe.runIf(runnable)('the change log on Redis', () => {
  let proxy: TcpProxy | undefined;
  let log: RedisChangeLog | undefined;
  let prefix = '';

  afterEach(async () => {
    proxy?.slow(0);
    await log?.stop();
    await proxy?.close();
    await deleteKeys(prefix);
    log = proxy = undefined;
  });

  test('an append whose answer was lost is sent again, and the change is in the log once, in its place', async () => {
    prefix = uniquePrefix();
    proxy = await startTcpProxy(redisTarget());
    const logs: { level: number; msg: string; command?: string }[] = [];
    const sink = new Writable({
      write: (chunk, _encoding, done) => {
        logs.push(
          ...String(chunk)
            .split('\n')
            .filter(Boolean)
            .map((line) => JSON.parse(line)),
        );
        done();
      },
    });
    log = new RedisChangeLog({
      url: redisUrlVia(proxy),
      prefix,
      retention: 1000,
      eventRetention: 1000,
      logger: createLogger('info', sink),
    });
    const applied: unknown[] = [];
    await log.start({ announcement: () => {}, runtime: (change) => applied.push(change), resync: () => {} });
    const started = log;

    proxy.slow(LATER_THAN_THE_TIMEOUT_MS);
    started.appendRuntime({ row: 'jellyfin', progress: 10 }, 1);
    await waitFor(
      async () => (started.status().lastError?.includes('timed out') ? true : undefined),
      'the append to time out',
      15_000,
    );
    // The network is prompt again: the append is retried on a new connection, then a newer change.
    proxy.slow(0);
    await waitFor(async () => (started.status().waiting === 0 ? true : undefined), 'the retry to go through', 15_000);
    started.appendRuntime({ row: 'jellyfin', progress: 100 }, 1);
    await waitFor(async () => (applied.length >= 2 ? true : undefined), 'both changes to come back', 15_000);

    const redis = new Redis(REDIS_URL);
    try {
      const entries = (await redis.xrange(`${prefix}changes`, '-', '+')) as [string, string[]][];
      expect(entries.map(([, fields]) => fields[fields.indexOf('local') + 1])).toEqual(['1', '2']);
    } finally {
      redis.disconnect();
    }
    expect(applied).toEqual([
      { row: 'jellyfin', progress: 10 },
      { row: 'jellyfin', progress: 100 },
    ]);
    // The operator's log says when Redis went and came back, once each way (the reader's blocking
    // read may have timed out too, depending on when the network slowed down: not counted here).
    const told = logs.filter((line) => line.msg.startsWith('Redis ') && line.command === 'append');
    expect(told.map((line) => [line.level, line.msg])).toEqual([
      [40, expect.stringMatching(/^Redis unreachable \(127\.0\.0\.1:\d+\): cluster changes cannot be appended/)],
      [30, 'Redis reachable again: cluster changes are appended again'],
    ]);
  }, 60_000);

  test('entries appended by an instance whose clock runs ahead, then lost with Redis, do not hide the next ones', async () => {
    prefix = uniquePrefix();
    const options = { url: REDIS_URL, prefix, retention: 1000, eventRetention: 1000, logger: createLogger('silent') };
    const seen: unknown[] = [];
    const ignore = { announcement: () => {}, resync: () => {} };
    const reader = new RedisChangeLog(options);
    const ahead = new RedisChangeLog(options);
    const behind = new RedisChangeLog(options);
    try {
      await reader.start({ ...ignore, runtime: (change) => seen.push(change) });
      await ahead.start({ ...ignore, runtime: () => {} });
      await behind.start({ ...ignore, runtime: () => {} });
      // This process's clock 45 s ahead while one instance appends (the others read the log).
      const now = Date.now;
      const spy = vi.spyOn(Date, 'now').mockImplementation(() => now() + 45_000);
      try {
        ahead.appendRuntime({ row: 'ahead' }, 1);
        await waitFor(async () => (seen.length === 1 ? true : undefined), 'the first entry to be read');
      } finally {
        spy.mockRestore();
      }
      // Redis restarts without its data (the reader keeps its position, as a live instance does).
      await deleteKeys(prefix);
      behind.appendRuntime({ row: 'after the loss' }, 1);
      await waitFor(async () => (seen.length === 2 ? true : undefined), 'the entry after the loss to be read', 5_000);
      expect(seen).toEqual([{ row: 'ahead' }, { row: 'after the loss' }]);
    } finally {
      await Promise.all([reader.stop(), ahead.stop(), behind.stop()]);
    }
  }, 30_000);
});
