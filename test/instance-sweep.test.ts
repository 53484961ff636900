import { describe, expect, test } from 'vitest';
import { sweepInstances } from '../src/runtime/instance-sweep.js';
import { RuntimeApplier } from '../src/runtime/runtime-applier.js';
import type { RuntimeChange } from '../src/runtime/runtime-change.js';
import { type ComponentStatus, type RuntimeEvent, StateStore } from '../src/runtime/state-store.js';

/**
 * Cluster mode: the leader's sweep of the other instances' components (a killed instance's said
 * RUNNING for good; a stopped one's stayed for good), and a component leaving the runtime.
 */

const NOW = Date.parse('2026-12-04T12:00:00.000Z');
const SETTINGS = { silenceMs: 30_000, retentionMs: 3_600_000 };

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

describe('sweepInstances', () => {
  test('an instance not heard from for the silence shows STOPPED, with the time it was last heard from', () => {
    const sweep = sweepInstances(
      [component('database@b', 30_000), component('pubsub@b', 31_000), component('database@c', 29_999)],
      'a',
      NOW,
      SETTINGS,
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

  test('its own components and the cluster-wide ones (no instance) are never swept, however old', () => {
    const old = 86_400_000;
    const sweep = sweepInstances(
      [
        component('database@a', old),
        component('cluster', old),
        component('pubsub@a', old, { state: 'STOPPED' }),
        component('chart_repo', old, { state: 'STOPPED' }),
      ],
      'a',
      NOW,
      SETTINGS,
    );
    expect(sweep).toEqual({ silenced: [], silencedInstances: [], removed: [] });
  });

  test('STOPPED components leave once their last sign of life is older than the retention', () => {
    const stopped = { state: 'STOPPED' as const, healthy: false, message: 'instance stopped' };
    const sweep = sweepInstances(
      [component('database@old', 3_600_000, stopped), component('database@recent', 3_599_999, stopped)],
      'a',
      NOW,
      SETTINGS,
    );
    expect(sweep.removed).toEqual(['database@old']);
    expect(sweep.silenced).toEqual([]);
  });

  test('an instance name holding "@" is read from the last one (component names have none)', () => {
    const sweep = sweepInstances([component('database@b@x', 60_000)], 'b', NOW, SETTINGS);
    expect(sweep.silencedInstances).toEqual(['x']);
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

  test('the applier removes them from a log entry, and leaves a kind it does not know alone', () => {
    const { store, events } = storeWithEvents();
    const applier = new RuntimeApplier(store);
    applier.apply({ kind: 'components', components: [component('database@b', 0), component('pubsub@b', 0)] });
    applier.apply({ kind: 'componentsRemoved', names: ['database@b', 'pubsub@b'] });
    expect(store.allComponents()).toEqual([]);
    const count = events.length;
    // An entry of a newer version's instance (a rolling deploy): before, it was taken for a chart repo status.
    applier.apply({ kind: 'somethingNewer', value: 1 } as unknown as RuntimeChange);
    expect(events).toHaveLength(count);
    expect(store.chartRepoState()).toBeNull();
  });
});
