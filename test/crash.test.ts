import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import type { TaskStatus } from './gql/graphql.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { InstallAppMutation, TaskDetailQuery, TasksQuery } from './support/operations.js';
import { UNINSTALLED_APPS } from './support/rows.js';
import { dataOf, execute, waitFor } from './support/server.js';

const databases = await availableDatabases();

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LISTENING = 'Market Runtime GraphQL API listening';
const SOURCE = 'market.olares';

const INSTALLS = UNINSTALLED_APPS.slice(0, 6);

const ACTIVE: TaskStatus[] = ['PENDING', 'RUNNING'];

interface ChildServer {
  process: ChildProcess;
  graphqlUrl: string;
  /** Every line the server wrote to stdout and stderr, for failure messages. */
  output: string[];
}

/** Every server process this file started, so none outlives a failing test. */
const children = new Set<ChildProcess>();

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitForExit(child: ChildProcess): Promise<void> {
  if (!exited(child)) await once(child, 'exit');
}

/** `node --import tsx src/index.ts` on `databaseUrl`; resolves with its URL once it logs that it listens. */
async function startChild(databaseUrl: string): Promise<ChildServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: '0',
      HOST: '127.0.0.1',
      // Local development mode: every request is the admin user.
      AUTH_TOKENS: '',
      AUTH_USER_HEADER: '',
      DEMO_DATA: '1',
      // Slow enough that installs are caught mid-flight; an install takes 6 steps.
      SIMULATED_STEP_MS: '400',
      SIMULATED_FAIL_APPS: '',
      TASK_CONCURRENCY: '2',
      // The restarted process takes over the dead one's tasks once their lease expires.
      TASK_LEASE_MS: '1000',
      LOG_LEVEL: 'info',
    },
  });
  children.add(child);
  const output: string[] = [];
  // Both streams are read for the whole life of the child, so it never blocks on a full pipe.
  createInterface({ input: child.stderr! }).on('line', (line) => output.push(line));
  const lines = createInterface({ input: child.stdout! });
  const graphqlUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not listen within 30 s:\n${output.join('\n')}`)),
      30_000,
    );
    lines.on('line', (line) => {
      output.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === LISTENING && entry.url) {
          clearTimeout(timer);
          resolve(entry.url);
        }
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${signal ?? code}) before listening:\n${output.join('\n')}`));
    });
  });
  return { process: child, graphqlUrl, output };
}

async function taskDetail(server: ChildServer, taskId: string) {
  const { task } = dataOf(await execute(server, TaskDetailQuery, { taskId }));
  if (!task) throw new Error(`task ${taskId} is not visible`);
  return task;
}

async function allTaskDetails(server: ChildServer, taskIds: string[]) {
  return Promise.all(taskIds.map((taskId) => taskDetail(server, taskId)));
}

