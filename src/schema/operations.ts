import { SHOWN_TEXT_RULE } from '../domain/parse-input.js';
import { builder } from './builder.js';
import { MUTATION_ERRORS, mutationResult, SUBMISSION_ERRORS } from './errors.js';
import { TaskRef } from './refs.js';

/** What a title others read may hold (shownText in domain/parse-input.ts). */
const SHOWN_TITLE = `1 to 64 characters, ${SHOWN_TEXT_RULE}`;

builder.mutationType({ description: 'Changes: operations on apps (executed as tasks) and purchases.' });

const EnvInput = builder.inputType('EnvInput', {
  description: 'An environment variable passed to the app.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Variable name: letters, digits and _, not starting with a digit.' }),
    value: t.string({ description: 'Its value.' }),
    valueFrom: t.string({ description: 'Take the value from this other variable instead.' }),
  }),
});

const EntranceInput = builder.inputType('EntranceInput', {
  description: 'Title override for one entrance of a cloned app.',
  fields: (t) => ({
    name: t.string({ required: true, description: "Entrance name, as in the app's manifest." }),
    title: t.string({ required: true, description: `Title the clone shows for it: ${SHOWN_TITLE}.` }),
  }),
});

const idempotencyKey =
  'Repeating the same request with the same key returns the original task instead of a new one; the key with a different request (another app, version, envs or option) is a VALIDATION error.';

const InstallAppInput = builder.inputType('InstallAppInput', {
  description: 'Install an app from a market source.',
  fields: (t) => ({
    sourceId: t.string({ required: true, description: 'Market source of the app.' }),
    appName: t.string({ required: true, description: "App name in that source's catalogue." }),
    version: t.string({ required: true, description: "Version to install (one of the catalogue app's `versions`)." }),
    envs: t.field({ type: [EnvInput], description: 'Environment values the app needs.' }),
    idempotencyKey: t.string({ description: idempotencyKey }),
  }),
});

const UpgradeAppInput = builder.inputType('UpgradeAppInput', {
  description: 'Move an installed app to a newer version.',
  fields: (t) => ({
    sourceId: t.string({ required: true, description: 'Market source of the app.' }),
    appName: t.string({ required: true, description: 'Installed app name (a clone upgrades along its original).' }),
    version: t.string({ required: true, description: 'Version to upgrade to.' }),
    envs: t.field({ type: [EnvInput], description: 'Environment values for the new version.' }),
    idempotencyKey: t.string({ description: idempotencyKey }),
  }),
});

const UninstallAppInput = builder.inputType('UninstallAppInput', {
  description: 'Remove an installed app.',
  fields: (t) => ({
    sourceId: t.string({ required: true, description: 'Market source of the app.' }),
    appName: t.string({ required: true, description: 'Installed app name.' }),
    version: t.string({ description: 'Installed version, checked when given.' }),
    all: t.boolean({ description: 'Also remove shared parts (cascade).' }),
    deleteData: t.boolean({ description: "Also delete the app's data." }),
    idempotencyKey: t.string({ description: idempotencyKey }),
  }),
});

const CloneAppInput = builder.inputType('CloneAppInput', {
  description:
    'Install another instance of an installed app under a new name (raw name + 6 hex of a hash of this request).',
  fields: (t) => ({
    sourceId: t.string({ required: true, description: 'Market source of the original app.' }),
    appName: t.string({ required: true, description: 'The installed original.' }),
    title: t.string({ required: true, description: `Title of the clone: ${SHOWN_TITLE}.` }),
    envs: t.field({ type: [EnvInput], description: 'Environment values for the clone.' }),
    entrances: t.field({ type: [EntranceInput], description: 'Entrance title overrides.' }),
    idempotencyKey: t.string({ description: idempotencyKey }),
  }),
});

const lifecycleInput = (name: string, description: string, appDescription: string) =>
  builder.inputType(name, {
    description,
    fields: (t) => ({
      sourceId: t.string({ required: true, description: 'Market source of the app.' }),
      appName: t.string({ required: true, description: appDescription }),
      idempotencyKey: t.string({ description: idempotencyKey }),
    }),
  });
const StopAppInput = lifecycleInput(
  'StopAppInput',
  'Stop (suspend) a running app: it keeps its data and settings and can be resumed.',
  'Installed app name; the app must be RUNNING.',
);
const ResumeAppInput = lifecycleInput(
  'ResumeAppInput',
  'Start a stopped app again.',
  'Installed app name; the app must be STOPPED.',
);

