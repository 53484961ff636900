import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient as PostgresPrismaClient } from '../generated/prisma-postgres/client.js';
import { PrismaClient as SqlitePrismaClient } from '../generated/prisma-sqlite/client.js';

/**
 * The Prisma client the services use. Prisma generates one client per provider (a client refuses
 * an adapter of another provider), from the same models, so their query APIs are identical; the
 * SQLite client's type stands for both.
 */
export type Db = SqlitePrismaClient;

export type DatabaseProvider = 'sqlite' | 'postgresql';

export function databaseProvider(url: string): DatabaseProvider {
  return url.startsWith('file:') ? 'sqlite' : 'postgresql';
}

/** `file:./data/market.db` → absolute path, relative paths taken from the working directory. */
export function sqliteFilePath(url: string): string {
  return path.resolve(url.slice('file:'.length));
}

export interface PrismaOptions {
  /** Called with every SQL statement Prisma sends (tests count them to prove batching). */
  onQuery?: (sql: string) => void;
}

export function createPrismaClient(url: string, options: PrismaOptions = {}): Db {
  const log = options.onQuery ? [{ emit: 'event' as const, level: 'query' as const }] : [];
  let client: Db;
  if (databaseProvider(url) === 'sqlite') {
    const file = sqliteFilePath(url);
    mkdirSync(path.dirname(file), { recursive: true });
    client = new SqlitePrismaClient({ adapter: new PrismaBetterSQLite3({ url: file }), log });
  } else {
    const adapter = new PrismaPg({ connectionString: url });
    client = new PostgresPrismaClient({ adapter, log }) as unknown as Db;
  }
  if (options.onQuery) {
    const onQuery = options.onQuery;
    (client as unknown as { $on(event: 'query', cb: (e: { query: string }) => void): void }).$on('query', (event) =>
      onQuery(event.query),
    );
  }
  return client;
}

/**
 * Per-connection settings, applied once at start. SQLite (one connection through the adapter):
 * WAL journal (set by the migration step) with `synchronous = NORMAL`, SQLite's recommended
 * pairing: a commit no longer waits for an fsync, a crash of the process loses nothing, and only
 * a power cut can lose the last commits (never corrupts the file).
 */
export async function prepareDatabase(db: Db, url: string): Promise<void> {
  if (databaseProvider(url) !== 'sqlite') return;
  await db.$queryRawUnsafe('PRAGMA synchronous = NORMAL');
  await db.$queryRawUnsafe('PRAGMA busy_timeout = 5000');
}
