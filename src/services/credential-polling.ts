import { type DeveloperService, DeveloperServiceError, type GrantResult } from '../adapters/developer-service/port.js';
import type { Db } from '../db/client.js';
import { POLL_STARTS_FROM, paymentAxesOf, type SyncState } from '../domain/payments.js';
import type { Logger } from '../platform/logger.js';
import { type Applies, checkPushes, type Patch, type Payment, type PaymentTransitions } from './payment-transitions.js';

/** The developer sync of a payment whose polling round is running. */
const POLLING: SyncState = 'in_progress';

/** How a polling round starts (CredentialPolling.start). */
export interface StartOptions {
  /** Over a completed sync too (the buyer paid, signed again, or restores). */
  force?: boolean;
  /** Attempts already made: the query that failed before the round (queryOnce). @default 0 */
  attemptsMade?: number;
  /** When the first attempt of the round is made. @default 0 */
  afterMs?: number;
  /** A further condition on the payment as the claim finds it (locked). */
  applies?: Applies;
}

export interface PollingOptions {
  attempts: number;
  intervalMs: number;
  /** The longest a credential query may take (DEVELOPER_SERVICE_TIMEOUT_MS; 0 for the simulated service). */
  callTimeoutMs: number;
}

/** What an attempt spends besides waiting and the query (its reads and writes), with room to spare. */
const ATTEMPT_MARGIN_MS = 2000;

/**
 * Asks the developer service for the purchase credential: once, when the wallet turned out to
 * hold a signature already, or in polling rounds (a number of attempts, an interval apart) once
 * the buyer paid. A round survives a restart: the row counts its attempts, and a round whose
 * poller died is resumed by whichever instance claims it first.
 */
export class CredentialPolling {
  /** Payment ids with a polling round running in this process (the database guards across instances). */
  private readonly pollers = new Map<number, NodeJS.Timeout | null>();
  private stopped = false;

  constructor(
    private readonly db: Db,
    private readonly developers: DeveloperService,
    private readonly transitions: PaymentTransitions,
    private readonly logger: Logger,
    private readonly options: PollingOptions,
  ) {}

  /**
   * A polling round whose payment row has not moved for this long lost its poller (the process
   * died): a live poller touches the row at every attempt, so between two touches lie at most the
   * interval, one credential query (its timeout) and the attempt's own reads and writes. Counted
   * from the interval alone (3 × interval, at least 2 s), a query of a slow developer outlasted
   * it, and another instance resumed the round while the query was still out: the payment was
   * polled twice at once and bought twice (two `purchased` pushes, two credential pushes).
   */
  private get staleAfterMs(): number {
    const { intervalMs, callTimeoutMs } = this.options;
    return Math.max(3 * intervalMs, intervalMs + callTimeoutMs + ATTEMPT_MARGIN_MS);
  }

  /** How often to look for polling rounds to resume. */
  get resumeIntervalMs(): number {
    return this.staleAfterMs;
  }

  /**
   * Resumes polling rounds whose poller died (a previous process, or another instance that is
   * gone), from the attempt they reached. Runs at start and periodically; a conditional update
   * claims each round, so two instances never resume the same one.
   */
  async resume(): Promise<void> {
    const staleBefore = new Date(Date.now() - this.staleAfterMs);
    const orphans = await this.db.payment.findMany({
      where: { developerSync: POLLING, vc: null, updatedAt: { lt: staleBefore } },
    });
    for (const payment of orphans) {
      if (this.pollers.has(payment.id)) continue;
      const { count } = await this.db.payment.updateMany({
        where: { id: payment.id, developerSync: POLLING, updatedAt: payment.updatedAt },
        data: { pollAttempts: payment.pollAttempts }, // touches updatedAt: this instance owns it now
      });
      if (count === 0) continue;
      this.logger.info({ paymentId: payment.id, attempts: payment.pollAttempts }, 'resuming credential polling');
      this.schedule(payment.id, 0);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.pollers.values()) if (timer) clearTimeout(timer);
    this.pollers.clear();
  }

  /**
   * Starts a polling round unless one is running: the claim is a conditional change of
   * `developerSync` to in_progress, decided on the locked row, so two requests (or instances)
   * never poll the same payment. A claim that moves the visible status to SYNCING (a signature
   * not known to be paid for: domain/payments.ts awaitsPurchaseCheck) tells the frontend so.
   * Resolves with the payment as the claim left it; the queries run in the background.
   */
  async start(payment: Payment, options: StartOptions = {}): Promise<Payment> {
    let claimed = false;
    const claims: Applies = (current) => {
      const from = options.force ? current.developerSync !== POLLING : POLL_STARTS_FROM.includes(current.developerSync);
      claimed = !current.vc && from && (options.applies?.(current) ?? true);
      return claimed;
    };
    const patch = { developerSync: POLLING, pollAttempts: options.attemptsMade ?? 0 };
    const started = await this.transitions.commit(payment, patch, checkPushes, claims);
    if (claimed) this.schedule(payment.id, options.afterMs ?? 0);
    return started;
  }

