import { fanOut, isMissedEvents } from '../fanout/cohorts.js';
import type { RuntimeEventView } from '../runtime/runtime-service.js';
import {
  type ComponentStatus,
  RECENT_FINISHED_TASKS,
  type RemovedAppKey,
  type RuntimeSummary,
  type Snapshot,
  type SnapshotFilter,
} from '../runtime/state-store.js';
import { builder } from './builder.js';
import { ChartRepoStatusRef } from './chart-repo.js';
import { assumedListSize, filterDescription } from './connections.js';
import { AppRef, AppStageEnum, HealthEnum, TaskRef, TaskStatusEnum, TaskTypeEnum } from './refs.js';

const ComponentStateEnum = builder.enumType('ComponentState', {
  description: 'State of a system component.',
  values: {
    RUNNING: { description: 'Working.' },
    DEGRADED: { description: 'Working, with problems (see message).' },
    STOPPED: { description: 'Not running.' },
    ERROR: { description: 'Failing (see message).' },
    DISABLED: { description: 'Not configured, on purpose.' },
  },
});

const ComponentRef = builder.objectRef<ComponentStatus>('Component').implement({
  description:
    'Health of one part of the system: task_engine, collector, database, pubsub, app_service, chart_repo, history_cleanup, payment_polling. With several instances (REDIS_URL) each reports its own process as `<name>@<instance>` (database, task_engine, pubsub, collector), and the leader reports the cluster (chart_repo, the periodic jobs, and `cluster`: which instance leads).',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Component name.' }),
    healthy: t.exposeBoolean('healthy', { description: 'Whether it works as it should.' }),
    state: t.field({ type: ComponentStateEnum, description: 'Its state.', resolve: (c) => c.state }),
    message: t.exposeString('message', { nullable: true, description: 'What is wrong, when something is.' }),
    lastCheck: t.field({ type: 'DateTime', description: 'When it was last checked.', resolve: (c) => c.lastCheck }),
    metrics: t.field({
      type: 'JSON',
      nullable: true,
      description: 'Figures of the component (queue lengths, latencies …).',
      resolve: (c) => c.metrics,
    }),
  }),
});

const StageCountRef = builder.objectRef<{ stage: string; count: number }>('StageCount').implement({
  description: 'How many apps are in one stage.',
  fields: (t) => ({
    stage: t.field({ type: AppStageEnum, description: 'The stage.', resolve: (s) => s.stage as never }),
    count: t.exposeInt('count', { description: 'Apps in it.' }),
  }),
});

const RuntimeSummaryRef = builder.objectRef<RuntimeSummary>('RuntimeSummary').implement({
  description: 'Counts over the (filtered) runtime state.',
  fields: (t) => ({
    totalApps: t.exposeInt('totalApps', { description: 'Apps.' }),
    healthyApps: t.exposeInt('healthyApps', { description: 'Healthy apps.' }),
    unhealthyApps: t.exposeInt('unhealthyApps', { description: 'Unhealthy apps.' }),
    appsByStage: t.field({
      type: [StageCountRef],
      description: 'Apps per stage (stages with none are left out).',
      resolve: (s) => s.appsByStage,
    }),
    totalTasks: t.exposeInt('totalTasks', {
      description: `Tasks held: active, and of the ${RECENT_FINISHED_TASKS} most recently finished on the whole server those in the filter.`,
    }),
    pendingTasks: t.exposeInt('pendingTasks', { description: 'Pending tasks.' }),
    runningTasks: t.exposeInt('runningTasks', { description: 'Running tasks.' }),
    completedTasks: t.exposeInt('completedTasks', {
      description: 'Completed tasks among those held (see totalTasks).',
    }),
    failedTasks: t.exposeInt('failedTasks', { description: 'Failed tasks among those held (see totalTasks).' }),
    canceledTasks: t.exposeInt('canceledTasks', { description: 'Canceled tasks among those held (see totalTasks).' }),
    activeComponents: t.exposeInt('activeComponents', { description: 'Components healthy and running.' }),
  }),
});

/**
 * What a snapshot's apps and tasks count for in MAX_QUERY_COST: a store may hold 100k apps, and a
 * page of tasks asked inside each app would read as many pages. The dashboard's snapshot, every
 * field of every list, costs about 29 times this; a page of 20 task ids in each app, 61 times.
 */
const SNAPSHOT_ITEMS_COST = 1_000;

