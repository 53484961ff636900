import type {
  ChartRepoAnalysisTask,
  ChartRepoHydrator,
  ChartRepoHydratorTask,
  ChartRepoImageAnalyzer,
  ChartRepoQueues,
} from '../adapters/chart-repo/status-types.js';
import { builder } from './builder.js';

/** The chart repo's two task queues (the hydrator and the image analyzer), typed; used by chart-repo.ts. */

const ChartRepoHydratorTaskRef = builder.objectRef<ChartRepoHydratorTask>('ChartRepoHydratorTask').implement({
  description: 'One task of the hydrator, which renders and unpacks an app chart step by step.',
  fields: (t) => ({
    taskId: t.exposeString('taskId', { description: "The hydrator's task id." }),
    userId: t.exposeString('userId', { nullable: true, description: 'For whom.' }),
    sourceId: t.exposeString('sourceId', { nullable: true, description: 'From which market source.' }),
    appId: t.exposeString('appId', { nullable: true, description: "The chart repo's app id." }),
    appName: t.exposeString('appName', { description: 'App name.' }),
    status: t.exposeString('status', {
      description: 'Its status as the hydrator says it (pending, running, failed …).',
    }),
    stepName: t.exposeString('stepName', { nullable: true, description: 'The step it is at.' }),
    totalSteps: t.exposeInt('totalSteps', { nullable: true, description: 'How many steps it has.' }),
    retryCount: t.exposeInt('retryCount', { description: 'How often it was retried.' }),
    lastError: t.exposeString('lastError', {
      nullable: true,
      description: 'Why it last failed (cut at 2000 characters).',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', nullable: true, description: 'When it was queued.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', nullable: true, description: 'When it last changed.' }),
  }),
});

const ChartRepoHydratorRef = builder.objectRef<ChartRepoHydrator>('ChartRepoHydrator').implement({
  description:
    "The hydrator's queue. Over several (user, source) calls its counters are summed and its lists concatenated; `workerCount` is the one pool's size.",
  fields: (t) => ({
    queueLength: t.exposeInt('queueLength', { description: 'Tasks waiting.' }),
    activeTasks: t.exposeInt('activeTasks', { description: 'Tasks running.' }),
    completedTasks: t.exposeInt('completedTasks', { description: 'Tasks completed.' }),
    failedTasks: t.exposeInt('failedTasks', { description: 'Tasks failed.' }),
    workerCount: t.exposeInt('workerCount', { description: 'Workers of its pool.' }),
    tasks: t.field({
      type: [ChartRepoHydratorTaskRef],
      description: 'Its current tasks.',
      resolve: (h) => h.tasks,
    }),
    recentFailed: t.field({
      type: [ChartRepoHydratorTaskRef],
      description: 'Tasks that failed recently.',
      resolve: (h) => h.recentFailed,
    }),
  }),
});

const ChartRepoAnalysisTaskRef = builder.objectRef<ChartRepoAnalysisTask>('ChartRepoAnalysisTask').implement({
  description: "One task of the image analyzer: reading the images of an app's chart.",
  fields: (t) => ({
    taskId: t.exposeString('taskId', { description: "The analyzer's task id." }),
    appName: t.exposeString('appName', { description: 'App name.' }),
    appDir: t.exposeString('appDir', { nullable: true, description: "The chart's directory in the chart repo." }),
    status: t.exposeString('status', { description: 'Its status (queued, processing, completed, failed …).' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', nullable: true, description: 'When it was queued.' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true, description: 'When a worker took it.' }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true, description: 'When it ended.' }),
    workerId: t.exposeString('workerId', { nullable: true, description: 'The worker on it.' }),
    durationMs: t.exposeFloat('durationMs', { nullable: true, description: 'How long it took, in milliseconds.' }),
    imagesCount: t.exposeInt('imagesCount', { description: 'Images to analyse.' }),
    analyzedCount: t.exposeInt('analyzedCount', { nullable: true, description: 'Images analysed so far.' }),
    error: t.exposeString('error', { nullable: true, description: 'Why it failed (cut at 2000 characters).' }),
    errorStep: t.exposeString('errorStep', { nullable: true, description: 'The step it failed at.' }),
    images: t.exposeStringList('images', { description: 'The images (at most 1000).' }),
  }),
});

const ChartRepoImageAnalyzerRef = builder.objectRef<ChartRepoImageAnalyzer>('ChartRepoImageAnalyzer').implement({
  description: "The image analyzer's queue and figures (the last answer's, not summed: it is one analyzer).",
  fields: (t) => ({
    isRunning: t.exposeBoolean('isRunning', { description: 'Whether it runs.' }),
    healthStatus: t.exposeString('healthStatus', { nullable: true, description: 'Its own health word (healthy …).' }),
    lastCheck: t.expose('lastCheck', { type: 'DateTime', nullable: true, description: 'When it last checked itself.' }),
    queueLength: t.exposeInt('queueLength', { description: 'Tasks waiting.' }),
    activeWorkers: t.exposeInt('activeWorkers', { description: 'Workers busy.' }),
    cachedImages: t.exposeInt('cachedImages', { description: 'Images whose analysis is cached.' }),
    analyzingCount: t.exposeInt('analyzingCount', { description: 'Images being analysed.' }),
    queuedTasks: t.field({
      type: [ChartRepoAnalysisTaskRef],
      description: 'Tasks waiting.',
      resolve: (a) => a.queuedTasks,
    }),
    processingTasks: t.field({
      type: [ChartRepoAnalysisTaskRef],
      description: 'Tasks being worked on.',
      resolve: (a) => a.processingTasks,
    }),
    recentCompleted: t.field({
      type: [ChartRepoAnalysisTaskRef],
      description: 'Tasks completed recently.',
      resolve: (a) => a.recentCompleted,
    }),
    recentFailed: t.field({
      type: [ChartRepoAnalysisTaskRef],
      description: 'Tasks failed recently.',
      resolve: (a) => a.recentFailed,
    }),
    totalAnalyzed: t.exposeInt('totalAnalyzed', { description: 'Analyses since it started.' }),
    successfulAnalyzed: t.exposeInt('successfulAnalyzed', { description: 'Successful analyses.' }),
    failedAnalyzed: t.exposeInt('failedAnalyzed', { description: 'Failed analyses.' }),
    averageAnalysisTimeMs: t.exposeFloat('averageAnalysisTimeMs', {
      nullable: true,
      description: 'Average time of an analysis, in milliseconds.',
    }),
    errorMessage: t.exposeString('errorMessage', {
      nullable: true,
      description: 'What is wrong with it, if anything.',
    }),
  }),
});

export const ChartRepoQueuesRef = builder.objectRef<ChartRepoQueues>('ChartRepoQueues').implement({
  description: "The chart repo's task queues.",
  fields: (t) => ({
    hydrator: t.field({
      type: ChartRepoHydratorRef,
      nullable: true,
      description: 'The hydrator (chart rendering), when reported.',
      resolve: (q) => q.hydrator,
    }),
    imageAnalyzer: t.field({
      type: ChartRepoImageAnalyzerRef,
      nullable: true,
      description: 'The image analyzer, when reported.',
      resolve: (q) => q.imageAnalyzer,
    }),
  }),
});
