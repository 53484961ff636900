import { renameSync, rmSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, test } from 'vitest';
import { isDatabaseUnavailable } from '../src/db/availability.js';
import { createPrismaClient, refuseWrites, sqliteFilePath } from '../src/db/client.js';
import { driverSqlOf } from '../src/db/driver-sql.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { TaskDetailQuery } from './support/operations.js';
import {
  killLeftovers,
  listeningUrl,
  SERVER_COMMAND,
  type ServerProcess,
  serverEnv,
  startProcess,
} from './support/process.js';
import { UNINSTALLED_APPS } from './support/rows.js';
import { dataOf, execute, installThroughApi, waitFor } from './support/server.js';
import { componentOf, rawRequest } from './support/untyped.js';

/**
 * A SQLite file deleted or replaced under the running server (the one instance SQLite allows):
 * everything written from then on would go into the orphaned file and be lost at the next start.
 * Once the server knows it, its writes fail as UNAVAILABLE instead of being acknowledged, the
 * background writers' too; reads go on, from the orphaned file.
 */

let database: TestDatabase | undefined;

afterEach(async () => {
  await killLeftovers();
  await database?.drop();
  database = undefined;
});

const install = (appName: string, version: string) => `mutation { installApp(input: { sourceId: "market.olares",
  appName: "${appName}", version: "${version}" }) { __typename ... on InstallAppSuccess { task { taskId } } } }`;

interface Started {
  process: ServerProcess;
  server: { graphqlUrl: string };
  file: string;
}

/** A server process whose installs take a few seconds (the simulated app service reports every 400 ms). */
async function started(): Promise<Started> {
  database = await createTestDatabase('sqlite');
  const env = serverEnv(database.url, { COLLECT_INTERVAL_MS: '100', SIMULATED_STEP_MS: '400' });
  const process = startProcess(SERVER_COMMAND, env);
  return {
    process,
    server: { graphqlUrl: (await listeningUrl(process)).toString() },
    file: sqliteFilePath(database.url),
  };
}

/** Waits until the `database` component reports the file gone or replaced. */
function fileReported({ server }: Started, message: string) {
  return waitFor(async () => {
    const found = await componentOf(server, 'database');
    return found?.state === 'ERROR' && found.message?.startsWith(message) ? found : undefined;
  }, 'the database component to report the file');
}

/**
 * A mutation answers UNAVAILABLE (503, alone) and nothing claims it succeeded; a read answers, from
 * the orphaned file (the task installed before is there); the engine's writes of the install in
 * progress are refused too.
 */
async function expectWritesRefused({ process, server }: Started, installedTaskId: string) {
  const other = UNINSTALLED_APPS[1];
  const refused = await rawRequest(server, { query: install(other.appName, other.version) });
  expect(refused.status, refused.text).toBe(503);
  expect(refused.body?.errors?.map((error) => [error.message, error.extensions?.code])).toEqual([
    ['The database is unavailable; retry shortly.', 'UNAVAILABLE'],
  ]);
  expect(refused.text).not.toContain('InstallAppSuccess');
  const read = dataOf(await execute(server, TaskDetailQuery, { taskId: installedTaskId }));
  expect(read.task?.taskId).toBe(installedTaskId);
  const sinceRefused = process.logs.length;
  // The install in progress: the engine's next write of its state is refused as the database away.
  await process.waitForLog(
    (line) =>
      process.logs.indexOf(line) >= sinceRefused &&
      line.msg === 'could not apply an app-service state event' &&
      line.error === 'database unavailable',
    'the engine met the refusal',
  );
}

describe('writes after the SQLite file went away under the server', () => {
  test('a deleted file: mutations and the engine answer UNAVAILABLE, reads go on', async () => {
    const run = await started();
    const first = UNINSTALLED_APPS[0];
    const taskId = await installThroughApi(run.server, first);
    rmSync(run.file);
    await fileReported(run, 'the database file was deleted while the server ran');
    await expectWritesRefused(run, taskId);
    run.process.child.kill('SIGTERM');
    expect(await run.process.exited).toEqual({ code: 0, signal: null });
    expect(run.process.logs.filter((line) => line.msg === 'could not empty the WAL')).toEqual([]);
  });

  test('a replaced file: mutations and the engine answer UNAVAILABLE, reads go on, and the stop still empties the WAL', async () => {
    const run = await started();
    const backup = `${run.file}.backup`;
    const connection = new Database(run.file);
    connection.exec(`VACUUM INTO '${backup}'`);
    connection.close();
    const first = UNINSTALLED_APPS[0];
    // Only in the file the server has open: the backup was taken before.
    const taskId = await installThroughApi(run.server, first);
    renameSync(backup, run.file);
    await fileReported(run, 'the database file was replaced while the server ran');
    await expectWritesRefused(run, taskId);
    run.process.child.kill('SIGTERM');
    expect(await run.process.exited).toEqual({ code: 0, signal: null });
    expect(run.process.logs.filter((line) => line.msg === 'could not empty the WAL')).toEqual([]);
    const cleanUp = run.process.logs.find((line) => line.msg?.includes('-wal and -shm it had open are removed'));
    expect(cleanUp?.removed).toEqual([`${run.file}-wal`, `${run.file}-shm`]);
  });
});

describe('a connection whose writes are refused (refuseWrites)', () => {
  test("refuses Prisma's writes and the driver's, in a transaction or not, as the database away; reads and a checkpoint still run", async () => {
    database = await createTestDatabase('sqlite');
    const db = createPrismaClient(database.url);
    const driver = driverSqlOf(db);
    const position = new Date();
    try {
      await db.jobCursor.create({ data: { name: 'before', position } });
      refuseWrites(db);
      const writes: [string, () => Promise<unknown>][] = [
        ['prisma', () => db.jobCursor.create({ data: { name: 'prisma', position } })],
        ['prisma tx', () => db.$transaction((tx) => tx.jobCursor.create({ data: { name: 'prisma-tx', position } }))],
        [
          'driver',
          () => driver.$executeRaw`INSERT INTO "JobCursor" ("name", "position") VALUES ('driver', ${position})`,
        ],
        [
          'driver tx',
          () =>
            driver.$transaction(
              (tx) => tx.$executeRaw`INSERT INTO "JobCursor" ("name", "position") VALUES ('driver-tx', ${position})`,
            ),
        ],
      ];
      for (const [name, write] of writes) {
        const error = await write().then(
          () => null,
          (failure: unknown) => failure,
        );
        expect([name, isDatabaseUnavailable(error)], String(error)).toEqual([name, true]);
      }
      expect((await db.jobCursor.findMany({ select: { name: true } })).map(({ name }) => name)).toEqual(['before']);
      expect(await driver.$queryRaw`SELECT "name" FROM "JobCursor"`).toEqual([{ name: 'before' }]);
      const wal = `${sqliteFilePath(database.url)}-wal`;
      expect(statSync(wal).size).toBeGreaterThan(0); // 'before' is there
      await db.$queryRawUnsafe('PRAGMA wal_checkpoint(TRUNCATE)');
      expect(statSync(wal).size).toBe(0);
    } finally {
      await db.$disconnect();
    }
  });
});
