import { Repeater } from 'graphql-yoga';
import type { ChartRepoCollection, ChartRepoStatus } from '../adapters/chart-repo/port.js';
import { userScope, type Viewer } from '../auth/viewer.js';
import { DeliveryQueue } from '../events/change-feed.js';
import { type EventStreamSource, eventStream, reached } from './event-stream.js';
import { isOutboxComponent, outboxForUsers } from './outbox-source.js';
import { databaseForUsers } from './sources.js';
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
import type { StoreBarrier } from './store-barrier.js';

export type RuntimeEventView = RuntimeEvent & { summary: RuntimeSummary };

export interface RuntimeOptions {
  /** Snapshot subscriptions get at most this many snapshots per second. */
  snapshotMaxHz: number;
  /** Events waiting for one slow subscriber; beyond it the subscriber gets RESYNC instead. */
  subscriberBuffer: number;
  /**
   * Cluster mode: how long a `since` ahead of this store (another instance has applied more of
   * the change log) is waited for before it counts as lost (RESYNC); 0 in one process, where such
   * a `since` is from another numbering.
   */
  aheadWaitMs: number;
}

/**
 * Whether one stream of a non-admin shows them this event (`replayed`: from `since`), by what it
 * has shown them of each component so far (RuntimeService.componentViews).
 */
type ComponentViews = (event: RuntimeEvent, replayed: boolean) => boolean;

/**
 * A live stream of the service (an events or snapshots subscription, in practice a cohort's one
 * execution), as the dispatch of store changes sees it.
 */
interface RuntimeStream {
  /** Whose apps and tasks it may see: one user's, or (null) every user's. */
  readonly userId: string | null;
  /** The store's sequence when it started: changes up to it are not its to receive from the queue. */
  readonly after: number;
  /** A change of the store, in order; called from the delivery queue, never by the store itself. */
  receive(event: RuntimeEvent): void;
  /** Receiving failed: the stream ends with the error (the others go on). */
  fail(error: unknown): void;
}

/** Why a non-admin's chart_repo component is unhealthy when none of their own calls says why. */
const CHART_REPO_UNAVAILABLE = 'the chart repo status could not be collected';

/**
 * Runtime reads and live streams, scoped to what the viewer may see: a non-admin sees their own
 * apps and tasks, and of the chart repo only what was collected on their behalf (their own
 * (user, source) calls: apps, images, tasks, failures, counts); components are everyone's.
 */
export class RuntimeService {
  /**
   * The live streams by the one user whose changes they may see (null: every user's), so that a
   * change of one user's app or task is offered to that user's streams and the unrestricted ones
   * only: with 1,000 users' dashboards open, a change costs one filter match, not 1,000.
   */
  private readonly streams = new Map<string | null, Set<RuntimeStream>>();
  private streamCount = 0;
  /** Stops the store's listener; set while any stream is open. */
  private stopListening: (() => void) | null = null;
  /**
   * The store's changes wait here for a later macrotask: the store calls its listeners inside the
   * call that changed it (the collector applying a read-back, …), which must not pay for every
   * subscriber's filters, summaries, executions and socket writes. Measured in-process at 100k
   * apps with 1,000 users' runtimeEvents streams and an admin's (2 loaded cores, so ranges): a
   * putTask took 150–1,100 µs when every stream was called inside it, 5–55 µs with the queue and
   * the streams by user; from the call until both streams had the event, 157–1,123 µs, now 85–383.
   */
  private readonly queue = new DeliveryQueue<RuntimeEvent>(
    (event) => this.dispatch(event),
    (error) => process.emitWarning(`a runtime change could not be dispatched: ${String(error)}`),
  );

  constructor(
    private readonly store: StateStore,
    private readonly options: RuntimeOptions,
    /** What the store holds of the announced changes (the collector says), and the feed's delivery. */
    private readonly writes: { barrier: StoreBarrier; delivered: () => Promise<void> } | null = null,
  ) {}

  /**
   * Resolves once the store holds every change announced before the call (read-your-writes: a
   * mutation answers after it, see http/read-your-writes.ts), or after `timeoutMs` at most.
   */
  caughtUp(timeoutMs: number): Promise<void> {
    return this.writes ? this.writes.barrier.caughtUp(this.writes.delivered, timeoutMs) : Promise.resolve();
  }

