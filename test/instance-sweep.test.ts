import { describe, expect, test } from 'vitest';
import { differingSettings, SWEEP_EVENT_BOUND, sweepInstances } from '../src/runtime/instance-sweep.js';
import { RuntimeApplier } from '../src/runtime/runtime-applier.js';
import { eventBound, type RuntimeChange } from '../src/runtime/runtime-change.js';
import { type ComponentStatus, type RuntimeEvent, StateStore } from '../src/runtime/state-store.js';

/**
 * Cluster mode: the leader's sweep of the other instances' components (a killed instance's said
 * RUNNING for good; a stopped one's stayed for good), and a component leaving the runtime.
 */

const NOW = Date.parse('2026-12-04T12:00:00.000Z');

function component(name: string, ageMs: number, overrides: Partial<ComponentStatus> = {}): ComponentStatus {
  return {
    name,
    healthy: true,
    state: 'RUNNING',
    message: null,
    lastCheck: new Date(NOW - ageMs),
    metrics: { connections: 1 },
    ...overrides,
  };
}

const ORDER = { at: NOW, silenceMs: 30_000, retentionMs: 3_600_000 };
const STOPPED = { state: 'STOPPED' as const, healthy: false, message: 'instance stopped' };

describe('sweepInstances', () => {
  test('an instance not heard from for the silence shows STOPPED, with the time it was last heard from', () => {
    const sweep = sweepInstances(
      [component('database@b', 30_000), component('pubsub@b', 31_000), component('database@c', 29_999)],
      ORDER,
    );
    expect(sweep.silenced).toEqual([
      {
        ...component('database@b', 30_000),
        state: 'STOPPED',
        healthy: false,
        message: 'instance b not heard from since 2026-12-04T11:59:30.000Z',
      },
      {
        ...component('pubsub@b', 31_000),
        state: 'STOPPED',
        healthy: false,
        message: 'instance b not heard from since 2026-12-04T11:59:29.000Z',
      },
    ]);
    expect(sweep.silencedInstances).toEqual(['b']);
    expect(sweep.removed).toEqual([]);
  });

  test('an instance collecting less often than a third of the silence counts as silent after three of its cycles', () => {
    const slow = component('collector@slow', 50_000, { metrics: { intervalMs: 20_000 } });
    expect(sweepInstances([slow, component('database@slow', 59_999)], ORDER).silenced).toEqual([]);
    expect(sweepInstances([slow, component('database@slow', 60_000)], ORDER).silencedInstances).toEqual(['slow']);
  });

  test('the cluster-wide components (no instance) are never swept, however old', () => {
    const old = 86_400_000;
    const sweep = sweepInstances([component('cluster', old), component('chart_repo', old, STOPPED)], ORDER);
    expect(sweep).toEqual({ silenced: [], silencedInstances: [], removed: [] });
  });

  test('STOPPED components leave once past the retention and the silence: a live instance keeps its own', () => {
    const sweep = sweepInstances(
      [
        component('database@old', 3_600_000, STOPPED),
        component('database@recent', 3_599_999, STOPPED),
        component('task_engine@live', 1_000, { ...STOPPED, message: 'not started' }),
      ],
      ORDER,
    );
    expect(sweep.removed).toEqual(['database@old']);
    expect(
      sweepInstances([component('task_engine@live', 1_000, STOPPED)], { ...ORDER, retentionMs: 0 }).removed,
    ).toEqual([]);
    expect(sweep.silenced).toEqual([]);
  });

  test('an instance name holding "@" is read from the last one (component names have none)', () => {
    const sweep = sweepInstances([component('database@b@x', 60_000)], ORDER);
    expect(sweep.silencedInstances).toEqual(['x']);
  });
});

describe('settings every instance must share', () => {
  const collector = (
    instance: string,
    settings: Record<string, number> | undefined,
    state: ComponentStatus['state'] = 'RUNNING',
  ) => component(`collector@${instance}`, 0, { state, metrics: settings ? { settings } : { intervalMs: 1000 } });

  test('agreeing instances, and those that say nothing of their settings (older ones), differ in nothing', () => {
    const same = { TASK_LEASE_MS: 30_000, RUNTIME_EVENT_BUFFER: 10_000 };
    expect(differingSettings([collector('a', same), collector('b', same), collector('old', undefined)])).toBeNull();
  });

  test('each differing setting is named with its values and the instances that hold them; stopped ones do not count', () => {
    const message = differingSettings([
      collector('b', { TASK_LEASE_MS: 30_000, RUNTIME_EVENT_BUFFER: 100 }),
      collector('a', { TASK_LEASE_MS: 30_000, RUNTIME_EVENT_BUFFER: 10_000 }),
      collector('c', { TASK_LEASE_MS: 5_000, RUNTIME_EVENT_BUFFER: 10_000 }),
      collector('gone', { TASK_LEASE_MS: 1, RUNTIME_EVENT_BUFFER: 1 }, 'STOPPED'),
      component('database@c', 0, { metrics: { settings: { TASK_LEASE_MS: 2 } } }),
    ]);
    expect(message).toBe(
      'settings differ between instances (every instance must have the same): ' +
        'TASK_LEASE_MS: 30000 on a, b, 5000 on c; RUNTIME_EVENT_BUFFER: 100 on b, 10000 on a, c',
    );
  });
});

