import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { RuntimeTaskRow } from '../src/db/models.js';
import { appKeyString } from '../src/domain/app-key.js';
import { APP_STAGES, HEALTHS } from '../src/domain/app-stage.js';
import { defineFilter, equals } from '../src/domain/filters.js';
import { TASK_STATUSES, TASK_TYPES } from '../src/domain/tasks.js';
import {
  type RuntimeApp,
  type RuntimeSummary,
  type SnapshotFilter,
  SnapshotScope,
  StateStore,
} from '../src/runtime/state-store.js';
import { IndexedRows } from '../src/runtime/store-index.js';

/**
 * The store answers filtered snapshots and summaries from secondary indexes instead of a scan.
 * Whatever the sequence of changes and whatever the filter, the answer must be the one a plain
 * scan gives — the same apps and tasks in the same order, and the same counts. The scan here is
 * over a model kept beside the store: a Map of the apps and one of the tasks, changed by the same
 * calls (a Map's insertion order is what "store order" means), less the tasks the store announces
 * it dropped.
 */

const USERS = ['alice', 'bob', 'carol'];
const SOURCES = ['market.olares', 'upload'];
const APP_NAMES = ['a', 'b', 'c', 'd'];

const change = fc.oneof(
  fc.record({
    op: fc.constant('putApp' as const),
    userId: fc.constantFrom(...USERS),
    sourceId: fc.constantFrom(...SOURCES),
    appName: fc.constantFrom(...APP_NAMES),
    stage: fc.constantFrom(...APP_STAGES),
    health: fc.constantFrom(...HEALTHS),
  }),
  fc.record({
    op: fc.constant('removeApp' as const),
    userId: fc.constantFrom(...USERS),
    sourceId: fc.constantFrom(...SOURCES),
    appName: fc.constantFrom(...APP_NAMES),
  }),
  fc.record({
    op: fc.constant('putTask' as const),
    taskNo: fc.integer({ min: 1, max: 12 }),
    // Ids repeat across tasks, so the order of tasks with equal ids (store order) is checked too.
    id: fc.integer({ min: 1, max: 8 }),
    userId: fc.constantFrom(...USERS),
    sourceId: fc.constantFrom(...SOURCES),
    appName: fc.constantFrom(...APP_NAMES),
    status: fc.constantFrom(...TASK_STATUSES),
    type: fc.constantFrom(...TASK_TYPES),
  }),
);

type Change = typeof change extends fc.Arbitrary<infer C> ? C : never;
type TaskChange = Extract<Change, { op: 'putTask' }>;

/** Any value a filter field can take, unset ones (null, '', []) and ones matching nothing included. */
const filter: fc.Arbitrary<SnapshotFilter> = fc.record(
  {
    userId: fc.constantFrom(null, '', 'nobody', ...USERS),
    sourceId: fc.constantFrom(null, 'nowhere', ...SOURCES),
    appName: fc.constantFrom(null, 'z', ...APP_NAMES),
    stage: fc.subarray([...APP_STAGES]),
    health: fc.constantFrom(null, ...HEALTHS),
    taskStatus: fc.subarray([...TASK_STATUSES]),
    taskType: fc.subarray([...TASK_TYPES]),
  },
  { requiredKeys: [] },
);

function app(c: { userId: string; sourceId: string; appName: string; stage: string; health: string }): RuntimeApp {
  const { userId, sourceId, appName, stage, health } = c;
  return { userId, sourceId, appName, derived: { stage, health } } as unknown as RuntimeApp;
}

function task(c: Omit<TaskChange, 'op'>): RuntimeTaskRow {
  const { id, taskNo, userId, sourceId, appName, status, type } = c;
  return { id, taskId: `task-${taskNo}`, userId, sourceId, appName, status, type } as RuntimeTaskRow;
}

/** What the summary says about these apps and tasks, counted the plain way. */
function counted(apps: RuntimeApp[], tasks: RuntimeTaskRow[]): Omit<RuntimeSummary, 'activeComponents'> {
  const tasksIn = (status: string) => tasks.filter((t) => t.status === status).length;
  return {
    totalApps: apps.length,
    healthyApps: apps.filter((a) => a.derived.health === 'HEALTHY').length,
    unhealthyApps: apps.filter((a) => a.derived.health === 'UNHEALTHY').length,
    appsByStage: APP_STAGES.map((stage) => ({
      stage,
      count: apps.filter((a) => a.derived.stage === stage).length,
    })).filter(({ count }) => count > 0),
    totalTasks: tasks.length,
    pendingTasks: tasksIn('PENDING'),
    runningTasks: tasksIn('RUNNING'),
    completedTasks: tasksIn('COMPLETED'),
    failedTasks: tasksIn('FAILED'),
    canceledTasks: tasksIn('CANCELED'),
  };
}

