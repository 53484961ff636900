import type { Redis } from 'ioredis';
import { hostOf } from '../platform/redact.js';

/**
 * What the cluster log checks of the Redis behind REDIS_URL once connected, before it uses it.
 *
 * A Redis Cluster node is refused: the log's keys (`<prefix>changes`, `<prefix>sequence`,
 * `<prefix>appended:<origin>`) are written by one script and fall in different hash slots, which a
 * Cluster refuses (CROSSSLOT) at every append, so the instances would run with a change log that
 * never takes a change. Supported is one Redis endpoint (see "Which Redis" in the README). An
 * ACL that refuses INFO leaves this unchecked rather than stopping the start.
 */
export async function checkRedisServer(redis: Redis, url: string): Promise<void> {
  const cluster = await redis.info('cluster').catch(() => null);
  if (cluster && /^cluster_enabled:1\b/m.test(cluster)) {
    throw new Error(
      `Redis at ${hostOf(url)} (REDIS_URL) is a Redis Cluster node (cluster_enabled:1), which is not supported: ` +
        'point REDIS_URL at one Redis (a primary, or a managed service’s primary endpoint)',
    );
  }
}