const RuntimeSnapshotRef = builder.objectRef<Snapshot>('RuntimeSnapshot').implement({
  description: 'The runtime state at one sequence number: apps, tasks, components and chart repo, with a summary.',
  fields: (t) => ({
    sequence: t.float({ description: 'Sequence number of the last change included.', resolve: (s) => s.sequence }),
    generatedAt: t.field({ type: 'DateTime', description: 'When it was taken.', resolve: (s) => s.generatedAt }),
    summary: t.field({
      type: RuntimeSummaryRef,
      description: 'Counts over the filtered content.',
      resolve: (s) => s.summary,
    }),
    apps: t.field({
      type: [AppRef],
      description: `Apps matching the filter (${SNAPSHOT_ITEMS_COST} items in the query cost, whatever their number).`,
      extensions: assumedListSize(SNAPSHOT_ITEMS_COST),
      resolve: (s) => s.apps,
    }),
    tasks: t.field({
      type: [TaskRef],
      description: `Active tasks and, of the ${RECENT_FINISHED_TASKS} most recently finished on the whole server (everyone's, not per user), those matching the filter; newest first (${SNAPSHOT_ITEMS_COST} items in the query cost). \`tasks\` lists them all.`,
      extensions: assumedListSize(SNAPSHOT_ITEMS_COST),
      resolve: (s) => s.tasks,
    }),
    components: t.field({
      type: [ComponentRef],
      description: 'Every component (never filtered).',
      resolve: (s) => s.components,
    }),
    chartRepo: t.field({
      type: ChartRepoStatusRef,
      nullable: true,
      description: 'Chart repo status (kept when filtering).',
      resolve: (s) => s.chartRepo,
    }),
  }),
});

const SnapshotFilterInput = builder.inputType('SnapshotFilter', {
  description: filterDescription('the runtime state'),
  fields: (t) => ({
    userId: t.string({ description: "Only this user's apps and tasks (admins only)." }),
    sourceId: t.string({ description: 'Only this market source.' }),
    appName: t.string({ description: 'Only this app.' }),
    taskStatus: t.field({ type: [TaskStatusEnum], description: 'Only tasks in these statuses.' }),
    taskType: t.field({ type: [TaskTypeEnum], description: 'Only tasks of these types.' }),
    stage: t.field({ type: [AppStageEnum], description: 'Only apps in these stages.' }),
    health: t.field({ type: HealthEnum, description: 'Only apps with this health.' }),
  }),
});

const RuntimeEventKindEnum = builder.enumType('RuntimeEventKind', {
  description: 'What a runtime event is about.',
  values: {
    APP_CHANGED: { description: 'An app changed (`app`).' },
    APP_REMOVED: { description: 'An app is gone (`removedApp`).' },
    TASK_CHANGED: { description: 'A task changed (`task`).' },
    TASK_REMOVED: { description: 'A finished task left the runtime state (`task`).' },
    COMPONENT_CHANGED: { description: 'A component changed (`component`).' },
    COMPONENT_REMOVED: {
      description:
        'A component left the runtime (`removedComponent`): its instance stopped or went silent longer ago than STOPPED_COMPONENT_RETENTION_MS.',
    },
    CHART_REPO_CHANGED: { description: 'The chart repo status changed (`chartRepo`).' },
    RESYNC: { description: 'Events were missed: refetch the snapshot and subscribe again from its sequence.' },
  },
});

const RemovedAppRef = builder.objectRef<RemovedAppKey>('RemovedApp').implement({
  description: 'The identity of an app that is gone.',
  fields: (t) => ({
    id: t.globalID({
      description:
        'The `id` the app had (`App.id`): a normalized client cache evicts that object (`cache.evict({ id: cache.identify({ __typename: "App", id }) })` in Apollo Client).',
      resolve: (app) => ({ type: 'App', id: app.id }),
    }),
    userId: t.exposeString('userId', { description: 'Owner.' }),
    sourceId: t.exposeString('sourceId', { description: 'Market source.' }),
    appName: t.exposeString('appName', { description: 'App name.' }),
  }),
});

