import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { RuntimeTaskRow } from '../src/db/models.js';
import { APP_STAGES } from '../src/domain/app-stage.js';
import { TASK_STATUSES } from '../src/domain/tasks.js';
import { type RuntimeApp, SnapshotScope, StateStore } from '../src/runtime/state-store.js';

/**
 * The store keeps running counts for the summaries of "everything" and "one user" instead of
 * recounting the fleet on every event. Whatever sequence of changes happens, those summaries must
 * equal a recount over the same content (the snapshot's summary counts its own apps and tasks).
 */

const USERS = ['alice', 'bob', 'carol'];
const APP_NAMES = ['a', 'b', 'c', 'd'];
const HEALTH = ['HEALTHY', 'UNHEALTHY', 'UNKNOWN'] as const;

const change = fc.oneof(
  fc.record({
    op: fc.constant('putApp' as const),
    userId: fc.constantFrom(...USERS),
    appName: fc.constantFrom(...APP_NAMES),
    stage: fc.constantFrom(...APP_STAGES),
    health: fc.constantFrom(...HEALTH),
  }),
  fc.record({
    op: fc.constant('removeApp' as const),
    userId: fc.constantFrom(...USERS),
    appName: fc.constantFrom(...APP_NAMES),
  }),
  fc.record({
    op: fc.constant('putTask' as const),
    taskNo: fc.integer({ min: 1, max: 12 }),
    userId: fc.constantFrom(...USERS),
    status: fc.constantFrom(...TASK_STATUSES),
  }),
);

function app(userId: string, appName: string, stage: RuntimeApp['derived']['stage'], health: string): RuntimeApp {
  return {
    userId,
    sourceId: 'market.olares',
    appName,
    derived: { stage, health },
  } as unknown as RuntimeApp;
}

function task(taskNo: number, userId: string, status: string): RuntimeTaskRow {
  return {
    id: taskNo,
    taskId: `task-${taskNo}`,
    userId,
    sourceId: 'market.olares',
    appName: 'a',
    type: 'INSTALL',
    status,
  } as unknown as RuntimeTaskRow;
}

describe('runtime summary counts', () => {
  test('after any sequence of changes, the counted summaries equal a recount, for everything and per user', () => {
    fc.assert(
      fc.property(fc.array(change, { maxLength: 80 }), (changes) => {
        // Few finished tasks kept, so trimming (which drops tasks from the counts) happens often.
        const store = new StateStore({ bufferSize: 10, recentFinishedTasks: 3 });
        for (const c of changes) {
          if (c.op === 'putApp') store.putApp(app(c.userId, c.appName, c.stage, c.health));
          if (c.op === 'removeApp')
            store.removeApp({ userId: c.userId, sourceId: 'market.olares', appName: c.appName });
          // A task keeps its owner for life, as in the database.
          if (c.op === 'putTask') store.putTask(task(c.taskNo, USERS[c.taskNo % USERS.length] as string, c.status));
        }
        for (const filter of [{}, ...USERS.map((userId) => ({ userId })), { userId: 'nobody' }]) {
          const scope = new SnapshotScope(filter);
          expect(scope.tallied).not.toBeNull();
          expect(store.summary(scope)).toEqual(store.snapshot(scope).summary);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('a filter on anything but the user is counted over its matches', () => {
    const store = new StateStore({ bufferSize: 10, recentFinishedTasks: 3 });
    store.putApp(app('alice', 'a', 'RUNNING', 'HEALTHY'));
    store.putApp(app('alice', 'b', 'FAILED', 'UNHEALTHY'));
    const scope = new SnapshotScope({ userId: 'alice', stage: ['FAILED'] });
    expect(scope.tallied).toBeNull();
    expect(store.summary(scope)).toMatchObject({
      totalApps: 1,
      unhealthyApps: 1,
      appsByStage: [{ stage: 'FAILED', count: 1 }],
    });
  });

  test('the finished tasks kept are the most recent by id, and the dropped ones are announced in id order', () => {
    // The rule as it reads, recomputed from scratch after every change.
    function expected(puts: RuntimeTaskRow[], keep: number) {
      const tasks = new Map<string, RuntimeTaskRow>();
      const removed: string[] = [];
      for (const put of puts) {
        tasks.set(put.taskId, put);
        const finished = [...tasks.values()].filter((t) => t.status !== 'PENDING' && t.status !== 'RUNNING');
        finished.sort((a, b) => a.id - b.id);
        for (const dropped of finished.slice(0, Math.max(0, finished.length - keep))) {
          tasks.delete(dropped.taskId);
          removed.push(dropped.taskId);
        }
      }
      return { kept: [...tasks.keys()].sort(), removed };
    }
    const put = fc.record({ taskNo: fc.integer({ min: 1, max: 20 }), status: fc.constantFrom(...TASK_STATUSES) });
    fc.assert(
      fc.property(fc.array(put, { maxLength: 100 }), fc.integer({ min: 0, max: 5 }), (changes, keep) => {
        const store = new StateStore({ bufferSize: 1000, recentFinishedTasks: keep });
        const removed: string[] = [];
        store.onEvent((event) => {
          if (event.kind === 'TASK_REMOVED' && event.task) removed.push(event.task.taskId);
        });
        const puts = changes.map((c) => task(c.taskNo, 'alice', c.status));
        for (const row of puts) store.putTask(row);
        const kept = store
          .snapshot()
          .tasks.map((t) => t.taskId)
          .sort();
        expect({ kept, removed }).toEqual(expected(puts, keep));
      }),
      { numRuns: 300 },
    );
  });
});
