import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { MAX_USER_ID_LENGTH, USER_ID_RULE, userIdProblem } from '../auth/user-id.js';
import type { Viewer } from '../auth/viewer.js';
import { PRISMA_PARAMETERS, readInChunks } from '../db/chunks.js';
import type { DatabaseProvider, Db } from '../db/client.js';
import type { OutboxMessageRow, WebhookRow } from '../db/models.js';
import { recentMessageIds, removeFinishedMessages } from '../db/outbox-sql.js';
import {
  APP_NAME,
  APP_NAME_RULE,
  MAX_APP_NAME_LENGTH,
  MAX_SOURCE_ID_LENGTH,
  SOURCE_ID_CHARACTERS,
  SOURCE_ID_RULE,
} from '../domain/app-key.js';
import { ForbiddenError, InvalidStateError, NotFoundError } from '../domain/errors.js';
import { parseInput } from '../domain/parse-input.js';
import { type Removal, removeInBatches } from '../platform/bounded-removal.js';
import { httpUrlProblem } from '../platform/http-url.js';
import { rememberOutboundSecrets } from './outbox-delivery.js';
import { notifyOutbound, notifyWebhookRemoved } from './outbox-messages.js';
import { checkPageSize, MAX_ROW_ID } from './pagination.js';

/** The runtime events a webhook may receive. */
const WEBHOOK_EVENTS = ['TASK_FINISHED', 'APP_STATE_CHANGED', 'PAYMENT_STATUS_CHANGED'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

const MAX_WEBHOOK_URL_LENGTH = 2_048;
/** Recent deliveries `webhooks { deliveries }` lists per webhook when `last` is not given. */
export const DEFAULT_RECENT_DELIVERIES = 10;
/** Most recent deliveries one `webhooks { deliveries }` lists per webhook. */
export const MAX_RECENT_DELIVERIES = 50;
/** How long this instance trusts its list of webhooks before reading it again (another instance may have changed it). */
export const WEBHOOK_CACHE_MS = 5_000;

/**
 * Where deliveries go. Only http and https, a query string allowed (a token), no fragment and no
 * port 0 (platform/http-url.ts); no credentials in the URL (a receiver authenticates
 * deliveries by their signature, and a URL is shown to every admin). Private and loopback
 * addresses are accepted on purpose (receivers next to the server), which is one reason only
 * admins may add webhooks. Messages never repeat the URL.
 */
const url = z
  .string()
  .trim()
  .min(1, 'url must not be empty')
  .max(MAX_WEBHOOK_URL_LENGTH, `url must be at most ${MAX_WEBHOOK_URL_LENGTH} characters`)
  .transform((value, context) => {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      context.addIssue({ code: 'custom', message: 'url must be an absolute URL (http:// or https://)' });
      return z.NEVER;
    }
    const shape = httpUrlProblem(parsed, value, { query: true });
    const problem = shape
      ? `url ${shape}`
      : parsed.username || parsed.password
        ? 'url must not carry credentials (deliveries are authenticated by their signature)'
        : null;
    // As stored and sent: a space or a non-ASCII letter grows threefold once percent-encoded.
    const tooLong = parsed.href.length > MAX_WEBHOOK_URL_LENGTH;
    const refused =
      problem ?? (tooLong ? `url must be at most ${MAX_WEBHOOK_URL_LENGTH} characters once encoded` : null);
    if (refused) {
      context.addIssue({ code: 'custom', message: refused });
      return z.NEVER;
    }
    return parsed.href;
  });

/**
 * A filter on an id, held to that id's own rules (its bound and its characters): any other value
 * could never match, and the webhook would silently receive nothing (`userId: "用户"` was taken).
 */
const filter = (name: string, maxLength: number, matchable: (value: string) => boolean, rule: string) =>
  z
    .string()
    .trim()
    .min(1, { message: `${name} must not be empty (leave it out for any)`, abort: true })
    .max(maxLength, { message: `${name} must be at most ${maxLength} characters`, abort: true })
    .refine(matchable, `${name} ${rule}`)
    .nullish();

const addInput = z.object({
  url,
  events: z
    .array(z.enum(WEBHOOK_EVENTS))
    .min(1, 'events must name at least one event')
    .max(WEBHOOK_EVENTS.length * 4, 'events lists too many entries')
    .transform((events) => [...new Set(events)]),
  userId: filter('userId', MAX_USER_ID_LENGTH, (userId) => userIdProblem(userId) === null, USER_ID_RULE),
  sourceId: filter('sourceId', MAX_SOURCE_ID_LENGTH, (id) => SOURCE_ID_CHARACTERS.test(id), SOURCE_ID_RULE),
  appName: filter('appName', MAX_APP_NAME_LENGTH, (name) => APP_NAME.test(name), APP_NAME_RULE),
});
/** What addWebhook generates: `wh_` and 24 hex digits. */
const WEBHOOK_ID = /^wh_[0-9a-f]{24}$/;
const removeInput = z.object({
  webhookId: z.string().trim().regex(WEBHOOK_ID, 'webhookId must be a webhook id (wh_ and 24 hex digits)'),
});

