import type { ChartRepoStatus } from '../adapters/chart-repo/port.js';
import { filterAppStates, filterImageStates } from '../adapters/chart-repo/status-filter.js';
import type {
  ChartRepoAppState,
  ChartRepoImageNode,
  ChartRepoImageState,
  ChartRepoStep,
  ChartRepoSystem,
} from '../adapters/chart-repo/status-types.js';
import { builder } from './builder.js';
import { ChartRepoQueuesRef } from './chart-repo-queues.js';

/**
 * The chart repo's status: the contract's untyped JSON fields (deprecated) and the typed fields
 * beside them. Both are read once per collect (src/adapters/chart-repo/); the resolvers here only
 * pick and filter. The runtime scopes the whole status to the viewer before it gets here.
 */

const ChartRepoSystemRef = builder.objectRef<ChartRepoSystem>('ChartRepoSystem').implement({
  description: 'The chart repo service itself.',
  fields: (t) => ({
    hostname: t.exposeString('hostname', { nullable: true, description: 'Host it runs on.' }),
    version: t.exposeString('version', { nullable: true, description: 'Its version.' }),
    uptimeSeconds: t.exposeInt('uptimeSeconds', { nullable: true, description: 'Seconds since it started.' }),
    components: t.expose('components', {
      type: 'JSON',
      nullable: true,
      description: 'Its components and their states, as it reports them (a free-form map).',
    }),
    resourceUsage: t.expose('resourceUsage', {
      type: 'JSON',
      nullable: true,
      description: 'Its resource usage, as it reports it (a free-form map).',
    }),
  }),
});

const ChartRepoStepRef = builder.objectRef<ChartRepoStep>('ChartRepoStep').implement({
  description: 'The step of its processing an app is at (e.g. step 3 of 5, rendering the chart).',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Step name.' }),
    index: t.exposeInt('index', { description: 'Its position among the steps, as the chart repo counts them.' }),
    total: t.exposeInt('total', { description: 'How many steps there are.' }),
    status: t.exposeString('status', { description: 'Its status (running, completed, failed …).' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true, description: 'When it started.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', nullable: true, description: 'When it last changed.' }),
    retryCount: t.exposeInt('retryCount', { description: 'How often it was retried.' }),
  }),
});

const ChartRepoProcessingRef = builder
  .objectRef<NonNullable<ChartRepoAppState['processing']>>('ChartRepoProcessing')
  .implement({
    description: 'The hydrator task processing an app.',
    fields: (t) => ({
      taskId: t.exposeString('taskId', { description: 'The task (see `queues.hydrator.tasks`).' }),
      durationMs: t.exposeFloat('durationMs', { nullable: true, description: 'How long it has run, in milliseconds.' }),
    }),
  });

const ChartRepoErrorRef = builder.objectRef<NonNullable<ChartRepoAppState['error']>>('ChartRepoError').implement({
  description: "Why an app's processing failed.",
  fields: (t) => ({
    message: t.exposeString('message', { description: 'What went wrong (cut at 2000 characters).' }),
    step: t.exposeString('step', { nullable: true, description: 'The step it went wrong at.' }),
  }),
});

const ChartRepoAppStateRef = builder.objectRef<ChartRepoAppState>('ChartRepoAppState').implement({
  description: "Where the chart repo is with one app of one user's market source.",
  fields: (t) => ({
    appId: t.exposeString('appId', { description: "The chart repo's app id." }),
    appName: t.exposeString('appName', { description: 'App name.' }),
    userId: t.exposeString('userId', { description: 'For whom.' }),
    sourceId: t.exposeString('sourceId', { description: 'Market source.' }),
    state: t.exposeString('state', { description: 'Its state as the chart repo says it.' }),
    currentStep: t.field({
      type: ChartRepoStepRef,
      nullable: true,
      description: 'The step it is at, while processed.',
      resolve: (a) => a.currentStep,
    }),
    processing: t.field({
      type: ChartRepoProcessingRef,
      nullable: true,
      description: 'The task processing it, while processed.',
      resolve: (a) => a.processing,
    }),
    createdAt: t.expose('createdAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the chart repo first saw it.',
    }),
    lastUpdatedAt: t.expose('lastUpdatedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When its processing last changed.',
    }),
    error: t.field({
      type: ChartRepoErrorRef,
      nullable: true,
      description: 'Why its processing failed, when it did.',
      resolve: (a) => a.error,
    }),
    lastUpdate: t.expose('lastUpdate', {
      type: 'DateTime',
      nullable: true,
      description: 'When this state was written.',
    }),
  }),
});

const ChartRepoImageNodeRef = builder.objectRef<ChartRepoImageNode>('ChartRepoImageNode').implement({
  description: 'An image on one cluster node.',
  fields: (t) => ({
    nodeName: t.exposeString('nodeName', { description: 'Node name.' }),
    architecture: t.exposeString('architecture', { nullable: true, description: 'CPU architecture of the node.' }),
    os: t.exposeString('os', { nullable: true, description: 'Operating system of the node.' }),
    totalSize: t.exposeFloat('totalSize', { nullable: true, description: 'Image size in bytes.' }),
    downloadedSize: t.exposeFloat('downloadedSize', { nullable: true, description: 'Bytes downloaded.' }),
    layerCount: t.exposeInt('layerCount', { nullable: true, description: 'Layers of the image.' }),
    downloadedLayers: t.exposeInt('downloadedLayers', { nullable: true, description: 'Layers downloaded.' }),
    progress: t.exposeFloat('progress', { nullable: true, description: 'Download progress in percent (0 to 100).' }),
  }),
});

