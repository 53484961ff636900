import { isDatabaseUnavailable } from '../db/availability.js';
import type { Db } from '../db/client.js';
import type { WebhookRow } from '../db/models.js';
import { appKeyString } from '../domain/app-key.js';
import { deriveStage } from '../domain/app-stage.js';
import { derivePaymentStatus } from '../domain/payment-status.js';
import { TERMINAL_STATUSES } from '../domain/tasks.js';
import type { EventBus } from '../events/change-feed.js';
import type { Logger } from '../platform/logger.js';
import { RepeatedFailure } from '../platform/repeated-failure.js';
import { enqueueOutbound, type OutboundMessage } from './outbox-messages.js';
import { readBatchRows } from './webhook-batch-rows.js';
import {
  type Announced,
  announcedIn,
  type BatchRows,
  type Change,
  changeForLog,
  couldMatch,
  type FoundChange,
  type FoundPage,
  filtersMatch,
  keyOf,
  nextSequence,
  paymentResource,
  subjectOf,
  taskFinishedMessages,
  type Wanted,
  webhookMessage,
} from './webhook-messages.js';
import type { WebhookEvent, WebhookService } from './webhook-service.js';

export type { Change, FoundChange } from './webhook-messages.js';

/** Changes waiting for the dispatcher beyond this are dropped (with a warning): memory stays bounded. */
const MAX_QUEUED_CHANGES = 10_000;
/**
 * Changes handled together: their rows read with one query per table, their messages written
 * with one insert. One at a time, a change cost one or two round trips, and under load (a few
 * thousand progress reports a minute on PostgreSQL) the dispatcher fell minutes behind.
 */
const BATCH_SIZE = 100;
/** While the database is away, how often the dispatcher tries the changes waiting again. */
const RETRY_MS = 1_000;
/** Entries of the last-announced map (webhook × subject); the least recently used go first. */
const MAX_REMEMBERED = 10_000;
/** The value announced when an app's row is gone (uninstalled, or removed by status correction). */
const REMOVED = 'removed';

export interface WebhookDispatcherOptions {
  /** While the database is away, how often the dispatcher tries the changes waiting again. @default 1000 */
  retryMs?: number;
  /**
   * Cluster mode (REDIS_URL): other instances announce changes of the same apps and payments into
   * the same outbox, so what this instance remembers announcing is not the last value announced
   * (see `outboxFirst`). @default false
   */
  cluster?: boolean;
}

const terminal = new Set<string>(TERMINAL_STATUSES);

/**
 * Turns committed changes into webhook deliveries: one outbox message per matching webhook.
 *
 * It follows the bus that carries this instance's own announcements only (in cluster mode the
 * others' changes are theirs to announce), so a change is enqueued once, not once per instance;
 * the idempotency key, derived from the change, makes a second announcement (a restart, a repair)
 * write nothing. The feed delivers a change in a later macrotask than the call that committed it,
 * so none of this runs on the request path; with no matching webhook a change costs a look at the
 * cached webhook list, and nothing is read or written.
 *
 * A task is announced when it reaches COMPLETED, FAILED or CANCELED; an app when its state or
 * stage differs from the last one announced to that webhook; a payment likewise for its visible status.
 * What a process that died before its dispatch left unannounced, the leader's catch-up
 * (webhook-catch-up.ts) finds in the database and hands over through `catchUp`.
 */
export class WebhookDispatcher {
  private readonly queue: (Change | FoundPage)[] = [];
  private draining: Promise<void> | null = null;
  private readonly listening: (() => void)[] = [];
  private dropped = 0;
  private stopping = false;
  /** Ends the pause after a failure at once (a stop). */
  private resume: (() => void) | null = null;
  /**
   * What this instance last announced (value, sequence), by `webhookId subject`, so that with no
   * other instance (see `outboxFirst`) `changedOnly` costs no query for a subject it announced lately
   * (progress updates announce nothing new, and are many); a miss reads the subject's newest message.
   */
  private readonly lastAnnounced = new Map<string, Announced>();
  /** An outage fails every batch the same way: one line with its stack, then one a minute (others: handleApart). */
  private readonly failures: RepeatedFailure;