const NOT_A_DELIVERY_ID = `deliveryId must be a delivery id (Delivery.id, 1 to ${MAX_ROW_ID})`;
/**
 * A delivery's id as `Delivery.id` answers it: the outbox row's id, in decimal. One beyond the
 * column's range is refused here like any malformed id: PostgreSQL would reject the query
 * (INTERNAL_SERVER_ERROR) where SQLite finds nothing, and Number() rounds past 2^53.
 */
const redeliverInput = z.object({
  deliveryId: z
    .string()
    .trim()
    .regex(/^[1-9][0-9]{0,9}$/, NOT_A_DELIVERY_ID)
    .transform(Number)
    .refine((id) => id <= MAX_ROW_ID, NOT_A_DELIVERY_ID),
});

export type AddWebhookInput = z.input<typeof addInput>;

/** A new webhook with its secret: the only time the secret is answered. */
export interface WebhookRegistration {
  webhook: WebhookRow;
  secret: string;
}

/**
 * Webhooks (admins only): receivers outside the server that get runtime events, signed with the
 * webhook's own secret (generated here, shown once). The dispatcher (webhook-dispatcher.ts)
 * reads the list through `current()`, a cache, so that no event costs a query while none is
 * registered.
 */
export class WebhookService {
  private cache: { rows: WebhookRow[]; loadedAt: number } | null = null;
  private loading: Promise<WebhookRow[]> | null = null;
  /** Bumped by every add and remove: a read that began before one is not kept. */
  private generation = 0;

  constructor(
    private readonly db: Db,
    private readonly maxWebhooks: number,
    private readonly provider: DatabaseProvider,
    /** A redelivery's due time is on it: the outbox workers of every instance claim on the database's clock. */
    private readonly clock: { date(): Date },
  ) {}

  async add(viewer: Viewer, rawInput: AddWebhookInput): Promise<WebhookRegistration> {
    this.assertAdmin(viewer, 'add webhooks');
    const input = parseInput(addInput, rawInput);
    const secret = `whsec_${randomBytes(32).toString('base64url')}`;
    rememberOutboundSecrets([secret]);
    const webhook = await this.db.$transaction(async (tx) => {
      // Count and insert are one step: on PostgreSQL concurrent adds would each count the rows
      // committed before them and together exceed MAX_WEBHOOKS, so they queue on this lock (it
      // blocks other adds and removes, never reads). SQLite runs one writer at a time anyway.
      if (this.provider === 'postgresql') await tx.$executeRaw`LOCK TABLE "Webhook" IN SHARE ROW EXCLUSIVE MODE`;
      if ((await tx.webhook.count()) >= this.maxWebhooks) {
        throw new InvalidStateError(`At most ${this.maxWebhooks} webhooks may be registered (MAX_WEBHOOKS)`);
      }
      return tx.webhook.create({
        data: {
          webhookId: `wh_${randomBytes(12).toString('hex')}`,
          url: input.url,
          secret,
          events: input.events,
          userId: input.userId ?? null,
          sourceId: input.sourceId ?? null,
          appName: input.appName ?? null,
          createdBy: viewer.userId,
        },
      });
    });
    this.forget();
    return { webhook, secret };
  }

  /** Removes a webhook and its messages: nothing more is sent to it, attempts in flight excepted. */
  async remove(viewer: Viewer, rawInput: { webhookId: string }): Promise<WebhookRow> {
    this.assertAdmin(viewer, 'remove webhooks');
    const { webhookId } = parseInput(removeInput, rawInput);
    const removed = await this.db.$transaction(async (tx) => {
      const row = await tx.webhook.findUnique({ where: { webhookId } });
      if (!row) throw new NotFoundError(`Webhook ${webhookId} does not exist`);
      await tx.outboxMessage.deleteMany({ where: { webhookId } });
      await tx.webhook.delete({ where: { webhookId } });
      return row;
    });
    this.forget();
    notifyWebhookRemoved(webhookId);
    return removed;
  }

  /**
   * Puts a DEAD webhook delivery back to PENDING, due now, its attempts reset: the same
   * Idempotency-Key and body, so a receiver that did process it after all can tell. Only a dead
   * one (a pending one is on its way, a delivered one arrived) and only a webhook's: a payment
   * push's body is blanked once it is finished, by design (resendPaymentCredential sends the
   * buyer's credential again). The write is conditional on DEAD, so two admins redelivering at
   * once send it once; the one refused is told the status the other's write left, not the DEAD
   * both read before writing.
   */
  async redeliver(viewer: Viewer, rawInput: { deliveryId: string }): Promise<OutboxMessageRow> {
    this.assertAdmin(viewer, 'redeliver webhook deliveries');
    const id = parseInput(redeliverInput, rawInput).deliveryId;
    const row = await this.db.outboxMessage.findUnique({ where: { id } });
    if (!row) throw new NotFoundError(`Delivery ${id} does not exist`);
    if (row.kind !== 'webhook') {
      throw new InvalidStateError(
        `Delivery ${id} is a payment push, whose body is not kept once it is finished: use resendPaymentCredential`,
      );
    }
    const now = this.clock.date();
    const { count } = await this.db.outboxMessage.updateMany({
      where: { id, status: 'DEAD' },
      data: { status: 'PENDING', attempts: 0, nextAttemptAt: now, lockedBy: null, lockedUntil: null, updatedAt: now },
    });
    if (count === 0) {
      const current = row.status === 'DEAD' ? await this.db.outboxMessage.findUnique({ where: { id } }) : row;
      if (!current) throw new NotFoundError(`Delivery ${id} does not exist`);
      const just = current.status !== row.status ? ' (it was just redelivered)' : '';
      throw new InvalidStateError(`Delivery ${id} is ${current.status}${just}: only a DEAD delivery is redelivered`);
    }
    notifyOutbound();
    return {
      ...row,
      status: 'PENDING',
      attempts: 0,
      nextAttemptAt: now,
      lockedBy: null,
      lockedUntil: null,
      updatedAt: now,
    };
  }

