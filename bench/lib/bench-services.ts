/**
 * The shared services a benchmark runs against, each left as found: a PostgreSQL database of its
 * own (created on the admin connection, migrated, dropped after), and Redis keys under a prefix of
 * its own (deleted after), with Redis's own counters (INFO) to tell what a run cost it.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import pg from 'pg';
import { migrateDatabase } from '../../src/db/migrate.js';

/** The admin connection: PostgreSQL on 127.0.0.1, trust auth, database `test`. */
export const ADMIN_POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_POSTGRES_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** A fresh, migrated PostgreSQL database `<prefix>_<random>`. */
export async function createBenchDatabase(prefix: string): Promise<BenchDatabase> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(ADMIN_POSTGRES_URL);
  url.pathname = `/${name}`;
  const database = {
    name,
    url: url.toString(),
    drop: () => admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => {}),
  };
  try {
    await migrateDatabase(database.url);
  } catch (error) {
    await database.drop().catch(() => {});
    throw error;
  }
  return database;
}

/** A unique REDIS_PREFIX. */
export function uniqueRedisPrefix(name: string): string {
  return `bench-${name}-${randomBytes(4).toString('hex')}:`;
}

/** Deletes every key under `prefix` (the change log, its counter, the events, the leader lease…). */
export async function deleteRedisPrefix(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** Redis's server-wide counters: calls per command, and read events on client sockets. */
export interface RedisCounters {
  calls: Record<string, number>;
  /** `total_reads_processed`: one per batch of requests read from a client (≈ round trips). */
  reads: number;
  at: number;
}

export async function redisCounters(redis: Redis): Promise<RedisCounters> {
  const [commandstats, stats] = await Promise.all([redis.info('commandstats'), redis.info('stats')]);
  const calls: Record<string, number> = {};
  for (const match of commandstats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls[match[1] as string] = Number(match[2]);
  }
  const reads = Number(/^total_reads_processed:(\d+)/m.exec(stats)?.[1] ?? Number.NaN);
  return { calls, reads, at: performance.now() };
}

/** Calls per command between two samples (the sampling connection's own INFO calls left out). */
export function counterDelta(before: RedisCounters, after: RedisCounters) {
  const calls: Record<string, number> = {};
  for (const [command, count] of Object.entries(after.calls)) {
    const delta = count - (before.calls[command] ?? 0);
    if (delta > 0 && command !== 'info') calls[command] = delta;
  }
  // Two INFO requests of the sampling connection are read between the samples.
  return { calls, reads: after.reads - before.reads - 2, seconds: (after.at - before.at) / 1000 };
}

/** Local TCP ports of the connections to `port` that the processes `pids` hold (Linux `ss`). */
function portsOf(pids: number[], port: number): Set<number> {
  const ports = new Set<number>();
  try {
    const out = execFileSync('ss', ['-Htnp', 'state', 'established', `( dport = :${port} )`], { encoding: 'utf8' });
    for (const line of out.split('\n')) {
      const pid = Number(/pid=(\d+)/.exec(line)?.[1]);
      const local = /\S+:(\d+)\s+\S+:\d+/.exec(line);
      if (pids.includes(pid) && local) ports.add(Number(local[1]));
    }
  } catch {
    // no `ss`: every client counts as foreign
  }
  return ports;
}

/**
 * Redis clients other than the processes `pids` and `redis` itself that sent anything within the
 * last `seconds`: their commands are in the server-wide counters too.
 */
export async function foreignActiveClients(redis: Redis, pids: number[], seconds: number): Promise<string[]> {
  const ours = portsOf(pids, Number(new URL(BENCH_REDIS_URL).port || 6379));
  const own = (await redis.client('ID')) as number;
  const list = (await redis.client('LIST')) as string;
  const active: string[] = [];
  for (const line of list.split('\n')) {
    const field = (key: string) => new RegExp(`(?:^| )${key}=(\\S*)`).exec(line)?.[1];
    const port = Number(field('addr')?.split(':').pop());
    if (!line.trim() || Number(field('id')) === own || ours.has(port)) continue;
    if (Number(field('idle')) < seconds) active.push(`${field('name') || 'unnamed'} (${field('cmd')})`);
  }
  return active;
}
