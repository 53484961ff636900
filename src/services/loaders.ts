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
  tasks: Pick<TaskService, 'tasksOfApps'>;
  catalog: Pick<CatalogService, 'categoriesOf' | 'appsNamed' | 'latestVersions' | 'existingSources'>;
  marketSources: Pick<MarketSourceService, 'appCounts'>;
  webhooks: Pick<WebhookService, 'deliveriesOfNotifications'>;
}

export function createLoaders(services: LoaderServices) {
  const activeTask = new DataLoader<AppKey, TaskRow | null>((keys) => services.apps.activeTasks(keys), BATCH_ONLY);

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
            results[index] = pages[position] as Connection<TaskRow>;
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
