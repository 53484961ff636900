// Row types of the data model, shared by both providers' clients (see Db in client.ts).
export type {
  AppState as AppRow,
  CatalogApp as CatalogAppRow,
  HistoryRecord as HistoryRow,
  MarketSource as MarketSourceRow,
  OutboxMessage as OutboxMessageRow,
  Payment as PaymentRow,
  PaymentNotification as PaymentNotificationRow,
  Prisma,
  Task as TaskRow,
  Webhook as WebhookRow,
} from '../generated/prisma-sqlite/client.js';

/** Writes SQL NULL into a Json column (plain `null` is not allowed there, `undefined` means "unchanged"). */
export { DbNull } from '../generated/prisma-sqlite/internal/prismaNamespace.js';
