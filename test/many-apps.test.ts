import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import { driverSqlOf } from '../src/db/driver-sql.js';
import { findActiveTasks, findAppStates, findTasks } from '../src/db/hot-path-sql.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { startTestServer, type TestServer } from './support/server.js';
import { rawRequest } from './support/untyped.js';

/**
 * Fields that read the database for every app of a list, under a list as long as the store: a
 * runtime snapshot of more than about a thousand apps failed ("Unexpected error.") once its apps'
 * keys no longer fitted the bound parameters of one statement (Prisma's 999 on SQLite; 65,535 on
 * PostgreSQL), and so did the stage filter of `apps`. Each is read in chunks (db/chunks.ts).
 */

const databases = await availableDatabases();
const APPS = 1_500;
const SOURCE = 'market.olares';

describe.each(databases)('%s: lists longer than one statement may name', (kind) => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    const db = createPrismaClient(database.url);
    const keys = Array.from({ length: APPS }, (_, index) => ({
      userId: `user${index}`,
      sourceId: SOURCE,
      appName: 'n8n',
    }));
    const at = new Date(Date.now() - 60_000);
    await db.appState.createMany({
      data: keys.map((key) => ({ ...key, state: 'running', installedVersion: '1.0.0', eventTime: at })),
    });
    await db.task.createMany({
      data: keys.map((key, index) => ({
        ...key,
        taskId: `many-${index}`,
        type: 'INSTALL',
        status: 'COMPLETED',
        version: '1.0.0',
        metadata: { cfgType: 'app', envs: [], appId: 'n8n' },
        createdAt: at,
        completedAt: at,
      })),
    });
    await db.$disconnect();
    server = await startTestServer(kind, { database, env: { DEMO_DATA: '0' } });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    await database?.drop();
  });

  test('every app asked for twice in one request (its loader does not cache): each task still once', async () => {
    const apps = '{ apps { tasks(first: 5) { totalCount edges { node { taskId } } } } }';
    const response = await rawRequest(server, {
      query: `{ one: runtimeSnapshot ${apps} two: runtimeSnapshot ${apps} }`,
    });
    expect(response.body?.errors).toBeUndefined();
    const data = response.body?.data as Record<string, { apps: { tasks: { totalCount: number; edges: unknown[] } }[] }>;
    for (const alias of ['one', 'two']) {
      expect(data[alias]?.apps).toHaveLength(APPS);
      for (const app of data[alias]?.apps ?? [])
        expect(app.tasks).toMatchObject({ totalCount: 1, edges: [expect.anything()] });
    }
  });

  test("a runtime snapshot of every app, with each app's tasks, catalogue entry and latest version", async () => {
    const response = await rawRequest(server, {
      query: `{ runtimeSnapshot { apps { userId tasks(first: 1) { totalCount } latestVersion upgradeAvailable catalogApp { name } } } }`,
    });
    expect(response.body?.errors).toBeUndefined();
    const snapshot = response.body?.data?.runtimeSnapshot as { apps: Record<string, unknown>[] } | undefined;
    const apps = snapshot?.apps ?? [];
    expect(apps).toHaveLength(APPS);
    for (const app of apps) {
      expect(app).toMatchObject({ tasks: { totalCount: 1 }, catalogApp: { name: 'n8n' }, upgradeAvailable: true });
    }
  });

  test("the driver's reads by key take more keys than one statement may carry", async () => {
    const sql = driverSqlOf(server.app.db);
    // 70,010 parameters went out as 4,474 on PostgreSQL (a 16-bit count); SQLite allows 32,766.
    const ids = Array.from({ length: 70_010 }, (_, index) => `many-${index}`);
    expect(await findTasks(sql, ids)).toHaveLength(APPS);
    expect(await findActiveTasks(sql, ids)).toEqual([]);
    // An OR per key: SQLite nests no expression deeper than 1,000.
    const keys = Array.from({ length: APPS }, (_, index) => ({
      userId: `user${index}`,
      sourceId: SOURCE,
      appName: 'n8n',
    }));
    expect(await findAppStates(sql, keys)).toHaveLength(APPS);
  });

  test('apps filtered by stage, over every app', async () => {
    const response = await rawRequest(server, {
      query: '{ apps(filter: { stage: [RUNNING] }, first: 1) { totalCount } }',
    });
    expect(response.body).toEqual({ data: { apps: { totalCount: APPS } } });
  });

  test('an app installed and uninstalled over and over: its pages of tasks, each read on its own past what is read at once', async () => {
    const key = { userId: 'admin', sourceId: SOURCE, appName: 'churned' };
    const db = server.app.db;
    await db.appState.create({ data: { ...key, state: 'running', installedVersion: '1.0.0', eventTime: new Date() } });
    const started = Date.now() - 3_600_000;
    await db.task.createMany({
      data: Array.from({ length: 1_200 }, (_, index) => ({
        ...key,
        taskId: `churn-${String(index).padStart(4, '0')}`,
        type: index % 2 ? 'UNINSTALL' : 'INSTALL',
        status: index % 100 === 0 ? 'FAILED' : 'COMPLETED',
        version: '1.0.0',
        metadata: { cfgType: 'app', envs: [], appId: 'n8n' },
        createdAt: new Date(started + index * 1000),
        completedAt: new Date(started + index * 1000),
      })),
    });
    const page = async (args: string) => {
      const response = await rawRequest(server, {
        query: `{ apps(filter: { appName: "churned" }) { edges { node { tasks(${args}) {
          totalCount edges { node { taskId } } pageInfo { hasNextPage hasPreviousPage endCursor } } } } } }`,
      });
      expect(response.body?.errors).toBeUndefined();
      const apps = response.body?.data?.apps as {
        edges: {
          node: {
            tasks: {
              totalCount: number;
              edges: { node: { taskId: string } }[];
              pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; endCursor: string };
            };
          };
        }[];
      };
      const { tasks } = apps.edges[0]?.node ?? { tasks: null };
      return { ...tasks, ids: tasks?.edges.map((edge) => edge.node.taskId) };
    };
    const first = await page('first: 2');
    expect(first).toMatchObject({ totalCount: 1_200, ids: ['churn-1199', 'churn-1198'] });
    expect(first.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    const second = await page(`first: 2, after: "${first.pageInfo?.endCursor}"`);
    expect(second).toMatchObject({ ids: ['churn-1197', 'churn-1196'] });
    expect(await page('last: 1')).toMatchObject({ ids: ['churn-0000'] });
    expect(await page('first: 2, status: [FAILED]')).toMatchObject({
      totalCount: 12,
      ids: ['churn-1100', 'churn-1000'],
    });
  });
});
