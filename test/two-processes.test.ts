import { afterAll, beforeAll, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import {
  killLeftovers,
  type LogLine,
  listeningUrl,
  SERVER_COMMAND,
  type ServerProcess,
  serverEnv,
  startProcess,
} from './support/process.js';
import { waitFor } from './support/server.js';
import { componentOf } from './support/untyped.js';

/**
 * Two server processes on one database without REDIS_URL (a second `npm start`, a deployment
 * scaled to two replicas): each keeps the runtime state and live views of its own changes only.
 * Nothing said so; the `database` component of each says it while the other runs.
 */

let database: TestDatabase;
const servers: { process: ServerProcess; url: string }[] = [];

async function start(): Promise<{ process: ServerProcess; url: string }> {
  const server = startProcess(SERVER_COMMAND, serverEnv(database.url, { COLLECT_INTERVAL_MS: '200' }));
  const started = { process: server, url: (await listeningUrl(server)).origin };
  servers.push(started);
  return started;
}

const databaseComponent = (url: string) => componentOf({ graphqlUrl: `${url}/graphql` }, 'database');

beforeAll(async () => {
  database = await createTestDatabase('sqlite');
}, 60_000);

afterAll(async () => {
  for (const { process } of servers) {
    if (process.child.exitCode === null && process.child.signalCode === null) {
      process.child.kill('SIGTERM');
      await process.exited;
    }
  }
  await killLeftovers();
  await database?.drop();
}, 60_000);

test('each of two processes on one database without REDIS_URL says so, until the other stops', async () => {
  const first = await start();
  await waitFor(
    async () => ((await databaseComponent(first.url))?.metrics.otherProcesses === 0 ? true : undefined),
    'the first process alone',
  );
  const second = await start();
  const shared = 'other server process(es) use this database without REDIS_URL';
  for (const { url } of [first, second]) {
    const component = await waitFor(async () => {
      const found = await databaseComponent(url);
      return found?.state === 'ERROR' ? found : undefined;
    }, 'the database component to name the other process');
    expect(component.message).toBe(
      `1 ${shared}: each shows only its own changes live (several instances need PostgreSQL and REDIS_URL; on SQLite, run one)`,
    );
  }
  // Each log says so once, as a warning, however many collector cycles it lasts.
  const warned = (line: LogLine) => line.msg?.startsWith('other server processes use this database') === true;
  for (const { process } of [first, second]) {
    expect(await process.waitForLog(warned, 'the warning')).toMatchObject({ level: 40, otherProcesses: 1 });
  }
  second.process.child.kill('SIGTERM');
  expect(await second.process.exited).toEqual({ code: 0, signal: null });
  await waitFor(
    async () => ((await databaseComponent(first.url))?.state === 'RUNNING' ? true : undefined),
    'the first process alone again',
  );
  const resolved = await first.process.waitForLog((line) => line.msg?.startsWith('resolved:') === true, 'resolved');
  expect(resolved).toMatchObject({ level: 30, otherProcesses: 0 });
  expect(first.process.logs.filter(warned)).toHaveLength(1);
}, 90_000);
