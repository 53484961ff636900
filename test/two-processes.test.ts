import { afterEach, expect, test } from 'vitest';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import {
  killLeftovers,
  type LogLine,
  listeningUrl,
  SERVER_COMMAND,
  type ServerProcess,
  serverEnv,
  skewedClockEnv,
  startProcess,
} from './support/process.js';
import { waitFor } from './support/server.js';
import { componentOf } from './support/untyped.js';

/**
 * Two server processes on one database without REDIS_URL (a second `npm start`, a deployment
 * scaled to two replicas): each keeps the runtime state and live views of its own changes only.
 * Nothing said so; the `database` component of each says it while the other runs. On PostgreSQL
 * they may run on machines whose clocks disagree: one process runs a minute ahead there (with
 * each machine's own clock, it took the other's presence for stale, removed it, and saw no one).
 */

const databases = await availableDatabases();
let database: TestDatabase | undefined;
const servers: { process: ServerProcess; url: string }[] = [];

async function start(env: Record<string, string> = {}): Promise<{ process: ServerProcess; url: string }> {
  if (!database) throw new Error('no database');
  const server = startProcess(SERVER_COMMAND, serverEnv(database.url, { COLLECT_INTERVAL_MS: '200', ...env }));
  const started = { process: server, url: (await listeningUrl(server)).origin };
  servers.push(started);
  return started;
}

const databaseComponent = (url: string) => componentOf({ graphqlUrl: `${url}/graphql` }, 'database');

afterEach(async () => {
  for (const { process } of servers.splice(0)) {
    if (process.child.exitCode === null && process.child.signalCode === null) {
      process.child.kill('SIGTERM');
      await process.exited;
    }
  }
  await killLeftovers();
  await database?.drop();
  database = undefined;
}, 60_000);

const cases = databases.map((kind) => ({ kind, secondEnv: kind === 'sqlite' ? {} : skewedClockEnv(60_000) }));

test.each(cases)(
  'each of two processes on one $kind database without REDIS_URL says so, until the other stops',
  async ({ kind, secondEnv }) => {
    database = await createTestDatabase(kind);
    const first = await start();
    await waitFor(
      async () => ((await databaseComponent(first.url))?.metrics.otherProcesses === 0 ? true : undefined),
      'the first process alone',
    );
    const second = await start(secondEnv);
    const shared = 'other server process(es) use this database without REDIS_URL';
    for (const { url } of [first, second]) {
      const component = await waitFor(async () => {
        const found = await databaseComponent(url);
        // Under load a check may outlast a 200-ms cycle, which the component says for a while too.
        return found?.state === 'ERROR' && found.message?.includes(shared) ? found : undefined;
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
  },
  90_000,
);
