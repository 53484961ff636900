import type { Db } from '../db/client.js';
import type { HistoryRow, TaskRow, WebhookRow } from '../db/models.js';
import { appKeyString } from '../domain/app-key.js';
import { isRecord } from '../platform/json.js';
import type { Logger } from '../platform/logger.js';
import type { FoundChange, WebhookDispatcher } from './webhook-dispatcher.js';
import { type WebhookEvent, type WebhookService, webhookEvents } from './webhook-service.js';

/** Where a run starts on a database it never ran on: an hour back. */
const FIRST_LOOK_BACK_MS = 60 * 60 * 1000;

/**
 * The `where` of a page: rows changed at `since` or later and before `before`; at exactly `since`,
 * only those with an id above `afterId` when it is given (the rest of a time a run stopped
 * part-way through).
 */
function changedSince<Column extends string>(column: Column, since: Date, afterId: number | null, before: Date) {
  type Where = { [C in Column]: { gte: Date; lt: Date } | { gt: Date; lt: Date } | Date } & { id?: { gt: number } };
  if (afterId === null) return { [column]: { gte: since, lt: before } } as Where;
  const rest = { [column]: since, id: { gt: afterId } } as Where;
  return { OR: [{ [column]: { gt: since, lt: before } } as Where, ...(since < before ? [rest] : [])] };
}

export interface WebhookCatchUpOptions {
  /**
   * How far back a run may look at most. Finished outbox messages are deleted once they are
   * OUTBOX_RETENTION_DAYS old; a change older than its message would be announced again.
   */
  lookBackMs: number;
  /** Rows read per statement. @default 200 */
  pageSize?: number;
  /** Pages read per table and run; the rest waits for the next run (the cursor stops there). @default 10 */
  maxPages?: number;
  /**
   * How far behind the run's start the cursor stops: a change stamped earlier but committed later
   * (a transaction in progress, another instance's clock, a webhook added elsewhere that this
   * instance's cached list does not show yet: WEBHOOK_CACHE_MS) is read again next run. @default 30000
   */
  graceMs?: number;
  /**
   * Rows changed this recently are left to the next run (at most `graceMs`: the cursor stays far
   * enough behind to read them then). The live dispatcher enqueues a change a moment after its
   * commit; read in that moment, the change was announced by the catch-up, which logged it as
   * never dispatched (93 times in 11 minutes under load) though nothing was missed. @default 5000
   */
  settleMs?: number;
}

/** What a run looks at: the changed rows of one table, read in (time, id) order from a cursor. */
interface ChangeTable<Row> {
  /** Its JobCursor row. */
  cursor: string;
  /** The webhooks it is read for: none of them registered, the table is not read. */
  events: readonly WebhookEvent[];
  /**
   * Rows changed at `since` or later and before `before`, in (time, id) order; at exactly
   * `since`, only ids above `afterId` when given.
   */
  page(since: Date, afterId: number | null, before: Date, take: number): Promise<Row[]>;
  at(row: Row): Date;
  id(row: Row): number;
  /** `wanting`: the webhooks that want one of `events`. */
  changes(rows: Row[], wanting: WebhookRow[]): Promise<FoundChange[]>;
}

/**
 * The durable half of webhook dispatch. The dispatcher enqueues a change's messages shortly
 * after the change committed; a process that dies in between (SIGKILL, OOM, power), a backlog
 * the dispatcher dropped, a change whose enqueueing failed (a deadlock, a statement timeout: the
 * dispatcher logs it), or a webhook another instance added a moment earlier leaves a change
 * announced to no one. The leader therefore looks through the rows changed since a cursor kept in
 * the database (JobCursor): tasks that ended, app states, payments. It hands each to the
 * dispatcher as the change it is; the idempotency keys (and "changed only" for apps and
 * payments) make a change already announced write nothing, so only what was missed is sent.
 *
 * With no webhook registered a run reads nothing at all. An app whose row was deleted is caught
 * up through what removed it: the task (uninstall, a canceled first install), or the `system`
 * history record that status correction writes in the transaction that deletes the row.
 */
export class WebhookCatchUp {
  private readonly pageSize: number;
  private readonly maxPages: number;
  private readonly graceMs: number;
  private readonly settleMs: number;
  private readonly tables: ChangeTable<never>[];
  private stopping = false;

