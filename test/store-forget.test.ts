import { describe, expect, test } from 'vitest';
import { LOAD_OVERLAP_MS, mayBeLoaded } from '../src/runtime/cluster-join.js';
import { type EventStreamSource, eventStream } from '../src/runtime/event-stream.js';
import type { RuntimeChange } from '../src/runtime/runtime-change.js';
import { type ComponentStatus, type RuntimeEvent, StateStore } from '../src/runtime/state-store.js';

/**
 * Cluster mode: what a store does with events it cannot vouch for (an entry its loaded state may
 * already have held), and which entries those are. The processes around it: since-after-start.test.ts.
 */

const component = (name: string): ComponentStatus => ({
  name,
  healthy: true,
  state: 'RUNNING',
  message: null,
  lastCheck: new Date(0),
  metrics: {},
});

function storeAt(position: number): StateStore {
  const store = new StateStore({ bufferSize: 100, recentFinishedTasks: 10, firstSequence: 1 });
  store.startAt(position);
  return store;
}

const rows = (notedAt?: number): RuntimeChange => ({
  kind: 'rows',
  tasks: [],
  appKeys: [],
  apps: [],
  ...(notedAt === undefined ? {} : { notedAt }),
});

describe('StateStore.forgetUpTo', () => {
  test('a since before the forgotten sequence gets RESYNC; one at or after it resumes', () => {
    const store = storeAt(100);
    store.applyAt(101, 102, () => store.putComponent(component('a')));
    store.applyAt(103, 104, () => store.putComponent(component('b')));
    store.forgetUpTo(102);
    expect(store.eventsSince(100)).toBeNull();
    expect(store.eventsSince(101)).toBeNull();
    expect(store.eventsSince(102)?.map((event) => event.sequence)).toEqual([103]);
    expect(store.lastSequence).toBe(104);
  });

  test('live listeners are told with a RESYNC at that sequence, which takes no sequence of its own', () => {
    const store = storeAt(100);
    const heard: Pick<RuntimeEvent, 'sequence' | 'kind'>[] = [];
    store.onEvent(({ sequence, kind }) => heard.push({ sequence, kind }));
    store.applyAt(101, 103, () => store.putComponent(component('a')));
    store.forgetUpTo(103);
    store.applyAt(104, 105, () => store.putComponent(component('b')));
    expect(heard).toEqual([
      { sequence: 101, kind: 'COMPONENT_CHANGED' },
      { sequence: 103, kind: 'RESYNC' },
      { sequence: 104, kind: 'COMPONENT_CHANGED' },
    ]);
    expect(store.eventsSince(103)?.map((event) => event.kind)).toEqual(['COMPONENT_CHANGED']);
  });

  test('a replayed history resumes only after the last RESYNC an instance recorded in it', () => {
    const at = new Date(0);
    const store = storeAt(200);
    store.replay([
      { sequence: 150, kind: 'COMPONENT_CHANGED', at, component: component('a') },
      { sequence: 160, kind: 'RESYNC', at },
      { sequence: 170, kind: 'COMPONENT_CHANGED', at, component: component('b') },
    ]);
    expect(store.eventsSince(150)).toBeNull();
    expect(store.eventsSince(160)?.map((event) => event.sequence)).toEqual([170]);
  });
});

describe('event streams over a store that forgets', () => {
  /** The store as a stream reads it, each event shown as its kind and sequence. */
  const sourceOf = (store: StateStore): EventStreamSource<string> => ({
    eventsSince: (sequence, limit) => store.eventsSince(sequence, limit),
    sequence: () => store.lastSequence,
    view: (event) => `${event.kind} ${event.sequence}`,
    resync: () => 'RESYNC',
    join: (receive) => store.onEvent(receive),
    reach: async () => false,
  });
  const take = async (stream: AsyncIterator<string>, count: number) => {
    const taken: string[] = [];
    while (taken.length < count) taken.push((await stream.next()).value as string);
    return taken;
  };

  test('a stream resumed from before gets one RESYNC; a live one, whose snapshot was taken here, none', async () => {
    const store = storeAt(100);
    store.applyAt(101, 102, () => store.putComponent(component('a')));
    const live = eventStream(sourceOf(store), null, 100)[Symbol.asyncIterator]();
    const resumed = eventStream(sourceOf(store), 100, 100)[Symbol.asyncIterator]();
    const liveTaken = take(live, 2);
    const resumedTaken = take(resumed, 4);
    await new Promise((resolve) => setImmediate(resolve)); // both joined
    // Two entries its load may have held, each forgotten once applied (cluster-join.ts).
    store.applyAt(103, 104, () => store.putComponent(component('b')));
    store.forgetUpTo(104);
    store.applyAt(105, 106, () => store.putComponent(component('c')));
    store.forgetUpTo(106);
    expect(await liveTaken).toEqual(['COMPONENT_CHANGED 103', 'COMPONENT_CHANGED 105']);
    expect(await resumedTaken).toEqual([
      'COMPONENT_CHANGED 101',
      'COMPONENT_CHANGED 103',
      'RESYNC',
      'COMPONENT_CHANGED 105',
    ]);
    await live.return?.();
    await resumed.return?.();
  });
});

describe('mayBeLoaded', () => {
  const loadedAt = 1_000_000;

  test('a rows change announced before the load ended, or within the clock allowance after, may be loaded', () => {
    expect(mayBeLoaded(rows(loadedAt - 60_000), loadedAt)).toBe(true);
    expect(mayBeLoaded(rows(loadedAt + LOAD_OVERLAP_MS - 1), loadedAt)).toBe(true);
    expect(mayBeLoaded(rows(loadedAt + LOAD_OVERLAP_MS), loadedAt)).toBe(false);
  });

  test('a resync read back (announced at 0) may always be loaded; components never', () => {
    expect(mayBeLoaded(rows(0), loadedAt, loadedAt + 3_600_000)).toBe(true);
    expect(mayBeLoaded({ kind: 'components', components: [component('a')] }, loadedAt)).toBe(false);
  });

  test('an entry of a previous version counts as announced when it arrives', () => {
    expect(mayBeLoaded(rows(), loadedAt, loadedAt + 1)).toBe(true);
    expect(mayBeLoaded(rows(), loadedAt, loadedAt + LOAD_OVERLAP_MS)).toBe(false);
  });
});
