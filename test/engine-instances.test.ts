import { afterAll, describe, expect, test } from 'vitest';
import { graphql } from './gql/index.js';
import { availableDatabases } from './support/databases.js';
import { InstallAppMutation, TaskDetailQuery } from './support/operations.js';
import { seed } from './support/seed.js';
import { dataOf, execute, startTestServer, type TestServer, waitFor } from './support/server.js';

const ResumeLostMutation = graphql(`
  mutation ResumeLost($input: ResumeAppInput!) {
    resumeApp(input: $input) {
      __typename
      ... on ResumeAppSuccess { task { taskId } }
      ... on Error { code message }
    }
  }
`);

const databases = await availableDatabases();

describe.each(databases)('several instances on one %s database', (kind) => {
  const servers: TestServer[] = [];
  afterAll(async () => {
    // the first server created the database and drops it, so it stops last
    for (const server of servers.reverse()) await server.stop().catch(() => {});
  });

  test('a starting instance leaves the running tasks of a live one alone, and takes them over once it dies', async () => {
    const env = { TASK_LEASE_MS: '600', DEMO_DATA: '1' };
    const a = await startTestServer(kind, { env });
    servers.push(a);
    const installed = dataOf(
      await execute(a, InstallAppMutation, { input: { sourceId: 'market.olares', appName: 'n8n', version: '1.70.1' } }),
    ).installApp;
    const taskId = installed.__typename === 'InstallAppSuccess' ? installed.task.taskId : '';
    const task = async () => dataOf(await execute(a, TaskDetailQuery, { taskId })).task;
    await waitFor(async () => ((await task())?.opId ? true : undefined), 'instance A to send the task');

    // B's start-up recovery runs before start() returns: it must leave A's live task alone.
    const b = await startTestServer(kind, { env, database: a.database });
    servers.push(b);
    const before = await b.app.db.task.findUnique({ where: { taskId } });
    expect(before?.status).toBe('RUNNING');
    expect(before?.workerId).toBe(a.app.services.engine.instanceId);

    // A stops (its simulated app service, and the operation in it, go with it): A hands the task
    // over, B adopts it, and B's own simulated app service has no record of the operation.
    await a.app.stop();
    const taken = await waitFor(async () => {
      const row = await b.app.db.task.findUnique({ where: { taskId } });
      return row?.status === 'FAILED' ? row : undefined;
    }, 'instance B to recover the task');
    expect(taken.error).toMatch(/^lost: the simulated app service keeps its operations in memory only/);
  });

  test('a resume lost with its instance leaves its app failed, not RESUMING with no task, and it can be resumed again', async () => {
    // Steps a minute apart: the resume is `resuming` when its instance goes.
    const env = { TASK_LEASE_MS: '600', SIMULATED_STEP_MS: '60000' };
    const a = await startTestServer(kind, { env });
    servers.push(a);
    await seed(a.app.db).catalogApp({ name: 'lost-resume', versions: ['10.10.3'] });
    await seed(a.app.db).user('admin').app({ appName: 'lost-resume', state: 'stopped', version: '10.10.3' });
    const resume = async (server: TestServer) =>
      dataOf(
        await execute(server, ResumeLostMutation, { input: { sourceId: 'market.olares', appName: 'lost-resume' } }),
      ).resumeApp;
    const resumed = await resume(a);
    if (resumed.__typename !== 'ResumeAppSuccess') throw new Error(`resume refused: ${JSON.stringify(resumed)}`);
    const { taskId } = resumed.task;
    await waitFor(async () => {
      const row = await a.app.db.appState.findFirst({ where: { userId: 'admin', appName: 'lost-resume' } });
      return row?.state === 'resuming' ? row : undefined;
    }, 'the app to be resuming');

    const b = await startTestServer(kind, { env, database: a.database });
    servers.push(b);
    await a.app.stop();
    const lost = await waitFor(async () => {
      const { task } = dataOf(await execute(b, TaskDetailQuery, { taskId }));
      return task?.status === 'FAILED' ? task : undefined;
    }, 'instance B to fail the lost resume');
    expect(lost.error).toMatch(/^lost: /);
    expect(lost.app).toMatchObject({
      stage: 'FAILED',
      state: 'resumeFailed',
      reason: expect.stringMatching(/^lost: /),
    });
    expect(await resume(b)).toMatchObject({ __typename: 'ResumeAppSuccess' });
  });
});