  constructor(
    private readonly db: Db,
    private readonly webhooks: WebhookService,
    private readonly dispatcher: WebhookDispatcher,
    private readonly logger: Logger,
    private readonly options: WebhookCatchUpOptions,
  ) {
    this.pageSize = options.pageSize ?? 200;
    this.maxPages = options.maxPages ?? 10;
    this.graceMs = options.graceMs ?? 30_000;
    this.settleMs = Math.min(options.settleMs ?? 5_000, this.graceMs);
    this.tables = [
      this.endedTasks(),
      this.appStates(),
      this.correctionRemovals(),
      this.payments(),
    ] as ChangeTable<never>[];
  }

  /** Ends the run in progress after its current page (the cursor keeps what it read): a stop waits for it. */
  stop(): void {
    this.stopping = true;
  }

  /** One sweep; returns the messages it wrote (the changes that had been missed, per webhook). */
  async run(now = new Date()): Promise<number> {
    const webhooks = await this.webhooks.current();
    if (webhooks.length === 0) return 0;
    const written: Record<string, number> = {};
    let total = 0;
    for (const table of this.tables) {
      if (this.stopping) break;
      const wanting = webhooks.filter((webhook) => webhookEvents(webhook).some((e) => table.events.includes(e)));
      if (wanting.length === 0) continue;
      const count = await this.sweep(table, wanting, now);
      written[table.cursor] = count;
      total += count;
    }
    if (total > 0) this.logger.info({ messages: total, ...written }, 'webhooks: caught up on changes never dispatched');
    return total;
  }

  private async sweep<Row>(table: ChangeTable<Row>, wanting: WebhookRow[], now: Date): Promise<number> {
    const cursor = await this.db.jobCursor.findUnique({ where: { name: table.cursor } });
    // Nothing before the first webhook that wants it, nor before what the outbox still remembers;
    // a database it never ran on starts FIRST_LOOK_BACK_MS back (the upgrade that brings it does
    // not replay a month of changes that the live dispatch announced).
    const firstWebhook = Math.min(...wanting.map((webhook) => webhook.createdAt.getTime()));
    const from = cursor?.position.getTime() ?? now.getTime() - FIRST_LOOK_BACK_MS;
    let since = new Date(Math.max(from, firstWebhook, now.getTime() - this.options.lookBackMs));
    let afterId = cursor && since.getTime() === cursor.position.getTime() ? cursor.afterId : null;
    const settled = new Date(now.getTime() - this.settleMs);
    let written = 0;
    for (let page = 0; page < this.maxPages && !this.stopping; page++) {
      const rows = await table.page(since, afterId, settled, this.pageSize);
      if (rows.length > 0) written += await this.dispatcher.catchUp(await table.changes(rows, wanting));
      if (rows.length < this.pageSize) {
        await this.advance(table.cursor, new Date(now.getTime() - this.graceMs), null);
        return written;
      }
      const last = rows[rows.length - 1] as Row;
      since = table.at(last);
      afterId = table.id(last);
    }
    // The page limit, or a stop: the next run goes on after the last row read, (time, id), so
    // rows sharing one time, however many, are read once each.
    const grace = now.getTime() - this.graceMs;
    if (since.getTime() > grace) await this.advance(table.cursor, new Date(grace), null);
    else await this.advance(table.cursor, since, afterId);
    return written;
  }

  private async advance(name: string, position: Date, afterId: number | null): Promise<void> {
    await this.db.jobCursor.upsert({
      where: { name },
      create: { name, position, afterId },
      update: { position, afterId },
    });
  }

