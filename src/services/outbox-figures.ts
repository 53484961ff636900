import type { Db } from '../db/client.js';
import { OUTBOUND_KINDS } from '../db/outbox-sql.js';
import { redactSecrets } from '../platform/redact.js';

export type OutboundKind = (typeof OUTBOUND_KINDS)[number];
/** How an attempt ended: delivered (2xx), failed (retried later), dead (failed, and given up). */
export type AttemptResult = 'delivered' | 'failed' | 'dead';
export const ATTEMPT_RESULTS: readonly AttemptResult[] = ['delivered', 'failed', 'dead'];

/** The outbox's backlog as one count read it (the database's: every instance's messages). */
export interface OutboxBacklog {
  pending: Record<OutboundKind, number>;
  dead: Record<OutboundKind, number>;
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
 * delivery: one grouped COUNT over the (status, kind, nextAttemptAt) index, and the oldest
 * PENDING message's creation per kind (read from the PENDING rows only, which are few unless a
 * receiver is down).
 */
export class OutboxFigures {
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

  attempted(kind: string, result: AttemptResult): void {
    const counts = this.attempts[kind as OutboundKind];
    if (counts) counts[result]++;
  }

  /** A failed attempt to `receiver` (a webhook id or a push's destination): retried, or `dead`. */
  failed(kind: string, dead: boolean, receiver: string, error: string, at = new Date()): void {
    this.attempted(kind, dead ? 'dead' : 'failed');
    this.lastError = { at, receiver, error: redactSecrets(error) };
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

  async refresh(db: Db, now = new Date()): Promise<OutboxBacklog> {
    const [counts, oldest] = await Promise.all([
      db.outboxMessage.groupBy({
        by: ['status', 'kind'],
        where: { status: { in: ['PENDING', 'DEAD'] } },
        _count: { _all: true },
      }),
      db.outboxMessage.groupBy({ by: ['kind'], where: { status: 'PENDING' }, _min: { createdAt: true } }),
    ]);
    const backlog: OutboxBacklog = {
      pending: perKind(0),
      dead: perKind(0),
      oldestPendingAt: perKind(null),
      readAt: now,
    };
    for (const row of counts) {
      const kind = row.kind as OutboundKind;
      if (!(kind in backlog.pending)) continue;
      backlog[row.status === 'DEAD' ? 'dead' : 'pending'][kind] = row._count._all;
    }
    for (const row of oldest) {
      if (row.kind in backlog.oldestPendingAt) backlog.oldestPendingAt[row.kind as OutboundKind] = row._min.createdAt;
    }
    const dead = total(backlog.dead);
    this.deadFloor = this.deadFloor === null ? dead : Math.min(this.deadFloor, dead);
    this.backlog = backlog;
    return backlog;
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

function total(counts: Record<OutboundKind, number>): number {
  return OUTBOUND_KINDS.reduce((sum, kind) => sum + counts[kind], 0);
}
