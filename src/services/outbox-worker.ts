import { randomUUID } from 'node:crypto';
import type { Db } from '../db/client.js';
import { type DatabaseClock, databaseClockOf } from '../db/database-clock.js';
import { type DriverSql, driverSqlOf, providerOf } from '../db/driver-sql.js';
import {
  type ClaimedMessage,
  claimDueMessages,
  deleteClaimed,
  markDelivered,
  markFailed,
  OUTBOUND_KINDS,
  releaseClaims,
} from '../db/outbox-sql.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import { RepeatedFailure } from '../platform/repeated-failure.js';
import {
  type AttemptOutcome,
  claimLockMs,
  deliverOnce,
  failedAttempt,
  prepareAttempts,
  RETRY_LINE,
  type ReadyMessage,
  receiverOf,
  receiversAgent,
  recordMarginMs,
  type SettledMessage,
  WEBHOOK_REMOVED,
} from './outbox-delivery.js';
import { OutboxFigures } from './outbox-figures.js';
import { onOutboundEnqueued, onWebhookRemoved, type PushDestinations } from './outbox-messages.js';
import { ReadyQueue } from './outbox-ready-queue.js';

/** The worker's settings: the outbox's but its retention, which the leader's cleanup applies. */
export type OutboxSettings = Omit<Config['outbox'], 'retentionDays'>;

/** After a wake-up that found nothing: one more look this much later (the enqueuer's commit may follow). */
const RECHECK_AFTER_WAKE_MS = 25;
/**
 * Messages claimed ahead, per delivery slot: a claim is one statement whatever its size, so the
 * worker claims in batches and keeps the next ones ready while the slots are busy (measured: one
 * claim per free slot held deliveries to a tenth of what the receiver could take).
 */
const CLAIM_AHEAD = 16;
const isPayment = ({ message }: ReadyMessage) => message.kind === 'payment';
/**
 * Deliveries are recorded together, at most this long after they were made: one statement for
 * many (the lock of each outlasts that by far). Measured: recording each turn's deliveries alone
 * took 2–3 statements per 8 deliveries, and the statements, not the POSTs, held the rate.
 */
const RECORD_EVERY_MS = 10;
/** How often the worker reads the database's clock again (a query; the lock margins are seconds). */
const CLOCK_SYNC_MS = 10_000;

/**
 * Delivers the outbox (outbox-messages.ts), on every instance: each worker claims due messages
 * with one conditional UPDATE that locks them until the attempt's timeout plus a margin, so two
 * instances never send the same attempt, and a message whose worker died is claimed again once
 * its lock expired (at-least-once, always with the same Idempotency-Key).
 *
 * It is off every request path: enqueueing is one insert plus a wake-up, and the deliveries run
 * here, OUTBOX_CONCURRENCY at a time, each bounded by OUTBOX_ATTEMPT_TIMEOUT_MS, so a slow or
 * hanging receiver holds one of this worker's slots and nothing else. Payment pushes are claimed
 * before webhook deliveries, and one receiver host gets every slot but one (at least one), so a
 * dead receiver cannot take the slot a buyer's push needs.
 *
 * A 2xx answer delivers the message; anything else (another status, a redirect, a timeout, a
 * network error) is retried after OUTBOX_BACKOFF_BASE_MS × 2^(attempts − 1), at most
 * OUTBOX_BACKOFF_MAX_MS, with jitter (the upper half of that pause at random, so receivers coming
 * back are not hit by every sender at once); after OUTBOX_MAX_ATTEMPTS attempts it is DEAD.
 */
