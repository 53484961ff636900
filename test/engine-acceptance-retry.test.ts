import { afterEach, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import { availableDatabases, createTestDatabase } from './support/databases.js';
import { CancelTaskMutation, TaskDetailQuery } from './support/operations.js';
import { seed } from './support/seed.js';
import {
  AUTH_ENV,
  dataOf,
  execute,
  installThroughApi,
  startTestServer,
  type TestServer,
  TOKENS,
  waitFor,
} from './support/server.js';

/**
 * cancelTask asks the app service to cancel a running task only once the task's row holds the
 * app service's acceptance (operation-service.ts). A write of that acceptance the database
 * refused must not leave the task uncancelable for the rest of its run: it is written again, and
 * a stopping instance hands it over with the task. The refusals are the database's own: a trigger.
 */

const databases = await availableDatabases();
const SOURCE = 'market.olares';

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

/**
 * A trigger refusing the acceptance of `appName`'s task (the first write of its result) while
 * `refuseWhile` holds; a sequence counts the refusals: its nextval survives the rollback of the
 * refused write, where a row in a table would not.
 */
async function refuseAcceptances(
  server: TestServer,
  appName: string,
  refuseWhile: string,
): Promise<() => Promise<number>> {
  const { db } = server.app;
  await db.$executeRawUnsafe('CREATE SEQUENCE acceptance_refusals');
  await db.$executeRawUnsafe(`CREATE FUNCTION refuse_acceptance() RETURNS trigger AS $$
    BEGIN
      IF NEW."appName" = '${appName}' AND NEW."result" IS NOT NULL AND OLD."result" IS NULL THEN
        IF ${refuseWhile} THEN
          PERFORM nextval('acceptance_refusals');
          RAISE EXCEPTION 'acceptance refused by the test trigger';
        END IF;
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql`);
  await db.$executeRawUnsafe(
    'CREATE TRIGGER refuse_acceptance BEFORE UPDATE ON "Task" FOR EACH ROW EXECUTE FUNCTION refuse_acceptance()',
  );
  return async () => {
    const [row] = await db.$queryRawUnsafe<{ refusals: number }[]>(
      'SELECT (CASE WHEN is_called THEN last_value ELSE 0 END)::int AS refusals FROM acceptance_refusals',
    );
    return row?.refusals ?? 0;
  };
}

async function install(server: TestServer, appName: string): Promise<string> {
  await seed(server.app.db).catalogApp({ name: appName, versions: ['1.0.0'] });
  return installThroughApi(server, { sourceId: SOURCE, appName, version: '1.0.0' }, TOKENS.alice);
}

describe.runIf(databases.includes('postgresql'))('an acceptance the database refused (PostgreSQL)', () => {
  test('refused once, it is written again, and the running task can then be canceled', async () => {
    const server = await startTestServer('postgresql', { env: AUTH_ENV });
    disposers.push(() => server.stop());
    const refusals = await refuseAcceptances(server, 'refused-once', 'NOT (SELECT is_called FROM acceptance_refusals)');
    const task = async (taskId: string) =>
      dataOf(await execute(server, TaskDetailQuery, { taskId }, { token: TOKENS.alice })).task;
    const taskId = await install(server, 'refused-once');

    const accepted = await waitFor(
      async () => {
        const current = await task(taskId);
        return current?.status === 'RUNNING' && current.opId ? current : undefined;
      },
      'the acceptance to reach the task',
      5000,
    );
    expect(accepted.opId).toMatch(/\S/);
    expect(await refusals()).toBe(1);

    const { cancelTask } = dataOf(
      await execute(server, CancelTaskMutation, { input: { taskId } }, { token: TOKENS.alice }),
    );
    expect(cancelTask.__typename).toBe('CancelTaskSuccess');
    // The simulated app service cancels within the call: the install ends CANCELED.
    expect(await task(taskId)).toMatchObject({ status: 'CANCELED' });
  });

  test('still refused when the instance stops, it is handed over with the task', async () => {
    const database = await createTestDatabase('postgresql');
    disposers.push(() => database.drop());
    const server = await startTestServer('postgresql', { env: AUTH_ENV, database });
    let stopped = false;
    disposers.push(async () => {
      if (!stopped) await server.stop();
    });
    // Refused while a worker holds the task: the handover, which releases it, is let through.
    const refusals = await refuseAcceptances(server, 'refused-till-stop', 'NEW."workerId" IS NOT NULL');
    const taskId = await install(server, 'refused-till-stop');
    // The first write and at least one retry refused.
    await waitFor(async () => ((await refusals()) >= 2 ? true : undefined), 'the acceptance to be refused twice');

    const { db } = server.app;
    expect(await db.task.findUniqueOrThrow({ where: { taskId } })).toMatchObject({ status: 'RUNNING', result: null });
    stopped = true;
    await server.stop();

    // What cancelTask reads, on whichever instance adopts the task: the app service's acceptance.
    const direct = createPrismaClient(database.url);
    disposers.push(() => direct.$disconnect());
    const row = await direct.task.findUniqueOrThrow({ where: { taskId } });
    expect(row).toMatchObject({ status: 'RUNNING', workerId: null, opId: expect.stringMatching(/\S/) });
    expect(row.result).toMatchObject({ operation: 'install', app_name: 'refused-till-stop', status: 'success' });
  });
});
