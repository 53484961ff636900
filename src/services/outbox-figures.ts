import type { Db } from '../db/client.js';
import { countMessagesUpTo, OUTBOUND_KINDS } from '../db/outbox-sql.js';
import { redactSecrets } from '../platform/redact.js';
import { type Receiver, receiverKey } from './outbox-delivery.js';

export type OutboundKind = (typeof OUTBOUND_KINDS)[number];
/** How an attempt ended: delivered (2xx), failed (retried later), dead (failed, and given up). */
export type AttemptResult = 'delivered' | 'failed' | 'dead';
export const ATTEMPT_RESULTS: readonly AttemptResult[] = ['delivered', 'failed', 'dead'];

/** Messages counted per status and kind at most (OutboxFigures `countCap`). @default 10000 */
export const OUTBOX_COUNT_CAP = 10_000;

/** The outbox's backlog as one count read it (the database's: every instance's messages). */
export interface OutboxBacklog {
  /** Each at most `countCap`: a count that reached it means at least that many (`capped`). */
  pending: Record<OutboundKind, number>;
  dead: Record<OutboundKind, number>;
  capped: { pending: Record<OutboundKind, boolean>; dead: Record<OutboundKind, boolean> };
  /** When the oldest PENDING message of each kind was written; null: none pending. */
  oldestPendingAt: Record<OutboundKind, Date | null>;
  readAt: Date;
}

const perKind = <T>(value: T) =>
  Object.fromEntries(OUTBOUND_KINDS.map((kind) => [kind, value])) as Record<OutboundKind, T>;

/**
 * What an operator reads of the outbox (the `outbox` component, the market_outbox_* metrics):
 * this process's attempts since it started, counted by the worker as they end (an integer
 * increment each), and the backlog, read by `refresh()` at the collector's pace, never per
 * delivery (see refresh for what it costs).
 */
export class OutboxFigures {
  /** Messages counted per status and kind at most: beyond it the figure is "at least" (`capped`). */
  readonly countCap: number;
  readonly attempts: Record<OutboundKind, Record<AttemptResult, number>> = {
    payment: { delivered: 0, failed: 0, dead: 0 },
    webhook: { delivered: 0, failed: 0, dead: 0 },
  };
  /**
   * The last failed attempt's receiver and error: the text stored as lastError (a status and an
   * excerpt of the answer, or the network error; never the body or a URL), redacted once more.
   */
  lastError: { at: Date; receiver: string; error: string } | null = null;
  backlog: OutboxBacklog | null = null;
  /** Fewest DEAD messages seen since start: more than this now means messages died since (see deadSinceStart). */
  private deadFloor: number | null = null;
  /**
   * Receivers whose last attempt failed, by receiverKey, with their failures so far: each one forgotten
   * once no PENDING message goes to it any more (see forgetIdle), so at most the receivers with a backlog.
   */
  private readonly failing = new Map<string, { receiver: Receiver; failures: number }>();

  /** Now on the clock the messages' times are written with (the outbox worker's: the database's). */
  readonly now: () => number;

  constructor({ countCap = OUTBOX_COUNT_CAP, now = Date.now }: { countCap?: number; now?: () => number } = {}) {
    this.countCap = countCap;
    this.now = now;
  }

  attempted(kind: string, result: AttemptResult): void {
    const counts = this.attempts[kind as OutboundKind];
    if (counts) counts[result]++;
  }

  /**
   * A failed attempt to `receiver` (a webhook, a push's destination): retried, or `dead`. True when
   * it is the receiver's first since it last took one or was forgotten (its outage's first: logged at info).
   */
  failed(receiver: Receiver, dead: boolean, error: string, at = new Date()): boolean {
    const key = receiverKey(receiver);
    this.attempted(receiver.kind, dead ? 'dead' : 'failed');
    this.lastError = { at, receiver: key, error: redactSecrets(error) };
    const known = this.failing.get(key);
    if (known) known.failures++;
    else this.failing.set(key, { receiver, failures: 1 });
    return !known;
  }

  /** A delivery to `receiver`: true when its last attempt before had failed (its outage is over). */
  delivered(receiver: Receiver): boolean {
    this.attempted(receiver.kind, 'delivered');
    return this.failing.delete(receiverKey(receiver));
  }

  /** Receivers whose last attempt from this process failed and that have messages pending (as of the last refresh). */
  get failingReceivers(): number {
    return this.failing.size;
  }

  /** A webhook removed in this process: its messages are gone with it, so is its outage. */
  forgetWebhook(webhookId: string): void {
    this.failing.delete(webhookId);
  }

  /**
   * DEAD messages now beyond the fewest seen since this process started: the cleanup removing old
   * dead letters lowers that floor, and a redelivered one leaves the count, so this goes back to
   * 0 once the operator has dealt with them.
   */
  get deadSinceStart(): number {
    if (!this.backlog || this.deadFloor === null) return 0;
    return Math.max(0, total(this.backlog.dead) - this.deadFloor);
  }

