import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { type GraphQLObjectType, getNamedType, isObjectType, parse } from 'graphql';
import { describe } from 'vitest';
import { schema } from '../src/schema/index.js';
import { HISTORY_CURSOR } from '../src/services/history-service.js';
import { APP_CURSOR } from '../src/services/installed-app-service.js';
import { encodeCursor, MAX_ROW_ID } from '../src/services/pagination.js';
import { TASK_CURSOR } from '../src/services/task-service.js';
import { availableDatabases } from './support/databases.js';
import {
  AppQuery,
  AppsQuery,
  CatalogQuery,
  HistoryQuery,
  MarketSourcesQuery,
  NodeQuery,
  PaymentStatusQuery,
  PaymentsQuery,
  TaskQuery,
  TasksQuery,
} from './support/operations.js';
import { type Seeder, seededTest } from './support/seed.js';
import { AUTH_ENV, dataOf, errorCodes, execute, TOKENS } from './support/server.js';
import { rawRequest } from './support/untyped.js';

const databases = await availableDatabases();

/** alice's and bob's apps in every stage a list can be filtered on. */
async function seedAppsOfEveryStage(seed: Seeder) {
  const alice = seed.user('alice');
  await (await alice.app({ appName: 'jellyfin', state: 'running' })).task({ status: 'COMPLETED' });
  await alice.app({ appName: 'ollama', state: 'stopped' });
  const reason = 'missing env value NEXTCLOUD_ADMIN_PASSWORD';
  await (await alice.app({ appName: 'nextcloud', state: 'installFailed', reason })).task({ status: 'FAILED' });
  const bob = seed.user('bob');
  await (await bob.app({ appName: 'gitea', state: 'running' })).task({ status: 'COMPLETED' });
  await (await bob.app({ appName: 'code-server', state: 'downloading', progress: '42.5' })).task({ status: 'RUNNING' });
}

/** Ten finished tasks of alice and bob, a minute apart. */
async function seedTasks(seed: Seeder) {
  for (const [index, appName] of ['jellyfin', 'immich', 'ollama', 'gitea', 'grafana'].entries()) {
    await seed.user(index < 3 ? 'alice' : 'bob').task({ appName });
    await seed.user(index < 3 ? 'alice' : 'bob').task({ appName, type: 'UPGRADE' });
  }
}

/** A task with whatever fields a test's document asked for. */
type TaskFields = Record<string, unknown>;

