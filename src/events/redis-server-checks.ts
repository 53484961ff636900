import type { Redis } from 'ioredis';
import type { Logger } from '../platform/logger.js';
import { hostOf } from '../platform/redact.js';

/**
 * What the cluster log checks of the Redis behind REDIS_URL once connected, before it uses it.
 *
 * A Redis Cluster node is refused: the log's keys (`<prefix>changes`, `<prefix>sequence`,
 * `<prefix>appended:<origin>`) are written by one script and fall in different hash slots, which a
 * Cluster refuses (CROSSSLOT) at every append, so the instances would run with a change log that
 * never takes a change. Supported is one Redis endpoint (see "Which Redis" in the README). An
 * ACL that refuses INFO leaves this unchecked rather than stopping the start.
 *
 * A `maxmemory-policy` that evicts (`allkeys-*`, `volatile-*`) is warned of: the keys it takes
 * first under `volatile-*` are the ones with a time to live, which are the leader lease and the
 * change log's duplicate-append markers. A lease evicted lets another instance lead while the old
 * leader still does, until its next renewal (up to a third of LEADER_LEASE_MS). Only warned:
 * managed services often set such a policy, and may refuse CONFIG (then nothing is said).
 */
export async function checkRedisServer(redis: Redis, url: string, logger: Logger): Promise<void> {
  const cluster = await redis.info('cluster').catch(() => null);
  if (cluster && /^cluster_enabled:1\b/m.test(cluster)) {
    throw new Error(
      `Redis at ${hostOf(url)} (REDIS_URL) is a Redis Cluster node (cluster_enabled:1), which is not supported: ` +
        'point REDIS_URL at one Redis (a primary, or a managed service’s primary endpoint)',
    );
  }
  const policy = ((await redis.config('GET', 'maxmemory-policy').catch(() => null)) as string[] | null)?.[1];
  if (policy && policy !== 'noeviction') {
    logger.warn(
      { maxmemoryPolicy: policy },
      `Redis at ${hostOf(url)} evicts keys under memory pressure (maxmemory-policy ${policy}): the leader lease ` +
        "and the change log's markers can go, giving two leaders at once; set maxmemory-policy noeviction",
    );
  }
}
