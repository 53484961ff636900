import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import { driverSqlOf } from '../src/db/driver-sql.js';
import { migrateDatabase } from '../src/db/migrate.js';
import {
  availableDatabases,
  createTestDatabase,
  POSTGRES_URL,
  type TestDatabase,
  withPostgresClient,
} from './support/databases.js';
import { killLeftovers, SERVER_COMMAND, serverEnv, startProcess } from './support/process.js';
import { startTestServer, waitFor } from './support/server.js';
import { rawRequest } from './support/untyped.js';

/**
 * PostgreSQL sessions as a DBA may configure them outside DATABASE_URL (ALTER ROLE … SET, ALTER
 * DATABASE … SET, PGOPTIONS): settings the server's statements depend on.
 */

const databases = await availableDatabases();

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killLeftovers();
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

interface OwnDatabase {
  name: string;
  role: string;
  /** The role's URL on the database it owns. */
  url: string;
}

/** A fresh empty database owned by a new login role, both dropped after the test. */
async function ownDatabase(): Promise<OwnDatabase> {
  const suffix = randomBytes(4).toString('hex');
  const [name, role] = [`market_session_${suffix}`, `market_session_${suffix}`];
  await withPostgresClient(async (client) => {
    await client.query(`CREATE ROLE ${role} LOGIN`);
    await client.query(`CREATE DATABASE ${name} OWNER ${role}`);
  });
  disposers.push(() =>
    withPostgresClient(async (client) => {
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.query(`DROP ROLE IF EXISTS ${role}`);
    }),
  );
  const url = new URL(POSTGRES_URL);
  url.username = role;
  url.password = '';
  url.pathname = `/${name}`;
  return { name, role, url: url.toString() };
}

/** The tables of `schema` in the database at `url`. */
async function tablesIn(url: string, schema: string): Promise<string[]> {
  const { rows } = await withPostgresClient(
    (client) =>
      client.query<{ name: string }>('SELECT tablename AS name FROM pg_tables WHERE schemaname = $1', [schema]),
    url,
  );
  return rows.map((row) => row.name);
}

const RESET =
  'A search_path set outside DATABASE_URL does this: ALTER ROLE … SET search_path, ALTER DATABASE … SET search_path, or PGOPTIONS="-c search_path=…" in the environment; reset it (ALTER ROLE … RESET search_path, ALTER DATABASE … RESET search_path, unset PGOPTIONS), and give each deployment a database of its own.';

describe.runIf(databases.includes('postgresql'))('a search_path set outside DATABASE_URL', () => {
  test('a schema named after the role (first on the default search_path): refused before any DDL, naming it and the fix', async () => {
    const own = await ownDatabase();
    await withPostgresClient((client) => client.query(`CREATE SCHEMA ${own.role} AUTHORIZATION ${own.role}`), own.url);
    await expect(migrateDatabase(own.url)).rejects.toThrow(
      `the server's tables must be in the schema public, but this session's unqualified statements land in the schema "${own.role}" (first on the search_path "$user", public). The schema is named after the role "${own.role}", which PostgreSQL's default search_path ("$user", public) picks first: drop or rename it, or give the role a search_path of "public" (ALTER ROLE ${own.role} SET search_path = public), and give each deployment a database of its own.`,
    );
    expect(await tablesIn(own.url, own.role)).toEqual([]);
    expect(await tablesIn(own.url, 'public')).toEqual([]);
  });

  test('ALTER DATABASE SET search_path: the server process stops in one line, exit code 1, nothing created', async () => {
    const own = await ownDatabase();
    await withPostgresClient(async (client) => {
      await client.query('CREATE SCHEMA market');
      await client.query(`ALTER DATABASE ${own.name} SET search_path = market, public`);
    }, own.url);
    const server = startProcess(SERVER_COMMAND, serverEnv(own.url));
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(server.output.at(-1)).toBe(
      `Could not migrate the database (PostgreSQL at 127.0.0.1:5432/${own.name}): the server's tables must be in the schema public, but this session's unqualified statements land in the schema "market" (first on the search_path market, public). ${RESET}`,
    );
    expect(await tablesIn(own.url, 'market')).toEqual([]);
  }, 60_000);

  test('PGOPTIONS in the environment naming a search_path: refused too', async () => {
    const own = await ownDatabase();
    await withPostgresClient((client) => client.query('CREATE SCHEMA market'), own.url);
    const server = startProcess(SERVER_COMMAND, serverEnv(own.url, { PGOPTIONS: '-c search_path=market' }));
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(server.output.at(-1)).toContain(
      'but this session\'s unqualified statements land in the schema "market" (first on the search_path market).',
    );
    expect(await tablesIn(own.url, 'market')).toEqual([]);
  }, 60_000);

  test('ALTER ROLE SET search_path to a schema that does not exist: no schema, refused', async () => {
    const own = await ownDatabase();
    await withPostgresClient((client) => client.query(`ALTER ROLE ${own.role} SET search_path = nowhere`));
    await expect(migrateDatabase(own.url)).rejects.toThrow(
      "this session's unqualified statements land in no schema: the search_path (nowhere) names none that exists.",
    );
  });
});

