import type { Db } from '../db/client.js';
import type { TaskRow, WebhookRow } from '../db/models.js';
import { lastKeyOfSubject } from '../db/outbox-sql.js';
import { type AppKey, appKeyString } from '../domain/app-key.js';
import { deriveStage } from '../domain/app-stage.js';
import { derivePaymentStatus } from '../domain/payment-status.js';
import { TERMINAL_STATUSES } from '../domain/tasks.js';
import type { AppChanged, EventBus, PaymentChanged, TaskChanged } from '../events/change-feed.js';
import type { Logger } from '../platform/logger.js';
import { redactSecretsIn } from '../platform/redact.js';
import { enqueueOutbound, type OutboundMessage } from './outbox-messages.js';
import { type WebhookEvent, type WebhookService, webhookEvents } from './webhook-service.js';

/** Changes waiting for the dispatcher beyond this are dropped (with a warning): memory stays bounded. */
const MAX_QUEUED_CHANGES = 10_000;
/** Entries of the last-announced map (webhook × subject); the least recently used go first. */
const MAX_REMEMBERED = 10_000;
/** The value announced when an app's row is gone (uninstalled, or removed by status correction). */
const REMOVED = 'removed';

const TOPIC_OF: Record<WebhookEvent, string> = {
  TASK_FINISHED: 'task.finished',
  APP_STATE_CHANGED: 'app.state_changed',
  PAYMENT_STATUS_CHANGED: 'payment.status_changed',
};

/** A committed change, as the bus announces it; a task's row may come along (the catch-up read it). */
export type Change =
  | { kind: 'task'; event: TaskChanged; row?: TaskRow }
  | { kind: 'app'; event: AppChanged }
  | { kind: 'payment'; event: PaymentChanged };

/** A change the catch-up found in the database (webhook-catch-up.ts), with when it was made. */
export type FoundChange = Change & { at: Date };

/** A change waiting in the queue; one the catch-up handed over settles its promise once done. */
interface Queued {
  change: Change;
  found?: { at: Date; resolve: (written: number) => void; reject: (error: unknown) => void };
}

