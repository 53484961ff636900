import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { REQUIRE_SERVICES } from './databases.js';
import type { TcpProxy } from './tcp-proxy.js';

/** The Redis the cluster tests share; each test keeps to a REDIS_PREFIX of its own. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Whether Redis answers; a test file skips when it does not (and fails under REQUIRE_SERVICES=1). */
export async function redisAvailable(): Promise<boolean> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
    return true;
  } catch (error) {
    const problem = (error as Error).message;
    if (REQUIRE_SERVICES) throw new Error(`Redis at ${REDIS_URL} is unreachable (${problem}); REQUIRE_SERVICES=1`);
    console.warn(`\n!!! SKIPPING Redis tests: Redis at ${REDIS_URL} is unreachable (${problem})\n`);
    return false;
  } finally {
    redis.disconnect();
  }
}

/** A REDIS_PREFIX no other test uses. */
export function uniquePrefix(): string {
  return `test-${randomBytes(4).toString('hex')}:`;
}

/** REDIS_URL through `proxy` (so a test can cut it). */
export function redisUrlVia(proxy: TcpProxy): string {
  const url = new URL(REDIS_URL);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  return url.toString();
}

/** Where `startTcpProxy` should forward to reach REDIS_URL. */
export function redisTarget(): { host: string; port: number } {
  const url = new URL(REDIS_URL);
  return { host: url.hostname, port: Number(url.port || 6379) };
}

/** Deletes every key under `prefix`. */
export async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}
