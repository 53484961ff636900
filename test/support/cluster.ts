import { RuntimeSnapshotQuery } from './operations.js';
import { dataOf, execute } from './server.js';

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
