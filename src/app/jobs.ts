import { failureMessage } from '../db/availability.js';
import { LeaderLease, type Leadership, soleLeader } from '../events/leader-lease.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import { type PeriodicJob, startPeriodicJob } from '../platform/periodic-job.js';
import { hostOf } from '../platform/redact.js';
import { appServiceSource, jobsSource, statusCorrectionSource, syncerSource } from '../runtime/sources.js';
import type { PollSource } from '../runtime/state-collector.js';
import { WebhookCatchUp } from '../services/webhook-catch-up.js';
import type { Services } from './create-services.js';
import { RetentionCleanup } from './retention-cleanup.js';

/** Longest wait between two looks for market sources whose sync is due. */
const SYNC_CHECK_MS = 5000;
const HOUR_MS = 60 * 60 * 1000;
/** Why the market-source syncs running are cut short (SyncOutcome.error, the log). */
export const SERVER_STOPPING = 'the server is stopping';
const LOST_LEADERSHIP = 'this instance stopped leading';
export interface JobDeps {
  config: Config;
  services: Pick<
    Services,
    | 'purchases'
    | 'history'
    | 'tasks'
    | 'payments'
    | 'catalogueSync'
    | 'statusCorrection'
    | 'webhooks'
    | 'webhookDispatcher'
    | 'clusterLog'
    | 'owedResync'
    | 'clock'
  >;
  logger: Logger;
  /** Who runs the jobs. @default createLeadership(config, logger) */
  leadership?: Leadership;
}

/**
 * The work the server does on a timer, beside answering requests. It is the cluster's: with
 * REDIS_URL only the leader runs it (in one process, the process).
 */
export interface PeriodicJobs {
  /** Whether this instance leads; the collector polls the chart repo only while it does. */
  readonly leadership: Leadership;
  /**
   * Takes part in the leader election (cluster mode), then, while this instance leads, runs
   * payment polling recovery, the retention cleanup (bounded runs, its first not waited for: a
   * backlog of history held SQLite for seconds), the catalogue sync and status correction against the app service
   * (both modes; its first run starts at once, right after the task engine started, and is not
   * waited for: a slow app service must not hold up the start), and the webhook catch-up
   * (WEBHOOK_CATCH_UP_INTERVAL_MS, unless 0; its first run at start, not waited for either, finds
   * what a process that died left unannounced), and in cluster mode the look for instances that
   * died owing cluster changes (db/owed-resync.ts). The jobs start when the instance
   * begins to lead and stop when it stops.
   */
  start(): Promise<void>;
  /** How the collector reports them: the `app_service`, `status_correction` and `jobs` components. */
  sources(): PollSource[];
  /** Stops the jobs started, waiting for runs in progress; the market-source syncs running are cut short. */
  stop(): Promise<void>;
  /** What a stop still waits for: the jobs with a run in progress, the market sources syncing. */
  stillRunning(): string[];
  /**
   * After `stop()` and the task engine's stop: gives up the lease (cluster mode), so that another
   * instance takes the jobs over at its next attempt instead of after LEADER_LEASE_MS.
   */
  release(): Promise<void>;
}

/**
 * Who does the once-per-cluster work: with REDIS_URL the instance holding the lease
 * `<REDIS_PREFIX>leader` (LEADER_LEASE_MS); in one process, the process.
 */
export function createLeadership(config: Config, logger: Logger): Leadership {
  if (!config.redis) return soleLeader();
  const { url, prefix, instance, leaderLeaseMs } = config.redis;
  return new LeaderLease({
    url,
    prefix,
    instance,
    leaseMs: leaderLeaseMs,
    logger: logger.child({ component: 'leader-lease' }),
  });
}