const TaskIdInput = (name: string, description: string) =>
  builder.inputType(name, {
    description,
    fields: (t) => ({ taskId: t.string({ required: true, description: 'The task id.' }) }),
  });
const CancelTaskInput = TaskIdInput('CancelTaskInput', 'Cancel a pending or running task.');
const RetryTaskInput = TaskIdInput('RetryTaskInput', 'Run a failed or canceled task again.');

/** `submits`: the mutation writes a new task, which MAX_ACTIVE_TASKS_PER_USER may refuse (a cancel writes none). */
const taskResult = (name: string, successDescription: string, submits = true) =>
  mutationResult(
    name,
    { name: 'task', description: 'The task.' },
    successDescription,
    submits ? SUBMISSION_ERRORS : MUTATION_ERRORS,
  );

builder.mutationFields((t) => {
  return {
    installApp: t.field({
      type: TaskRef,
      description:
        'Install an app. The task is persisted as PENDING and executed by the task engine; the answer reads it again, so it may already be RUNNING.',
      errors: taskResult('installApp', 'The install was accepted.'),
      args: { input: t.arg({ type: InstallAppInput, required: true, description: 'What to install.' }) },
      resolve: (_root, { input }, ctx) => ctx.loaders.showTask(ctx.services.operations.install(ctx.viewer, input)),
    }),
    upgradeApp: t.field({
      type: TaskRef,
      description: 'Upgrade an installed app to another catalogue version.',
      errors: taskResult('upgradeApp', 'The upgrade was accepted.'),
      args: { input: t.arg({ type: UpgradeAppInput, required: true, description: 'What to upgrade.' }) },
      resolve: (_root, { input }, ctx) => ctx.loaders.showTask(ctx.services.operations.upgrade(ctx.viewer, input)),
    }),
    uninstallApp: t.field({
      type: TaskRef,
      description: 'Uninstall an installed app.',
      errors: taskResult('uninstallApp', 'The uninstall was accepted.'),
      args: { input: t.arg({ type: UninstallAppInput, required: true, description: 'What to remove.' }) },
      resolve: (_root, { input }, ctx) => ctx.loaders.showTask(ctx.services.operations.uninstall(ctx.viewer, input)),
    }),
    cloneApp: t.field({
      type: TaskRef,
      description: 'Clone an installed app under a new name.',
      errors: taskResult('cloneApp', 'The clone was accepted.'),
      args: { input: t.arg({ type: CloneAppInput, required: true, description: 'What to clone.' }) },
      resolve: (_root, { input }, ctx) => ctx.loaders.showTask(ctx.services.operations.clone(ctx.viewer, input)),
    }),
    stopApp: t.field({
      type: TaskRef,
      description:
        'Stop a running app (the app service suspends it). Its stage is STOPPING while the task runs, STOPPED once done.',
      errors: taskResult('stopApp', 'The stop was accepted.'),
      args: { input: t.arg({ type: StopAppInput, required: true, description: 'What to stop.' }) },
      resolve: (_root, { input }, ctx) => ctx.loaders.showTask(ctx.services.lifecycle.stop(ctx.viewer, input)),
    }),
    resumeApp: t.field({
      type: TaskRef,
      description: 'Start a stopped app again. Its stage is RESUMING while the task runs, RUNNING once done.',
      errors: taskResult('resumeApp', 'The resume was accepted.'),
      args: { input: t.arg({ type: ResumeAppInput, required: true, description: 'What to resume.' }) },
      resolve: (_root, { input }, ctx) => ctx.loaders.showTask(ctx.services.lifecycle.resume(ctx.viewer, input)),
    }),
    cancelTask: t.field({
      type: TaskRef,
      description:
        'Cancel a task: a pending one ends CANCELED at once; for a running one the app service is asked to cancel, and the task ends CANCELED when it confirms.',
      errors: taskResult('cancelTask', 'The cancel was done (pending task) or requested (running task).', false),
      args: { input: t.arg({ type: CancelTaskInput, required: true, description: 'Which task.' }) },
      resolve: (_root, { input }, ctx) =>
        ctx.loaders.showTask(ctx.services.operations.cancel(ctx.viewer, input.taskId)),
    }),
    retryTask: t.field({
      type: TaskRef,
      description: 'Submit a failed or canceled task again as a new task with the same parameters.',
      errors: taskResult('retryTask', 'The new task.'),
      args: { input: t.arg({ type: RetryTaskInput, required: true, description: 'Which task.' }) },
      resolve: (_root, { input }, ctx) => ctx.loaders.showTask(ctx.services.operations.retry(ctx.viewer, input.taskId)),
    }),
  };
});
