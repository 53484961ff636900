import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import { CancelTaskMutation, InstallAppMutation, RetryTaskMutation } from './support/operations.js';
import { seed } from './support/seed.js';
import {
  AUTH_ENV,
  dataOf,
  execute,
  installThroughApi,
  startTestServer,
  type TestServer,
  TOKENS,
} from './support/server.js';

/**
 * MAX_ACTIVE_TASKS_PER_USER bounds one user's pending and running tasks: a submission over it is
 * refused with LIMIT_EXCEEDED naming the setting and its figure, other users are not affected, a
 * cancel (which writes no task) still goes through, and a place freed takes a submission again.
 */

const databases = await availableDatabases();
const APPS = ['cap-a', 'cap-b', 'cap-c'];

describe.each(databases)('the bound on active tasks per user on %s', (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    // One worker and a simulated app service that stands still: cap-a runs, cap-b waits.
    server = await startTestServer(kind, {
      env: { ...AUTH_ENV, DEMO_DATA: '0', MAX_ACTIVE_TASKS_PER_USER: '2', TASK_CONCURRENCY: '1' },
    });
    for (const name of APPS) await seed(server.app.db).catalogApp({ name, versions: ['1.0.0'] });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const install = async (appName: string, token: string) =>
    dataOf(
      await execute(
        server,
        InstallAppMutation,
        { input: { sourceId: 'market.olares', appName, version: '1.0.0' } },
        { token },
      ),
    ).installApp;

  test('refuses the submission over the bound and accepts again once a task ends', async () => {
    await installThroughApi(server, { appName: 'cap-a', version: '1.0.0' }, TOKENS.alice);
    const waiting = await installThroughApi(server, { appName: 'cap-b', version: '1.0.0' }, TOKENS.alice);

    const refused = await install('cap-c', TOKENS.alice);
    expect(refused).toEqual({
      __typename: 'LimitExceededError',
      code: 'LIMIT_EXCEEDED',
      message: expect.stringContaining('2 pending or running tasks'),
    });
    expect(refused.__typename === 'LimitExceededError' && refused.message).toMatch(/MAX_ACTIVE_TASKS_PER_USER = 2/);
    expect(await server.app.db.task.count({ where: { userId: 'alice', appName: 'cap-c' } })).toBe(0);
    // Another user's tasks are counted apart.
    expect(await install('cap-c', TOKENS.bob)).toMatchObject({ __typename: 'InstallAppSuccess' });

    // At the bound, a cancel still goes through: it writes no task, it frees a place.
    const canceled = dataOf(
      await execute(server, CancelTaskMutation, { input: { taskId: waiting } }, { token: TOKENS.alice }),
    ).cancelTask;
    expect(canceled).toMatchObject({ __typename: 'CancelTaskSuccess', task: { status: 'CANCELED' } });

    expect(await install('cap-c', TOKENS.alice)).toMatchObject({ __typename: 'InstallAppSuccess' });
    // Back at the bound: a retry is a new task and is refused like any other.
    const retried = dataOf(
      await execute(server, RetryTaskMutation, { input: { taskId: waiting } }, { token: TOKENS.alice }),
    ).retryTask;
    expect(retried).toMatchObject({ __typename: 'LimitExceededError', code: 'LIMIT_EXCEEDED' });
  });
});