export class OutboxWorker {
  readonly workerId = `outbox-${randomUUID()}`;
  private stopped = true;
  private inFlight = 0;
  /** Claimed, not started yet (at most CLAIM_AHEAD × OUTBOX_CONCURRENCY with those in flight). */
  private readonly ready = new ReadyQueue();
  /** Attempts in flight per receiver host (see `perHostCap`). */
  private readonly hostsInFlight = new Map<string, number>();
  private cutting = false; // set by `stop()` before it cuts the attempts still running: their outcome is not recorded
  private readonly attempts = new Set<Promise<void>>();
  private readonly writes = new Set<Promise<unknown>>();
  private pumping: Promise<void> | null = null;
  private pumpAgain = false;
  private pumpScheduled = false;
  private pollTimer: NodeJS.Timeout | null = null;
  private following: (() => void)[] = [];
  /** Successful deliveries not yet recorded, by status code: written together, one statement each. */
  private delivered = new Map<number, ClaimedMessage[]>();
  private flushScheduled = false;
  private readonly agent: ReturnType<typeof receiversAgent>;
  /**
   * The claim and the records of each delivery, straight on the driver (db/driver-sql.ts): through
   * Prisma's `$queryRaw` those two statements cost more CPU than the HTTP POST itself.
   */
  private readonly sql: DriverSql;
  /** On PostgreSQL claims leave nextAttemptAt alone (HOT updates) and pass over rows other claims hold (see claimDueMessages). */
  private readonly onPostgres: boolean;
  /** The recording write in progress: one at a time, so deliveries finished meanwhile share the next. */
  private flushing: Promise<unknown> | null = null;
  private readonly claimFailures: RepeatedFailure;
  /** The push receivers this process has a URL for: it claims no payment push for another (see sendableBy). */
  private readonly sendsTo: string[];
  /** Its attempts since start and the backlog, for the `outbox` component and /metrics (outbox-figures.ts). */
  readonly figures = new OutboxFigures({ now: () => this.clock.now() });

  constructor(
    db: Db,
    private readonly settings: OutboxSettings,
    /** PAYMENT_PUSH_SECRET: signs the payment pushes (kind payment). */
    private readonly paymentSecret: string | null,
    private readonly logger: Logger,
    /**
     * Called once a message's end is recorded (after its write committed): the payment pushes'
     * delivery goes into the buyer's history this way. Its failures are logged, never retried.
     */
    private readonly onSettled: (message: SettledMessage) => Promise<void> = async () => {},
    /** Where payment pushes go, by receiver, as this process is configured (none: it claims none of theirs). */
    private readonly pushUrls: PushDestinations = { wallet: null, frontend: null },
    /** Locks, due times and ages on the database's clock: on its own, one 45 s ahead re-sent messages being sent. */
    private readonly clock: DatabaseClock = databaseClockOf(db),
  ) {
    this.sendsTo = Object.entries(pushUrls).flatMap(([destination, url]) => (url ? [destination] : []));
    this.agent = receiversAgent(settings.attemptTimeoutMs);
    this.sql = driverSqlOf(db);
    this.onPostgres = providerOf(db) === 'postgresql';
    this.claimFailures = new RepeatedFailure(logger, 'outbox: claiming due messages', 'warn');
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.cutting = false;
    this.following = [
      onOutboundEnqueued(() => this.schedulePump(true)),
      // Its messages were deleted with it: those claimed ahead are not sent (one in flight is), its outage forgotten.
      onWebhookRemoved((id) => this.ready.remove(({ message }) => message.webhookId === id)),
      onWebhookRemoved((id) => this.figures.forgetWebhook(id)),
    ];
    this.schedulePump(false);
  }