// Every test has a server and a database of its own: it reads only the rows it seeded.
describe.each(databases)('read API on %s', (kind) => {
  const test = seededTest(kind, { env: AUTH_ENV });

  describe('apps', () => {
    test("a user sees only their own apps; an admin sees everyone's and may filter by user", async ({
      server,
      seed,
      expect,
    }) => {
      await seed.user('alice').app({ appName: 'jellyfin', state: 'running' });
      await seed.user('alice').app({ appName: 'ollama', state: 'stopped' });
      await seed.user('bob').app({ appName: 'gitea', state: 'running' });
      await seed.user('admin').app({ appName: 'vaultwarden', state: 'running' });
      const alice = dataOf(await execute(server, AppsQuery, { first: 50 }, { token: TOKENS.alice }));
      const owners = new Set(alice.apps.edges.map((edge) => edge.node.userId));
      expect([...owners]).toEqual(['alice']);
      expect(alice.apps.totalCount).toBe(await server.app.db.appState.count({ where: { userId: 'alice' } }));

      const everyone = dataOf(await execute(server, AppsQuery, { first: 50 }, { token: TOKENS.ops }));
      expect(everyone.apps.totalCount).toBe(await server.app.db.appState.count());
      expect(new Set(everyone.apps.edges.map((edge) => edge.node.userId))).toEqual(new Set(['admin', 'alice', 'bob']));

      const bobs = dataOf(await execute(server, AppsQuery, { filter: { userId: 'bob' } }, { token: TOKENS.ops }));
      expect(bobs.apps.edges.every((edge) => edge.node.userId === 'bob')).toBe(true);
      expect(bobs.apps.totalCount).toBe(await server.app.db.appState.count({ where: { userId: 'bob' } }));
    });

    test('a user filtering on another user is refused with FORBIDDEN', async ({ server, expect }) => {
      const response = await execute(server, AppsQuery, { filter: { userId: 'bob' } }, { token: TOKENS.alice });
      expect(errorCodes(response)).toEqual(['FORBIDDEN']);
      expect(response.errors?.[0]?.message).toMatch(/admins/);
    });

    test('stage and health are derived from the app-service state and the active task', async ({
      server,
      seed,
      expect,
    }) => {
      await seedAppsOfEveryStage(seed);
      const { apps } = dataOf(
        await execute(server, AppsQuery, { filter: { userId: 'alice' }, first: 50 }, { token: TOKENS.ops }),
      );
      const byName = Object.fromEntries(apps.edges.map(({ node }) => [node.appName, node]));
      expect(byName.jellyfin).toMatchObject({
        state: 'running',
        stage: 'RUNNING',
        health: 'HEALTHY',
        activeTask: null,
      });
      expect(byName.ollama).toMatchObject({ state: 'stopped', stage: 'STOPPED', health: 'UNHEALTHY' });
      expect(byName.nextcloud).toMatchObject({ state: 'installFailed', stage: 'FAILED', health: 'UNHEALTHY' });
      expect(byName.nextcloud?.reason).toContain('NEXTCLOUD_ADMIN_PASSWORD');

      // bob's code-server is downloading, but a RUNNING install task decides the stage.
      const codeServer = dataOf(
        await execute(
          server,
          AppQuery,
          { sourceId: 'market.olares', appName: 'code-server', userId: 'bob' },
          { token: TOKENS.ops },
        ),
      ).app;
      expect(codeServer).toMatchObject({ stage: 'INSTALLING', health: 'UNKNOWN' });
    });

    test('filters by stage and health, combined with source and name', async ({ server, seed, expect }) => {
      await seedAppsOfEveryStage(seed);
      const failed = dataOf(await execute(server, AppsQuery, { filter: { stage: ['FAILED'] } }, { token: TOKENS.ops }));
      expect(failed.apps.edges.map((edge) => edge.node.appName)).toEqual(['nextcloud']);
      expect(failed.apps.totalCount).toBe(1);

      const unhealthy = dataOf(
        await execute(server, AppsQuery, { filter: { health: 'UNHEALTHY' } }, { token: TOKENS.ops }),
      );
      expect(unhealthy.apps.edges.map((edge) => edge.node.health)).toEqual(unhealthy.apps.edges.map(() => 'UNHEALTHY'));
      expect(unhealthy.apps.totalCount).toBe(2);

      const byName = dataOf(
        await execute(
          server,
          AppsQuery,
          { filter: { sourceId: 'market.olares', appName: 'gitea' } },
          { token: TOKENS.ops },
        ),
      );
      expect(byName.apps.edges.map((edge) => `${edge.node.userId}/${edge.node.appName}`)).toEqual(['bob/gitea']);
      const none = dataOf(await execute(server, AppsQuery, { filter: { sourceId: 'upload' } }, { token: TOKENS.ops }));
      expect(none.apps).toMatchObject({ totalCount: 0, edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
    });

    test('app(sourceId, appName) returns your app, or null when you have not installed it', async ({
      server,
      seed,
      expect,
    }) => {
      await (await seed.user('alice').app({ appName: 'jellyfin', state: 'running' })).task({ status: 'COMPLETED' });
      await (await seed.user('bob').app({ appName: 'gitea', state: 'running' })).task({ status: 'COMPLETED' });
      const mine = dataOf(
        await execute(server, AppQuery, { sourceId: 'market.olares', appName: 'jellyfin' }, { token: TOKENS.alice }),
      );
      expect(mine.app).toMatchObject({ userId: 'alice', appName: 'jellyfin' });
      expect(mine.app?.tasks.edges.map((edge) => edge.node.status)).toEqual(['COMPLETED']);
      const notMine = dataOf(
        await execute(server, AppQuery, { sourceId: 'market.olares', appName: 'gitea' }, { token: TOKENS.alice }),
      );
      expect(notMine.app).toBeNull();
    });
  });

  describe('Relay pagination', () => {
    test('paging forward with first/after and back with last/before visits every task once, in order', async ({
      server,
      seed,
      expect,
    }) => {
      await seedTasks(seed);
      const all = dataOf(await execute(server, TasksQuery, { first: 100 }, { token: TOKENS.ops })).tasks;
      expect(all.totalCount).toBe(await server.app.db.task.count());
      expect(all.edges.length).toBe(all.totalCount);

      const forward: string[] = [];
      let after: string | null | undefined;
      let pages = 0;
      for (;;) {
        const { tasks } = dataOf(await execute(server, TasksQuery, { first: 3, after }, { token: TOKENS.ops }));
        expect(tasks.totalCount).toBe(all.totalCount);
        expect(tasks.pageInfo.hasPreviousPage).toBe(after != null);
        forward.push(...tasks.edges.map((edge) => edge.node.taskId));
        pages += 1;
        if (!tasks.pageInfo.hasNextPage) break;
        after = tasks.pageInfo.endCursor;
      }
      expect(forward).toEqual(all.edges.map((edge) => edge.node.taskId));
      expect(pages).toBe(Math.ceil(all.totalCount / 3));

      const backward: string[] = [];
      let before: string | null | undefined;
      for (;;) {
        const { tasks } = dataOf(await execute(server, TasksQuery, { last: 4, before }, { token: TOKENS.ops }));
        backward.unshift(...tasks.edges.map((edge) => edge.node.taskId));
        if (!tasks.pageInfo.hasPreviousPage) break;
        before = tasks.pageInfo.startCursor;
      }
      expect(backward).toEqual(forward);
    });

    test('hasPreviousPage and hasNextPage are true past a cursor only when items lie there: deleted rows, either end, every kind of list', async ({
      server,
      seed,
      expect,
    }) => {
      await seedTasks(seed);
      const page = async (args: { first?: number; after?: string; last?: number; before?: string }) =>
        dataOf(await execute(server, TasksQuery, args, { token: TOKENS.ops })).tasks;
      const ids = (tasks: Awaited<ReturnType<typeof page>>) => tasks.edges.map((edge) => edge.node.taskId);
      const all = ids(await page({ first: 100 }));

      // A cursor whose row still exists: items precede the next page, as before.
      const first = await page({ first: 3 });
      const second = await page({ first: 3, after: first.pageInfo.endCursor as string });
      expect(ids(second)).toEqual(all.slice(3, 6));
      expect(second.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: true });
      // That row deleted: the next page is the same, and the first page's rows still precede it.
      await server.app.db.task.delete({ where: { taskId: all[2] as string } });
      expect(await page({ first: 3, after: first.pageInfo.endCursor as string })).toMatchObject({
        edges: second.edges,
        pageInfo: { hasPreviousPage: true, hasNextPage: true },
      });
      // The newest row deleted: a page after its cursor holds every row left, and nothing precedes it.
      const newest = first.pageInfo.startCursor as string;
      await server.app.db.task.delete({ where: { taskId: all[0] as string } });
      const left = all.filter((_, index) => index !== 0 && index !== 2);
      const afterNewest = await page({ first: 100, after: newest });
      expect(ids(afterNewest)).toEqual(left);
      expect(afterNewest.pageInfo).toMatchObject({ hasPreviousPage: false, hasNextPage: false });

      // Backwards: before the oldest row's cursor, once it is deleted, nothing follows.
      const oldest = (await page({ last: 1 })).pageInfo.endCursor as string;
      await server.app.db.task.delete({ where: { taskId: left.at(-1) as string } });
      const beforeOldest = await page({ last: 100, before: oldest });
      expect(ids(beforeOldest)).toEqual(left.slice(0, -1));
      expect(beforeOldest.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
      const lastTwo = await page({ last: 2 });
      expect((await page({ last: 2, before: lastTwo.pageInfo.startCursor as string })).pageInfo).toMatchObject({
        hasNextPage: true,
        hasPreviousPage: true,
      });

      // Cursors at the ends of the id range (PostgreSQL refuses comparing past 2,147,483,647).
      const atMost = encodeCursor(TASK_CURSOR, MAX_ROW_ID);
      expect((await page({ first: 100, after: atMost })).pageInfo).toMatchObject({ hasPreviousPage: false });
      expect(await page({ last: 5, before: atMost })).toMatchObject({ edges: [], pageInfo: { hasNextPage: true } });
      expect((await page({ last: 100, before: encodeCursor(TASK_CURSOR, 0) })).pageInfo).toMatchObject({
        hasNextPage: false,
      });

      // Lists paged in memory (a derived filter) and through Prisma (history) say the same.
      await (await seed.user('alice').app({ appName: 'jellyfin', state: 'running' })).task({ status: 'COMPLETED' });
      await seed.user('alice').history({ type: 'install', app: 'jellyfin' });
      for (const [list, kind, filter] of [
        ['apps', APP_CURSOR, 'filter: { stage: [RUNNING] },'],
        ['history', HISTORY_CURSOR, ''],
      ] as const) {
        const pageInfo = 'pageInfo { hasPreviousPage hasNextPage }';
        const query = (after: string) => `{ ${list}(${filter} first: 10, after: "${after}") { ${pageInfo} } }`;
        const beyondAll = await rawRequest(
          server,
          { query: query(encodeCursor(kind, MAX_ROW_ID)) },
          { token: TOKENS.ops },
        );
        expect(beyondAll.body?.data?.[list], list).toEqual({
          pageInfo: { hasPreviousPage: false, hasNextPage: false },
        });
        const pastNone = await rawRequest(server, { query: query(encodeCursor(kind, 0)) }, { token: TOKENS.ops });
        expect(pastNone.body?.data?.[list], list).toEqual({ pageInfo: { hasPreviousPage: true, hasNextPage: false } });
      }
    });

    test('newest first: tasks come in descending creation order of their rows', async ({ server, seed, expect }) => {
      await seedTasks(seed);
      const { tasks } = dataOf(await execute(server, TasksQuery, { first: 100 }, { token: TOKENS.ops }));
      const ids = await server.app.db.task.findMany({ orderBy: { id: 'desc' }, select: { taskId: true } });
      expect(tasks.edges.map((edge) => edge.node.taskId)).toEqual(ids.map((row) => row.taskId));
    });

    test.for([
      [{ first: 101 }, /at most 100/],
      [{ first: -1 }, /must not be negative/],
      [{ last: 1000 }, /at most 100/],
      [{ first: 2, last: 2 }, /either "first" or "last"/],
      [{ after: 'not-a-cursor' }, /not a valid cursor/],
      [{ before: '%%%' }, /not a valid cursor/],
    ] as const)('bad pagination arguments %o get a VALIDATION error', async ([args, message], { server, expect }) => {
      const response = await execute(server, TasksQuery, args, { token: TOKENS.ops });
      expect(errorCodes(response)).toEqual(['VALIDATION']);
      expect(response.errors?.[0]?.message).toMatch(message);
      expect(response.data).toBeNull();
    });

    test('a cursor of one list is rejected by another', async ({ server, seed, expect }) => {
      await seed.user('alice').app({ appName: 'jellyfin', state: 'running' });
      const { apps } = dataOf(await execute(server, AppsQuery, { first: 1 }, { token: TOKENS.ops }));
      const response = await execute(server, TasksQuery, { after: apps.pageInfo.endCursor }, { token: TOKENS.ops });
      expect(errorCodes(response)).toEqual(['VALIDATION']);
    });

    test('first: 0 returns an empty page with the total count, and says whether rows follow (Relay)', async ({
      server,
      seed,
      expect,
    }) => {
      const empty = dataOf(await execute(server, TasksQuery, { first: 0 }, { token: TOKENS.alice })).tasks;
      expect(empty).toMatchObject({ edges: [], totalCount: 0, pageInfo: { hasNextPage: false } });
      await (await seed.user('alice').app({ appName: 'jellyfin', state: 'running' })).task({ status: 'COMPLETED' });
      const { tasks } = dataOf(await execute(server, TasksQuery, { first: 0 }, { token: TOKENS.alice }));
      expect(tasks).toMatchObject({ edges: [], totalCount: 1, pageInfo: { hasNextPage: true, endCursor: null } });
      const last = dataOf(await execute(server, TasksQuery, { last: 0 }, { token: TOKENS.alice })).tasks;
      expect(last.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: false });
      const { apps } = dataOf(await execute(server, AppsQuery, { first: 0 }, { token: TOKENS.alice }));
      expect(apps).toMatchObject({ edges: [], pageInfo: { hasNextPage: true } });
    });
  });

  describe('tasks', () => {
    test('filters by status, type, app and creation time', async ({ server, seed, expect }) => {
      await seedTasks(seed);
      await seed.user('alice').task({
        appName: 'nextcloud',
        status: 'FAILED',
        error:
          'install of nextcloud failed on the app service (installFailed): missing env value NEXTCLOUD_ADMIN_PASSWORD',
      });
      await seed.user('bob').task({ appName: 'navidrome', type: 'UNINSTALL' }); // uninstalled: no app row
      const failed = dataOf(
        await execute(server, TasksQuery, { filter: { status: ['FAILED'] } }, { token: TOKENS.ops }),
      ).tasks;
      expect(failed.edges.map((edge) => edge.node.status)).toEqual(failed.edges.map(() => 'FAILED'));
      expect(failed.totalCount).toBe(await server.app.db.task.count({ where: { status: 'FAILED' } }));
      expect(failed.edges[0]?.node.error).toMatch(/NEXTCLOUD_ADMIN_PASSWORD/);

      const uninstalls = dataOf(
        await execute(server, TasksQuery, { filter: { type: ['UNINSTALL'] } }, { token: TOKENS.ops }),
      ).tasks;
      expect(uninstalls.edges.map((edge) => [edge.node.appName, edge.node.app])).toEqual([['navidrome', null]]);

      const all = dataOf(await execute(server, TasksQuery, { first: 100 }, { token: TOKENS.ops })).tasks.edges.map(
        (e) => e.node,
      );
      const middle = all[Math.floor(all.length / 2)]?.createdAt as string;
      const recent = dataOf(
        await execute(server, TasksQuery, { filter: { createdAfter: middle }, first: 100 }, { token: TOKENS.ops }),
      ).tasks;
      expect(recent.edges.length).toBe(all.filter((task) => task.createdAt >= middle).length);
      expect(recent.edges.every((edge) => edge.node.createdAt >= middle)).toBe(true);
      const older = dataOf(
        await execute(server, TasksQuery, { filter: { createdBefore: middle }, first: 100 }, { token: TOKENS.ops }),
      ).tasks;
      expect(older.edges.every((edge) => edge.node.createdAt <= middle)).toBe(true);
    });

    test('a user reads only their own tasks; task(taskId) of another user is null', async ({
      server,
      seed,
      expect,
    }) => {
      await seedTasks(seed);
      const bob = dataOf(await execute(server, TasksQuery, { first: 100 }, { token: TOKENS.bob })).tasks;
      expect(bob.edges.length).toBeGreaterThan(0);
      expect(bob.edges.every((edge) => edge.node.userId === 'bob')).toBe(true);
      const bobsTaskId = bob.edges[0]?.node.taskId as string;
      expect(dataOf(await execute(server, TaskQuery, { taskId: bobsTaskId }, { token: TOKENS.bob })).task?.taskId).toBe(
        bobsTaskId,
      );
      expect(dataOf(await execute(server, TaskQuery, { taskId: bobsTaskId }, { token: TOKENS.alice })).task).toBeNull();
      expect(
        dataOf(await execute(server, TaskQuery, { taskId: 'no-such-task' }, { token: TOKENS.ops })).task,
      ).toBeNull();
    });

    test('a tasks page shows every field of each task as task(taskId) does', async ({ server, seed, expect }) => {
      const failed = await seed.user('alice').task({ appName: 'nextcloud', status: 'FAILED', error: 'disk full' });
      const retry = await seed.user('alice').task({ appName: 'nextcloud', status: 'COMPLETED' });
      const startedAt = new Date('2026-11-30T10:00:00.123Z');
      await server.app.db.task.update({
        where: { taskId: retry.taskId },
        data: {
          opId: 'op-42',
          result: { operation: 'install', opId: 'op-42', response: { code: 200 } },
          retryOfTaskId: failed.taskId,
          startedAt,
          completedAt: new Date(startedAt.getTime() + 1500),
        },
      });
      // Every field the schema gives Task, so a field added later is covered too.
      const fields = Object.values((schema.getType('Task') as GraphQLObjectType).getFields())
        .map((field) => (isObjectType(getNamedType(field.type)) ? `${field.name} { appName }` : field.name))
        .join(' ');
      const pageDocument = parse(
        `{ tasks(first: 10, filter: { appName: "nextcloud" }) { edges { node { ${fields} } } } }`,
      ) as TypedDocumentNode<{ tasks: { edges: { node: TaskFields }[] } }>;
      const asAlice = { token: TOKENS.alice };
      const page = dataOf(await execute(server, pageDocument, undefined, asAlice)).tasks.edges.map((edge) => edge.node);
      expect(page.map((task) => task.taskId)).toEqual([retry.taskId, failed.taskId]);
      const one = parse(`query($taskId: String!) { task(taskId: $taskId) { ${fields} } }`) as TypedDocumentNode<
        { task: TaskFields },
        { taskId: string }
      >;
      for (const task of page) {
        expect(task).toEqual(dataOf(await execute(server, one, { taskId: String(task.taskId) }, asAlice)).task);
      }
      expect(page[0]).toMatchObject({
        opId: 'op-42',
        result: { operation: 'install', opId: 'op-42', response: { code: 200 } },
        retryOfTaskId: failed.taskId,
        startedAt: '2026-11-30T10:00:00.123Z',
        completedAt: '2026-11-30T10:00:01.623Z',
      });
      expect(page[1]).toMatchObject({ status: 'FAILED', error: 'disk full' });
    });

    test('an unknown enum value in a filter is a GraphQL validation error', async ({ server, expect }) => {
      const response = await fetch(server.graphqlUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json',
          authorization: `Bearer ${TOKENS.ops}`,
        },
        body: JSON.stringify({ query: '{ tasks(filter: { status: [DONE] }) { totalCount } }' }),
      });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { errors: { message: string }[] };
      expect(body.errors[0]?.message).toMatch(/DONE/);

      const viaVariable = await fetch(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.ops}` },
        body: JSON.stringify({
          query: 'query($s: [TaskStatus!]) { tasks(filter: { status: $s }) { totalCount } }',
          variables: { s: ['DONE'] },
        }),
      });
      const variableBody = (await viaVariable.json()) as { errors: { message: string }[] };
      expect(variableBody.errors[0]?.message).toMatch(/DONE/);
    });
  });

  describe('node(id)', () => {
    test('every node type refetches by its global id', async ({ server, seed, expect }) => {
      const alice = seed.user('alice');
      await (await alice.app({ appName: 'jellyfin', state: 'running' })).task();
      await alice.payment({ appId: 'plex', status: 'purchased' });
      await alice.history({ type: 'ACTION_INSTALL', app: 'jellyfin' });
      await seed.source({ sourceId: 'market.olares', type: 'remote' });
      await seed.catalogApp({ name: 'jellyfin' });
      const app = dataOf(await execute(server, AppsQuery, { first: 1 }, { token: TOKENS.ops })).apps.edges[0]?.node;
      const task = dataOf(await execute(server, TasksQuery, { first: 1 }, { token: TOKENS.ops })).tasks.edges[0]?.node;
      const payment = dataOf(await execute(server, PaymentsQuery, {}, { token: TOKENS.ops })).payments.edges[0]?.node;
      const record = dataOf(await execute(server, HistoryQuery, { first: 1 }, { token: TOKENS.ops })).history.edges[0]
        ?.node;
      const source = dataOf(await execute(server, MarketSourcesQuery, {}, { token: TOKENS.ops })).marketSources[0];
      const catalogApp = dataOf(await execute(server, CatalogQuery, { first: 1 }, { token: TOKENS.ops })).catalog
        .edges[0]?.node;
      const cases = [
        [app?.id, 'App'],
        [task?.id, 'Task'],
        [payment?.id, 'Payment'],
        [record?.id, 'HistoryRecord'],
        [source?.id, 'MarketSource'],
        [catalogApp?.id, 'CatalogApp'],
      ] as const;
      for (const [id, typename] of cases) {
        const { node } = dataOf(await execute(server, NodeQuery, { id: id as string }, { token: TOKENS.ops }));
        expect(node).toMatchObject({ __typename: typename, id });
      }
    });

    test("another user's objects are null, and malformed ids get a VALIDATION error, whatever part of them is malformed", async ({
      server,
      seed,
      expect,
    }) => {
      await seed.user('alice').app({ appName: 'jellyfin', state: 'running' });
      await seed.user('bob').app({ appName: 'gitea', state: 'running' });
      const bobsApp = dataOf(
        await execute(server, AppsQuery, { filter: { userId: 'bob' }, first: 1 }, { token: TOKENS.ops }),
      ).apps.edges[0]?.node;
      expect(
        dataOf(await execute(server, NodeQuery, { id: bobsApp?.id as string }, { token: TOKENS.alice })).node,
      ).toBeNull();
      expect(
        dataOf(await execute(server, NodeQuery, { id: bobsApp?.id as string }, { token: TOKENS.bob })).node,
      ).toMatchObject({ userId: 'bob' });

      const garbage = await execute(server, NodeQuery, { id: 'definitely not an id' }, { token: TOKENS.ops });
      expect(errorCodes(garbage)).toEqual(['VALIDATION']);
      // A well-formed id of a type that is not a Node: the same answer, whatever the name (it used to
      // be an internal error, logged with its stack, that told type names apart).
      const errorLogs = () => server.logs.filter((line) => JSON.parse(line).level >= 50).length;
      const logged = errorLogs();
      for (const typename of ['Foo', 'Viewer', 'String']) {
        const id = Buffer.from(`${typename}:1`).toString('base64');
        const answer = await execute(server, NodeQuery, { id }, { token: TOKENS.alice });
        expect(errorCodes(answer), typename).toEqual(['VALIDATION']);
        expect(answer.errors?.[0]?.message).toBe(`"${id}" is not a valid id`);
      }
      expect(errorLogs()).toBe(logged);
      // An id part a type never has is malformed too (these answered null, as if well-formed and
      // not found). One object, one id: other spellings of bob's app's id (which answered with its
      // own id, so that a client's cache held it twice) are not it.
      const rowOf = Buffer.from(bobsApp?.id as string, 'base64')
        .toString()
        .split(':')[1] as string;
      const malformed = [
        'App:abc',
        'App:0',
        'App:-1',
        'Payment:2147483648',
        'HistoryRecord:1e3',
        `CatalogApp:${'9'.repeat(17)}`,
        ...[` ${rowOf}`, `0x${Number(rowOf).toString(16)}`, `${rowOf}.0`, `0${rowOf}`].map((row) => `App:${row}`),
        `Task:${'t'.repeat(65)}`,
        `MarketSource:${'s'.repeat(51)}`,
      ];
      for (const raw of malformed) {
        const id = Buffer.from(raw).toString('base64');
        const answer = await execute(server, NodeQuery, { id }, { token: TOKENS.ops });
        expect(errorCodes(answer), raw).toEqual(['VALIDATION']);
        expect(answer.errors?.[0]?.message).toBe(`"${id}" is not a valid id`);
      }
      // At the bounds the ids are well-formed: looked up, nothing there.
      for (const raw of ['App:2147483647', `Task:${'t'.repeat(64)}`, `MarketSource:${'s'.repeat(50)}`]) {
        const id = Buffer.from(raw).toString('base64');
        expect(dataOf(await execute(server, NodeQuery, { id }, { token: TOKENS.ops })).node, raw).toBeNull();
      }
      expect(errorLogs()).toBe(logged);
      // Base64 read leniently: padding left out (App:1 is QXBwOjE=) or added.
      for (const id of ['QXBwOjE', 'QXBwOjE==', `${bobsApp?.id}=`]) {
        expect(errorCodes(await execute(server, NodeQuery, { id }, { token: TOKENS.ops })), id).toEqual(['VALIDATION']);
      }
    });
  });

  describe('payments', () => {
    test('the frontend status is derived from the five axes; users see only their own', async ({
      server,
      seed,
      expect,
    }) => {
      await seed.user('alice').payment({ appId: 'plex', status: 'purchased' });
      await seed.user('bob').payment({ appId: 'comfyui', status: 'signed' });
      const alice = dataOf(await execute(server, PaymentsQuery, {}, { token: TOKENS.alice })).payments;
      expect(alice.edges.map((edge) => [edge.node.appId, edge.node.status])).toEqual([['plex', 'PURCHASED']]);
      const bob = dataOf(await execute(server, PaymentsQuery, {}, { token: TOKENS.bob })).payments;
      expect(bob.edges.map((edge) => [edge.node.appId, edge.node.status])).toEqual([['comfyui', 'PAYMENT_REQUIRED']]);

      const filtered = dataOf(
        await execute(server, PaymentsQuery, { filter: { status: ['PURCHASED'] } }, { token: TOKENS.ops }),
      ).payments;
      expect(filtered.edges.map((edge) => edge.node.userId)).toEqual(['alice']);
      expect(
        errorCodes(await execute(server, PaymentsQuery, { filter: { userId: 'alice' } }, { token: TOKENS.bob })),
      ).toEqual(['FORBIDDEN']);
    });

    test('paymentStatus is yours, null when you never started to buy, NOT_FOUND for unknown apps', async ({
      server,
      seed,
      expect,
    }) => {
      await seed.source({ sourceId: 'market.olares', type: 'remote' });
      await seed.catalogApp({ name: 'plex', price: '4.99' });
      await seed.user('alice').payment({ appId: 'plex', status: 'purchased' });
      await seed.user('bob').payment({ appId: 'comfyui', status: 'signed' });
      expect(
        dataOf(
          await execute(
            server,
            PaymentStatusQuery,
            { sourceId: 'market.olares', appId: 'plex' },
            { token: TOKENS.alice },
          ),
        ).paymentStatus,
      ).toMatchObject({ userId: 'alice', status: 'PURCHASED' });
      expect(
        dataOf(
          await execute(
            server,
            PaymentStatusQuery,
            { sourceId: 'market.olares', appId: 'plex' },
            { token: TOKENS.bob },
          ),
        ).paymentStatus,
      ).toBeNull();
      const unknown = await execute(
        server,
        PaymentStatusQuery,
        { sourceId: 'market.olares', appId: 'no-such-app' },
        { token: TOKENS.bob },
      );
      expect(errorCodes(unknown)).toEqual(['NOT_FOUND']);
    });

    test('no secret of a payment is reachable through the schema', async ({ server, seed, expect }) => {
      await seed.user('alice').payment({ appId: 'plex', status: 'purchased' });
      const response = await fetch(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.ops}` },
        body: JSON.stringify({ query: '{ payments { edges { node { jws vc } } } }' }),
      });
      const body = (await response.json()) as { errors: { message: string }[] };
      expect(body.errors.map((error) => error.message).join(' ')).toMatch(/Cannot query field "jws"/);
    });
  });

  describe('history', () => {
    test('filters by type, app and time; users see only their own records', async ({ server, seed, expect }) => {
      for (const [userId, app] of [
        ['alice', 'jellyfin'],
        ['bob', 'gitea'],
        ['alice', 'immich'],
        ['bob', 'grafana'],
      ]) {
        const user = seed.user(userId as string);
        await user.history({ type: 'ACTION_INSTALL', app });
        await user.history({ type: 'SYSTEM_INSTALL_SUCCEED', app });
      }
      await seed.user('bob').history({ type: 'ACTION_UNINSTALL', app: 'navidrome' });
      const installs = dataOf(
        await execute(
          server,
          HistoryQuery,
          { filter: { type: ['ACTION_INSTALL'] }, first: 100 },
          { token: TOKENS.alice },
        ),
      ).history;
      expect(installs.totalCount).toBe(
        await server.app.db.historyRecord.count({ where: { userId: 'alice', type: 'ACTION_INSTALL' } }),
      );
      expect(installs.edges.every((edge) => edge.node.type === 'ACTION_INSTALL' && edge.node.userId === 'alice')).toBe(
        true,
      );

      const jellyfin = dataOf(
        await execute(server, HistoryQuery, { filter: { app: 'jellyfin' } }, { token: TOKENS.alice }),
      ).history;
      expect(jellyfin.edges.length).toBeGreaterThan(0);
      expect(jellyfin.edges.every((edge) => edge.node.app === 'jellyfin')).toBe(true);

      const all = dataOf(await execute(server, HistoryQuery, { first: 100 }, { token: TOKENS.ops })).history.edges.map(
        (e) => e.node,
      );
      const times = all.map((record) => record.time).sort();
      const from = times[Math.floor(times.length / 3)] as string;
      const to = times[Math.floor((2 * times.length) / 3)] as string;
      const window = dataOf(
        await execute(server, HistoryQuery, { filter: { from, to }, first: 100 }, { token: TOKENS.ops }),
      ).history;
      expect(window.totalCount).toBe(times.filter((time) => time >= from && time <= to).length);
    });
  });

  describe('catalogue and market sources', () => {
    test('market sources: the active remote and the three local ones', async ({ server, seed, expect }) => {
      await seed.source({ sourceId: 'market.olares', type: 'remote' });
      for (const sourceId of ['upload', 'studio', 'cli']) await seed.source({ sourceId, type: 'local' });
      const { marketSources } = dataOf(await execute(server, MarketSourcesQuery, {}, { token: TOKENS.alice }));
      expect(marketSources.map((source) => [source.sourceId, source.type, source.isActive])).toEqual([
        ['market.olares', 'remote', true],
        ['cli', 'local', true],
        ['studio', 'local', true],
        ['upload', 'local', true],
      ]);
    });

    test('the catalogue has at least 30 apps, with versions, categories and paid apps', async ({
      server,
      seed,
      expect,
    }) => {
      await seed.source({ sourceId: 'market.olares', type: 'remote' });
      for (let index = 0; index < 30; index += 1) {
        const versions = [`1.${index}.0`, '1.0.0'];
        await seed.catalogApp({ name: `app-${index}`, versions, ...(index % 10 === 0 ? { price: '4.99' } : {}) });
      }
      const { catalog } = dataOf(await execute(server, CatalogQuery, { first: 100 }, { token: TOKENS.alice }));
      expect(catalog.totalCount).toBeGreaterThanOrEqual(30);
      expect(catalog.edges.filter((edge) => edge.node.paid).length).toBeGreaterThan(0);
      expect(
        catalog.edges.every(
          (edge) => edge.node.versions.includes(edge.node.version) && edge.node.categories.length > 0,
        ),
      ).toBe(true);
    });

    test('search is case-insensitive; category and source filters narrow the list', async ({
      server,
      seed,
      expect,
    }) => {
      await seed.source({ sourceId: 'market.olares', type: 'remote' });
      await seed.source({ sourceId: 'upload', type: 'local' });
      const jellyfin = { title: 'Jellyfin', description: 'Free media system to manage and stream your media' };
      await seed.catalogApp({ name: 'jellyfin', ...jellyfin, categories: ['Entertainment', 'Media'] });
      await seed.catalogApp({ name: 'navidrome', description: 'Music server and streamer', categories: ['Media'] });
      await seed.catalogApp({ name: 'ollama', description: 'Run large language models locally', categories: ['AI'] });
      await seed.catalogApp({ name: 'comfyui', description: 'Node-based image generation', categories: ['AI'] });
      await seed.catalogApp({ name: 'my-notes', sourceId: 'upload', categories: ['Productivity'] });
      for (const search of ['jelly', 'JELLY', 'Media system']) {
        const { catalog } = dataOf(await execute(server, CatalogQuery, { search }, { token: TOKENS.alice }));
        expect(catalog.edges.map((edge) => edge.node.name)).toEqual(['jellyfin']);
      }
      const ai = dataOf(
        await execute(server, CatalogQuery, { category: 'AI', first: 100 }, { token: TOKENS.alice }),
      ).catalog;
      expect(ai.totalCount).toBeGreaterThan(1);
      expect(ai.edges.every((edge) => edge.node.categories.includes('AI'))).toBe(true);
      const upload = dataOf(
        await execute(server, CatalogQuery, { sourceId: 'upload' }, { token: TOKENS.alice }),
      ).catalog;
      expect(upload.edges.map((edge) => edge.node.sourceId)).toEqual(['upload']);
      // Categories by name, by code unit on every database (an en_US collation put `ai-tools` first).
      await seed.catalogApp({ name: 'sorted-tags', sourceId: 'upload', categories: ['ai-tools', 'Media', 'AI'] });
      const tagged = dataOf(
        await execute(server, CatalogQuery, { search: 'sorted-tags' }, { token: TOKENS.alice }),
      ).catalog;
      expect(tagged.edges.map((edge) => edge.node.categories)).toEqual([['AI', 'Media', 'ai-tools']]);
    });
  });
});