  /**
   * Each (status, kind) counted up to countCap + 1 rows, and each kind's oldest PENDING message
   * read first on the (status, kind, createdAt) index: bounded work, however large the backlog.
   * Every instance runs this every COLLECT_INTERVAL_MS. Measured with 1M PENDING and 1M DEAD
   * webhook rows (median of 5): the unbounded reads this replaced, a grouped COUNT and
   * MIN(createdAt) of the PENDING rows, took 299 + 154 ms on PostgreSQL (parallel scans) and
   * 222 + 116 ms on SQLite, there on the event loop; these take 2.4 ms per capped count and
   * 0.9 ms per oldest on PostgreSQL, 0.8 and 0.5 ms on SQLite (the whole refresh 21 and 10 ms).
   */
  async refresh(db: Db, now = new Date(this.now())): Promise<OutboxBacklog> {
    const take = this.countCap + 1;
    const pairs = (['PENDING', 'DEAD'] as const).flatMap((status) => OUTBOUND_KINDS.map((kind) => ({ status, kind })));
    // The idle receivers are looked for beside the counts, not after them: no round trip added.
    const [counts, oldest] = await Promise.all([
      Promise.all(pairs.map(({ status, kind }) => countMessagesUpTo(db, status, kind, take))),
      Promise.all(
        OUTBOUND_KINDS.map((kind) =>
          db.outboxMessage.findFirst({
            where: { status: 'PENDING', kind },
            orderBy: { createdAt: 'asc' },
            select: { createdAt: true },
          }),
        ),
      ),
      this.forgetIdle(db),
    ]);
    const backlog: OutboxBacklog = {
      pending: perKind(0),
      dead: perKind(0),
      capped: { pending: perKind(false), dead: perKind(false) },
      oldestPendingAt: perKind(null),
      readAt: now,
    };
    pairs.forEach(({ status, kind }, index) => {
      const count = counts[index] ?? 0;
      const figure = status === 'DEAD' ? 'dead' : 'pending';
      backlog[figure][kind] = Math.min(count, this.countCap);
      backlog.capped[figure][kind] = count > this.countCap;
    });
    OUTBOUND_KINDS.forEach((kind, index) => {
      backlog.oldestPendingAt[kind] = oldest[index]?.createdAt ?? null;
    });
    // Capped, the dead count stops growing: deadSinceStart then says at most what it did below the cap.
    const dead = total(backlog.dead);
    this.deadFloor = this.deadFloor === null ? dead : Math.min(this.deadFloor, dead);
    this.backlog = backlog;
    return backlog;
  }

  /**
   * Forgets the failing receivers no PENDING message goes to any more: their messages all
   * dead-lettered, delivered by another instance, or deleted with their webhook by another instance
   * (this one's removals call forgetWebhook at once). Kept, a removed webhook stayed in `failing`
   * for the life of the process, counted by market_outbox_failing_receivers. One read per failing
   * receiver, stopping at its newest pending message; a receiver that failed again during the
   * reads is kept (its failure may be for a message written since).
   */
  private async forgetIdle(db: Db): Promise<void> {
    const entries = [...this.failing].map(([key, entry]) => ({ key, entry, failures: entry.failures }));
    const pending = await Promise.all(entries.map(({ entry }) => hasPendingMessage(db, entry.receiver)));
    entries.forEach(({ key, entry, failures }, index) => {
      if (!pending[index] && this.failing.get(key) === entry && entry.failures === failures) this.failing.delete(key);
    });
  }
}

/** The age of the oldest PENDING message (any kind) at `now`, in seconds; 0 when none is pending. */
export function oldestPendingAgeSeconds(backlog: OutboxBacklog | null, now = Date.now()): number {
  const oldest = oldestPending(backlog);
  return oldest ? Math.max(0, (now - oldest.at.getTime()) / 1000) : 0;
}

/** The oldest PENDING message's kind and creation, or null. */
export function oldestPending(backlog: OutboxBacklog | null): { kind: OutboundKind; at: Date } | null {
  let found: { kind: OutboundKind; at: Date } | null = null;
  for (const kind of OUTBOUND_KINDS) {
    const at = backlog?.oldestPendingAt[kind] ?? null;
    if (at && (!found || at < found.at)) found = { kind, at };
  }
  return found;
}

/**
 * Whether a PENDING message goes to `receiver`: a webhook's newest first on its (webhookId, id)
 * index (a failing one's pending messages are its newest); a push's among the pending of its kind.
 */
async function hasPendingMessage(db: Db, receiver: Receiver): Promise<boolean> {
  const { kind, webhookId, destination, topic } = receiver;
  const where = webhookId
    ? { webhookId }
    : destination
      ? { kind, destination }
      : { kind, topic, webhookId: null, destination: null };
  const found = await db.outboxMessage.findFirst({
    where: { ...where, status: 'PENDING' },
    orderBy: { id: 'desc' },
    select: { id: true },
  });
  return found !== null;
}

function total(counts: Record<OutboundKind, number>): number {
  return OUTBOUND_KINDS.reduce((sum, kind) => sum + counts[kind], 0);
}
