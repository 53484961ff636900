import { describe, expect, test } from 'vitest';
import { type ComponentStatus, type RuntimeEvent, StateStore } from '../src/runtime/state-store.js';

/**
 * Which component changes become runtime events: what a component says about itself at once; its
 * metrics (which move nearly every collect) only at COMPONENT_METRICS_PUSH_MS, so that thousands
 * of idle dashboards are not sent a frame per collect.
 */

function component(overrides: Partial<ComponentStatus> = {}): ComponentStatus {
  return {
    name: 'pubsub',
    healthy: true,
    state: 'RUNNING',
    message: null,
    lastCheck: new Date(),
    metrics: { connections: 1 },
    ...overrides,
  };
}

function storeWith(componentMetricsPushMs: number) {
  let clock = 1_000_000;
  const store = new StateStore({ bufferSize: 100, recentFinishedTasks: 10, componentMetricsPushMs, now: () => clock });
  const pushed: RuntimeEvent[] = [];
  store.onEvent((event) => pushed.push(event));
  return { store, pushed, advance: (ms: number) => (clock += ms) };
}

describe('component events', () => {
  test('a new component, and a change of its state, health or message, is pushed at once', () => {
    const { store, pushed } = storeWith(0);
    store.putComponent(component());
    store.putComponent(component({ state: 'DEGRADED' }));
    store.putComponent(component({ state: 'DEGRADED', healthy: false }));
    store.putComponent(component({ state: 'DEGRADED', healthy: false, message: 'slow' }));
    expect(pushed.map((event) => event.component)).toMatchObject([
      { state: 'RUNNING' },
      { state: 'DEGRADED', healthy: true },
      { healthy: false, message: null },
      { message: 'slow' },
    ]);
  });

  test('with the default (0) a change of metrics alone is never pushed, but is read on demand', () => {
    const { store, pushed, advance } = storeWith(0);
    store.putComponent(component());
    for (let i = 2; i < 50; i++) {
      advance(60_000);
      store.putComponent(component({ metrics: { connections: i }, lastCheck: new Date() }));
    }
    expect(pushed).toHaveLength(1);
    expect(store.allComponents()).toMatchObject([{ metrics: { connections: 49 } }]);
  });

  test('with an interval, metrics go out at most that often, and settled ones still go out once', () => {
    const { store, pushed, advance } = storeWith(10_000);
    store.putComponent(component());
    advance(4_000);
    store.putComponent(component({ metrics: { connections: 2 } }));
    advance(4_000);
    store.putComponent(component({ metrics: { connections: 3 } }));
    expect(pushed).toHaveLength(1);

    advance(4_000); // 12 s after the last push: the settled value is sent, though it did not just change
    store.putComponent(component({ metrics: { connections: 3 } }));
    expect(pushed.map((event) => event.component?.metrics)).toEqual([{ connections: 1 }, { connections: 3 }]);

    advance(20_000); // nothing new since the last push: nothing is sent
    store.putComponent(component({ metrics: { connections: 3 } }));
    expect(pushed).toHaveLength(2);
  });
});
