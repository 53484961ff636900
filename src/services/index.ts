import type { Db } from '../db/client.js';
import { CatalogService } from './catalog-service.js';
import { HistoryService } from './history-service.js';
import { InstalledAppService } from './installed-app-service.js';
import { PaymentService } from './payment-service.js';
import { TaskService } from './task-service.js';

export interface ServiceDeps {
  db: Db;
  maxPageSize: number;
}

/** The composition root of the domain services. */
export function createServices({ db, maxPageSize }: ServiceDeps) {
  return {
    apps: new InstalledAppService(db, maxPageSize),
    tasks: new TaskService(db, maxPageSize),
    payments: new PaymentService(db, maxPageSize),
    history: new HistoryService(db, maxPageSize),
    catalog: new CatalogService(db, maxPageSize),
  };
}

export type Services = ReturnType<typeof createServices>;
