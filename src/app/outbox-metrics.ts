import { Counter, Gauge, type Registry } from 'prom-client';
import { OUTBOUND_KINDS } from '../db/outbox-sql.js';
import {
  ATTEMPT_RESULTS,
  type OutboundKind,
  type OutboxBacklog,
  type OutboxFigures,
  oldestPendingAgeSeconds,
} from '../services/outbox-figures.js';

type BacklogValue = (backlog: OutboxBacklog, status: 'pending' | 'dead', kind: OutboundKind) => number;

/**
 * The outbox's Prometheus metrics (payment pushes and webhook deliveries), read at scrape time
 * from the figures the worker and the `outbox` component keep (services/outbox-figures.ts): a
 * scrape asks the database nothing. The backlog is the one the collector last counted (every
 * COLLECT_INTERVAL_MS; none before its first run); the oldest pending message's age is computed
 * at the scrape from when it was written, so it grows between counts. In cluster mode every
 * instance reports the shared backlog (the same figures: take `max`, not `sum`, across
 * instances) and its own attempts (`sum` them).
 */
export function watchOutbox(registry: Registry, figures: OutboxFigures): void {
  const registers = [registry];
  /** A gauge of the last counted backlog by kind and status (pending, dead); no sample before the first count. */
  const backlogGauge = (name: string, help: string, value: BacklogValue) =>
    new Gauge({
      name,
      help,
      labelNames: ['kind', 'status'],
      registers,
      collect() {
        this.reset();
        const { backlog } = figures;
        if (!backlog) return;
        for (const kind of OUTBOUND_KINDS) {
          for (const status of ['pending', 'dead'] as const) this.set({ kind, status }, value(backlog, status, kind));
        }
      },
    });
  backlogGauge(
    'market_outbox_messages',
    'Outbox messages waiting (pending) or given up (dead), by kind (payment, webhook), as last counted (up to a cap: see market_outbox_messages_capped)',
    (backlog, figure, kind) => backlog[figure][kind],
  );
  backlogGauge(
    'market_outbox_messages_capped',
    'Whether market_outbox_messages reached the count cap (1: at least that many), by kind and status',
    (backlog, figure, kind) => (backlog.capped[figure][kind] ? 1 : 0),
  );
  new Gauge({
    name: 'market_outbox_oldest_pending_age_seconds',
    help: 'Age of the oldest pending outbox message (0: none pending)',
    registers,
    collect() {
      this.set(oldestPendingAgeSeconds(figures.backlog, figures.now()));
    },
  });
  new Gauge({
    name: 'market_outbox_failing_receivers',
    help: 'Receivers (webhooks, push destinations) whose last attempt from this instance failed and for which messages are still pending',
    registers,
    collect() {
      this.set(figures.failingReceivers);
    },
  });
  new Counter({
    name: 'market_outbox_delivery_attempts_total',
    help: "This instance's outbox delivery attempts, by kind and outcome (delivered, failed and retried, dead)",
    labelNames: ['kind', 'outcome'],
    registers,
    collect() {
      this.reset();
      for (const kind of OUTBOUND_KINDS) {
        for (const outcome of ATTEMPT_RESULTS) this.inc({ kind, outcome }, figures.attempts[kind][outcome]);
      }
    },
  });
}
