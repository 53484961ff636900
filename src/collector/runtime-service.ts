import { Repeater } from 'graphql-yoga';
import { userScope, type Viewer } from '../auth/viewer.js';
import {
  appMatches,
  type ChartRepoView,
  type ComponentStatus,
  type RuntimeEvent,
  type RuntimeSummary,
  type Snapshot,
  type SnapshotFilter,
  type StateStore,
  taskMatches,
} from './state-store.js';

export type RuntimeEventView = RuntimeEvent & { summary: RuntimeSummary };

export interface RuntimeOptions {
  /** Snapshot subscriptions get at most this many snapshots per second. */
  snapshotMaxHz: number;
  /** Events waiting for one slow subscriber; beyond it the subscriber gets RESYNC instead. */
  subscriberBuffer: number;
}

/** Runtime reads and live streams, scoped to what the viewer may see. */
export class RuntimeService {
  constructor(
    private readonly store: StateStore,
    private readonly options: RuntimeOptions,
  ) {}

  /** A non-admin's view is always their own apps and tasks (naming another user is refused). */
  private scoped(viewer: Viewer, filter: SnapshotFilter = {}): SnapshotFilter {
    const userId = userScope(viewer, filter.userId);
    return { ...filter, userId: userId ?? null };
  }

  snapshot(viewer: Viewer, filter?: SnapshotFilter): Snapshot {
    return this.store.snapshot(this.scoped(viewer, filter));
  }

  components(): ComponentStatus[] {
    return this.store.allComponents();
  }

  chartRepo(): ChartRepoView | null {
    return this.store.chartRepoStatus();
  }

  private visible(event: RuntimeEvent, filter: SnapshotFilter): boolean {
    if (event.app) return appMatches(event.app, filter);
    if (event.appKey) return appMatches(event.appKey, filter);
    if (event.task) return taskMatches(event.task, filter);
    return true; // components and chart repo concern everyone
  }

  /**
   * Change events for the viewer's filter, each with the summary over that filter. With `since`,
   * first what was missed after that sequence — or a RESYNC when the buffer no longer has it.
   * A reader that falls more than `subscriberBuffer` events behind is sent RESYNC (and should
   * refetch the snapshot) instead of making the server hold an unbounded backlog. Over the
   * streaming transports the reader is a cohort's execution, which keeps up unless executing
   * itself is too slow; slow clients are the transports' business (src/subscriptions/member.ts).
   */
  events(viewer: Viewer, filter: SnapshotFilter = {}, since?: number | null): AsyncIterable<RuntimeEventView> {
    const scope = this.scoped(viewer, filter);
    return new Repeater<RuntimeEventView>(async (push, stop) => {
      let waiting = 0;
      let overflowed = false;
      const send = (event: RuntimeEvent) => {
        waiting += 1;
        push({ ...event, summary: this.store.summary(scope) }).then(() => {
          waiting -= 1;
          if (overflowed && waiting === 0) {
            overflowed = false;
            send(this.resyncEvent());
          }
        });
      };
      const deliver = (event: RuntimeEvent) => {
        if (!this.visible(event, scope)) return;
        if (waiting >= this.options.subscriberBuffer) overflowed = true;
        else if (!overflowed) send(event);
      };
      // Subscribing and replaying happen in the same tick (the store is synchronous): no event
      // can fall between the replay and the live stream, nor be sent twice.
      const unsubscribe = this.store.onEvent(deliver);
      if (since != null) {
        const missed = this.store.eventsSince(since);
        if (missed === null) send(this.resyncEvent());
        else for (const event of missed) deliver(event);
      }
      await stop;
      unsubscribe();
    });
  }

  /** The viewer's snapshot at once, then again after changes, at most `snapshotMaxHz` a second. */
  snapshots(viewer: Viewer, filter: SnapshotFilter = {}): AsyncIterable<Snapshot> {
    const scope = this.scoped(viewer, filter);
    const minGapMs = 1000 / this.options.snapshotMaxHz;
    return new Repeater<Snapshot>(async (push, stop) => {
      let timer: NodeJS.Timeout | undefined;
      let lastSent = Date.now();
      void push(this.store.snapshot(scope));
      const unsubscribe = this.store.onEvent((event) => {
        if (timer || !this.visible(event, scope)) return;
        timer = setTimeout(
          () => {
            timer = undefined;
            lastSent = Date.now();
            void push(this.store.snapshot(scope));
          },
          Math.max(0, lastSent + minGapMs - Date.now()),
        );
      });
      await stop;
      clearTimeout(timer);
      unsubscribe();
    });
  }

  /** A RESYNC event for the viewer's filter: refetch the snapshot, subscribe again from its sequence. */
  resync(viewer: Viewer, filter: SnapshotFilter = {}): RuntimeEventView {
    return { ...this.resyncEvent(), summary: this.store.summary(this.scoped(viewer, filter)) };
  }

  private resyncEvent(): RuntimeEvent {
    return { sequence: this.store.lastSequence, kind: 'RESYNC', at: new Date() };
  }
}
