import DataLoader from 'dataloader';
import type { AppRow, CatalogAppRow, OutboxMessageRow, TaskRow } from '../db/models.js';
import type { AppKey } from '../domain/app-key.js';
import { deriveStage, type StageAndHealth } from '../domain/app-stage.js';
import type { TaskStatus } from '../domain/tasks.js';
import type { CatalogAppKey, CatalogService, CatalogVersion } from './catalog-service.js';
import type { InstalledAppService } from './installed-app-service.js';
import type { MarketSourceService } from './market-source-service.js';
import type { Connection, PageArgs } from './pagination.js';
import type { TaskService } from './task-service.js';
import type { WebhookService } from './webhook-service.js';

type AppTasksArgs = PageArgs & { status?: TaskStatus[] | null };

/**
 * Per-request batching: every nested field that reads the database (App.activeTask, App.stage,
 * App.tasks, App.catalogApp and its kin, Task.app, CatalogApp.categories, MarketSource.appCount,
 * PaymentNotification.delivery) goes through one of these, so a list of N parents costs one query
 * per field, not N. (Webhook.recentDeliveries batches in schema/webhooks.ts.)
 *
 * They batch but do not cache (`cache: false`): a subscription keeps one context for its whole
 * life, and a cached active task would make every later event show a stale stage.
 */
const BATCH_ONLY = { cache: false } as const;

/** The services the loaders read through. */
export interface LoaderServices {
  apps: Pick<InstalledAppService, 'activeTasks' | 'byKeys'>;
  tasks: Pick<TaskService, 'tasksOfApps' | 'byIds'>;
  catalog: Pick<CatalogService, 'categoriesOf' | 'appsNamed' | 'latestVersions' | 'existingSources'>;
  marketSources: Pick<MarketSourceService, 'appCounts'>;
  webhooks: Pick<WebhookService, 'deliveriesOfNotifications'>;
}

export function createLoaders(services: LoaderServices) {
  // The tasks a mutation answered with (showTask), by id. The engine may start a task while its
  // response is written: a field that reads the same task again (Task.app.activeTask, App.stage,
  // App.tasks) shows the row the payload showed, so one response has one state per task. Only
  // mutations add to it: a subscription's context, which lasts, never does.
  const shown = new Map<string, TaskRow>();
  const asShown = <Row extends TaskRow | null>(row: Row): Row => ((row && shown.get(row.taskId)) ?? row) as Row;
  const taskById = new DataLoader<string, TaskRow | null>((ids) => services.tasks.byIds(ids), BATCH_ONLY);

  /**
   * The task a mutation answers with, read again once the service has written it and told the
   * engine (as fresh as the fields under it, which read after), and kept as this response's row.
   */
  const showTask = async (answered: Promise<TaskRow>): Promise<TaskRow> => {
    const written = await answered;
    const task = (await taskById.load(written.taskId)) ?? written;
    shown.set(task.taskId, task);
    return task;
  };

  const activeTask = new DataLoader<AppKey, TaskRow | null>(
    async (keys) => (await services.apps.activeTasks(keys)).map(asShown),
    BATCH_ONLY,
  );

  const appStage = new DataLoader<AppRow, StageAndHealth, number>(async (rows) => {
    const tasks = await activeTask.loadMany(rows);
    return rows.map((row, index) => {
      const task = tasks[index];
      if (task instanceof Error) return task;
      return deriveStage({ state: row.state, progress: row.progress, activeTask: task ?? null });
    });
  }, BATCH_ONLY);

  const appByKey = new DataLoader<AppKey, AppRow | null>((keys) => services.apps.byKeys(keys), BATCH_ONLY);

  // Apps asking for their task lists with the same arguments share one query.
  const appTasks = new DataLoader<{ app: AppKey; args: AppTasksArgs }, Connection<TaskRow>, string>(
    async (requests) => {
      const groups = new Map<string, number[]>();
      requests.forEach((request, index) => {
        const key = JSON.stringify(request.args);
        groups.set(key, [...(groups.get(key) ?? []), index]);
      });
      const results: Connection<TaskRow>[] = new Array(requests.length);
      await Promise.all(
        [...groups.values()].map(async (indexes) => {
          const first = requests[indexes[0] as number] as { args: AppTasksArgs };
          const pages = await services.tasks.tasksOfApps(
            indexes.map((index) => (requests[index] as { app: AppKey }).app),
            first.args,
          );
          indexes.forEach((index, position) => {
            const page = pages[position] as Connection<TaskRow>;
            const edges = shown.size ? page.edges.map((edge) => ({ ...edge, node: asShown(edge.node) })) : page.edges;
            results[index] = { ...page, edges };
          });
        }),
      );
      return results;
    },
    BATCH_ONLY,
  );

  const catalogCategories = new DataLoader<number, string[]>((ids) => services.catalog.categoriesOf(ids), BATCH_ONLY);

  // An installed app's catalogue entry (App.catalogApp) and, cheaper, its versions only
  // (App.upgradeAvailable, App.latestVersion); whether its source still exists (App.sourceRemoved).
  const catalogAppByName = new DataLoader<CatalogAppKey, CatalogAppRow | null>(
    (keys) => services.catalog.appsNamed(keys),
    BATCH_ONLY,
  );
  const catalogVersion = new DataLoader<CatalogAppKey, CatalogVersion | null>(
    (keys) => services.catalog.latestVersions(keys),
    BATCH_ONLY,
  );
  const sourceExists = new DataLoader<string, boolean>((ids) => services.catalog.existingSources(ids), BATCH_ONLY);

  // Catalogue-app counts per source (MarketSource.appCount), one grouped query for a list of sources.
  const sourceAppCount = new DataLoader<string, number>((ids) => services.marketSources.appCounts(ids), BATCH_ONLY);

  // The outbox message of each payment push (PaymentNotification.delivery).
  const notificationDelivery = new DataLoader<number, OutboxMessageRow | null>(
    (ids) => services.webhooks.deliveriesOfNotifications(ids),
    BATCH_ONLY,
  );

  return {
    showTask,
    activeTask,
    appStage,
    appByKey,
    appTasks,
    catalogCategories,
    catalogAppByName,
    catalogVersion,
    sourceExists,
    sourceAppCount,
    notificationDelivery,
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
