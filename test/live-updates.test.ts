import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import {
  AppUpdatedSubscription,
  HistoryAddedSubscription,
  InstallAppMutation,
  TaskQuery,
  TaskUpdatedSubscription,
} from './support/operations.js';
import { AUTH_ENV, dataOf, execute, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';
import { subscribe } from './support/subscriptions.js';

const databases = await availableDatabases();

describe.each(databases)('live updates over graphql-ws on %s', (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(kind, { env: { ...AUTH_ENV, SIMULATED_STEP_MS: '0' } });
  });
  afterAll(() => server?.stop());

  test('an install is pushed as it happens: task progress to 100, the app to RUNNING, the history records; nothing to other users', async () => {
    const tasks = await subscribe(
      server,
      TaskUpdatedSubscription,
      { filter: { appName: 'wordpress' } },
      { token: TOKENS.alice },
    );
    const apps = await subscribe(
      server,
      AppUpdatedSubscription,
      { filter: { appName: 'wordpress' } },
      { token: TOKENS.alice },
    );
    const history = await subscribe(
      server,
      HistoryAddedSubscription,
      { filter: { app: 'wordpress' } },
      { token: TOKENS.alice },
    );
    const bob = await subscribe(server, TaskUpdatedSubscription, {}, { token: TOKENS.bob });
    try {
      const result = dataOf(
        await execute(
          server,
          InstallAppMutation,
          { input: { sourceId: 'market.olares', appName: 'wordpress', version: '6.7.1' } },
          { token: TOKENS.alice },
        ),
      ).installApp;
      expect(result.__typename).toBe('InstallAppSuccess');

      const taskEvents = (await tasks.until((e) => e.taskUpdated.status === 'COMPLETED')).map((e) => e.taskUpdated);
      expect(taskEvents.some((t) => t.status === 'RUNNING')).toBe(true);
      const progress = taskEvents.map((t) => t.progress);
      expect(progress).toEqual([...progress].sort((a, b) => a - b)); // never backwards
      expect(progress.at(-1)).toBe(100);
      expect(new Set(progress).size).toBeGreaterThan(3); // several steps, not just start and end

      const appEvents = (await apps.until((e) => e.appUpdated.installedVersion === '6.7.1')).map((e) => e.appUpdated);
      expect(appEvents.map((a) => a.state)).toEqual(expect.arrayContaining(['downloading', 'installing', 'running']));
      expect(appEvents.at(-1)).toMatchObject({ stage: 'RUNNING', health: 'HEALTHY', userId: 'alice' });

      const records = (await history.until((e) => e.historyAdded.type === 'SYSTEM_INSTALL_SUCCEED')).map(
        (e) => e.historyAdded.type,
      );
      expect(records).toEqual(expect.arrayContaining(['action', 'SYSTEM_INSTALL_SUCCEED']));

      expect(bob.received.filter((e) => e.taskUpdated.userId !== 'bob')).toEqual([]);
    } finally {
      await Promise.all([tasks.close(), apps.close(), history.close(), bob.close()]);
    }
  });

  test('a subscription to one task starts with its state, also once it ended and for a second subscriber; another user gets nothing of it', async () => {
    const result = dataOf(
      await execute(
        server,
        InstallAppMutation,
        { input: { sourceId: 'market.olares', appName: 'ghost', version: '5.104.2' } },
        { token: TOKENS.alice },
      ),
    ).installApp;
    if (result.__typename !== 'InstallAppSuccess') throw new Error(`refused: ${JSON.stringify(result)}`);
    const { taskId } = result.task;
    // The client subscribes after the task ended (SIMULATED_STEP_MS 0): it is told so at once.
    await waitFor(async () => {
      const task = dataOf(await execute(server, TaskQuery, { taskId }, { token: TOKENS.alice })).task;
      return task?.status === 'COMPLETED' ? task : undefined;
    }, 'the install to end');
    const bob = await subscribe(server, TaskUpdatedSubscription, { taskId }, { token: TOKENS.bob });
    const alice = await subscribe(server, TaskUpdatedSubscription, { taskId }, { token: TOKENS.alice });
    try {
      expect((await alice.next()).taskUpdated).toMatchObject({
        taskId,
        userId: 'alice',
        status: 'COMPLETED',
        progress: 100,
      });
      expect(bob.received).toEqual([]);
      // Her second tab, the same subscription: it shares the first one's execution, and is told too.
      const again = await subscribe(server, TaskUpdatedSubscription, { taskId }, { token: TOKENS.alice });
      try {
        expect((await again.next()).taskUpdated).toMatchObject({ taskId, status: 'COMPLETED', progress: 100 });
      } finally {
        await again.close();
      }
    } finally {
      await Promise.all([alice.close(), bob.close()]);
    }
  });
});
