import type { Db } from '../db/client.js';
import type { Config } from '../platform/config.js';
import { claimLockMs } from '../services/outbox-delivery.js';
import { type OutboxFigures, oldestPending, oldestPendingAgeSeconds } from '../services/outbox-figures.js';
import { component } from './components.js';
import type { PollSource } from './state-collector.js';
import type { ComponentStatus } from './state-store.js';

type OutboxSettings = Config['outbox'];

/**
 * How long a message can stay PENDING while the worker does what it should: every pause between
 * its OUTBOX_MAX_ATTEMPTS attempts (OUTBOX_BACKOFF_BASE_MS × 2^(n − 1), at most
 * OUTBOX_BACKOFF_MAX_MS, before jitter shortens it), every attempt held to the end of its lock
 * (an attempt whose process died is retried only then), and one poll. Past that, a message that
 * was being tried would be DEAD: one still PENDING is not being sent at all (a payment push
 * whose receiver has no URL on any instance, the case README describes) or the backlog is not
 * draining (the receivers are slower than the messages come in). With the defaults: 762 s.
 */
export function stuckAfterMs(settings: OutboxSettings): number {
  let pauses = 0;
  for (let attempt = 1; attempt < settings.maxAttempts; attempt++) {
    pauses += Math.min(settings.backoffMaxMs, settings.backoffBaseMs * 2 ** (attempt - 1));
  }
  return pauses + settings.maxAttempts * claimLockMs(settings) + settings.pollIntervalMs;
}

/**
 * `outbox`: the payment pushes and webhook deliveries waiting or dead, and this process's
 * attempts since it started. A component of every instance (`outbox@<instance>` in cluster
 * mode), not the leader's: the worker runs on each, so the attempts and the last error are each
 * instance's own, and an instance without a push URL shows the pushes it leaves waiting. The
 * backlog is the shared database's, the same on every instance; counting it is a few bounded
 * reads (OutboxFigures.refresh) per COLLECT_INTERVAL_MS per instance, never per delivery: past
 * `countCap` a count says "at least" (`capped`).
 *
 * DEGRADED (the worker runs; deliveries are not getting through) while the oldest PENDING message
 * is older than stuckAfterMs, or while there are more DEAD messages than when this process
 * started (OutboxFigures.deadSinceStart): a dead letter is a receiver that needs an operator,
 * and redelivering it (redeliverWebhookDelivery) or the cleanup of old ones clears it.
 */
export function outboxSource(db: Db, figures: OutboxFigures, settings: OutboxSettings): PollSource {
  const bound = stuckAfterMs(settings);
  return {
    name: 'outbox',
    async collect() {
      const backlog = await figures.refresh(db);
      const now = figures.now();
      const ageSeconds = oldestPendingAgeSeconds(backlog, now);
      const oldest = oldestPending(backlog);
      const dead = figures.deadSinceStart;
      const stuck =
        oldest && ageSeconds * 1000 > bound
          ? `the oldest pending ${oldest.kind} message (written ${oldest.at.toISOString()}) has waited more than the ${Math.round(bound / 1000)} s its retries take: its receiver keeps failing, the backlog is not draining, or (a payment push) no instance has its receiver's URL`
          : null;
      const died = dead > 0 ? `${dead} message(s) dead-lettered since this instance started` : null;
      const { attempts, lastError } = figures;
      const metrics = {
        pending: backlog.pending,
        dead: backlog.dead,
        countCap: figures.countCap,
        capped: backlog.capped,
        oldestPendingAgeSeconds: Math.round(ageSeconds * 10) / 10,
        deadSinceStart: dead,
        delivered: attempts.payment.delivered + attempts.webhook.delivered,
        failed: attempts.payment.failed + attempts.webhook.failed + attempts.payment.dead + attempts.webhook.dead,
        attempts,
        lastError: lastError?.error ?? null,
        lastErrorReceiver: lastError?.receiver ?? null,
        lastErrorAt: lastError?.at.toISOString() ?? null,
      };
      // No figure that moves every cycle in the message: a changed message is an event to every subscriber.
      const message = [stuck, died].filter(Boolean).join('; ') || null;
      return [component('outbox', message ? 'DEGRADED' : 'RUNNING', metrics, message)];
    },
  };
}

/** `outbox`, or a process's `outbox@<instance>`. */
export function isOutboxComponent(name: string): boolean {
  return name === 'outbox' || name.startsWith('outbox@');
}

/**
 * The `outbox` component as a non-admin sees it: the counts and the state, not the last error nor
 * whose it was (a webhook's id, an admin's setting; a push's receiver).
 */
export function outboxForUsers(component: ComponentStatus): ComponentStatus {
  const { lastError: _error, lastErrorReceiver: _receiver, lastErrorAt: _at, ...metrics } = component.metrics;
  return { ...component, metrics };
}
