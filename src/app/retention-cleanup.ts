import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import type { JobStatus } from '../platform/periodic-job.js';
import type { Services } from './create-services.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/**
 * The retention cleanup runs every minute (or HISTORY_CLEANUP_INTERVAL_MS when shorter) for at
 * most 2 s: up to 120,000 outbox messages an hour on SQLite, where a modest load wrote ~70,000
 * (and ~4,600 tasks and ~2,300 payment pushes in 23 minutes).
 */
const RECORDS_CLEANUP_CHECK_MS = 60_000;
const RECORDS_CLEANUP_RUN_MS = 2_000;

/** What the retention cleanup removes, by kind (the keys of its log line and figures). */
export interface RemovedCounts {
  historyRecords: number;
  outboxMessages: number;
  finishedTasks: number;
  paymentPushes: number;
}

/** The last run that removed something: when, up to which cutoffs, and how many of each kind. */
interface Removal {
  at: Date;
  /** HISTORY_RETENTION_DAYS ago at that run: history records, finished tasks, payment pushes. */
  cutoff: Date;
  /** OUTBOX_RETENTION_DAYS ago at that run: delivered and dead outbox messages. */
  outboxCutoff: Date;
  removed: Partial<RemovedCounts>;
  /** Whether a kind had more past its cutoff than the run's time allowed (the next run goes on). */
  more: boolean;
}

/**
 * The leader's removal of what is older than its retention, in one job (jobs.ts) that runs every
 * minute (or HISTORY_CLEANUP_INTERVAL_MS when shorter), bounded in time and not waited for at
 * start: history records once went in one unbounded DELETE the start-up waited for (500,000 held
 * SQLite, and so every request, for 13.5 s). A run that removed something logs one line with the
 * count of each kind and the cutoffs: an upgrade to the first release with retention deleted months
 * of tasks and a payment's pushes at its first start, and nothing said so. A run that removed
 * nothing says nothing, so an idle server does not log every minute. The figures (last removal,
 * totals since this instance began leading) show on the `history_cleanup` component.
 */
export class RetentionCleanup {
  private lastRemoval: Removal | null = null;
  private readonly totals: RemovedCounts = { historyRecords: 0, outboxMessages: 0, finishedTasks: 0, paymentPushes: 0 };

  constructor(
    private readonly config: Config,
    private readonly services: Pick<Services, 'history' | 'tasks' | 'payments' | 'webhooks'>,
    private readonly logger: Logger,
  ) {}

  /** How often the cleanup job runs. */
  get intervalMs(): number {
    return Math.min(this.config.history.cleanupIntervalMs, RECORDS_CLEANUP_CHECK_MS);
  }

  /**
   * Finished outbox messages (delivered or dead) older than OUTBOX_RETENTION_DAYS (never the
   * pending ones), then history records, finished tasks and payment pushes older than
   * HISTORY_RETENTION_DAYS, one kind after the other, for about RECORDS_CLEANUP_RUN_MS a run in all
   * (what is left waits for the next run): a stop or a leadership handover waits for the run in
   * progress.
   */
  async removeOldRecords(): Promise<void> {
    const { cutoff, outboxCutoff } = this.cutoffs();
    const deadline = Date.now() + RECORDS_CLEANUP_RUN_MS;
    const { webhooks, history, tasks, payments } = this.services;
    const kinds = [
      ['outboxMessages', () => webhooks.removeFinishedMessages(outboxCutoff, deadline)],
      ['historyRecords', () => history.removeOlderThan(cutoff, deadline)],
      ['finishedTasks', () => tasks.removeFinishedBefore(cutoff, deadline)],
      ['paymentPushes', () => payments.removeOldNotifications(cutoff, deadline)],
    ] as const;
    const removed: Partial<RemovedCounts> = {};
    let more = false;
    // Each kind runs at least one statement past the deadline: a backlog of one (millions of outbox
    // messages after an upgrade) does not hold the others back for good.
    for (const [kind, removeOld] of kinds) {
      const result = await removeOld();
      removed[kind] = result.removed;
      more ||= result.more;
    }
    this.report({ at: new Date(), cutoff, outboxCutoff, removed, more });
  }

  /** The `history_cleanup` component's figures beyond its job's: what the cleanup removed. */
  figures(recordsJob: JobStatus | null): Record<string, unknown> {
    const last = this.lastRemoval;
    return {
      removedTotal: { ...this.totals },
      lastRemoval: last && {
        at: last.at.toISOString(),
        cutoff: last.cutoff.toISOString(),
        outboxCutoff: last.outboxCutoff.toISOString(),
        removed: last.removed,
        more: last.more,
      },
      finishedRecordsLastRunAt: recordsJob?.lastStartedAt?.toISOString() ?? null,
      finishedRecordsLastError: recordsJob?.lastError ?? null,
    };
  }

  /** The cutoffs of a run: what is older than its retention goes. */
  cutoffs(now = Date.now()): { cutoff: Date; outboxCutoff: Date } {
    return {
      cutoff: new Date(now - this.config.history.retentionDays * DAY_MS),
      outboxCutoff: new Date(now - this.config.outbox.retentionDays * DAY_MS),
    };
  }

  private report(removal: Removal): void {
    const counts = Object.entries(removal.removed) as [keyof RemovedCounts, number][];
    if (!counts.some(([, count]) => count > 0)) return;
    for (const [kind, count] of counts) this.totals[kind] += count;
    this.lastRemoval = removal;
    const { cutoff, outboxCutoff, removed, more } = removal;
    this.logger.info({ removed, cutoff, outboxCutoff, more }, 'retention cleanup removed old records');
  }
}