describe.each(databases)('crash recovery on %s', (kind) => {
  let database: TestDatabase | undefined;

  afterEach(async () => {
    for (const child of children) {
      if (!exited(child)) child.kill('SIGKILL');
      await waitForExit(child);
      children.delete(child);
    }
    await database?.drop();
    database = undefined;
  });

  test('after a SIGKILL, the restarted server fails the tasks the simulated app service was running as lost and runs the pending ones; no task is lost or duplicated', async () => {
    database = await createTestDatabase(kind);
    const first = await startChild(database.url);

    // Several installs: with two workers (busy first with the demo's two pending installs),
    // some of them run on the app service while the others wait.
    const taskIds: string[] = [];
    for (const install of INSTALLS) {
      const { installApp } = dataOf(
        await execute(first, InstallAppMutation, { input: { sourceId: SOURCE, ...install } }),
      );
      if (installApp.__typename !== 'InstallAppSuccess') {
        throw new Error(`install of ${install.appName} refused: ${JSON.stringify(installApp)}`);
      }
      taskIds.push(installApp.task.taskId);
    }
    expect(new Set(taskIds).size).toBe(INSTALLS.length);

    await waitFor(
      async () => {
        const tasks = await allTaskDetails(first, taskIds);
        const running = tasks.filter((task) => task.status === 'RUNNING' && task.opId);
        const pending = tasks.filter((task) => task.status === 'PENDING');
        return running.length >= 1 && pending.length >= 2 ? true : undefined;
      },
      'one install running on the app service while others are pending',
      20_000,
    );

    first.process.kill('SIGKILL');
    await waitForExit(first.process);
    expect(first.process.signalCode).toBe('SIGKILL');

    // What the kill left behind, read straight from the database before the restarted server
    // takes the dead one's tasks over.
    const db = createPrismaClient(database.url);
    const [atKill, totalAtKill] = await Promise.all([
      db.task.findMany({ where: { taskId: { in: taskIds } } }),
      db.task.count(),
    ]).finally(() => db.$disconnect());
    const stateAtKill = new Map(atKill.map((task) => [task.taskId, task]));
    expect(stateAtKill.size).toBe(INSTALLS.length);
    // Sent to the app service (dispatchedAt) → adopted, but the simulated app service died with the
    // process, so nothing can follow it: fails "lost". Never sent → runs again.
    const interrupted = atKill
      .filter((task) => task.status === 'RUNNING' && task.dispatchedAt)
      .map((task) => task.taskId);
    const resumed = atKill
      .filter((task) => task.status === 'PENDING' || (task.status === 'RUNNING' && !task.dispatchedAt))
      .map((task) => task.taskId);
    const finishedBefore = atKill.filter((task) => !ACTIVE.includes(task.status as TaskStatus));
    expect(interrupted.length, 'tasks running on the app service at the kill').toBeGreaterThanOrEqual(1);
    expect(
      atKill.filter((task) => task.status === 'PENDING').length,
      'tasks pending at the kill',
    ).toBeGreaterThanOrEqual(1);

    const second = await startChild(database.url);

    // Nothing stays active: every task ends, the resumed ones after running again.
    const final = await waitFor(
      async () => {
        const tasks = await allTaskDetails(second, taskIds);
        return tasks.every((task) => !ACTIVE.includes(task.status)) ? tasks : undefined;
      },
      'every task of the crashed server to end',
      45_000,
    );
    const finalById = new Map(final.map((task) => [task.taskId, task]));

    for (const taskId of interrupted) {
      const task = finalById.get(taskId)!;
      expect(task.status, `${task.app?.appName} was running on the app service`).toBe('FAILED');
      expect(task.error).toMatch(/^lost: the simulated app service keeps its operations in memory only/);
      expect(task.completedAt).not.toBeNull();
      // The app shows the failure and was never installed.
      expect(task.app).toMatchObject({ stage: 'FAILED', installedVersion: null });
    }
    for (const taskId of resumed) {
      const task = finalById.get(taskId)!;
      const install = INSTALLS.find((candidate) => candidate.appName === task.app?.appName)!;
      expect(task.status, `${install.appName} was pending at the kill`).toBe('COMPLETED');
      expect(task.error).toBeNull();
      expect(task.progress).toBe(100);
      expect(task.opId).toMatch(/^sim-/);
      expect(task.app).toMatchObject({ stage: 'RUNNING', installedVersion: install.version });
    }
    for (const before of finishedBefore) {
      expect(finalById.get(before.taskId)?.status).toBe(before.status);
    }

    // None lost, none duplicated: exactly the one task per app, and no task appeared anywhere.
    for (const [index, install] of INSTALLS.entries()) {
      const { tasks } = dataOf(
        await execute(second, TasksQuery, { filter: { sourceId: SOURCE, appName: install.appName }, first: 10 }),
      );
      expect(tasks.totalCount, `tasks of ${install.appName}`).toBe(1);
      expect(tasks.edges.map((edge) => edge.node.taskId)).toEqual([taskIds[index]]);
    }
    const { tasks: everyTask } = dataOf(await execute(second, TasksQuery, { first: 1 }));
    expect(everyTask.totalCount).toBe(totalAtKill);

    second.process.kill('SIGTERM');
    await waitForExit(second.process);
    expect(second.process.exitCode, second.output.slice(-20).join('\n')).toBe(0);
  }, 90_000);
});