  /**
   * Stops claiming, waits until `deadline` for the attempts in flight and records their outcome.
   * An attempt still running then keeps its lock and is retried (by any instance) when it expires.
   */
  async stop(deadline = Date.now() + this.settings.attemptTimeoutMs): Promise<void> {
    this.stopped = true;
    for (const stop of this.following.splice(0)) stop();
    if (this.pollTimer) clearTimeout(this.pollTimer);
    await this.pumping?.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    });
    const unstarted = this.ready.drain().map((ready) => ready.message.id);
    if (unstarted.length > 0) this.track(this.release(unstarted));
    await Promise.race([Promise.allSettled([...this.attempts]), timeout]);
    clearTimeout(timer);
    while (this.delivered.size > 0 || this.writes.size > 0) {
      this.flush();
      await Promise.allSettled([...this.writes]);
    }
    // Attempts still running past the deadline are cut: nothing of them is recorded (the database
    // may be closing), their locks expire and they are retried, with the same key.
    this.cutting = true;
    await this.agent.destroy().catch(() => {});
    // Cut attempts end at once now; awaited so none of them runs on after stop() returned.
    await Promise.allSettled([...this.attempts]);
  }

  /** Deliveries in flight now (for tests and the benchmark). */
  get busy(): number {
    return this.inFlight;
  }

  /** Looks for due messages in a later macrotask: one turn's ends and enqueues share a claim (`woken`: enqueued). */
  private schedulePump(woken: boolean): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pumping = this.pump(woken).finally(() => {
        this.pumping = null;
        if (this.pumpAgain) {
          this.pumpAgain = false;
          this.schedulePump(false);
        }
      });
    });
  }

  private async pump(woken: boolean): Promise<void> {
    let claimedAny = false;
    const { concurrency, maxAttempts } = this.settings;
    try {
      while (!this.stopped) {
        this.startReady();
        // Claim again once a quarter of the window is free (large claims, the next under way while three quarters
        // are to send). Full with a slot idle (what waits is for hosts at their cap: a hanging receiver's backlog):
        // payment pushes, for that slot, unless one waits already (the hanging host is the wallet's). A buyer's sign
        // request waited 3–7 s for that backlog's attempts to time out.
        const room = concurrency * CLAIM_AHEAD - this.ready.size - this.inFlight;
        const [full, idle] = [room < (concurrency * CLAIM_AHEAD) / 4, concurrency - this.inFlight];
        if (full && (idle === 0 || this.ready.some(isPayment))) break; // a finishing attempt pumps again
        await this.clock.syncEvery(CLOCK_SYNC_MS);
        const now = this.clock.date();
        const claimed = await claimDueMessages(
          this.sql,
          this.workerId,
          now,
          new Date(now.getTime() + claimLockMs(this.settings)),
          full ? idle : room,
          this.onPostgres,
          full ? (['payment'] as const) : OUTBOUND_KINDS,
          this.sendsTo,
        );
        if (claimed.length > 0) claimedAny = true;
        this.ready.push(await prepareAttempts(this.sql, claimed, this.paymentSecret, maxAttempts, this.pushUrls));
        this.startReady();
        if (full || claimed.length < room) break;
      }
      this.claimFailures.succeeded();
    } catch (error) {
      // The database is away: the next poll tries again.
      this.claimFailures.failed(error);
    }
    if (this.stopped) return;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    const wait = woken && !claimedAny ? RECHECK_AFTER_WAKE_MS : this.settings.pollIntervalMs;
    this.pollTimer = setTimeout(() => this.schedulePump(false), wait);
    this.pollTimer.unref();
  }

  /**
   * Attempts in flight to one receiver host at most: every slot but one (at least one), so a
   * hanging receiver always leaves a slot to the others. Not half the slots: with one receiver
   * (the common case: the wallet, or one webhook) half would halve the deliveries in flight.
   * Messages to a host at its cap wait in its queue in `ready` (their order kept) while the
   * others go out; one that waited too long for its lock is given back when its turn comes.
   */
  private get perHostCap(): number {
    return Math.max(1, this.settings.concurrency - 1);
  }

  /**
   * Starts what the free slots allow, in claim order among the hosts below their cap. A message
   * whose lock would not outlast its attempt is given back instead (see claimLockMs).
   */
  private startReady(): void {
    const latestStart = this.clock.now() + this.settings.attemptTimeoutMs + recordMarginMs(this.settings);
    const expiring: number[] = [];
    while (this.inFlight < this.settings.concurrency && !this.stopped) {
      const item = this.ready.take(this.hostHasRoom);
      if (item === null) break;
      if ((item.message.lockedUntil?.getTime() ?? 0) < latestStart) expiring.push(item.message.id);
      else this.begin(item);
    }
    if (expiring.length > 0) this.track(this.release(expiring));
  }

  private readonly hostHasRoom = (host: string): boolean => (this.hostsInFlight.get(host) ?? 0) < this.perHostCap;

  private release(ids: number[]): Promise<unknown> {
    return releaseClaims(this.sql, this.workerId, ids, this.clock.date()).catch((error) =>
      // Not given back: their locks expire and they are claimed again then.
      this.logger.warn({ err: error, count: ids.length }, 'outbox: could not release claims'),
    );
  }

  private begin(ready: ReadyMessage): void {
    const { message, host } = ready;
    this.inFlight++;
    this.hostsInFlight.set(host, (this.hostsInFlight.get(host) ?? 0) + 1);
    const attempt = this.attempt(ready)
      .catch((error) => this.logger.error({ err: error, messageId: message.id }, 'outbox: attempt failed to run'))
      .finally(() => {
        this.inFlight--;
        const left = (this.hostsInFlight.get(host) ?? 1) - 1;
        if (left > 0) this.hostsInFlight.set(host, left);
        else this.hostsInFlight.delete(host);
        this.attempts.delete(attempt);
        // The next claimed message goes out at once; claiming more waits for a later turn.
        this.startReady();
        this.schedulePump(false);
      });
    this.attempts.add(attempt);
  }

  private async attempt({ message, secret, refused }: ReadyMessage): Promise<void> {
    if (refused === WEBHOOK_REMOVED) {
      return this.track(deleteClaimed(this.sql, this.workerId, message.id).catch(() => {})); // else its lock expires
    }
    if (refused !== null || secret === null) {
      this.recordFailure(message, { ok: false, statusCode: null, error: refused ?? 'no key to sign it' }, true);
      return;
    }
    const outcome = await deliverOnce(message, secret, this.settings.attemptTimeoutMs, this.agent);
    if (this.cutting) return; // cut by stop(): the lock is kept and the message retried later
    if (outcome.ok) {
      this.recordDelivery(message, outcome.statusCode);
      this.logger.debug(
        { messageId: message.id, topic: message.topic, attempt: message.attempts, statusCode: outcome.statusCode },
        'outbox: delivered',
      );
    } else {
      this.recordFailure(message, outcome, false);
    }
  }

  private recordDelivery(message: ClaimedMessage, statusCode: number): void {
    if (this.figures.delivered(message)) {
      this.logger.info(receiverOf(message), 'outbox: the receiver answers again');
    }
    const messages = this.delivered.get(statusCode) ?? [];
    messages.push(message);
    this.delivered.set(statusCode, messages);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing) return;
    this.flushScheduled = true;
    setTimeout(() => this.flush(), RECORD_EVERY_MS);
  }

  /** Writes the deliveries recorded since the last flush, one statement per status code. */
  private flush(): void {
    this.flushScheduled = false;
    const batches = this.delivered;
    this.delivered = new Map();
    if (batches.size === 0) return;
    const now = this.clock.date();
    const writes = [...batches].map(([statusCode, messages]) =>
      markDelivered(
        this.sql,
        this.workerId,
        messages.map((message) => message.id),
        statusCode,
        now,
      ).then(
        (written) => {
          // Only those still locked by this worker were written; the others are another's now.
          const recorded = new Set(written);
          for (const message of messages) if (recorded.has(message.id)) this.settled(message, 'DELIVERED', null);
        },
        (error) =>
          // Not recorded: the lock expires and the message is sent again, with the same key.
          this.logger.warn({ err: error, count: messages.length }, 'outbox: could not record deliveries'),
      ),
    );
    const flushing = Promise.all(writes).finally(() => {
      this.flushing = null;
      if (this.delivered.size > 0) this.scheduleFlush();
    });
    this.flushing = flushing;
    this.track(flushing);
  }

  private recordFailure(message: ClaimedMessage, outcome: AttemptOutcome & { ok: false }, final: boolean): void {
    const now = this.clock.date();
    const failed = failedAttempt(this.settings, message, outcome, final, now);
    const dead = failed.status === 'DEAD';
    const jittered = failed.nextAttemptAt.getTime() - now.getTime();
    const log = { messageId: message.id, ...receiverOf(message), attempt: message.attempts, error: outcome.error };
    const first = this.figures.failed(message, dead, outcome.error);
    if (dead) this.logger.warn(log, 'outbox: message dead-lettered');
    // At info the first failure of a receiver's outage, the others (any message's) at debug: a line per outage.
    else this.logger[first ? 'info' : 'debug']({ ...log, retryInMs: jittered }, RETRY_LINE);
    this.track(
      markFailed(this.sql, this.workerId, failed, now).then(
        (written) => {
          if (dead && written > 0) this.settled({ ...message, attempts: failed.attempts }, 'DEAD', outcome.error);
        },
        (error) => this.logger.warn({ err: error, messageId: message.id }, 'outbox: could not record a failed attempt'),
      ),
    );
  }

  private settled(message: ClaimedMessage, status: SettledMessage['status'], lastError: string | null): void {
    const { id, kind, topic, notificationId, attempts } = message;
    this.track(
      this.onSettled({ id, kind, topic, notificationId, status, attempts, lastError }).catch((error) =>
        this.logger.warn({ err: error, messageId: id }, 'outbox: the end of a delivery could not be recorded'),
      ),
    );
  }

  private track(write: Promise<unknown>): void {
    this.writes.add(write);
    void write.finally(() => this.writes.delete(write));
  }
}