/** A store and the model beside it, after the same changes. */
function replay(changes: Change[]) {
  // Few finished tasks kept, so trimming (which drops tasks from the indexes) happens often.
  const store = new StateStore({ bufferSize: 10, recentFinishedTasks: 3 });
  const apps = new Map<string, RuntimeApp>();
  const tasks = new Map<string, RuntimeTaskRow>();
  store.onEvent((event) => {
    if (event.kind === 'TASK_REMOVED' && event.task) tasks.delete(event.task.taskId);
  });
  for (const c of changes) {
    if (c.op === 'putApp') {
      apps.set(appKeyString(c), app(c));
      store.putApp(app(c));
    }
    if (c.op === 'removeApp') {
      apps.delete(appKeyString(c));
      store.removeApp(c);
    }
    if (c.op === 'putTask') {
      const row = task(c);
      tasks.set(row.taskId, row);
      store.putTask(row);
    }
  }
  return { store, apps, tasks };
}

describe('indexed runtime snapshots', () => {
  test('after any sequence of changes, a filtered snapshot and summary equal a plain scan, order included', () => {
    fc.assert(
      fc.property(
        fc.array(change, { maxLength: 80 }),
        fc.array(filter, { minLength: 1, maxLength: 6 }),
        (changes, filters) => {
          const { store, apps, tasks } = replay(changes);
          for (const value of filters) {
            const scope = new SnapshotScope(value);
            const expectedApps = [...apps.values()].filter((a) => scope.apps.matches(a));
            // Array.prototype.sort is stable: equal ids stay in store order.
            const expectedTasks = [...tasks.values()].filter((t) => scope.tasks.matches(t)).sort((a, b) => b.id - a.id);
            const snapshot = store.snapshot(scope);
            expect(snapshot.apps).toEqual(expectedApps);
            expect(snapshot.tasks).toEqual(expectedTasks);
            const summary = { ...counted(expectedApps, expectedTasks), activeComponents: 0 };
            expect(snapshot.summary).toEqual(summary);
            expect(store.summary(scope)).toEqual(summary);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  test('an app whose stage changes is found under its new stage only, still in its first place', () => {
    const store = new StateStore({ bufferSize: 10, recentFinishedTasks: 3 });
    const put = (appName: string, stage: string) =>
      store.putApp(app({ userId: 'alice', sourceId: 'upload', appName, stage, health: 'UNKNOWN' }));
    put('a', 'RUNNING');
    put('b', 'FAILED');
    put('a', 'FAILED');
    const names = (filter: SnapshotFilter) => store.snapshot(new SnapshotScope(filter)).apps.map((a) => a.appName);
    expect(names({ stage: ['FAILED'] })).toEqual(['a', 'b']);
    expect(names({ stage: ['RUNNING'] })).toEqual([]);
    expect(store.summary(new SnapshotScope({ stage: ['RUNNING', 'FAILED'] })).totalApps).toBe(2);
  });

  test('a removed app and a dropped task are no longer found by any filter', () => {
    const store = new StateStore({ bufferSize: 10, recentFinishedTasks: 1 });
    const key = { userId: 'alice', sourceId: 'upload', appName: 'a' };
    store.putApp(app({ ...key, stage: 'RUNNING', health: 'HEALTHY' }));
    store.removeApp(key);
    const base = { userId: 'alice', sourceId: 'upload', appName: 'a', type: 'INSTALL' } as const;
    store.putTask(task({ ...base, taskNo: 1, id: 1, status: 'COMPLETED' }));
    store.putTask(task({ ...base, taskNo: 2, id: 2, status: 'FAILED' }));
    const snapshot = store.snapshot(new SnapshotScope({ userId: 'alice', taskStatus: ['COMPLETED', 'FAILED'] }));
    expect(snapshot.apps).toEqual([]);
    expect(snapshot.tasks.map((t) => t.taskId)).toEqual(['task-2']);
  });

  test('values no row holds any more keep no bucket, so memory does not grow with users seen once', () => {
    const rows = new IndexedRows<{ userId: string; status: string }>([{ column: 'userId' }, { column: 'status' }]);
    rows.set('kept', { userId: 'alice', status: 'RUNNING' });
    for (let i = 0; i < 100; i += 1) {
      rows.set(`k${i}`, { userId: `user-${i}`, status: 'PENDING' });
      rows.set(`k${i}`, { userId: `user-${i}`, status: `DONE-${i}` });
      rows.delete(`k${i}`);
    }
    expect(rows.bucketCount).toBe(2);
    const byUser = defineFilter<{ userId?: string }, { userId: string; status: string }>({ userId: equals('userId') });
    expect(rows.select(byUser.compile({ userId: 'user-5' }))).toEqual([]);
    expect(rows.select(byUser.compile({ userId: 'alice' }))).toEqual([{ userId: 'alice', status: 'RUNNING' }]);
  });
});