/** A fresh migrated test database (the suite's helper) whose sessions get `setting` = `value` from ALTER DATABASE. */
async function migratedWith(setting: string, value: string): Promise<TestDatabase> {
  const database = await createTestDatabase('postgresql');
  disposers.push(() => database.drop());
  await withPostgresClient((client) =>
    client.query(`ALTER DATABASE ${new URL(database.url).pathname.slice(1)} SET ${setting} = '${value}'`),
  );
  return database;
}

describe.runIf(databases.includes('postgresql'))('default_transaction_isolation = serializable on the database', () => {
  test('the transactions of Prisma and of the hand-written statements say READ COMMITTED', async () => {
    const database = await migratedWith('default_transaction_isolation', 'serializable');
    const db = createPrismaClient(database.url);
    disposers.push(() => db.$disconnect());
    const isolation = 'SELECT current_setting($1) AS level';
    type Level = { level: string }[];
    expect(await db.$queryRawUnsafe<Level>(isolation, 'transaction_isolation')).toEqual([{ level: 'serializable' }]);
    const prisma = await db.$transaction((tx) => tx.$queryRawUnsafe<Level>(isolation, 'transaction_isolation'));
    const driver = await driverSqlOf(db).$transaction(
      (tx) => tx.$queryRaw<Level>`SELECT current_setting('transaction_isolation') AS level`,
    );
    expect([prisma, driver]).toEqual([[{ level: 'read committed' }], [{ level: 'read committed' }]]);
  });

  test('the server process refuses to start, naming the setting and the fix', async () => {
    const database = await migratedWith('default_transaction_isolation', 'serializable');
    const server = startProcess(SERVER_COMMAND, serverEnv(database.url));
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(server.output.at(-1)).toBe(
      `Could not migrate the database (PostgreSQL at 127.0.0.1:5432/${new URL(database.url).pathname.slice(1)}): the server's statements are written for the isolation level read committed, but this session's default_transaction_isolation is serializable, at which a statement outside a transaction runs (concurrent writes fail with "could not serialize access"). A default_transaction_isolation set outside DATABASE_URL does this: ALTER ROLE … SET default_transaction_isolation, ALTER DATABASE … SET default_transaction_isolation, or PGOPTIONS="-c default_transaction_isolation='serializable'" in the environment; reset it (ALTER ROLE … RESET default_transaction_isolation, ALTER DATABASE … RESET default_transaction_isolation, unset PGOPTIONS).`,
    );
  }, 60_000);

  // The app started in-process, past the migration step's check: as after a DBA's change while it runs.
  test('on sessions that are serializable all the same, 25 installs at once all succeed', async () => {
    const database = await migratedWith('default_transaction_isolation', 'serializable');
    const server = await startTestServer('postgresql', { database, env: { DEMO_DATA: '0' } });
    disposers.push(() => server.stop());
    const catalog = await rawRequest(server, {
      query: '{ catalog(sourceId: "market.olares", paid: false, first: 50) { edges { node { name versions } } } }',
    });
    type Catalog = { catalog: { edges: { node: { name: string; versions: string[] } }[] } };
    const listed = (catalog.body?.data as Catalog | undefined)?.catalog.edges ?? [];
    const apps = listed.map((edge) => edge.node).slice(0, 25);
    expect(apps.length).toBe(25);
    const answers = await Promise.all(
      apps.map((app) =>
        rawRequest(server, {
          query: `mutation { installApp(input: { sourceId: "market.olares", appName: "${app.name}", version: "${app.versions[0]}" }) { __typename ... on Error { code message } } }`,
        }),
      ),
    );
    expect(answers.map((answer) => answer.body?.data ?? answer.body?.errors?.[0]?.message)).toEqual(
      apps.map(() => ({ installApp: { __typename: 'InstallAppSuccess' } })),
    );
  }, 60_000);
});