const EVENT_OF = { task: 'TASK_FINISHED', app: 'APP_STATE_CHANGED', payment: 'PAYMENT_STATUS_CHANGED' } as const;
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
  private readonly queue: Queued[] = [];
  private draining: Promise<void> | null = null;
  private readonly listening: (() => void)[] = [];
  private dropped = 0;
  /**
   * What this instance last announced, by `webhookId subject`, so `changedOnly` costs no query
   * for a subject it announced lately (progress updates announce nothing new, and are many).
   * A miss is read from the newest message of that subject. Bounded: least recently used go.
   */
  private readonly lastAnnounced = new Map<string, string>();

  constructor(
    /** Public for the catch-up (webhook-catch-up.ts), which reads the changes through the same client. */
    readonly db: Db,
    private readonly webhooks: WebhookService,
    private readonly logger: Logger,
  ) {}

  start(bus: EventBus): void {
    const failed = (error: unknown) => this.logger.error({ err: error }, 'webhooks: a change could not be taken');
    this.listening.push(
      bus.listen('task:updated', (event) => this.accept({ kind: 'task', event }), failed),
      bus.listen('app:updated', (event) => this.accept({ kind: 'app', event }), failed),
      bus.listen('payment:updated', (event) => this.accept({ kind: 'payment', event }), failed),
    );
  }

  /** Stops following the bus and waits for the changes already taken to be enqueued. */
  async stop(): Promise<void> {
    for (const stop of this.listening.splice(0)) stop();
    await this.draining;
  }

  /** Resolves once every change taken so far is in the outbox (tests, benchmark). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /**
   * The synchronous part, run for every change: with the webhook list cached and no webhook that
   * could match, nothing more happens.
   */
  accept(change: Change): void {
    const cached = this.webhooks.cachedOrNull();
    if (cached && !cached.some((webhook) => couldMatch(webhook, change))) return;
    if (this.queue.length >= MAX_QUEUED_CHANGES) {
      if (this.dropped++ % 1000 === 0) this.logger.warn({ dropped: this.dropped }, 'webhooks: changes dropped');
      return;
    }
    this.enqueue({ change });
  }

  /**
   * Changes the catch-up found (webhook-catch-up.ts); resolves with the messages they wrote once
   * every one is in the outbox, or rejects when one could not be enqueued (its cursor must then
   * stay put). They queue behind the changes already taken, so "the last state announced" stays
   * in order, and are never dropped: the sweep hands over one bounded page and waits for it.
   * Unlike a change from the bus, only the webhooks that existed when the change was made are
   * told, and the last value announced is read from the outbox, not from this instance's memory:
   * in a cluster another instance may have announced it since (a stale memory would repeat it).
   */
  async catchUp(changes: readonly FoundChange[]): Promise<number> {
    const outcomes = await Promise.allSettled(
      changes.map(
        (change) =>
          new Promise<number>((resolve, reject) => this.enqueue({ change, found: { at: change.at, resolve, reject } })),
      ),
    );
    let written = 0;
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') throw outcome.reason;
      written += outcome.value;
    }
    return written;
  }

  private enqueue(queued: Queued): void {
    this.queue.push(queued);
    this.draining ??= this.drain().finally(() => {
      this.draining = null;
    });
  }

  /** One change at a time: "the last state announced" is read and written in order. */
  private async drain(): Promise<void> {
    for (let queued = this.queue.shift(); queued; queued = this.queue.shift()) {
      const { change, found } = queued;
      try {
        const matching = (await this.webhooks.current()).filter(
          (webhook) => couldMatch(webhook, change) && (!found || webhook.createdAt <= found.at),
        );
        const written = matching.length > 0 ? await this.dispatch(change, matching, found !== undefined) : 0;
        found?.resolve(written);
      } catch (error) {
        if (found) found.reject(error);
        else this.logger.warn({ err: error, kind: change.kind }, 'webhooks: a change could not be enqueued');
      }
    }
  }

  /** `fresh`: the last value announced is read from the outbox (see `catchUp`). Returns the messages written. */
  private async dispatch(change: Change, webhooks: WebhookRow[], fresh: boolean): Promise<number> {
    const messages =
      change.kind === 'task'
        ? await this.taskMessages(change, webhooks)
        : change.kind === 'app'
          ? await this.appMessages(change.event, webhooks, fresh)
          : await this.paymentMessages(change.event, webhooks, fresh);
    try {
      return await enqueueOutbound(this.db, messages);
    } catch (error) {
      // What changedOnly remembered was not written: read it from the database again.
      this.lastAnnounced.clear();
      throw error;
    }
  }

  private async taskMessages(
    { event, row }: { event: TaskChanged; row?: TaskRow },
    webhooks: WebhookRow[],
  ): Promise<OutboundMessage[]> {
    // A row the catch-up read is as good as a fresh one: a terminal task changes no more.
    const task = row ?? (await this.db.task.findUnique({ where: { taskId: event.taskId } }));
    if (!task || !terminal.has(task.status)) return [];
    const resource = {
      task: {
        id: task.taskId,
        type: task.type,
        status: task.status,
        app: { userId: task.userId, sourceId: task.sourceId, appName: task.appName },
        user: task.userId,
        version: task.version,
        error: task.error,
        result: redactSecretsIn(task.result),
        completedAt: task.completedAt?.toISOString() ?? null,
      },
    };
    return webhooks
      .filter((webhook) => filtersMatch(webhook, task))
      .map((webhook) => message(webhook, 'TASK_FINISHED', `task:${task.taskId}:${task.status}`, resource));
  }

  private async appMessages(event: AppChanged, webhooks: WebhookRow[], fresh: boolean): Promise<OutboundMessage[]> {
    const key: AppKey = { userId: event.userId, sourceId: event.sourceId, appName: event.appName };
    const [row, activeTask] = await Promise.all([
      this.db.appState.findUnique({ where: { userId_sourceId_appName: key } }),
      this.db.task.findUnique({ where: { activeKey: appKeyString(key) }, select: { type: true, status: true } }),
    ]);
    const subject = `app:${appKeyString(key)}`;
    if (!row) {
      // Uninstalled, or removed by status correction: its last state is that it is gone.
      const removed = { app: { key, state: 'uninstalled', stage: null, removed: true } };
      return this.changedOnly(webhooks, 'APP_STATE_CHANGED', subject, REMOVED, new Date(), removed, fresh);
    }
    const { stage } = deriveStage({ state: row.state, progress: row.progress, activeTask });
    const resource = { app: { key, state: row.state, stage, installedVersion: row.installedVersion } };
    // The stage too: the app service's last state of an operation comes while its task still runs
    // (`running`, stage INSTALLING); the task's end then changes the stage alone (RUNNING, with the
    // installed version), and a receiver that heard only the state would stay on INSTALLING.
    const value = `${row.state}/${stage}`;
    // The row's last write, not its report's time: a stage that goes back with no new report (a
    // pending uninstall canceled: RUNNING, UNINSTALLING, RUNNING) had the first RUNNING's key, and
    // was dropped as sent. The submission that starts such a detour writes the row, so the way
    // back carries a time of its own.
    return this.changedOnly(webhooks, 'APP_STATE_CHANGED', subject, value, row.updatedAt, resource, fresh);
  }

  private async paymentMessages(
    event: PaymentChanged,
    webhooks: WebhookRow[],
    fresh: boolean,
  ): Promise<OutboundMessage[]> {
    const payment = await this.db.payment.findUnique({ where: { id: event.paymentId } });
    if (!payment) return [];
    const status = derivePaymentStatus(payment);
    const resource = {
      payment: {
        id: payment.id,
        status,
        productId: payment.productId,
        app: { userId: payment.userId, sourceId: payment.sourceId, appId: payment.appId, appName: payment.appName },
      },
    };
    const matching = webhooks.filter((webhook) => filtersMatch(webhook, payment));
    return this.changedOnly(
      matching,
      'PAYMENT_STATUS_CHANGED',
      `payment:${payment.id}`,
      status,
      payment.updatedAt,
      resource,
      fresh,
    );
  }

  /**
   * Messages for the webhooks whose last message about `subject` announced another value than
   * `value` (or that never heard of it). The key carries the value and the change's time, so
   * the same change announced again writes nothing, and a later return to an earlier value is
   * a new message. The last value comes from `lastAnnounced`, or on a miss (and always when
   * `fresh`: the catch-up) from the newest message of the subject (a scan of that webhook's rows,
   * which the outbox cleanup bounds).
   * In a cluster, a subject announced meanwhile by another instance is not seen by this one's
   * map; an app's changes are announced by the instance that runs its tasks, so this is rare, and
   * costs at most one message repeating a state.
   */
  private async changedOnly(
    webhooks: WebhookRow[],
    event: WebhookEvent,
    subject: string,
    value: string,
    at: Date,
    resource: object,
    fresh: boolean,
  ): Promise<OutboundMessage[]> {
    const messages: OutboundMessage[] = [];
    for (const webhook of webhooks) {
      const remembered = `${webhook.webhookId} ${subject}`;
      // The catch-up asks the outbox first (another instance may have announced it); what the
      // outbox no longer holds (cleaned up after HISTORY_RETENTION_DAYS) this instance may remember.
      const lastValue = fresh
        ? ((await this.lastInDatabase(webhook, subject)) ?? this.lastAnnounced.get(remembered))
        : (this.lastAnnounced.get(remembered) ?? (await this.lastInDatabase(webhook, subject)));
      this.remember(remembered, value);
      if (lastValue === value) continue;
      messages.push({ ...message(webhook, event, `${subject}:${value}:${at.getTime()}`, resource), subject });
    }
    return messages;
  }

  private async lastInDatabase(webhook: WebhookRow, subject: string): Promise<string | undefined> {
    const prefix = `webhook:${webhook.webhookId}:${subject}:`;
    const last = await lastKeyOfSubject(this.db, webhook.webhookId, subject);
    return last?.slice(prefix.length).split(':')[0];
  }

  private remember(key: string, value: string): void {
    this.lastAnnounced.delete(key); // re-inserted: the newest in the map's order
    this.lastAnnounced.set(key, value);
    if (this.lastAnnounced.size > MAX_REMEMBERED) {
      this.lastAnnounced.delete(this.lastAnnounced.keys().next().value as string);
    }
  }
}

