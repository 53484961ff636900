import { InstallAppMutation, RuntimeSnapshotQuery, TaskDetailQuery } from './operations.js';
import { listeningUrl, SERVER_COMMAND, type ServerProcess, serverEnv, startProcess } from './process.js';
import { dataOf, execute, waitFor } from './server.js';

/** The gateway header the cluster tests' instances trust (AUTH_USER_HEADER); `ops` is their admin. */
export const USER_HEADER = 'x-test-user';

/** Request options that act as `user` through the gateway header. */
export const as = (user: string) => ({ headers: { [USER_HEADER]: user } });

/** What two instances' runtime states must agree on: apps and tasks (components are each instance's own). */
export async function runtimeContent(instance: { graphqlUrl: string }) {
  const { runtimeSnapshot } = dataOf(await execute(instance, RuntimeSnapshotQuery, {}, as('ops')));
  const { sequence, summary, apps, tasks } = runtimeSnapshot;
  // Components report every COLLECT_INTERVAL_MS, each at its own time: compared apart.
  const { activeComponents: _reportedEachCycle, ...counts } = summary;
  const byKey = (a: { userId: string; appName: string }, b: { userId: string; appName: string }) =>
    `${a.userId}/${a.appName}`.localeCompare(`${b.userId}/${b.appName}`);
  return {
    sequence,
    counts,
    apps: [...apps].sort(byKey),
    tasks: [...tasks].sort((x, y) => x.taskId.localeCompare(y.taskId)),
  };
}

/** Installs an app from market.olares as `user` on `instance`; its task id, or a failure showing the answer. */
export async function installOn(
  instance: { graphqlUrl: string },
  user: string,
  appName: string,
  version: string,
): Promise<string> {
  const variables = { input: { sourceId: 'market.olares', appName, version } };
  const { installApp } = dataOf(await execute(instance, InstallAppMutation, variables, as(user)));
  if (installApp.__typename !== 'InstallAppSuccess') throw new Error(`install refused: ${JSON.stringify(installApp)}`);
  return installApp.task.taskId;
}

/** Waits until `instance` reports the task COMPLETED. */
export function completedOn(instance: { graphqlUrl: string }, taskId: string): Promise<true> {
  return waitFor(async () => {
    const { task } = dataOf(await execute(instance, TaskDetailQuery, { taskId }, as('ops')));
    return task?.status === 'COMPLETED' ? true : undefined;
  }, `task ${taskId} to complete`);
}

/** What two runtimeEvents subscribers must agree on: each event's sequence, kind, app and task. */
export function eventContents(
  events: { runtimeEvents: { sequence: number; kind: string; app?: unknown; task?: unknown } }[],
) {
  return events.map(({ runtimeEvents: { sequence, kind, app, task } }) => ({ sequence, kind, app, task }));
}

/** The task engine's id on the rows its workers claim, from the instance's own components. */
export async function workerIdOf(instance: { name: string; graphqlUrl: string }): Promise<string> {
  return waitFor(async () => {
    const { runtimeSnapshot } = dataOf(await execute(instance, RuntimeSnapshotQuery, {}, as('ops')));
    const engine = runtimeSnapshot.components.find((component) => component.name === `task_engine@${instance.name}`);
    const id = (engine?.metrics as { instanceId?: string } | undefined)?.instanceId;
    return typeof id === 'string' ? id : undefined;
  }, `the task engine of ${instance.name} to report its instance id`);
}

/** A server process of a cluster test. */
export interface Instance {
  server: ServerProcess;
  url: string;
  graphqlUrl: string;
  /** What it was started with, to start it again. */
  env: Record<string, string>;
}

/** One server process (`node --import tsx src/index.ts`), resolved once it listens. */
export async function startInstance(env: Record<string, string>): Promise<Instance> {
  const server = startProcess(
    SERVER_COMMAND,
    serverEnv(env.DATABASE_URL as string, {
      AUTH_USER_HEADER: USER_HEADER,
      AUTH_ADMIN_USERS: 'ops',
      MUTATION_RATE_PER_S: '0',
      SIMULATED_STEP_MS: '10',
      SIMULATED_FAIL_APPS: '',
      TASK_CONCURRENCY: '4',
      ...env,
    }),
  );
  const url = (await listeningUrl(server)).origin;
  return { server, url, graphqlUrl: `${url}/graphql`, env };
}

/** Stops (SIGTERM) each instance still running, and waits for it to exit: a test's clean-up. */
export async function stopRunning(instances: readonly (Instance | undefined)[]): Promise<void> {
  for (const instance of instances) {
    const { child, exited } = instance?.server ?? {};
    if (child?.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  }
}

/** `market_redis_connected` on the instance's /metrics. */
export async function redisConnected(instance: Instance): Promise<string | undefined> {
  const lines = (await (await fetch(`${instance.url}/metrics`)).text()).split('\n');
  return lines.find((line) => line.startsWith('market_redis_connected '))?.split(' ')[1];
}
