import { readEntrance } from '../adapters/app-service/entrances.js';
import type { AppEntrance } from '../adapters/app-service/port.js';
import type { AppRow } from '../db/models.js';
import { catalogueNameOf, MAX_APP_NAME_LENGTH, MAX_SOURCE_ID_LENGTH } from '../domain/app-key.js';
import type { StageAndHealth } from '../domain/app-stage.js';
import { isNewerVersion } from '../domain/catalogue-version.js';
import { clientGone } from '../domain/operation-client.js';
import { eventOrMissed } from '../fanout/cohorts.js';
import type { CatalogAppKey } from '../services/catalog-service.js';
import { builder } from './builder.js';
import { connectionType, filterDescription } from './connections.js';
import { rowIdParser } from './global-id.js';
import { AppRef, AppStageEnum, CatalogAppRef, HealthEnum, TaskRef, TaskStatusEnum } from './refs.js';
import { TaskConnection } from './tasks.js';

/** The catalogue entry an installed app follows (a clone's is its original's). */
function catalogKeyOf(app: AppRow): CatalogAppKey {
  return { sourceId: app.sourceId, name: catalogueNameOf(app) };
}

const AppEntranceRef = builder.objectRef<AppEntrance>('AppEntrance').implement({
  description:
    'One way into an installed app (a web UI, an API), as the app service last reported it: what opening the app needs.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Entrance name, unique within the app (its own or its shared ones).' }),
    title: t.exposeString('title', { nullable: true, description: 'Display title.' }),
    url: t.exposeString('url', {
      nullable: true,
      description:
        'Where it opens (e.g. `a1b2c3d4.alice.olares.com`); null while the app service has not published it.',
    }),
    state: t.exposeString('state', {
      nullable: true,
      description: "The entrance's own state on the app service: `running`, `notReady`, `stopped` …",
    }),
    authLevel: t.exposeString('authLevel', {
      nullable: true,
      description: 'Who may open it: `public`, `private` or `internal`.',
    }),
    icon: t.exposeString('icon', { nullable: true, description: 'Icon URL.' }),
    openMethod: t.exposeString('openMethod', {
      nullable: true,
      description: 'How a desktop opens it: `default`, `window` or `iframe`.',
    }),
    invisible: t.exposeBoolean('invisible', { description: 'Whether it is hidden from the desktop.' }),
    shared: t.exposeBoolean('shared', {
      description: "Whether it is one of the app's shared entrances, which other users reach too.",
    }),
  }),
});

/** The stored entrances, read as the app service's are (a row is never trusted to be well formed). */
function entrancesOf(app: AppRow): AppEntrance[] {
  if (!Array.isArray(app.entrances)) return [];
  return app.entrances.flatMap((item) => {
    const shared = typeof item === 'object' && item !== null && (item as { shared?: unknown }).shared === true;
    return readEntrance(item, shared) ?? [];
  });
}

const APP_SERVICE_MESSAGE =
  "The app service's words with its last state (e.g. what failed, when `reason` is only a code or empty), secret values removed; null when it sent none.";

// Nullable, as catalogApp and latestVersion are: they read the database, and a non-null field
// that fails takes its parent with it, up to the whole `runtimeSnapshot` the server serves from
// memory while the database is away.
const UPGRADE_AVAILABLE =
  'Whether the catalogue offers a newer version than the installed one (`latestVersion` > `installedVersion`, semver-like: a `v` prefix is ignored, pre-releases come before their release). False while nothing is installed yet, when the catalogue no longer offers the app, or when a version cannot be ordered. Null (with an `UNAVAILABLE` error) when the catalogue could not be read.';
const SOURCE_REMOVED =
  'Whether the market source it was installed from has been removed (`removeMarketSource`). The app stays installed and keeps working, but the catalogue no longer offers it: no upgrades, no reinstall from there. Null (with an `UNAVAILABLE` error) when the sources could not be read.';

