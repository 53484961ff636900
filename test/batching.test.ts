import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import { AppsWithTasksQuery } from './support/operations.js';
import { dataOf, execute, startTestServer, type TestServer } from './support/server.js';

const databases = await availableDatabases();

/** Adds `count` more installed apps, each with two finished tasks, for user `load`. */
async function addApps(server: TestServer, count: number, offset: number) {
  for (let i = offset; i < offset + count; i += 1) {
    const appName = `load-app-${i}`;
    await server.app.db.appState.create({
      data: {
        userId: 'load',
        sourceId: 'market.olares',
        appName,
        state: 'running',
        installedVersion: '1.0.0',
        eventTime: new Date(),
      },
    });
    for (const status of ['COMPLETED', 'FAILED']) {
      await server.app.db.task.create({
        data: {
          taskId: `${appName}-${status}`,
          type: 'INSTALL',
          status,
          userId: 'load',
          sourceId: 'market.olares',
          appName,
          metadata: {},
        },
      });
    }
  }
}

describe.each(databases)('nested fields are batched on %s (no N+1)', (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    // No demo data and no background polling: every statement recorded is the query's own.
    server = await startTestServer(kind, {
      recordQueries: true,
      env: {
        DEMO_DATA: '0',
        BUNDLED_CATALOGUE_FILE: 'off',
        TASK_POLL_INTERVAL_MS: '3600000',
        OUTBOX_POLL_INTERVAL_MS: '3600000',
      },
    });
  });
  afterAll(() => server?.stop());

  async function statementsFor(first: number) {
    server.queries.length = 0;
    const { apps } = dataOf(await execute(server, AppsWithTasksQuery, { first }));
    // Not the catalogue Syncer's background reads (its due check, its `syncer` component) nor the
    // outbox worker's claims: this query selects nothing of the catalogue or the outbox.
    const statements = server.queries.filter((sql) => !/"(MarketSource|CatalogApp|OutboxMessage)"/.test(sql));
    return { statements, apps: apps.edges };
  }

  test('apps { activeTask { app } tasks { app } } costs the same statements for 5 apps as for 40', async () => {
    await addApps(server, 40, 0);
    const small = await statementsFor(5);
    const large = await statementsFor(40);
    expect(small.apps).toHaveLength(5);
    expect(large.apps).toHaveLength(40);
    // every app's nested lists really were resolved
    expect(large.apps.every((edge) => edge.node.tasks.totalCount === 2 && edge.node.tasks.edges.length === 2)).toBe(
      true,
    );
    expect(
      large.apps.every((edge) => edge.node.tasks.edges.every((task) => task.node.app?.appName === edge.node.appName)),
    ).toBe(true);
    expect(large.statements.length).toBe(small.statements.length);
    // apps page, active tasks, task lists, the tasks' apps, their active tasks (for stage): a handful, not 40×
    expect(large.statements.length).toBeLessThanOrEqual(6);
  });
});
