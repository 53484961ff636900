import { MAX_TASK_ID_LENGTH, taskStatusOf, taskTypeOf } from '../domain/tasks.js';
import { eventOrMissed, fanOut } from '../fanout/cohorts.js';
import { builder } from './builder.js';
import { connectionType, filterDescription } from './connections.js';
import { textIdParser } from './global-id.js';
import { AppRef, TaskRef, TaskStatusEnum, TaskTypeEnum } from './refs.js';

builder.node(TaskRef, {
  description:
    'An operation (install, uninstall, upgrade, clone, cancel) requested by a user and executed against the app service.',
  // An id no task can have is malformed, like any other (the service's refusal would name a `taskId` argument).
  id: { resolve: (task) => task.taskId, parse: textIdParser('Task', MAX_TASK_ID_LENGTH) },
  loadOne: (taskId, ctx) => ctx.services.tasks.get(ctx.viewer, taskId),
  fields: (t) => ({
    taskId: t.exposeString('taskId', { description: "The task's own id, also accepted by `task(taskId:)`." }),
    type: t.field({ type: TaskTypeEnum, description: 'What the task does.', resolve: (task) => taskTypeOf(task.type) }),
    status: t.field({
      type: TaskStatusEnum,
      description: 'Where the task is in its lifecycle.',
      resolve: (task) => taskStatusOf(task.status),
    }),
    progress: t.exposeInt('progress', {
      description: "Progress 0–100 from the app service's state events; 100 once completed.",
    }),
    userId: t.exposeString('userId', { description: 'Who requested it.' }),
    sourceId: t.exposeString('sourceId', { description: 'Market source of the app.' }),
    appName: t.exposeString('appName', { description: 'App the task acts on (for a clone: the new name).' }),
    version: t.exposeString('version', { nullable: true, description: 'Version installed or upgraded to.' }),
    opId: t.exposeString('opId', { nullable: true, description: 'Operation id issued by the app service.' }),
    error: t.exposeString('error', {
      nullable: true,
      description: "Why the task failed, including the app service's own message.",
    }),
    message: t.exposeString('message', {
      nullable: true,
      description:
        'What a PENDING task waits for: the app service did not take it (busy, restarting or unreachable), and it is sent again at the time this says, e.g. "app service is too busy for install of n8n (HTTP 429); attempt 2 of 8 at 2026-12-07T12:00:03Z" (TASK_START_ATTEMPTS). Null otherwise.',
    }),
    result: t.field({
      type: 'JSON',
      nullable: true,
      description: 'Result envelope of the operation.',
      resolve: (task) => task.result,
    }),
    createdAt: t.field({
      type: 'DateTime',
      description: 'When the task was accepted.',
      resolve: (task) => task.createdAt,
    }),
    startedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When a worker started it.',
      resolve: (task) => task.startedAt,
    }),
    completedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When it reached a terminal status.',
      resolve: (task) => task.completedAt,
    }),
    retryOfTaskId: t.exposeString('retryOfTaskId', {
      nullable: true,
      description: 'The failed or canceled task this one retries (retryTask).',
    }),
    app: t.field({
      type: AppRef,
      nullable: true,
      description: "The app's current state; null once the app is gone (e.g. after uninstall).",
      resolve: (task, _args, ctx) => ctx.loaders.appByKey.load(task),
    }),
  }),
});

export const TaskConnection = connectionType(TaskRef, 'Task', 'tasks');

const TaskFilterInput = builder.inputType('TaskFilter', {
  description: filterDescription('tasks'),
  fields: (t) => ({
    userId: t.string({ description: "Only this user's tasks (admins only; others always see their own)." }),
    sourceId: t.string({ description: 'Only tasks on this market source.' }),
    appName: t.string({ description: 'Only tasks of this app.' }),
    status: t.field({ type: [TaskStatusEnum], description: 'Only tasks in one of these statuses.' }),
    type: t.field({ type: [TaskTypeEnum], description: 'Only tasks of one of these types.' }),
    createdAfter: t.field({ type: 'DateTime', description: 'Only tasks created at or after this time.' }),
    createdBefore: t.field({ type: 'DateTime', description: 'Only tasks created at or before this time.' }),
  }),
});

builder.subscriptionField('taskUpdated', (t) =>
  t.field({
    type: TaskRef,
    description:
      'Each change of a task you may see (status, progress, op id) that matches the filter. With `taskId`, that task only, starting with its current state (a state may come twice), so a subscription made once a mutation returned the id shows where the task is.',
    args: {
      filter: t.arg({ type: TaskFilterInput, description: 'Which tasks.' }),
      taskId: t.arg.string({ description: 'Only this task.' }),
    },
    subscribe: (_root, { filter, taskId }, ctx) => ctx.services.tasks.subscribe(ctx.viewer, filter ?? {}, taskId),
    // One task's results are its states, each replacing the one before: a subscriber that joins a
    // running one (a second tab, a reconnect) gets the latest at once, as the first got its first.
    extensions: fanOut(({ taskId }) => (taskId ? 'latest' : 'events')),
    resolve: (task) => eventOrMissed(task, 'query tasks to see their current state'),
  }),
);

builder.queryFields((t) => ({
  tasks: t.connection(
    {
      type: TaskRef,
      description: "Tasks (yours, or everyone's for admins), newest first.",
      args: { filter: t.arg({ type: TaskFilterInput, description: 'Which tasks.' }) },
      resolve: (_root, { filter, ...page }, ctx) => ctx.services.tasks.list(ctx.viewer, filter ?? {}, page),
    },
    TaskConnection,
  ),
  task: t.field({
    type: TaskRef,
    nullable: true,
    description: 'One task by its task id; null when it does not exist or is not yours.',
    args: { taskId: t.arg.string({ required: true, description: 'The task id.' }) },
    resolve: (_root, { taskId }, ctx) => ctx.services.tasks.get(ctx.viewer, taskId),
  }),
}));