function message(webhook: WebhookRow, event: WebhookEvent, change: string, resource: object): OutboundMessage {
  return {
    kind: 'webhook',
    topic: TOPIC_OF[event],
    url: webhook.url,
    webhookId: webhook.webhookId,
    idempotencyKey: `webhook:${webhook.webhookId}:${change}`,
    body: { event, webhookId: webhook.webhookId, occurredAt: new Date().toISOString(), ...resource },
  };
}

/** Whether the webhook wants this kind of event and its filters do not rule the change out (payments: appName is checked on the row). */
function couldMatch(webhook: WebhookRow, change: Change): boolean {
  if (!webhookEvents(webhook).includes(EVENT_OF[change.kind])) return false;
  const { event } = change;
  if (webhook.userId !== null && webhook.userId !== event.userId) return false;
  if (webhook.sourceId !== null && webhook.sourceId !== event.sourceId) return false;
  return change.kind === 'payment' || webhook.appName === null || webhook.appName === change.event.appName;
}

function filtersMatch(webhook: WebhookRow, row: AppKey): boolean {
  return (
    (webhook.userId === null || webhook.userId === row.userId) &&
    (webhook.sourceId === null || webhook.sourceId === row.sourceId) &&
    (webhook.appName === null || webhook.appName === row.appName)
  );
}