  private endedTasks(): ChangeTable<TaskRow> {
    return {
      cursor: 'webhook-catch-up:tasks',
      // A removed app's last state is announced through the task that removed it.
      events: ['TASK_FINISHED', 'APP_STATE_CHANGED'],
      page: (since, afterId, before, take) =>
        this.db.task.findMany({
          where: changedSince('completedAt', since, afterId, before),
          orderBy: [{ completedAt: 'asc' }, { id: 'asc' }],
          take,
        }),
      at: (task) => task.completedAt ?? new Date(0),
      id: (task) => task.id,
      changes: async (tasks, wanting) => [
        ...tasks.map(
          (task): FoundChange => ({
            kind: 'task',
            event: { taskId: task.taskId, userId: task.userId, sourceId: task.sourceId, appName: task.appName },
            row: task,
            at: task.completedAt ?? new Date(),
          }),
        ),
        ...(wanting.some((webhook) => webhookEvents(webhook).includes('APP_STATE_CHANGED'))
          ? await this.removedApps(tasks)
          : []),
      ],
    };
  }

  /** App changes for the apps of `tasks` whose row is gone (the dispatcher announces them removed). */
  private async removedApps(tasks: TaskRow[]): Promise<FoundChange[]> {
    const keys = new Map(tasks.map((task) => [appKeyString(task), task]));
    const present = await this.db.appState.findMany({
      where: { OR: [...keys.values()].map(({ userId, sourceId, appName }) => ({ userId, sourceId, appName })) },
      select: { userId: true, sourceId: true, appName: true },
    });
    for (const row of present) keys.delete(appKeyString(row));
    return [...keys.values()].map(({ userId, sourceId, appName, completedAt }) => ({
      kind: 'app',
      event: { userId, sourceId, appName },
      at: completedAt ?? new Date(),
    }));
  }

  private appStates(): ChangeTable<{ id: number; userId: string; sourceId: string; appName: string; updatedAt: Date }> {
    return {
      cursor: 'webhook-catch-up:apps',
      events: ['APP_STATE_CHANGED'],
      page: (since, afterId, before, take) =>
        this.db.appState.findMany({
          where: changedSince('updatedAt', since, afterId, before),
          orderBy: [{ updatedAt: 'asc' }, { id: 'asc' }],
          select: { id: true, userId: true, sourceId: true, appName: true, updatedAt: true },
          take,
        }),
      at: (row) => row.updatedAt,
      id: (row) => row.id,
      changes: async (rows) =>
        rows.map(({ userId, sourceId, appName, updatedAt }) => ({
          kind: 'app',
          event: { userId, sourceId, appName },
          at: updatedAt,
        })),
    };
  }

  /** Apps status correction removed (no task did): their `system` history records (status-correction.ts). */
  private correctionRemovals(): ChangeTable<HistoryRow> {
    return {
      cursor: 'webhook-catch-up:corrections',
      events: ['APP_STATE_CHANGED'],
      page: (since, afterId, before, take) =>
        this.db.historyRecord.findMany({
          // An app's records only (a catalogue change's records hold no app and long lists).
          where: { AND: [{ type: 'system', app: { not: null } }, changedSince('time', since, afterId, before)] },
          orderBy: [{ time: 'asc' }, { id: 'asc' }],
          take,
        }),
      at: (record) => record.time,
      id: (record) => record.id,
      changes: async (records) =>
        records.flatMap((record): FoundChange[] => {
          const extended = isRecord(record.extended) ? record.extended : {};
          if (extended.correction !== 'removed' || typeof extended.sourceId !== 'string' || !record.app) return [];
          // The dispatcher reads the app's row: gone, it is announced removed (once: changed only).
          const event = { userId: record.userId, sourceId: extended.sourceId, appName: record.app };
          return [{ kind: 'app', event, at: record.time }];
        }),
    };
  }

  private payments(): ChangeTable<{ id: number; userId: string; sourceId: string; appId: string; updatedAt: Date }> {
    return {
      cursor: 'webhook-catch-up:payments',
      events: ['PAYMENT_STATUS_CHANGED'],
      page: (since, afterId, before, take) =>
        this.db.payment.findMany({
          where: changedSince('updatedAt', since, afterId, before),
          orderBy: [{ updatedAt: 'asc' }, { id: 'asc' }],
          select: { id: true, userId: true, sourceId: true, appId: true, updatedAt: true },
          take,
        }),
      at: (row) => row.updatedAt,
      id: (row) => row.id,
      changes: async (rows) =>
        rows.map(({ id, userId, sourceId, appId, updatedAt }) => ({
          kind: 'payment',
          event: { paymentId: id, userId, sourceId, appId },
          at: updatedAt,
        })),
    };
  }
}
