import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { HAVE_PGBOUNCER, PGBOUNCER, type PgBouncer, startPgBouncer } from './support/pgbouncer.js';
import { installThroughApi, startTestServer, type TestServer, waitFor } from './support/server.js';
import { rawRequest } from './support/untyped.js';

/**
 * The server behind PgBouncer, as production deployments run it. In transaction pooling mode each
 * transaction (each statement outside one) may run on another server connection, so nothing may
 * rely on what a connection kept from before, such as a named prepared statement: DATABASE_URL says
 * so with Prisma's switch `?pgbouncer=true`. Session mode needs nothing.
 */

const databases = await availableDatabases();
if (!HAVE_PGBOUNCER) {
  // Not every machine has PgBouncer installed (apt install pgbouncer): a skip, never a failure.
  console.warn(`\n!!! SKIPPING the PgBouncer tests: no ${PGBOUNCER} (set PGBOUNCER_BINARY to another path)\n`);
}

const APPS = '{ apps(first: 5) { totalCount } }';
const PREPARED_STATEMENT_ERROR = /prepared statement/;

/** Transaction mode needs Prisma's switch; session mode, where a client keeps its server connection, does not. */
const MODES = [
  ['transaction', 'with pgbouncer=true', { pgbouncer: 'true' }],
  ['session', 'without pgbouncer=true', {}],
] as const;

describe.runIf(HAVE_PGBOUNCER && databases.includes('postgresql')).each(MODES)(
  'PgBouncer in %s mode',
  (mode, flag, parameters) => {
    let bouncer: PgBouncer;
    let database: TestDatabase;
    let server: TestServer;
    beforeAll(async () => {
      bouncer = await startPgBouncer(mode, mode === 'transaction' ? 2 : 20);
      database = await createTestDatabase('postgresql');
      const url = bouncer.urlOf(database.url, parameters);
      server = await startTestServer('postgresql', {
        database: { ...database, url },
        env: { DEMO_DATA: '0', SIMULATED_STEP_MS: '10' },
      });
    });
    afterAll(async () => {
      await server?.stop();
      await bouncer?.stop();
      await database?.drop();
    });

    test(`${flag} the server answers queries and completes an install`, async () => {
      for (let i = 0; i < 20; i++) {
        const apps = await rawRequest(server, { query: APPS });
        expect(apps.body, apps.text).toEqual({ data: { apps: { totalCount: expect.any(Number) } } });
      }
      const taskId = await installThroughApi(server, { appName: 'n8n', version: '1.70.1' });
      await waitFor(async () => {
        const task = await rawRequest(server, { query: `{ task(taskId: "${taskId}") { status } }` });
        return (task.body?.data?.task as { status: string } | null)?.status === 'COMPLETED' ? true : undefined;
      }, 'the install to complete');
      const installed = await rawRequest(server, { query: '{ apps(first: 5) { edges { node { appName stage } } } }' });
      expect(installed.body?.data, installed.text).toEqual({
        apps: { edges: [{ node: { appName: 'n8n', stage: 'RUNNING' } }] },
      });
      expect(server.logs.filter((line) => PREPARED_STATEMENT_ERROR.test(line))).toEqual([]);
    });
  },
);