builder.node(AppRef, {
  description:
    'One app of one user in one market source: its operation state as reported by the app service, and the derived stage.',
  id: { resolve: (app) => app.id, parse: rowIdParser('App') },
  loadOne: (id, ctx) => ctx.services.apps.getById(ctx.viewer, id),
  fields: (t) => ({
    userId: t.exposeString('userId', { description: 'Owner of the app.' }),
    sourceId: t.exposeString('sourceId', { description: 'Market source the app was installed from.' }),
    appName: t.exposeString('appName', { description: "App name (for a clone: the clone's own name)." }),
    stage: t.field({
      type: AppStageEnum,
      description: 'What the app is doing now, derived from `state` and the active task.',
      // Apps from the runtime state carry their stage, answered synchronously (a promise per app
      // was most of a 10k-app snapshot's execution); others derive it (batched).
      resolve: (app, _args, ctx) =>
        'derived' in app
          ? (app.derived as StageAndHealth).stage
          : ctx.loaders.appStage.load(app).then((derived) => derived.stage),
    }),
    health: t.field({
      type: HealthEnum,
      description: 'Health derived with the stage.',
      resolve: (app, _args, ctx) =>
        'derived' in app
          ? (app.derived as StageAndHealth).health
          : ctx.loaders.appStage.load(app).then((derived) => derived.health),
    }),
    installedVersion: t.exposeString('installedVersion', {
      nullable: true,
      description: 'Version currently installed.',
    }),
    targetVersion: t.exposeString('targetVersion', {
      nullable: true,
      description: 'Version the current operation moves to.',
    }),
    state: t.exposeString('state', {
      nullable: true,
      description:
        'Raw app-service state (e.g. `running`, `downloading`, `installFailed`); empty while an operation is pending.',
    }),
    progress: t.exposeString('progress', {
      nullable: true,
      description: 'Raw progress text reported by the app service.',
    }),
    reason: t.exposeString('reason', {
      nullable: true,
      description: 'Why the app is in this state (e.g. a failure reason).',
    }),
    message: t.exposeString('message', { nullable: true, description: APP_SERVICE_MESSAGE }),
    entrances: t.field({
      type: [AppEntranceRef],
      description:
        "The app's entrances (its own, then its shared ones) as the app service last reported them, in its state events or its list of apps; empty until it reported any.",
      resolve: entrancesOf,
    }),
    cfgType: t.exposeString('cfgType', {
      nullable: true,
      description: 'Kind of app from its manifest: `app`, `middleware`, …',
    }),
    updatedAt: t.field({
      type: 'DateTime',
      description: 'When this state last changed.',
      resolve: (app) => app.updatedAt,
    }),
    catalogApp: t.field({
      type: CatalogAppRef,
      nullable: true,
      description:
        "The catalogue entry it was installed from (a clone: its original's). Null when the catalogue no longer offers it: the source dropped the app, or the source itself was removed (see `sourceRemoved`).",
      resolve: (app, _args, ctx) => ctx.loaders.catalogAppByName.load(catalogKeyOf(app)),
    }),
    latestVersion: t.string({
      nullable: true,
      description: "The catalogue's current version of it; null when the catalogue no longer offers it.",
      resolve: async (app, _args, ctx) => (await ctx.loaders.catalogVersion.load(catalogKeyOf(app)))?.version ?? null,
    }),
    upgradeAvailable: t.boolean({
      nullable: true,
      description: UPGRADE_AVAILABLE,
      resolve: async (app, _args, ctx) => {
        if (!app.installedVersion) return false;
        const latest = await ctx.loaders.catalogVersion.load(catalogKeyOf(app));
        return latest !== null && isNewerVersion(latest.version, app.installedVersion);
      },
    }),
    sourceRemoved: t.boolean({
      nullable: true,
      description: SOURCE_REMOVED,
      resolve: async (app, _args, ctx) => !(await ctx.loaders.sourceExists.load(app.sourceId)),
    }),
    activeTask: t.field({
      type: TaskRef,
      nullable: true,
      description: 'The pending or running task of this app, if any.',
      resolve: (app, _args, ctx) => ctx.loaders.activeTask.load(app),
    }),
    tasks: t.connection(
      {
        type: TaskRef,
        description: 'Tasks of this app, newest first.',
        args: {
          status: t.arg({ type: [TaskStatusEnum], required: false, description: 'Only tasks in these statuses.' }),
        },
        resolve: (app, args, ctx) => ctx.loaders.appTasks.load({ app, args }),
      },
      TaskConnection,
    ),
  }),
});

export const AppConnection = connectionType(AppRef, 'App', 'apps');

const AppFilterInput = builder.inputType('AppFilter', {
  description: filterDescription('apps'),
  fields: (t) => ({
    userId: t.string({ description: "Only this user's apps (admins only; others always see their own)." }),
    sourceId: t.string({ description: 'Only apps from this market source.' }),
    appName: t.string({ description: 'Only this app name.' }),
    stage: t.field({ type: [AppStageEnum], description: 'Only apps in one of these stages.' }),
    health: t.field({ type: HealthEnum, description: 'Only apps with this health.' }),
  }),
});

builder.subscriptionField('appUpdated', (t) =>
  t.field({
    type: AppRef,
    description:
      'Each change of an app you may see (state, progress, versions) that matches the filter. A removed app has no row to push: the last push of an uninstall is UNINSTALLING; `runtimeEvents` tells of the removal (APP_REMOVED, `removedApp.id`).',
    args: { filter: t.arg({ type: AppFilterInput, description: 'Which apps.' }) },
    subscribe: (_root, { filter }, ctx) => ctx.services.apps.subscribe(ctx.viewer, filter ?? {}),
    resolve: (app) => eventOrMissed(app, 'query apps to see their current state'),
  }),
);

builder.queryFields((t) => ({
  apps: t.connection(
    {
      type: AppRef,
      description: "Apps of users (yours, or everyone's for admins), newest first.",
      args: { filter: t.arg({ type: AppFilterInput, description: 'Which apps.' }) },
      resolve: (_root, { filter, ...page }, ctx) =>
        ctx.services.apps.list(ctx.viewer, filter ?? {}, page, () => clientGone(ctx)),
    },
    AppConnection,
  ),
  app: t.field({
    type: AppRef,
    nullable: true,
    description: 'One app by source and name; null when not installed. Admins may name the user.',
    args: {
      sourceId: t.arg.string({
        required: true,
        description: `Market source id (at most ${MAX_SOURCE_ID_LENGTH} characters).`,
      }),
      appName: t.arg.string({ required: true, description: `App name (at most ${MAX_APP_NAME_LENGTH} characters).` }),
      userId: t.arg.string({ description: 'Owner (admins only; defaults to you).' }),
    },
    resolve: (_root, args, ctx) => ctx.services.apps.get(ctx.viewer, args),
  }),
}));
