import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { migrateDatabase } from '../../src/db/migrate.js';

export type DatabaseKind = 'sqlite' | 'postgresql';

export const POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
export const REQUIRE_SERVICES = process.env.REQUIRE_SERVICES === '1';

export async function checkPostgres(): Promise<string | null> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * The databases this run tests against. PostgreSQL is skipped, loudly, when unreachable —
 * unless REQUIRE_SERVICES=1 (CI), where that is a failure.
 */
export async function availableDatabases(): Promise<DatabaseKind[]> {
  const problem = await checkPostgres();
  if (problem === null) return ['sqlite', 'postgresql'];
  const message = `PostgreSQL at ${POSTGRES_URL} is unreachable (${problem})`;
  if (REQUIRE_SERVICES) throw new Error(`${message}; REQUIRE_SERVICES=1 forbids skipping`);
  console.warn(`\n!!! SKIPPING PostgreSQL tests: ${message}\n`);
  return ['sqlite'];
}

export interface TestDatabase {
  kind: DatabaseKind;
  url: string;
  drop(): Promise<void>;
}

/**
 * A fresh, migrated, empty database of its own (a temp SQLite file or a new PostgreSQL database);
 * `migrations` is another root of migrations to apply than the release's (migrateDatabase's root).
 */
export async function createTestDatabase(kind: DatabaseKind, migrations?: string): Promise<TestDatabase> {
  let database: TestDatabase;
  if (kind === 'sqlite') {
    const dir = mkdtempSync(path.join(tmpdir(), 'market-test-'));
    database = {
      kind,
      url: `file:${path.join(dir, 'test.db')}`,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  } else {
    const name = `market_test_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    // Text sorted as most clusters sort it (en_US; the shared server's default is C, which sorts
    // bytewise as SQLite does and hid orders that differ by provider), where ICU is there.
    await admin
      .query(`CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'`)
      .catch(async (error: { code?: string }) => {
        if (error.code !== '0A000' && error.code !== '22023' && error.code !== '42601') throw error;
        // The tests of orders that differ by collation then test nothing new: say so.
        console.warn(`PostgreSQL has no ICU collation (${error.code}): ${name} sorts by the server's default`);
        await admin.query(`CREATE DATABASE ${name}`);
      });
    await admin.end();
    const url = new URL(POSTGRES_URL);
    url.pathname = `/${name}`;
    database = {
      kind,
      url: url.toString(),
      drop: async () => {
        const client = new pg.Client({ connectionString: POSTGRES_URL });
        await client.connect();
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await client.end();
      },
    };
  }
  await migrateDatabase(database.url, migrations);
  return database;
}

/** Runs `work` on a client of its own connected to `url` (the test server's administrative database by default), closed after. */
export async function withPostgresClient<T>(work: (client: pg.Client) => Promise<T>, url = POSTGRES_URL): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