  list(viewer: Viewer): Promise<WebhookRow[]> {
    this.assertAdmin(viewer, 'list webhooks');
    return this.db.webhook.findMany({ orderBy: { id: 'asc' } });
  }

  /**
   * The latest `last` deliveries of each webhook, newest first: one index walk per webhook finds
   * their ids (recentMessageIds, 100 webhooks a statement), then the rows are read by id
   * (PRISMA_PARAMETERS a statement): a few queries for a typical list, never one per webhook.
   * `last` null or left out: the default; it is refused as a connection's is (checkPageSize), 0
   * being an empty list.
   */
  async recentDeliveries(
    webhookIds: readonly string[],
    last: number | null = DEFAULT_RECENT_DELIVERIES,
  ): Promise<OutboxMessageRow[][]> {
    checkPageSize('last', last, MAX_RECENT_DELIVERIES);
    const take = last ?? DEFAULT_RECENT_DELIVERIES;
    if (take === 0) return webhookIds.map(() => []);
    const ids = await recentMessageIds(this.db, webhookIds, take);
    const rows = await readInChunks(ids, PRISMA_PARAMETERS, (chunk) =>
      this.db.outboxMessage.findMany({ where: { id: { in: [...chunk] } } }),
    );
    const byWebhook = new Map<string, OutboxMessageRow[]>();
    for (const row of rows) {
      const list = byWebhook.get(row.webhookId ?? '') ?? [];
      list.push(row);
      byWebhook.set(row.webhookId ?? '', list);
    }
    return webhookIds.map((webhookId) => (byWebhook.get(webhookId) ?? []).sort((a, b) => b.id - a.id));
  }

  /**
   * Deletes delivered and dead messages (webhook deliveries and payment pushes) last written before
   * `cutoff`, in bounded statements until none is left or `deadline` (epoch ms) has passed.
   */
  removeFinishedMessages(cutoff: Date, deadline = Infinity): Promise<Removal> {
    return removeInBatches((limit) => removeFinishedMessages(this.db, this.provider, cutoff, limit), deadline);
  }

  /** The outbox message of each payment push (null: it has none, e.g. no push URL is configured). */
  async deliveriesOfNotifications(notificationIds: readonly number[]): Promise<(OutboxMessageRow | null)[]> {
    const rows = await this.db.outboxMessage.findMany({ where: { notificationId: { in: [...notificationIds] } } });
    const byId = new Map(rows.map((row) => [row.notificationId, row]));
    return notificationIds.map((id) => byId.get(id) ?? null);
  }

  /**
   * Every webhook, as this instance last read them: fresh after its own add or remove, at most
   * WEBHOOK_CACHE_MS old otherwise. `cachedOrNull` is the synchronous look the dispatcher takes on
   * every event: null means "read them first".
   */
  cachedOrNull(now = Date.now()): WebhookRow[] | null {
    const { cache } = this;
    return cache && now - cache.loadedAt < WEBHOOK_CACHE_MS ? cache.rows : null;
  }

  current(): Promise<WebhookRow[]> {
    const cached = this.cachedOrNull();
    if (cached) return Promise.resolve(cached);
    const generation = this.generation;
    if (this.loading) return this.loading;
    const loading = this.db.webhook
      .findMany({ orderBy: { id: 'asc' } })
      .then((rows) => {
        rememberOutboundSecrets(rows.map((row) => row.secret));
        if (generation === this.generation) this.cache = { rows, loadedAt: Date.now() };
        return rows;
      })
      .finally(() => {
        if (this.loading === loading) this.loading = null;
      });
    this.loading = loading;
    return loading;
  }

  private forget(): void {
    this.cache = null;
    this.loading = null;
    this.generation++;
  }

  private assertAdmin(viewer: Viewer, what: string): void {
    if (!viewer.isAdmin) throw new ForbiddenError(`Only admins may ${what}`);
  }
}

/** The events a webhook row subscribes to. */
export function webhookEvents(row: Pick<WebhookRow, 'events'>): WebhookEvent[] {
  return Array.isArray(row.events) ? (row.events as WebhookEvent[]) : [];
}
