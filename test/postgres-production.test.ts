import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterEach, describe, expect, test } from 'vitest';
import { buildApp } from '../src/app/build-app.js';
import { migrateDatabase } from '../src/db/migrate.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logger.js';
import { availableDatabases, POSTGRES_URL, withPostgresClient } from './support/databases.js';
import { killLeftovers, listeningUrl, SERVER_COMMAND, serverEnv, startProcess } from './support/process.js';
import { installThroughApi, waitFor } from './support/server.js';
import { rawRequest } from './support/untyped.js';

/**
 * PostgreSQL as production deployments set it up: an owner role that migrates, a role with DML
 * only that runs the server, and the limits a database or role can set (connections, timeouts).
 */

const databases = await availableDatabases();
const MIGRATIONS = fileURLToPath(new URL('../prisma/migrations', import.meta.url));

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killLeftovers();
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

function urlAs(role: string, database: string): string {
  const url = new URL(POSTGRES_URL);
  url.username = role;
  url.password = '';
  url.pathname = `/${database}`;
  return url.toString();
}

/** The database's name in a URL. */
const nameOf = (url: string) => new URL(url).pathname.slice(1);

interface RolesDatabase {
  /** The owner role's URL: it owns the database (so the public schema), migrates, and grants. */
  ownerUrl: string;
  /** The run-time role's URL: DML on the tables and sequences, no CREATE anywhere. */
  appUrl: string;
  owner: string;
  app: string;
}

/**
 * A fresh, empty database owned by a new owner role, with a new DML-only role beside it; the
 * database and both roles are dropped after the test. `migrate` (as the owner) then grants.
 */
async function rolesDatabase(): Promise<RolesDatabase> {
  const suffix = randomBytes(4).toString('hex');
  const [name, owner, app] = [`market_roles_${suffix}`, `market_owner_${suffix}`, `market_app_${suffix}`];
  await withPostgresClient(async (client) => {
    await client.query(`CREATE ROLE ${owner} LOGIN`);
    await client.query(`CREATE ROLE ${app} LOGIN`);
    await client.query(`CREATE DATABASE ${name} OWNER ${owner}`);
  });
  disposers.push(() =>
    withPostgresClient(async (client) => {
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.query(`DROP ROLE IF EXISTS ${app}`);
      await client.query(`DROP ROLE IF EXISTS ${owner}`);
    }),
  );
  const ownerUrl = urlAs(owner, name);
  // PostgreSQL 15 gives PUBLIC no CREATE on the public schema; older servers did: take it back.
  await withPostgresClient((client) => client.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC'), ownerUrl);
  return { ownerUrl, appUrl: urlAs(app, name), owner, app };
}

/** The grants of the README's "PostgreSQL in production", run by the owner after its migration. */
async function grantDml({ ownerUrl, app }: RolesDatabase): Promise<void> {
  await withPostgresClient(async (client) => {
    await client.query(`GRANT USAGE ON SCHEMA public TO ${app}`);
    await client.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${app}`);
    await client.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${app}`);
  }, ownerUrl);
}

/** A copy of the release's migrations with one more, `sql`, still to apply. */
function migrationsWithOneMore(sql: string): string {
  const root = mkdtempSync(path.join(tmpdir(), 'migrations-'));
  disposers.push(async () => rmSync(root, { recursive: true, force: true }));
  cpSync(MIGRATIONS, root, { recursive: true });
  const extra = path.join(root, 'postgresql', '9999_test_extra');
  cpSync(path.join(root, 'postgresql', '0001_init'), extra, { recursive: true });
  writeFileSync(path.join(extra, 'migration.sql'), sql);
  return root;
}