export function createPeriodicJobs({
  config,
  services,
  logger,
  leadership = createLeadership(config, logger),
}: JobDeps): PeriodicJobs {
  const started: PeriodicJob[] = [];
  let paymentRecovery: PeriodicJob | null = null;
  let retentionCleanup: PeriodicJob | null = null;
  const retention = new RetentionCleanup(config, services, logger);
  let statusCorrection: PeriodicJob | null = null;
  let catalogueSync: PeriodicJob | null = null;
  let catchUp: WebhookCatchUp | null = null;
  let stopped = false;

  const startJob = (name: string, intervalMs: number, work: (signal: AbortSignal) => Promise<void>) => {
    // Asked at every run too: a leader whose event loop stalled past its lease must not act on a
    // timer that fires before it has heard that it no longer leads.
    const job = startPeriodicJob(
      name,
      intervalMs,
      (signal) => (leadership.isLeader ? work(signal) : Promise.resolve()),
      logger,
      failureMessage,
    );
    started.push(job);
    return job;
  };
  /** Starts every job (unless they run), waiting for none of their runs. */
  const startAll = async (): Promise<void> => {
    if (stopped || started.length > 0) return;
    paymentRecovery = startJob('payment polling recovery', services.purchases.resumeIntervalMs, () =>
      services.purchases.resumePolling(),
    );
    // Not waited for at start (a backlog of millions took minutes), each run bounded in time, and
    // run often enough to keep up with what the outbox and the history write.
    retentionCleanup = startJob('retention cleanup', retention.intervalMs, () => retention.removeOldRecords());
    // Each source keeps its own schedule (its interval, or its backoff after failures): the job
    // only looks for the sources that are due, often enough for a due one to wait little.
    catalogueSync = startJob('catalogue sync', Math.min(config.catalogue.syncIntervalMs, SYNC_CHECK_MS), async () => {
      await services.catalogueSync.startDue();
    });
    // After the engine started (build-app.ts starts it first): tasks the correction ends are ended
    // by the engine, and those a dead instance left are adopted by then.
    // Asked between its corrections, which may be thousands: a stop must not wait for them all,
    // and a leader that lost the lease mid-run (its process paused past it) must not go on making
    // the corrections its successor makes too. The lease's own clock answers, no round trip.
    statusCorrection = startJob('status correction', config.statusCorrectionIntervalMs, (signal) =>
      services.statusCorrection.run(() => {
        if (!leadership.isLeader) return 'this instance no longer leads';
        return signal.aborted ? 'the periodic jobs are stopping' : null;
      }),
    );
    if (config.webhookCatchUpIntervalMs > 0) {
      const sweep = webhookCatchUp({ config, services, logger });
      catchUp = sweep;
      // On the database's clock, as the ends it looks for are: a leader ahead of it passed over changes.
      startJob('webhook catch-up', config.webhookCatchUpIntervalMs, async () => {
        await sweep.run(services.clock.date());
      });
    }
    const { clusterLog, owedResync } = services;
    if (config.redis && clusterLog && owedResync) {
      const { instanceSilenceMs } = config.redis;
      startJob('owed resyncs', instanceSilenceMs / 3, async () => {
        if (!(await owedResync.takeAbandoned(instanceSilenceMs))) return;
        logger.warn('an instance died owing cluster changes Redis never took: every instance re-reads its state');
        clusterLog.requestResync();
      });
    }
  };
  const stopAll = async (why = LOST_LEADERSHIP): Promise<void> => {
    catchUp?.stop(); // a long catch-up must not hold up a stop or a handover: it goes on from its cursor
    catchUp = null;
    // Listed until stopped, for a stop that overran its time to name them (stillRunning).
    await Promise.all(started.map((job) => job.stop()));
    started.length = 0;
    await cutSyncs(services.catalogueSync, why);
    paymentRecovery = retentionCleanup = statusCorrection = catalogueSync = null;
  };
  const following = followLeadership(leadership, { start: startAll, stop: stopAll }, logger);

  return {
    leadership,
    async start() {
      await leadership.start().catch((error: unknown) => {
        const where = config.redis ? `Redis at ${hostOf(config.redis.url)} (REDIS_URL)` : 'the lease';
        throw new Error(`Could not take part in the leader election through ${where}: ${(error as Error).message}`);
      });
      following.start();
      if (leadership.isLeader) await startAll();
    },
    sources: () => [
      appServiceSource(
        config.appService.kind,
        () => statusCorrection?.status() ?? null,
        () => services.statusCorrection.appServiceReads(),
      ),
      statusCorrectionSource(
        () => (statusCorrection ? services.statusCorrection.status() : null),
        () => statusCorrection?.status() ?? null,
      ),
      jobsSource(() => [
        historyCleanupComponent(retention, retentionCleanup),
        { component: 'payment_polling', status: paymentRecovery?.status() ?? null },
      ]),
      syncerSource(() => services.catalogueSync.status()),
    ],
    async stop() {
      stopped = true;
      await following.stop();
      await stopAll(SERVER_STOPPING);
    },
    stillRunning: () => stillRunning(started, services.catalogueSync),
    release: () => leadership.stop(),
  };
}

/**
 * Starts the jobs when this instance begins to lead and stops them when it stops, one change after
 * the other (a stop waits for the runs in progress; a start does not wait for the first run).
 */
function followLeadership(
  leadership: Leadership,
  jobs: { start(): Promise<void>; stop(): Promise<void> },
  logger: Logger,
) {
  let transition: Promise<void> = Promise.resolve();
  let unfollow = () => {};
  return {
    start() {
      unfollow = leadership.onChange((leading) => {
        transition = transition
          .then(() => (leading ? void jobs.start() : jobs.stop()))
          .catch((error) => logger.error({ err: error }, 'could not start or stop the periodic jobs'));
      });
    },
    async stop() {
      unfollow();
      await transition;
    },
  };
}

/**
 * The syncs the catalogue sync job started and did not wait for, cut short once it can start no
 * more: a whole sync has no time bound (only each call), and a stop waiting for one overran its time.
 */
function cutSyncs(syncer: Services['catalogueSync'], why: string): Promise<void> {
  return why === SERVER_STOPPING ? syncer.stop(why) : syncer.interrupt(why);
}

/** The jobs whose run is in progress, and the market sources syncing. */
function stillRunning(jobs: readonly PeriodicJob[], syncer: Services['catalogueSync']): string[] {
  return [
    ...jobs.filter((job) => job.status().running).map((job) => job.status().name),
    ...syncer.syncing().map((sourceId) => `the sync of market source ${sourceId}`),
  ];
}

/** `history_cleanup`: the retention cleanup job's figures, and what it removed. */
function historyCleanupComponent(retention: RetentionCleanup, job: PeriodicJob | null) {
  const status = job?.status() ?? null;
  return { component: 'history_cleanup', status, metrics: retention.figures(status) };
}

/** The sweep of the changes whose webhook messages were never enqueued (webhook-catch-up.ts). */
function webhookCatchUp({ config, services, logger }: JobDeps): WebhookCatchUp {
  // An hour short of the outbox cleanup's cutoff (OUTBOX_RETENTION_DAYS): the messages of the
  // changes it looks at still exist (a change announced already is then recognised, not announced again).
  const lookBackMs = config.outbox.retentionDays * 24 * HOUR_MS - HOUR_MS;
  return new WebhookCatchUp(
    services.webhookDispatcher.db,
    services.webhooks,
    services.webhookDispatcher,
    logger.child({ component: 'webhook-catch-up' }),
    { lookBackMs },
  );
}