describe('a component leaving the runtime', () => {
  function storeWithEvents() {
    const store = new StateStore({ bufferSize: 100, recentFinishedTasks: 10 });
    const events: RuntimeEvent[] = [];
    store.onEvent((event) => events.push(event));
    return { store, events };
  }

  test('COMPONENT_REMOVED names it; snapshots and the summary no longer count it', () => {
    const { store, events } = storeWithEvents();
    store.putComponent(component('database@b', 0));
    store.putComponent(component('database@a', 0));
    expect(store.summary().activeComponents).toBe(2);
    store.removeComponent('database@b');
    expect(events.at(-1)).toMatchObject({ kind: 'COMPONENT_REMOVED', componentName: 'database@b' });
    expect(store.snapshot().components.map((c) => c.name)).toEqual(['database@a']);
    expect(store.summary().activeComponents).toBe(1);
    expect(store.eventsSince(events[0]?.sequence as number)?.map((event) => event.kind)).toEqual([
      'COMPONENT_CHANGED',
      'COMPONENT_REMOVED',
    ]);
  });

  test('removing one the store does not hold is no event; one put again after removal is pushed again', () => {
    const { store, events } = storeWithEvents();
    store.removeComponent('database@b');
    expect(events).toEqual([]);
    store.putComponent(component('database@b', 0));
    store.removeComponent('database@b');
    store.putComponent(component('database@b', 0));
    expect(events.map((event) => event.kind)).toEqual(['COMPONENT_CHANGED', 'COMPONENT_REMOVED', 'COMPONENT_CHANGED']);
  });

  test('a sweep order: every instance applies it to its own store, one holding more sweeps more', () => {
    // The leader started after b's components were last published: it never saw them.
    const leader = storeWithEvents();
    const older = storeWithEvents();
    for (const store of [leader.store, older.store]) store.putComponent(component('database@a', 0));
    older.store.putComponent(component('database@b', 40_000));
    older.store.putComponent(component('pubsub@c', 7_200_000, STOPPED));
    const order: RuntimeChange = { kind: 'components', components: [], sweep: ORDER };
    expect(new RuntimeApplier(leader.store).apply(order)).toEqual([]);
    expect(new RuntimeApplier(older.store).apply(order)).toEqual(['b']);
    expect(older.store.allComponents().map(({ name, state }) => [name, state])).toEqual([
      ['database@a', 'RUNNING'],
      ['database@b', 'STOPPED'],
    ]);
    expect(older.events.slice(-2).map((event) => event.kind)).toEqual(['COMPONENT_CHANGED', 'COMPONENT_REMOVED']);
    expect(leader.store.allComponents().map(({ name }) => name)).toEqual(['database@a']);
  });

  test('an order reserves its events in the log, and is a components change without components', () => {
    // Without components, so that an instance of the previous version, which took any other kind
    // of change for a chart repo status, does nothing with it during a rolling deploy.
    expect(eventBound({ kind: 'components', components: [], sweep: ORDER })).toBe(SWEEP_EVENT_BOUND);
    const many = Array.from({ length: SWEEP_EVENT_BOUND + 5 }, (_, i) => component(`database@gone-${i}`, 40_000));
    expect(sweepInstances(many, ORDER).silenced).toHaveLength(SWEEP_EVENT_BOUND);
  });

  test('the applier leaves a kind it does not know alone', () => {
    const { store, events } = storeWithEvents();
    const applier = new RuntimeApplier(store);
    // An entry of a newer version's instance (a rolling deploy): before, it was taken for a chart repo status.
    applier.apply({ kind: 'somethingNewer', value: 1 } as unknown as RuntimeChange);
    expect(events).toEqual([]);
    expect(store.chartRepoState()).toBeNull();
  });
});