describe.runIf(databases.includes('postgresql'))('a least-privilege role at run time', () => {
  test('with every migration applied by the owner, a DML-only role starts the server, which answers and installs', async () => {
    const roles = await rolesDatabase();
    await migrateDatabase(roles.ownerUrl);
    await grantDml(roles);
    const server = startProcess(SERVER_COMMAND, serverEnv(roles.appUrl, { SIMULATED_STEP_MS: '10' }));
    const graphql = { graphqlUrl: (await listeningUrl(server)).toString() };
    const apps = await rawRequest(graphql, { query: '{ apps(first: 5) { totalCount } }' });
    expect(apps.body, apps.text).toEqual({ data: { apps: { totalCount: 0 } } });
    const taskId = await installThroughApi(graphql, { appName: 'n8n', version: '1.70.1' });
    await waitFor(async () => {
      const task = await rawRequest(graphql, { query: `{ task(taskId: "${taskId}") { status } }` });
      return (task.body?.data?.task as { status: string } | null)?.status === 'COMPLETED' ? true : undefined;
    }, 'the install to complete');
    expect(server.logs.filter((line) => Number(line.level) >= 50)).toEqual([]);
    server.child.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
  }, 60_000);

  test('a migration still pending is refused before any DDL: which migration, which privilege, who must run it', async () => {
    const roles = await rolesDatabase();
    await migrateDatabase(roles.ownerUrl);
    await grantDml(roles);
    const root = migrationsWithOneMore('ALTER TABLE "Task" ADD COLUMN "probe" INTEGER;');
    await expect(migrateDatabase(roles.appUrl, root)).rejects.toThrow(
      `migration 9999_test_extra is pending, and the role "${roles.app}" has no CREATE privilege on the schema public: an owner role (one that may CREATE in it and owns the tables) must run "npm run db:migrate" first; then this role can run the server`,
    );
    // CREATE on the schema, but not the tables' owner: PostgreSQL's own reason, with the same advice.
    await withPostgresClient((client) => client.query(`GRANT CREATE ON SCHEMA public TO ${roles.app}`), roles.ownerUrl);
    await expect(migrateDatabase(roles.appUrl, root)).rejects.toThrow(
      'migration 9999_test_extra needs a privilege the role lacks (must be owner of table Task): an owner role (one that may CREATE in the schema and owns the tables) must run "npm run db:migrate"',
    );
  });
});

/** `app.start()`'s failure on `url`, the app stopped after. */
async function startFailure(url: string): Promise<string> {
  const app = buildApp(loadConfig({ DATABASE_URL: url, PORT: '0', DEMO_DATA: '0' }), {
    logger: createLogger('silent'),
  });
  try {
    await app.start();
    return 'started';
  } catch (error) {
    return (error as Error).message;
  } finally {
    await app.stop();
  }
}

describe.runIf(databases.includes('postgresql'))('a database not ready at start', () => {
  test('its tables missing: the reason, then the advice to migrate', async () => {
    const roles = await rolesDatabase();
    expect(await startFailure(roles.ownerUrl)).toBe(
      'The database is not ready (The table `public.MarketSource` does not exist in the current database.). Run "npm run db:migrate" first.',
    );
  });

  test('a statement cancelled by the statement_timeout: the reason, and no advice to migrate', async () => {
    const roles = await rolesDatabase();
    await migrateDatabase(roles.ownerUrl);
    await withPostgresClient((client) =>
      client.query(`ALTER DATABASE ${nameOf(roles.ownerUrl)} SET statement_timeout = '200ms'`),
    );
    // The table the start reads first, locked by another session: the start's read waits, and is cancelled.
    const holder = new pg.Client({ connectionString: roles.ownerUrl });
    await holder.connect();
    disposers.push(() => holder.end());
    await holder.query('SET statement_timeout = 0');
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE "MarketSource" IN ACCESS EXCLUSIVE MODE');
    expect(await startFailure(roles.ownerUrl)).toBe(
      'The database is not ready (canceling statement due to statement timeout).',
    );
  });
});

describe.runIf(databases.includes('postgresql'))('connections refused for want of a slot at start', () => {
  const ADVICE =
    "PostgreSQL's max_connections and the CONNECTION LIMIT of the role and of the database must allow every instance's pool (instances × DATABASE_POOL_SIZE) plus the migrations and some headroom, and a start opens several connections at once: raise the limit, or run fewer instances or smaller pools.";

  test.each(['role', 'database'] as const)(
    'a CONNECTION LIMIT on the %s: the start fails in one line naming the step, the database and what to change',
    async (limited) => {
      const roles = await rolesDatabase();
      await migrateDatabase(roles.ownerUrl);
      const name = nameOf(roles.ownerUrl);
      // Not a superuser: PostgreSQL exempts superusers from both limits.
      await withPostgresClient((client) =>
        client.query(`ALTER ${limited} ${limited === 'role' ? roles.owner : name} CONNECTION LIMIT 0`),
      );
      const config = loadConfig({ DATABASE_URL: roles.ownerUrl, PORT: '0', DEMO_DATA: '0' });
      const app = buildApp(config, { logger: createLogger('silent') });
      const refused = `too many connections for ${limited} "${limited === 'role' ? roles.owner : name}"`;
      await expect(app.start()).rejects.toThrow(
        `Could not start: PostgreSQL at 127.0.0.1:5432/${name} refused a connection during opening the database (${refused}). ${ADVICE}`,
      );
      await app.stop();
    },
  );

  test('the server process: the first step that connects (the migrations) says the same, exit code 1', async () => {
    const roles = await rolesDatabase();
    await migrateDatabase(roles.ownerUrl);
    const name = nameOf(roles.ownerUrl);
    await withPostgresClient((client) => client.query(`ALTER DATABASE ${name} CONNECTION LIMIT 0`));
    const server = startProcess(SERVER_COMMAND, serverEnv(roles.ownerUrl));
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(server.output.at(-1)).toBe(
      `Could not migrate the database (PostgreSQL at 127.0.0.1:5432/${name}): could not connect: too many connections for database "${name}". ${ADVICE}`,
    );
  }, 60_000);
});