  /** Live events and snapshot streams now open (a soak checks that subscriptions leave none behind). */
  get liveStreams(): number {
    return this.streamCount;
  }

  /**
   * Moves with every change of what any viewer's snapshot shows: two reads at the same revision,
   * in the same `viewScope`, with the same filter, answer the same (but for `generatedAt`).
   */
  get revision(): number {
    return this.store.revision;
  }

  /**
   * Who sees the same runtime state: every admin sees everyone's ("all"); anyone else their own
   * apps and tasks and their own part of the chart repo (scopedSnapshot), so one scope per user.
   */
  viewScope(viewer: Viewer): string {
    return viewer.isAdmin ? 'all' : `user:${viewer.userId}`;
  }

  /** Resolves once every change the store made so far has been handed to the live streams. */
  delivered(): Promise<void> {
    return this.queue.drained();
  }

  /** A non-admin's view is always their own apps and tasks (naming another user is refused). */
  private scoped(viewer: Viewer, filter: SnapshotFilter = {}): SnapshotScope {
    return this.scopedStream(viewer, filter).scope;
  }

  private scopedStream(viewer: Viewer, filter: SnapshotFilter): { scope: SnapshotScope; userId: string | null } {
    const userId = userScope(viewer, filter.userId) ?? null;
    return { scope: new SnapshotScope({ ...filter, userId }), userId };
  }

  /** Opens `stream` to the store's changes; returns how it leaves. */
  private join(stream: RuntimeStream): () => void {
    const group = this.streams.get(stream.userId) ?? new Set<RuntimeStream>();
    this.streams.set(stream.userId, group);
    group.add(stream);
    this.streamCount += 1;
    this.stopListening ??= this.store.onEvent((event) => this.queue.add(event));
    return () => {
      if (!group.delete(stream)) return;
      if (group.size === 0 && this.streams.get(stream.userId) === group) this.streams.delete(stream.userId);
      this.streamCount -= 1;
      if (this.streamCount > 0) return;
      this.stopListening?.();
      this.stopListening = null;
    };
  }

  /** Hands one change to the streams that may see it, in the order the store made the changes. */
  private dispatch(event: RuntimeEvent): void {
    const owner = (event.app ?? event.task ?? event.appKey)?.userId;
    if (owner === undefined) {
      for (const group of [...this.streams.values()]) this.offer(event, group);
      return;
    }
    this.offer(event, this.streams.get(owner));
    this.offer(event, this.streams.get(null));
  }