const RuntimeEventRef = builder.objectRef<RuntimeEventView>('RuntimeEvent').implement({
  description: 'One change of the runtime state.',
  fields: (t) => ({
    sequence: t.float({
      description: 'Its sequence number; pass the last one seen as `since` when reconnecting.',
      resolve: (e) => e.sequence,
    }),
    kind: t.field({ type: RuntimeEventKindEnum, description: 'What changed.', resolve: (e) => e.kind }),
    at: t.field({ type: 'DateTime', description: 'When.', resolve: (e) => e.at }),
    app: t.field({
      type: AppRef,
      nullable: true,
      description: 'The app (APP_CHANGED).',
      resolve: (e) => e.app ?? null,
    }),
    removedApp: t.field({
      type: RemovedAppRef,
      nullable: true,
      description: 'The app that is gone (APP_REMOVED).',
      resolve: (e) => e.appKey ?? null,
    }),
    task: t.field({
      type: TaskRef,
      nullable: true,
      description: 'The task (TASK_CHANGED, TASK_REMOVED).',
      resolve: (e) => e.task ?? null,
    }),
    component: t.field({
      type: ComponentRef,
      nullable: true,
      description: 'The component (COMPONENT_CHANGED).',
      resolve: (e) => e.component ?? null,
    }),
    removedComponent: t.string({
      nullable: true,
      description: 'The name of the component that left the runtime (COMPONENT_REMOVED).',
      resolve: (e) => e.componentName ?? null,
    }),
    chartRepo: t.field({
      type: ChartRepoStatusRef,
      nullable: true,
      description: 'The chart repo status (CHART_REPO_CHANGED).',
      resolve: (e) => e.chartRepo ?? null,
    }),
    summary: t.field({
      type: RuntimeSummaryRef,
      nullable: true,
      description:
        'The summary over your filter when this event was sent: it includes this change, and any made in the same moment before it was sent.',
      resolve: (e) => e.summary,
    }),
  }),
});

builder.queryFields((t) => ({
  runtimeSnapshot: t.field({
    type: RuntimeSnapshotRef,
    description: "The runtime state now (yours; everyone's for admins), filtered, with its summary.",
    args: { filter: t.arg({ type: SnapshotFilterInput, description: 'Which apps and tasks.' }) },
    resolve: (_root, { filter }, ctx) => ctx.services.runtime.snapshot(ctx.viewer, (filter ?? {}) as SnapshotFilter),
  }),
  components: t.field({
    type: [ComponentRef],
    description: 'Health of every component.',
    resolve: (_root, _args, ctx) => ctx.services.runtime.components(ctx.viewer),
  }),
  chartRepo: t.field({
    type: ChartRepoStatusRef,
    nullable: true,
    description:
      "What the chart repository reports (yours; everyone's for admins); null before the first collection (or when disabled).",
    resolve: (_root, _args, ctx) => ctx.services.runtime.chartRepo(ctx.viewer),
  }),
}));

builder.subscriptionFields((t) => ({
  runtimeEvents: t.field({
    type: RuntimeEventRef,
    description:
      'Every change of the runtime state within your filter, with sequence numbers; with `since`, what you missed first (or RESYNC).',
    args: {
      filter: t.arg({ type: SnapshotFilterInput, description: 'Which apps and tasks.' }),
      since: t.arg.float({ description: 'The last sequence you saw.' }),
    },
    // Replaying from `since` depends on when the stream starts, so only live streams are shared.
    extensions: fanOut(({ since }) => (since == null ? 'events' : 'alone')),
    subscribe: (_root, { filter, since }, ctx) =>
      ctx.services.runtime.events(ctx.viewer, (filter ?? {}) as SnapshotFilter, since),
    // A subscriber that read too slowly and missed events is told to refetch the snapshot.
    resolve: (event, { filter }, ctx) =>
      isMissedEvents(event) ? ctx.services.runtime.resync(ctx.viewer, (filter ?? {}) as SnapshotFilter) : event,
  }),
  runtimeSnapshot: t.field({
    type: RuntimeSnapshotRef,
    description: 'The filtered snapshot at once, then again after changes (at most SNAPSHOT_MAX_HZ a second).',
    args: { filter: t.arg({ type: SnapshotFilterInput, description: 'Which apps and tasks.' }) },
    // Each snapshot replaces the one before: a late subscriber starts from the latest one.
    extensions: fanOut(() => 'latest'),
    subscribe: (_root, { filter }, ctx) => ctx.services.runtime.snapshots(ctx.viewer, (filter ?? {}) as SnapshotFilter),
    resolve: (snapshot, { filter }, ctx) =>
      isMissedEvents(snapshot) ? ctx.services.runtime.snapshot(ctx.viewer, (filter ?? {}) as SnapshotFilter) : snapshot,
  }),
}));