describe.runIf(databases.includes('postgresql'))('a statement_timeout or lock_timeout set on the database', () => {
  /** A fresh migrated database of the owner role whose database-level setting `name` is `value`. */
  async function databaseWith(setting: string, value: string): Promise<RolesDatabase & { name: string }> {
    const roles = await rolesDatabase();
    await migrateDatabase(roles.ownerUrl);
    const name = nameOf(roles.ownerUrl);
    await withPostgresClient((client) => client.query(`ALTER DATABASE ${name} SET ${setting} = '${value}'`));
    return { ...roles, name };
  }

  async function heldSession(url: string): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    disposers.push(() => client.end());
    await client.query('SET statement_timeout = 0; SET lock_timeout = 0');
    return client;
  }

  test('a migration longer than the statement_timeout is not cancelled', async () => {
    const roles = await databaseWith('statement_timeout', '100ms');
    const root = migrationsWithOneMore('SELECT pg_sleep(0.5);');
    expect((await migrateDatabase(roles.ownerUrl, root)).applied).toEqual(['9999_test_extra']);
  });

  test('the migration waits for another instance migrating past the lock_timeout, then applies', async () => {
    const roles = await databaseWith('lock_timeout', '100ms');
    const root = migrationsWithOneMore('CREATE TABLE "LockProbe" ("id" INTEGER PRIMARY KEY);');
    // Another instance's migration: the same advisory lock, held.
    const other = await heldSession(roles.ownerUrl);
    await other.query('BEGIN');
    await other.query('SELECT pg_advisory_xact_lock(727063311)');
    let settled = false;
    const migrating = migrateDatabase(roles.ownerUrl, root).finally(() => {
      settled = true;
    });
    migrating.catch(() => {});
    // Waiting on the lock for three times the lock_timeout, as PostgreSQL itself sees it.
    await waitFor(async () => {
      if (settled) return true;
      // Not on `other`: inside its transaction pg_stat_activity stays the snapshot first read.
      const { rows } = await withPostgresClient((client) =>
        client.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'advisory'
          AND now() - state_change > interval '300 milliseconds'`,
          [roles.name],
        ),
      );
      return rows.length ? true : undefined;
    }, 'the migration to wait on the advisory lock');
    await other.query('COMMIT');
    expect((await migrating).applied).toEqual(['9999_test_extra']);
  });

  test('a request whose statement the statement_timeout cancels answers UNAVAILABLE (503), as a query timeout does', async () => {
    const roles = await databaseWith('statement_timeout', '200ms');
    const server = startProcess(SERVER_COMMAND, serverEnv(roles.ownerUrl));
    const graphql = { graphqlUrl: (await listeningUrl(server)).toString() };
    const holder = await heldSession(roles.ownerUrl);
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE "AppState", "MarketSource" IN ACCESS EXCLUSIVE MODE');
    // A hand-written statement (driver-sql.ts) and a Prisma query: their errors differ in shape.
    for (const query of ['{ apps(first: 5) { totalCount } }', '{ marketSources { sourceId } }']) {
      const answer = await rawRequest(graphql, { query });
      expect(answer.status, answer.text).toBe(503);
      expect(answer.body?.errors?.map((error) => [error.message, error.extensions?.code])).toEqual([
        ['The database is unavailable; retry shortly.', 'UNAVAILABLE'],
      ]);
    }
    await holder.query('ROLLBACK');
    const back = await rawRequest(graphql, { query: '{ apps(first: 5) { totalCount } }' });
    expect(back.status, back.text).toBe(200);
  }, 60_000);
});