  private offer(event: RuntimeEvent, group: Set<RuntimeStream> | undefined): void {
    if (!group) return;
    for (const stream of [...group]) {
      if (event.sequence <= stream.after) continue;
      try {
        stream.receive(event);
      } catch (error) {
        stream.fail(error);
      }
    }
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
    if (!viewer.isAdmin && component.name === 'syncer') return activeSourcesOnly(component);
    if (!viewer.isAdmin && isOutboxComponent(component.name)) return outboxForUsers(component);
    if (!viewer.isAdmin && component.name === 'database') return databaseForUsers(component);
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

  /**
   * For one stream of a non-admin, whether a component's status changes what it says to them
   * (state, health, message; figures ride along, as ComponentPushes pushes them); null for admins,
   * who see every change. A change of what only admins see (another user's chart-repo calls
   * failing or recovering, an inactive source's sync) leaves a non-admin's view as it was: no
   * event, which would tell them when it happened. Compared with what this stream last showed (at
   * its start, the store's), as the view is worked out now (a user's chart-repo part is the
   * store's current one).
   */
  private componentViews(viewer: Viewer): ComponentViews | null {
    if (viewer.isAdmin) return null;
    const shown = ({ state, healthy, message }: ComponentStatus) => `${state} ${healthy} ${message}`;
    const last = new Map(
      this.store.allComponents().map((status) => [status.name, shown(this.scopedComponent(viewer, status))]),
    );
    return (event, replayed) => {
      if (event.componentName) last.delete(event.componentName); // one of that name may come back
      const status = event.component;
      if (!status) return true;
      const scoped = this.scopedComponent(viewer, status);
      if (scoped === status) return true; // shown to everyone alike: it goes out as it is pushed
      // A replayed change goes out too: it happened before the views were taken (from the store's now).
      const view = shown(scoped);
      const unchanged = last.get(status.name) === view && !replayed;
      last.set(status.name, view);
      return !unchanged;
    };
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
   * first what was missed after that sequence — or a RESYNC when the store no longer has it. A
   * reader more than `subscriberBuffer` events behind reads on from the store's retained events
   * (event-stream.ts), and gets RESYNC only once those no longer reach back to it. Over the
   * streaming transports the reader is a cohort's execution, which keeps up unless executing
   * itself is too slow; slow clients are the transports' business (src/fanout/member.ts).
   *
   * Live events arrive a macrotask after the change (see `queue`), so an event's summary is the
   * view's as it was delivered: it counts every change made up to then, which may be a few
   * sequences past the event's own when changes came in a burst. It is counted once per burst.
   */
  events(viewer: Viewer, filter: SnapshotFilter = {}, since?: number | null): AsyncIterable<RuntimeEventView> {
    const { scope, userId } = this.scopedStream(viewer, filter);
    // The summary only moves with a change, and every change has its sequence: one per burst.
    let counted: { sequence: number; summary: RuntimeSummary } | null = null;
    const summary = () => {
      if (counted?.sequence !== this.store.lastSequence) {
        counted = { sequence: this.store.lastSequence, summary: this.store.summary(scope) };
      }
      return counted.summary;
    };
    const views = this.componentViews(viewer);
    const { store } = this;
    const source: EventStreamSource<RuntimeEventView> = {
      eventsSince: (sequence, limit) => store.eventsSince(sequence, limit),
      sequence: () => store.lastSequence,
      view: (event, replayed) => {
        if (!this.visible(viewer, event, scope)) return null;
        if (views && !views(event, replayed)) return null;
        return { ...this.scopedEvent(viewer, event), summary: summary() };
      },
      resync: () => ({ ...this.resyncEvent(), summary: summary() }),
      join: (receive, fail) => this.join({ userId, after: store.lastSequence, receive, fail }),
      reach: (sequence, stopped) => reached(store, sequence, this.options.aheadWaitMs, stopped),
    };
    return eventStream(source, since, this.options.subscriberBuffer);
  }

  /** The viewer's snapshot at once, then again after changes, at most `snapshotMaxHz` a second. */
  snapshots(viewer: Viewer, filter: SnapshotFilter = {}): AsyncIterable<Snapshot> {
    const { scope, userId } = this.scopedStream(viewer, filter);
    const minGapMs = 1000 / this.options.snapshotMaxHz;
    return new Repeater<Snapshot>(async (push, stop) => {
      let timer: NodeJS.Timeout | undefined;
      let lastSent = Date.now();
      void push(this.scopedSnapshot(viewer, this.store.snapshot(scope)));
      const views = this.componentViews(viewer);
      const receive = (event: RuntimeEvent) => {
        if (!this.visible(viewer, event, scope)) return;
        if (views && !views(event, false)) return;
        if (timer) return;
        timer = setTimeout(
          () => {
            timer = undefined;
            lastSent = Date.now();
            void push(this.scopedSnapshot(viewer, this.store.snapshot(scope)));
          },
          Math.max(0, lastSent + minGapMs - Date.now()),
        );
      };
      const leave = this.join({ userId, after: this.store.lastSequence, receive, fail: stop });
      await stop;
      clearTimeout(timer);
      leave();
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

/**
 * The `syncer` component as a non-admin sees it: the figures of the active remote source only
 * (inactive sources are admins' business: `marketSources(includeInactive:)` is theirs alone).
 */
function activeSourcesOnly(component: ComponentStatus): ComponentStatus {
  type SourceFigures = {
    active?: boolean;
    sourceId?: string;
    lastError?: string | null;
    consecutiveFailures?: number;
    appCount?: number;
  };
  const bySource = Array.isArray(component.metrics.bySource) ? (component.metrics.bySource as SourceFigures[]) : [];
  const visible = bySource.filter((source) => source.active);
  const failing = visible.filter((source) => (source.consecutiveFailures ?? 0) > 0);
  return {
    ...component,
    message: failing.map((source) => `${source.sourceId}: ${source.lastError}`).join('; ') || null,
    metrics: {
      sources: visible.length,
      failing: failing.length,
      apps: visible.reduce((sum, source) => sum + (source.appCount ?? 0), 0),
      bySource: visible,
    },
  };
}