describe.runIf(databases.includes('postgresql'))('a DateStyle set on the database', () => {
  test.each(['SQL, DMY', 'German'])(
    'DateStyle %s: the server process refuses to start, naming the setting and the fix',
    async (style) => {
      const database = await migratedWith('DateStyle', style);
      const server = startProcess(SERVER_COMMAND, serverEnv(database.url));
      expect(await server.exited).toEqual({ code: 1, signal: null });
      const shown = style === 'German' ? 'German, DMY' : style;
      expect(server.output.at(-1)).toBe(
        `Could not migrate the database (PostgreSQL at 127.0.0.1:5432/${new URL(database.url).pathname.slice(1)}): the server reads timestamps in PostgreSQL's ISO output format, but this session's DateStyle is ${shown}. A DateStyle set outside DATABASE_URL does this: ALTER ROLE … SET DateStyle, ALTER DATABASE … SET DateStyle, or PGOPTIONS="-c DateStyle='SQL, DMY'" in the environment; reset it (ALTER ROLE … RESET DateStyle, ALTER DATABASE … RESET DateStyle, unset PGOPTIONS), or set it to ISO with the order wanted ('ISO, DMY').`,
      );
    },
    60_000,
  );

  test('DateStyle ISO, DMY: migrated and read as ever', async () => {
    const database = await migratedWith('DateStyle', 'ISO, DMY');
    expect((await migrateDatabase(database.url)).applied).toEqual([]);
  });
});

/** Ends the server's connections to `database`, so that the next ones get its new settings. */
async function terminateSessionsOf(database: TestDatabase): Promise<void> {
  await withPostgresClient((client) =>
    client.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [new URL(database.url).pathname.slice(1)],
    ),
  );
}

describe.runIf(databases.includes('postgresql'))('a database that turns read-only (a failover onto a standby)', () => {
  const READ_ONLY = 'the database accepts no writes (read-only: a standby, or default_transaction_read_only)';
  const ADD_SOURCE = `mutation { addMarketSource(input: { sourceId: "after-failover", title: "After",
    baseUrl: "https://after.example/" }) { __typename } }`;

  test('mutations answer UNAVAILABLE (503) and /readiness says not ready, until it takes writes again', async () => {
    const database = await createTestDatabase('postgresql');
    disposers.push(() => database.drop());
    const server = await startTestServer('postgresql', { database, env: { DEMO_DATA: '0' } });
    disposers.push(() => server.stop());
    const name = new URL(database.url).pathname.slice(1);
    await withPostgresClient((client) => client.query(`ALTER DATABASE ${name} SET default_transaction_read_only = on`));
    await terminateSessionsOf(database);
    const readiness = async () => {
      const response = await fetch(`${server.url}/readiness`);
      return { status: response.status, body: await response.json() };
    };
    // The probe's connection was ended too: its next one is read-only.
    await waitFor(async () => ((await readiness()).body.error === READ_ONLY ? true : undefined), 'not ready');
    expect(await readiness()).toEqual({ status: 503, body: { status: 'not ready', error: READ_ONLY } });
    // Reads go on (on fresh connections: the pool dropped the ended ones), writes are refused (25006).
    await waitFor(async () => {
      const answer = await rawRequest(server, { query: '{ marketSources { sourceId } }' });
      return answer.status === 200 ? true : undefined;
    }, 'a read to succeed');
    const logged = server.logs.length;
    for (let attempt = 0; attempt < 3; attempt++) {
      const answer = await rawRequest(server, { query: ADD_SOURCE });
      expect(answer.status, answer.text).toBe(503);
      expect(answer.body?.errors?.map((error) => [error.message, error.extensions?.code])).toEqual([
        ['The database is unavailable; retry shortly.', 'UNAVAILABLE'],
      ]);
    }
    expect(server.logs.slice(logged).filter((line) => /unexpected error in a GraphQL operation/.test(line))).toEqual(
      [],
    );

    await withPostgresClient((client) => client.query(`ALTER DATABASE ${name} RESET default_transaction_read_only`));
    await terminateSessionsOf(database);
    await waitFor(async () => ((await readiness()).status === 200 ? true : undefined), 'ready again');
    await waitFor(async () => {
      const answer = await rawRequest(server, { query: ADD_SOURCE });
      return answer.status === 200 ? answer.body?.data : undefined;
    }, 'the write to succeed');
  }, 60_000);

  test('the server process on a migrated read-only database: refused at the migration step, naming the cause', async () => {
    const database = await createTestDatabase('postgresql');
    disposers.push(() => database.drop());
    const name = new URL(database.url).pathname.slice(1);
    await withPostgresClient((client) => client.query(`ALTER DATABASE ${name} SET default_transaction_read_only = on`));
    const server = startProcess(SERVER_COMMAND, serverEnv(database.url));
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(server.output.at(-1)).toBe(
      `Could not migrate the database (PostgreSQL at 127.0.0.1:5432/${name}): ${READ_ONLY}: the server writes at start and in every mutation. Point DATABASE_URL at the primary (after a failover: the new one), or reset default_transaction_read_only (ALTER DATABASE … RESET default_transaction_read_only, ALTER ROLE … RESET default_transaction_read_only, unset PGOPTIONS).`,
    );
  }, 60_000);
});
