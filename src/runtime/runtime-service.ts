import { Repeater } from 'graphql-yoga';
import type { ChartRepoCollection, ChartRepoStatus } from '../adapters/chart-repo/port.js';
import { userScope, type Viewer } from '../auth/viewer.js';
import {
  type ComponentStatus,
  type RuntimeEvent,
  type RuntimeSummary,
  type Snapshot,
  type SnapshotFilter,
  SnapshotScope,
  type StateStore,
  sameChartRepo,
} from './state-store.js';

export type RuntimeEventView = RuntimeEvent & { summary: RuntimeSummary };

export interface RuntimeOptions {
  /** Snapshot subscriptions get at most this many snapshots per second. */
  snapshotMaxHz: number;
  /** Events waiting for one slow subscriber; beyond it the subscriber gets RESYNC instead. */
  subscriberBuffer: number;
}

/** Why a non-admin's chart_repo component is unhealthy when none of their own calls says why. */
const CHART_REPO_UNAVAILABLE = 'the chart repo status could not be collected';

/**
 * Runtime reads and live streams, scoped to what the viewer may see: a non-admin sees their own
 * apps and tasks, and of the chart repo only what was collected on their behalf (their own
 * (user, source) calls: apps, images, tasks, failures, counts); components are everyone's.
 */
export class RuntimeService {
  constructor(
    private readonly store: StateStore,
    private readonly options: RuntimeOptions,
  ) {}

  /** A non-admin's view is always their own apps and tasks (naming another user is refused). */
  private scoped(viewer: Viewer, filter: SnapshotFilter = {}): SnapshotScope {
    const userId = userScope(viewer, filter.userId);
    return new SnapshotScope({ ...filter, userId: userId ?? null });
  }

  snapshot(viewer: Viewer, filter?: SnapshotFilter): Snapshot {
    return this.scopedSnapshot(viewer, this.store.snapshot(this.scoped(viewer, filter)));
  }

  components(viewer: Viewer): ComponentStatus[] {
    return this.store.allComponents().map((component) => this.scopedComponent(viewer, component));
  }

  chartRepo(viewer: Viewer): ChartRepoStatus | null {
    return chartRepoFor(viewer, this.store.chartRepoState());
  }

  private scopedSnapshot(viewer: Viewer, snapshot: Snapshot): Snapshot {
    if (viewer.isAdmin) return snapshot;
    return {
      ...snapshot,
      components: snapshot.components.map((component) => this.scopedComponent(viewer, component)),
      chartRepo: chartRepoFor(viewer, this.store.chartRepoState()),
    };
  }

  /**
   * The chart_repo component's message is the collect's lastError and its metrics count every
   * user's apps: a non-admin gets theirs instead (its state is the chart repo's own health).
   */
  private scopedComponent(viewer: Viewer, component: ComponentStatus): ComponentStatus {
    if (viewer.isAdmin || component.name !== 'chart_repo' || component.state === 'DISABLED') return component;
    const mine = chartRepoFor(viewer, this.store.chartRepoState());
    return {
      ...component,
      message: mine?.lastError ?? (component.healthy ? null : CHART_REPO_UNAVAILABLE),
      metrics: {
        apps: Array.isArray(mine?.apps) ? mine.apps.length : 0,
        lastUpdate: mine?.lastUpdate?.toISOString() ?? null,
      },
    };
  }

  /** The event as the viewer may see it (the chart repo their own). */
  private scopedEvent(viewer: Viewer, event: RuntimeEvent): RuntimeEvent {
    if (viewer.isAdmin) return event;
    if (event.component) return { ...event, component: this.scopedComponent(viewer, event.component) };
    if (event.chartRepoChange) {
      return { ...event, chartRepo: chartRepoFor(viewer, event.chartRepoChange.after) ?? undefined };
    }
    return event;
  }

  private visible(viewer: Viewer, event: RuntimeEvent, scope: SnapshotScope): boolean {
    if (event.app) return scope.apps.matches(event.app);
    if (event.appKey) return scope.appKeys.matches(event.appKey);
    if (event.task) return scope.tasks.matches(event.task);
    // A change of the chart repo reaches a non-admin only when their own part of it changed.
    if (event.chartRepoChange && !viewer.isAdmin) {
      const { before, after } = event.chartRepoChange;
      return !sameChartRepo(chartRepoFor(viewer, before), chartRepoFor(viewer, after));
    }
    return true; // components concern everyone
  }

  /**
   * Change events for the viewer's filter, each with the summary over that filter. With `since`,
   * first what was missed after that sequence — or a RESYNC when the buffer no longer has it.
   * A reader that falls more than `subscriberBuffer` events behind is sent RESYNC (and should
   * refetch the snapshot) instead of making the server hold an unbounded backlog. Over the
   * streaming transports the reader is a cohort's execution, which keeps up unless executing
   * itself is too slow; slow clients are the transports' business (src/fanout/member.ts).
   */
  events(viewer: Viewer, filter: SnapshotFilter = {}, since?: number | null): AsyncIterable<RuntimeEventView> {
    const scope = this.scoped(viewer, filter);
    return new Repeater<RuntimeEventView>(async (push, stop) => {
      let waiting = 0;
      let overflowed = false;
      const send = (event: RuntimeEvent) => {
        waiting += 1;
        push({ ...this.scopedEvent(viewer, event), summary: this.store.summary(scope) }).then(() => {
          waiting -= 1;
          if (overflowed && waiting === 0) {
            overflowed = false;
            send(this.resyncEvent());
          }
        });
      };
      const deliver = (event: RuntimeEvent) => {
        if (!this.visible(viewer, event, scope)) return;
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
      void push(this.scopedSnapshot(viewer, this.store.snapshot(scope)));
      const unsubscribe = this.store.onEvent((event) => {
        if (timer || !this.visible(viewer, event, scope)) return;
        timer = setTimeout(
          () => {
            timer = undefined;
            lastSent = Date.now();
            void push(this.scopedSnapshot(viewer, this.store.snapshot(scope)));
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

/**
 * The chart repo as a viewer may see it: all of it for admins; for anyone else only the status
 * built from the calls made on their behalf. A user with none (no apps) sees an empty status that
 * only tells whether the chart repo could be reached, without naming whose calls failed.
 */
function chartRepoFor(viewer: Viewer, state: ChartRepoCollection | null): ChartRepoStatus | null {
  if (!state || viewer.isAdmin) return state?.all ?? null;
  const own = state.byUser.get(viewer.userId);
  if (own) return own;
  return {
    reachable: state.all.reachable,
    lastError: state.all.reachable ? null : CHART_REPO_UNAVAILABLE,
    lastUpdate: null,
    system: null,
    apps: [],
    images: [],
    tasks: null,
  };
}