  constructor(
    /** Public for the catch-up (webhook-catch-up.ts), which reads the changes through the same client. */
    readonly db: Db,
    private readonly webhooks: WebhookService,
    private readonly logger: Logger,
    /** The messages' due time is on it (the process's DatabaseClock): the outbox workers of every instance claim on it. */
    private readonly clock: { date(): Date },
    private readonly options: WebhookDispatcherOptions = {},
  ) {
    this.failures = new RepeatedFailure(logger, 'webhooks: enqueueing changes', 'warn');
  }

  start(bus: EventBus): void {
    this.stopping = false;
    const failed = (error: unknown) => this.logger.error({ err: error }, 'webhooks: a change could not be taken');
    this.listening.push(
      bus.listen('task:updated', (event) => this.accept({ kind: 'task', event }), failed),
      bus.listen('app:updated', (event) => this.accept({ kind: 'app', event }), failed),
      bus.listen('payment:updated', (event) => this.accept({ kind: 'payment', event }), failed),
    );
  }

  /**
   * Stops following the bus and waits for the changes already taken to be enqueued; while the
   * database is away it waits no more (the catch-up finds them).
   */
  async stop(): Promise<void> {
    for (const stop of this.listening.splice(0)) stop();
    this.stopping = true;
    this.resume?.();
    await this.draining;
  }

  /** Resolves once every change taken so far is in the outbox (tests, benchmark). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /**
   * The synchronous part, run for every change: a task's change that says it is not finished (its
   * progress) and, with the webhook list cached, a change no webhook could match go no further.
   */
  accept(change: Change): void {
    if (change.kind === 'task' && change.event.status !== undefined && !terminal.has(change.event.status)) return;
    const cached = this.webhooks.cachedOrNull();
    if (cached && !cached.some((webhook) => couldMatch(webhook, change))) return;
    if (this.queue.length >= MAX_QUEUED_CHANGES) {
      if (this.dropped++ % 1000 === 0) this.logger.warn({ dropped: this.dropped }, 'webhooks: changes dropped');
      return;
    }
    this.enqueue(change);
  }

  /**
   * Changes the catch-up found (webhook-catch-up.ts); resolves with the messages they wrote once
   * every one is in the outbox, or rejects when they could not be enqueued (its cursor must then
   * stay put). They queue behind the changes already taken, so "the last state announced" stays
   * in order, and are never dropped: the sweep hands over one bounded page and waits for it.
   * Unlike a change from the bus, only the webhooks that existed when the change was made are
   * told, and the last value announced is read from the outbox, not from this instance's memory
   * (see `outboxFirst`).
   */
  catchUp(changes: readonly FoundChange[]): Promise<number> {
    if (changes.length === 0) return Promise.resolve(0);
    return new Promise((resolve, reject) => this.enqueue({ changes, resolve, reject }));
  }

  private enqueue(item: Change | FoundPage): void {
    this.queue.push(item);
    this.draining ??= this.drain().finally(() => {
      this.draining = null;
    });
  }