const ChartRepoImageStateRef = builder.objectRef<ChartRepoImageState>('ChartRepoImageState').implement({
  description: 'An image of an app: its download to the nodes and its analysis.',
  fields: (t) => ({
    imageName: t.exposeString('imageName', { description: 'Image reference.' }),
    appId: t.exposeString('appId', { nullable: true, description: "The chart repo's id of the app using it." }),
    appName: t.exposeString('appName', { nullable: true, description: 'The app using it.' }),
    status: t.exposeString('status', { description: 'Download status (downloading, completed, failed …).' }),
    architecture: t.exposeString('architecture', { nullable: true, description: 'CPU architecture.' }),
    totalSize: t.exposeFloat('totalSize', { nullable: true, description: 'Size in bytes.' }),
    downloadedSize: t.exposeFloat('downloadedSize', { nullable: true, description: 'Bytes downloaded.' }),
    downloadProgress: t.exposeFloat('downloadProgress', {
      nullable: true,
      description: 'Download progress in percent (0 to 100).',
    }),
    layerCount: t.exposeInt('layerCount', { nullable: true, description: 'Layers.' }),
    downloadedLayers: t.exposeInt('downloadedLayers', { nullable: true, description: 'Layers downloaded.' }),
    analysisStatus: t.exposeString('analysisStatus', { nullable: true, description: 'Status of its analysis.' }),
    analyzedAt: t.expose('analyzedAt', { type: 'DateTime', nullable: true, description: 'When it was analysed.' }),
    errorMessage: t.exposeString('errorMessage', {
      nullable: true,
      description: 'Why it failed (cut at 2000 characters).',
    }),
    nodes: t.field({
      type: [ChartRepoImageNodeRef],
      description: 'Its download on each node (at most 256).',
      resolve: (i) => i.nodes,
    }),
    lastUpdate: t.expose('lastUpdate', {
      type: 'DateTime',
      nullable: true,
      description: 'When this state was written.',
    }),
  }),
});

const FILTER_ARG = 'exact match, 1 to 512 characters';

const deprecatedJson = (description: string, typed: string, pick: (c: ChartRepoStatus) => unknown) =>
  ({
    type: 'JSON',
    nullable: true,
    description: `${description} Untyped, in the chart repo's snake_case.`,
    deprecationReason: `Use \`${typed}\`: the same data, typed, in camelCase.`,
    resolve: pick,
  }) as const;

export const ChartRepoStatusRef = builder.objectRef<ChartRepoStatus>('ChartRepoStatus').implement({
  description:
    "What the chart repository reports about app processing, images and its task queues. A user sees only what was collected for their own (user, source) pairs, failures included; admins see everyone's.",
  fields: (t) => ({
    reachable: t.exposeBoolean('reachable', { description: 'Whether the last collection reached it.' }),
    lastError: t.exposeString('lastError', {
      nullable: true,
      description: 'Why the last collection failed (partly or wholly).',
    }),
    lastUpdate: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When its data was last fetched.',
      resolve: (c) => c.lastUpdate,
    }),
    system: t.field(deprecatedJson('System block (version, uptime, resources).', 'systemStatus', (c) => c.system)),
    apps: t.field(deprecatedJson('App processing states.', 'appStates', (c) => c.apps)),
    images: t.field(deprecatedJson('Image download and analysis states.', 'imageStates', (c) => c.images)),
    tasks: t.field(deprecatedJson('Hydrator and image-analyzer queues.', 'queues', (c) => c.tasks)),
    systemStatus: t.field({
      type: ChartRepoSystemRef,
      nullable: true,
      description: 'The chart repo service itself, when it reports on itself.',
      resolve: (c) => c.systemStatus ?? null,
    }),
    appStates: t.field({
      type: [ChartRepoAppStateRef],
      description: 'Where the chart repo is with each app, in its order; the filters narrow it down.',
      args: {
        userId: t.arg.string({ description: `Only this user's apps (${FILTER_ARG}).` }),
        sourceId: t.arg.string({ description: `Only this market source's apps (${FILTER_ARG}).` }),
        appName: t.arg.string({ description: `Only this app (${FILTER_ARG}).` }),
      },
      resolve: (c, args) => filterAppStates(c.appStates ?? [], args),
    }),
    imageStates: t.field({
      type: [ChartRepoImageStateRef],
      description: "The apps' images: download and analysis.",
      args: { appName: t.arg.string({ description: `Only this app's images (${FILTER_ARG}).` }) },
      resolve: (c, args) => filterImageStates(c.imageStates ?? [], args),
    }),
    queues: t.field({
      type: ChartRepoQueuesRef,
      nullable: true,
      description: 'Its task queues, when it reports them.',
      resolve: (c) => c.queues ?? null,
    }),
    droppedItems: t.int({
      description:
        "Items of the chart repo's answers the typed fields leave out: because a required field was missing or of the wrong type, or a list was longer than its bound (the deprecated JSON fields still hold these); or because the answer to one (user, source) call held app states or hydrator tasks of another user or source (left out of the deprecated fields too).",
      resolve: (c) => c.droppedItems ?? 0,
    }),
  }),
});