  /**
   * One credential query, right after the wallet confirmed it holds a signature. It claims
   * nothing. A grant is written as any grant is (PaymentTransitions.granted): the developer found
   * a signature this payment was given paid for, whatever the buyer did since (the wallet may
   * answer a sign request with a new one meanwhile). Any other answer is written only if nothing
   * was written to the payment since: a polling round started meanwhile (the buyer paid) answers
   * for itself, and a newer signature makes "no record" or "sign again" for this one moot.
   */
  async queryOnce(payment: Payment): Promise<Payment> {
    // Nothing written since the wallet's answer was (a round started and ended meanwhile, the
    // buyer paid or signed again): the answer and its push are about the payment as it is.
    const stillAsked = (current: Payment) => current.updatedAt.getTime() === payment.updatedAt.getTime();
    try {
      const result = await this.developers.activateAndGrant({
        developerName: payment.developerName ?? '',
        productId: payment.productId,
        jws: payment.jws ?? '',
      });
      if (result.outcome === 'granted') return this.transitions.granted(payment, result.vc);
      if (result.outcome === 'need_resign') return this.transitions.needResign(payment, stillAsked);
      return this.transitions.noRecord(payment, stillAsked);
    } catch (error) {
      if (!(error instanceof DeveloperServiceError)) throw error;
      // The reason (unreachable, a bad answer) is for the operator. The failure concludes
      // nothing: the buyer may have paid with this signature, so it is not one to pay with
      // (PAYMENT_REQUIRED) until the developer answers. This query was the first attempt of a
      // polling round, whose next one comes an interval later (SYNCING, NOT_BUY if they all fail).
      this.logger.warn({ paymentId: payment.id, err: error.message }, 'credential query failed');
      const retry = { force: true, attemptsMade: 1, afterMs: this.options.intervalMs, applies: stillAsked };
      return this.start(payment, retry);
    }
  }

  private schedule(paymentId: number, delayMs: number): void {
    if (this.stopped || (this.pollers.has(paymentId) && delayMs === 0 && this.pollers.get(paymentId) !== null)) return;
    const timer = setTimeout(() => {
      this.pollers.set(paymentId, null);
      void this.pollOnce(paymentId)
        .catch((error) => this.logger.error({ err: error, paymentId }, 'credential polling failed'))
        .finally(() => {
          if (this.pollers.get(paymentId) === null) this.pollers.delete(paymentId);
        });
    }, delayMs);
    timer.unref();
    this.pollers.set(paymentId, timer);
  }

  /** One attempt of a round: ends it on an answer that settles the purchase, or on the last attempt. */
  private async pollOnce(paymentId: number): Promise<void> {
    const row = await this.db.payment.findUnique({ where: { id: paymentId } });
    if (row?.developerSync !== POLLING) return;
    const payment = paymentAxesOf(row);
    if (payment.vc || !payment.jws) {
      await this.transitions.commit(payment, { developerSync: payment.vc ? 'completed' : 'failed' }, checkPushes);
      return;
    }
    const attempt = payment.pollAttempts + 1;
    const last = attempt >= this.options.attempts;
    let result: GrantResult | null = null;
    try {
      result = await this.developers.activateAndGrant({
        developerName: payment.developerName ?? '',
        productId: payment.productId,
        jws: payment.jws,
      });
    } catch (error) {
      this.logger.warn({ paymentId, attempt, err: (error as Error).message }, 'credential query failed');
    }
    if (result?.outcome === 'granted') {
      // A poller whose process stalled past the round's staleness (staleAfterMs) finds its round
      // resumed, and maybe granted, by another instance: granted writes only the first credential.
      await this.transitions.granted(payment, result.vc);
      return;
    }
    // A refusal or "no record" is about the signature asked with: a new one the buyer gave
    // meanwhile is not refused by it, and the next attempt asks about that one.
    const aboutIt: Applies = (current) => current.developerSync === POLLING && current.jws === payment.jws;
    let answered: Payment | null = null;
    if (result?.outcome === 'need_resign') answered = await this.transitions.needResign(payment, aboutIt);
    else if (last) {
      // Exhausted: "no record" answers mean the developer never saw the payment; errors mean we
      // could not ask (a signature not known to be paid for shows NOT_BUY then, and says so).
      const failed: Patch = { developerSync: 'failed', pollAttempts: attempt };
      answered =
        result?.outcome === 'no_record'
          ? await this.transitions.noRecord(payment, aboutIt)
          : await this.transitions.commit(payment, failed, checkPushes, aboutIt);
    } else await this.db.payment.update({ where: { id: paymentId }, data: { pollAttempts: attempt } });
    if (answered && answered.developerSync !== POLLING) return; // the round ended (here or elsewhere)
    this.schedule(paymentId, this.options.intervalMs);
  }
}