  /**
   * In the order taken, up to BATCH_SIZE changes at a time ("the last state announced" is read
   * and written in order: a batch reads its rows after the previous batch wrote its messages).
   * While the database is away, the batch waits and is tried again every `retryMs`: going on
   * would fail every change waiting, one by one. Other failures: see `handleApart`.
   */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const head = this.queue[0] as Change | FoundPage;
      if ('changes' in head) {
        this.queue.shift();
        await this.handlePage(head);
        continue;
      }
      const end = this.queue.findIndex((item, index) => index >= BATCH_SIZE || 'changes' in item);
      const batch = this.queue.splice(0, end === -1 ? this.queue.length : end) as Change[];
      try {
        await this.handleApart(batch, false);
        this.failures.succeeded();
      } catch (error) {
        // An outage (handleApart keeps the rest). What the batch wrote before it writes nothing
        // when tried again: the idempotency keys.
        this.failures.failed(error, { changes: batch.length, waiting: this.queue.length });
        // The catch-up's pages fail at once (its cursor stays put): held, they held up a stop or a
        // leadership handover, which wait for the catch-up, until the database came back.
        this.rejectPages(error);
        if (this.stopping) return this.abandon(batch.length);
        this.queue.unshift(...batch);
        await this.pause();
      }
    }
  }

  private async handlePage(page: FoundPage): Promise<void> {
    try {
      let written = 0;
      for (let start = 0; start < page.changes.length; start += BATCH_SIZE) {
        written += await this.handleApart(page.changes.slice(start, start + BATCH_SIZE), true);
      }
      page.resolve(written);
    } catch (error) {
      page.reject(error);
    }
  }

  private pause(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.options.retryMs ?? RETRY_MS);
      this.resume = () => {
        clearTimeout(timer);
        resolve();
      };
    }).finally(() => {
      this.resume = null;
    });
  }

  /** Stopping while the database is away: what waits is left to the catch-up (the cursor reads it). */
  private abandon(failed: number): void {
    const changes = failed + this.queue.length;
    this.queue.length = 0;
    this.logger.warn({ changes }, 'webhooks: stopped with changes not enqueued (the catch-up finds them)');
  }

  private rejectPages(reason: unknown): void {
    const pages = this.queue.filter((item): item is FoundPage => 'changes' in item);
    this.queue.splice(0, this.queue.length, ...this.queue.filter((item) => !('changes' in item)));
    for (const page of pages) page.reject(reason);
  }

  /**
   * A batch, and when it fails other than by an outage (a deadlock, a statement timeout, one
   * change whose message the database refuses) each of its changes again on its own: dropped
   * whole, one bad change took up to 99 others with it, and the catch-up, meeting the same bad
   * change in its page, failed the page at every run, its cursor held there for good. A change
   * that fails alone is logged and skipped: from the bus, the catch-up tries it again; found by
   * the catch-up, its cursor moves past it (the rest of its table is not held up). Throws only
   * an outage.
   */
  private async handleApart(changes: readonly (Change & { at?: Date })[], fresh: boolean): Promise<number> {
    try {
      return await this.handle(changes, fresh);
    } catch (error) {
      if (isDatabaseUnavailable(error)) throw error;
      this.logger.warn(
        { err: error, changes: changes.length },
        'webhooks: a batch failed; its changes tried one by one',
      );
    }
    let written = 0;
    for (const change of changes) {
      try {
        written += await this.handle([change], fresh);
      } catch (error) {
        if (isDatabaseUnavailable(error)) throw error;
        const left = fresh ? 'the catch-up skips it' : 'left to the catch-up';
        this.logger.error({ err: error, change: changeForLog(change) }, `webhooks: a change failed alone (${left})`);
      }
    }
    return written;
  }

  /**
   * One batch: its rows read together, its messages written in one insert. `fresh`: changes the
   * catch-up found (see `catchUp`). Returns the messages written.
   */
  private async handle(changes: readonly (Change & { at?: Date })[], fresh = false): Promise<number> {
    const all = await this.webhooks.current();
    const wanted: Wanted[] = [];
    for (const change of changes) {
      const { at } = change;
      const webhooks = all.filter((webhook) => couldMatch(webhook, change) && (!at || webhook.createdAt <= at));
      if (webhooks.length > 0) wanted.push({ change, webhooks });
    }
    if (wanted.length === 0) return 0;
    const outboxFirst = this.outboxFirst(fresh);
    try {
      const rows = await readBatchRows(this.db, wanted, (pair) => outboxFirst || !this.lastAnnounced.has(pair));
      const messages = new Map<string, OutboundMessage>();
      const decided = new Map<string, Announced>();
      for (const { change, webhooks } of wanted) {
        for (const message of this.messagesOf(change, webhooks, rows, outboxFirst, decided)) {
          messages.set(message.idempotencyKey, message);
        }
      }
      return await enqueueOutbound(this.db, [...messages.values()], this.clock.date());
    } catch (error) {
      // What changedOnly remembered was not written: read it from the database again.
      this.lastAnnounced.clear();
      throw error;
    }
  }

  /**
   * Whether "the last value announced" is the outbox's newest message (read for every subject of
   * the batch) rather than this instance's memory, which is right only while no other instance
   * announces: the catch-up's changes (`fresh`) and, in cluster mode, every change, since each
   * instance announces what it changed. A stale memory suppressed real changes: uninstalled on A
   * (A remembers "removed"), installed on B ("pending"), canceled on A: A's "removed" was never
   * sent. The read is one statement per batch, beside its other reads. A message another instance
   * has yet to write is not seen; it read its row before this change, so it ends last either way:
   * the catch-up's to repair, like any messages written out of order across instances.
   */
  private outboxFirst(fresh: boolean): boolean {
    return fresh || this.options.cluster === true;
  }

  private messagesOf(
    change: Change,
    webhooks: WebhookRow[],
    rows: BatchRows,
    outboxFirst: boolean,
    decided: Map<string, Announced>,
  ): OutboundMessage[] {
    const announce = { rows, outboxFirst, decided };
    if (change.kind === 'task') {
      // A row the catch-up read is as good as a fresh one: a terminal task changes no more.
      const task = change.row ?? rows.tasks.get(change.event.taskId);
      return task && terminal.has(task.status) ? taskFinishedMessages(task, webhooks) : [];
    }
    const subject = subjectOf(change);
    if (change.kind === 'payment') {
      const payment = rows.payments.get(change.event.paymentId);
      if (!payment) return [];
      const status = derivePaymentStatus(payment);
      const matching = webhooks.filter((webhook) => filtersMatch(webhook, payment));
      const value = { event: 'PAYMENT_STATUS_CHANGED', subject, value: status, at: payment.updatedAt } as const;
      return this.changedOnly(matching, value, paymentResource(payment, status), announce);
    }
    const key = keyOf(change.event);
    const row = rows.apps.get(appKeyString(key));
    if (!row) {
      // Uninstalled, or removed by status correction: its last state is that it is gone.
      const removed = { app: { key, state: 'uninstalled', stage: null, removed: true } };
      const value = { event: 'APP_STATE_CHANGED', subject, value: REMOVED, at: this.clock.date() } as const;
      return this.changedOnly(webhooks, value, removed, announce);
    }
    const activeTask = rows.activeTasks.get(appKeyString(key)) ?? null;
    const { stage } = deriveStage({ state: row.state, progress: row.progress, activeTask });
    const resource = { app: { key, state: row.state, stage, installedVersion: row.installedVersion } };
    // The stage too: the app service's last state of an operation comes while its task still runs
    // (`running`, stage INSTALLING); the task's end then changes the stage alone (RUNNING, with the
    // installed version), and a receiver that heard only the state would stay on INSTALLING. The
    // row's last write, not its report's time: a stage that goes back with no new report (a pending
    // uninstall canceled: RUNNING, UNINSTALLING, RUNNING) had the first RUNNING's key, and was
    // dropped as sent; the submission that starts such a detour writes the row.
    const value = { event: 'APP_STATE_CHANGED', subject, value: `${row.state}/${stage}`, at: row.updatedAt } as const;
    return this.changedOnly(webhooks, value, resource, announce);
  }

  /**
   * Messages for the webhooks whose last message about `subject` announced another value than
   * `value` (or that never heard of it). The key carries the value and the change's time, so
   * the same change announced again writes nothing, and a later return to an earlier value is
   * a new message. The last value comes from `lastAnnounced`, or on a miss (and always when
   * `outboxFirst`: the catch-up, cluster mode) from the newest message of the subject (read for
   * the whole batch before, `lastKeys`; within the batch, what it decided comes first), with its
   * `sequence`, which the new message's exceeds (nextSequence).
   */
  private changedOnly(
    webhooks: WebhookRow[],
    { event, subject, value, at }: { event: WebhookEvent; subject: string; value: string; at: Date },
    resource: object,
    { rows, outboxFirst, decided }: { rows: BatchRows; outboxFirst: boolean; decided: Map<string, Announced> },
  ): OutboundMessage[] {
    const messages: OutboundMessage[] = [];
    for (const webhook of webhooks) {
      const remembered = `${webhook.webhookId} ${subject}`;
      const stored = rows.lastKeys.get(remembered);
      const inDatabase = stored && announcedIn(stored, `webhook:${webhook.webhookId}:${subject}:`);
      // What the outbox no longer holds (cleaned up after OUTBOX_RETENTION_DAYS) this instance may remember.
      const last = outboxFirst
        ? (decided.get(remembered) ?? inDatabase ?? this.lastAnnounced.get(remembered))
        : (this.lastAnnounced.get(remembered) ?? inDatabase);
      const next = last?.value === value ? last : { value, sequence: nextSequence(at, last) };
      this.remember(remembered, next);
      decided.set(remembered, next);
      if (next === last) continue;
      const key = `${subject}:${value}:${at.getTime()}`;
      messages.push({ ...webhookMessage(webhook, event, key, resource, { at, sequence: next.sequence }), subject });
    }
    return messages;
  }

  private remember(key: string, value: Announced): void {
    this.lastAnnounced.delete(key); // re-inserted: the newest in the map's order
    this.lastAnnounced.set(key, value);
    const oldest = this.lastAnnounced.keys().next().value;
    if (this.lastAnnounced.size > MAX_REMEMBERED && oldest !== undefined) this.lastAnnounced.delete(oldest);
  }
}
