import { z } from 'zod';
import { type DeveloperService, DeveloperServiceError, type GrantResult } from '../adapters/developer-service/port.js';
import type { Viewer } from '../auth/viewer.js';
import type { Db } from '../db/client.js';
import { type CatalogAppRow, DbNull, type PaymentRow, type Prisma } from '../db/models.js';
import { InvalidStateError, NotFoundError, UpstreamError, ValidationError } from '../domain/errors.js';
import { parseInput } from '../domain/parse-input.js';
import { derivePaymentStatus, type PaymentStatus } from '../domain/payment-status.js';
import type { ChangeFeed, EventBus } from '../events/change-feed.js';
import type { Logger } from '../platform/logger.js';
import type { HistoryService } from './history-service.js';

/**
 * The purchase state machine of paid apps (market-domain §4.4, triggers T1–T10) over the five
 * axes of a payment row. Every change goes through `commit`: one transaction writes the row, the
 * pushes to the frontend and the signing wallet (§4.7, recorded, never dropped) and a history
 * record when the visible status moves; then `payment:updated` is published.
 *
 * Departures from the original, on purpose: polling the developer for the credential starts
 * when the buyer has paid (or started paying), not right after signing; and Buy on a state
 * whose signature was never evaluated asks for a signature at once.
 */

export interface PollingOptions {
  attempts: number;
  intervalMs: number;
}

interface Push {
  channel: 'frontend' | 'larepass';
  topic: 'payment_state_update' | 'market_payment' | 'fetch_payment_signature' | 'save_payment_vc';
  status?: string;
  payload: Prisma.InputJsonValue;
}

type Patch = Prisma.PaymentUpdateInput;

const EARLY_PAYMENT = ['not_evaluated', 'not_notified'];
const SIGNATURE_BLOCKS_SYNC = ['required', 'required_but_pending', 'error_need_resign', 'error_no_record'];

const appRef = z.object({ sourceId: z.string().trim().min(1).max(64), appId: z.string().trim().min(1).max(128) });
const productRef = z.object({ productId: z.string().trim().min(1, 'productId must not be empty').max(128) });
const jws = z.string().trim().min(1, 'jws must not be empty').max(16_384);
const txHash = z
  .string()
  .trim()
  .regex(/^0x[0-9a-fA-F]{1,128}$/, 'txHash must be a 0x-prefixed hex transaction hash');

/** productId of a paid app: price.paid.product_id → first product → the app id (§4.1). */
function productIdOf(app: CatalogAppRow): string {
  const price = (app.price ?? {}) as { paid?: { product_id?: string }; products?: { product_id?: string }[] };
  return price.paid?.product_id || price.products?.[0]?.product_id || app.appId;
}

function developerOf(app: CatalogAppRow): string | null {
  return ((app.price ?? {}) as { developer?: string }).developer || null;
}

export class PurchaseService {
  /** Payment ids with a polling round running in this process (the database guards across instances). */
  private readonly pollers = new Map<number, NodeJS.Timeout | null>();
  private stopped = false;

  constructor(
    private readonly db: Db,
    private readonly history: HistoryService,
    private readonly developers: DeveloperService,
    private readonly bus: EventBus,
    private readonly feed: ChangeFeed,
    private readonly logger: Logger,
    private readonly polling: PollingOptions,
  ) {}

  // ── mutations ────────────────────────────────────────────────────────────────────────────

  /** T5, the buyer clicks Buy (creating the state with T1 first). */
  async purchase(viewer: Viewer, input: { sourceId: string; appId: string }): Promise<PaymentRow> {
    const { sourceId, appId } = parseInput(appRef, input);
    let payment = await this.stateFor(viewer, sourceId, appId);
    if (payment.vc && payment.developerSync === 'completed') return payment; // already bought
    payment = await this.commit(payment, { paymentNeed: 'required' });
    const sig = payment.signatureStatus;
    if (sig === 'error_no_record') return payment; // the developer must find the payment first (restore)
    if (sig === 'error_need_resign' || sig === 'required' || sig === 'not_evaluated') {
      return this.requestSignature(payment, sig === 'error_need_resign');
    }
    if (sig === 'required_and_signed') {
      if (payment.paymentStatus === 'frontend_completed') return this.startPolling(payment);
      if (EARLY_PAYMENT.includes(payment.paymentStatus)) {
        return this.commit(payment, { paymentStatus: 'notification_sent' }, [this.paymentRequired(payment)]);
      }
    }
    return payment;
  }

  /** T10, "restore purchase" on a new device. */
  async restore(viewer: Viewer, input: { sourceId: string; appId: string }): Promise<PaymentRow> {
    const { sourceId, appId } = parseInput(appRef, input);
    const payment = await this.stateFor(viewer, sourceId, appId);
    if (payment.vc && payment.developerSync === 'completed') return payment;
    const sig = payment.signatureStatus;
    if (sig === 'required_and_signed' && payment.jws) return this.startPolling(payment, { force: true });
    if (sig === 'not_evaluated' || sig === 'required' || sig === 'required_but_pending') {
      // A restore goes straight from signing to asking the developer (see submitSignature).
      const patch: Patch = EARLY_PAYMENT.includes(payment.paymentStatus) ? { paymentStatus: 'notification_sent' } : {};
      return this.requestSignature(await this.commit(payment, patch), false);
    }
    if (sig === 'error_need_resign') return this.requestSignature(payment, true);
    return payment; // error_no_record: the status says so; nothing to push
  }

  /** T6, the signing wallet returns the buyer's signature. */
  async submitSignature(
    viewer: Viewer,
    input: { productId: string; jws: string; txHash?: string | null },
  ): Promise<PaymentRow> {
    const { productId } = parseInput(productRef, input);
    const signature = parseInput(jws, input.jws);
    const hash = input.txHash ? parseInput(txHash, input.txHash) : null;
    let payment = await this.byProduct(viewer, productId);
    if (payment.vc && payment.developerSync === 'completed') {
      throw new InvalidStateError(`${payment.appName} is already purchased`);
    }
    const pushes: Push[] = [];
    const patch: Patch = { signatureStatus: 'required_and_signed', jws: signature, larePassSync: 'completed' };
    if (hash) patch.txHash = hash;
    if (EARLY_PAYMENT.includes(payment.paymentStatus)) {
      patch.paymentStatus = 'notification_sent';
      pushes.push(this.paymentRequired(payment));
    }
    payment = await this.commit(payment, patch, pushes);
    // Only ask the developer once the buyer paid, or has started to (the original polled at once).
    if (['frontend_started', 'frontend_completed'].includes(payment.paymentStatus) || hash) {
      return this.startPolling(payment);
    }
    return payment;
  }

  /** T3, the signing wallet answers whether it already holds a signature for the product. */
  async signatureCallback(
    viewer: Viewer,
    input: { productId: string; signed: boolean; jws?: string | null },
  ): Promise<PaymentRow> {
    const { productId } = parseInput(productRef, input);
    if (input.signed && !input.jws?.trim()) {
      throw new ValidationError('jws is required when signed is true', [
        { path: 'jws', message: 'required when signed' },
      ]);
    }
    const payment = await this.byProduct(viewer, productId);
    if (!input.signed) return this.commit(payment, { larePassSync: 'completed', signatureStatus: 'required' });
    const signed = await this.commit(payment, {
      larePassSync: 'completed',
      signatureStatus: 'required_and_signed',
      jws: parseInput(jws, input.jws),
    });
    return this.queryOnce(signed); // T4
  }

  /** T7a, the frontend is about to pay. */
  async startFrontendPayment(
    viewer: Viewer,
    input: { sourceId: string; appId: string; productId: string; frontendData?: unknown },
  ): Promise<PaymentRow> {
    const payment = await this.existing(viewer, input);
    this.assertSignedAndUnpaid(payment);
    return this.commit(payment, {
      paymentStatus: 'frontend_started',
      frontendData: (input.frontendData ?? {}) as Prisma.InputJsonValue,
    });
  }

  /** T7b, the frontend reports the on-chain transaction: wait for the developer's confirmation. */
  async submitTransaction(
    viewer: Viewer,
    input: { sourceId: string; appId: string; productId: string; txHash: string },
  ): Promise<PaymentRow> {
    const hash = parseInput(txHash, input.txHash);
    const payment = await this.existing(viewer, input);
    this.assertSignedAndUnpaid(payment);
    const updated = await this.commit(payment, { paymentStatus: 'frontend_completed', txHash: hash }, [
      this.frontendPush(payment, 'waiting_developer_confirmation'),
    ]);
    return this.startPolling(updated, { force: true });
  }

  /** T11: push the credential to the signing wallet again (e.g. it lost it). */
  async resendCredential(viewer: Viewer, input: { productId: string }): Promise<PaymentRow> {
    const { productId } = parseInput(productRef, input);
    const payment = await this.byProduct(viewer, productId);
    if (!payment.vc || payment.developerSync !== 'completed' || payment.paymentStatus !== 'developer_confirmed') {
      throw new InvalidStateError(`There is no confirmed credential for ${payment.appName} to send again`);
    }
    return this.commit(payment, {}, [this.credentialPush(payment)]);
  }

  // ── polling (T8) ─────────────────────────────────────────────────────────────────────────

  /**
   * A polling round whose payment row has not moved for this long lost its poller (the process
   * died): a live poller touches the row at every attempt.
   */
  private get staleAfterMs(): number {
    return Math.max(3 * this.polling.intervalMs, 2000);
  }

  /**
   * Resumes polling rounds whose poller died (a previous process, or another instance that is
   * gone), from the attempt they reached. Runs at start and periodically; a conditional update
   * claims each round, so two instances never resume the same one.
   */
  async resumePolling(): Promise<void> {
    const staleBefore = new Date(Date.now() - this.staleAfterMs);
    const orphans = await this.db.payment.findMany({
      where: { developerSync: 'in_progress', vc: null, updatedAt: { lt: staleBefore } },
    });
    for (const payment of orphans) {
      if (this.pollers.has(payment.id)) continue;
      const { count } = await this.db.payment.updateMany({
        where: { id: payment.id, developerSync: 'in_progress', updatedAt: payment.updatedAt },
        data: { pollAttempts: payment.pollAttempts }, // touches updatedAt: this instance owns it now
      });
      if (count === 0) continue;
      this.logger.info({ paymentId: payment.id, attempts: payment.pollAttempts }, 'resuming credential polling');
      this.schedulePoll(payment.id, 0);
    }
  }

  /** How often to look for polling rounds to resume. */
  get resumeIntervalMs(): number {
    return this.staleAfterMs;
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.pollers.values()) if (timer) clearTimeout(timer);
    this.pollers.clear();
  }

  /**
   * Starts a polling round unless one is running: the claim is a conditional update of
   * `developerSync` to in_progress, so two requests (or instances) never poll the same payment.
   * Resolves with the payment as the claim left it; the queries run in the background.
   */
  private async startPolling(payment: PaymentRow, options: { force?: boolean } = {}): Promise<PaymentRow> {
    const { count } = await this.db.payment.updateMany({
      where: {
        id: payment.id,
        vc: null,
        developerSync: options.force ? { not: 'in_progress' } : { in: ['not_started', 'failed'] },
      },
      data: { developerSync: 'in_progress', pollAttempts: 0 },
    });
    const current = (await this.db.payment.findUnique({ where: { id: payment.id } })) as PaymentRow;
    if (count === 0) return current;
    await this.publish(current);
    this.schedulePoll(payment.id, 0);
    return current;
  }

  private schedulePoll(paymentId: number, delayMs: number): void {
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

  private async pollOnce(paymentId: number): Promise<void> {
    const payment = await this.db.payment.findUnique({ where: { id: paymentId } });
    if (payment?.developerSync !== 'in_progress') return;
    if (payment.vc || !payment.jws) {
      await this.commit(payment, { developerSync: payment.vc ? 'completed' : 'failed' });
      return;
    }
    const attempt = payment.pollAttempts + 1;
    const last = attempt >= this.polling.attempts;
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
    if (result?.outcome === 'granted') return void (await this.granted(payment, result.vc));
    if (result?.outcome === 'need_resign') return void (await this.needResign(payment));
    if (last) {
      // Exhausted: "no record" answers mean the developer never saw the payment; errors mean we
      // could not ask.
      if (result?.outcome === 'no_record') await this.noRecord(payment);
      else await this.commit(payment, { developerSync: 'failed', pollAttempts: attempt });
      return;
    }
    await this.db.payment.update({ where: { id: paymentId }, data: { pollAttempts: attempt } });
    this.schedulePoll(paymentId, this.polling.intervalMs);
  }

  /** T4: one credential query right after the wallet confirmed an existing signature. */
  private async queryOnce(payment: PaymentRow): Promise<PaymentRow> {
    try {
      const result = await this.developers.activateAndGrant({
        developerName: payment.developerName ?? '',
        productId: payment.productId,
        jws: payment.jws ?? '',
      });
      if (result.outcome === 'granted') return this.granted(payment, result.vc);
      if (result.outcome === 'need_resign') return this.needResign(payment);
      return this.noRecord(payment);
    } catch (error) {
      if (!(error instanceof DeveloperServiceError)) throw error;
      return this.commit(payment, { developerSync: 'failed' });
    }
  }

  /** T9: the credential arrived. */
  private granted(payment: PaymentRow, vc: string): Promise<PaymentRow> {
    return this.commit(
      payment,
      { vc, developerSync: 'completed', paymentStatus: 'developer_confirmed', frontendData: DbNull },
      [this.frontendPush(payment, 'purchased'), this.credentialPush(payment)],
    );
  }

  private noRecord(payment: PaymentRow): Promise<PaymentRow> {
    const status = payment.paymentStatus === 'notification_sent' ? 'payment_retry_required' : 'signature_no_record';
    return this.commit(payment, { developerSync: 'completed', signatureStatus: 'error_no_record' }, [
      this.frontendPush(payment, status),
    ]);
  }

  private needResign(payment: PaymentRow): Promise<PaymentRow> {
    return this.commit(payment, { developerSync: 'completed', signatureStatus: 'error_need_resign' }, [
      this.frontendPush(payment, 'signature_need_resign'),
    ]);
  }

  // ── building blocks ──────────────────────────────────────────────────────────────────────

  /** Asks the wallet to sign (T5), resetting an invalid signature first when `resign`. */
  private requestSignature(payment: PaymentRow, resign: boolean): Promise<PaymentRow> {
    const signBody = {
      product_id: payment.productId,
      application_verifiable_credential: {
        productId: payment.productId,
        ...(payment.txHash ? { txHash: payment.txHash } : {}),
      },
      product_credential_manifest: `manifest:${payment.developerName}:${payment.productId}`,
    };
    return this.commit(
      payment,
      {
        signatureStatus: 'required',
        larePassSync: 'in_progress',
        signBody,
        ...(resign ? { jws: null } : {}),
      },
      [
        { channel: 'larepass', topic: 'market_payment', payload: { sign_body: signBody, is_resign: resign } },
        this.frontendPush(payment, 'signature_required'),
      ],
    );
  }

  /** The credential for the wallet to keep; recorded without the credential itself. */
  private credentialPush(payment: PaymentRow): Push {
    return {
      channel: 'larepass',
      topic: 'save_payment_vc',
      payload: {
        product_id: payment.productId,
        app_id: payment.appId,
        app_name: payment.appName,
        developer_name: payment.developerName,
        tx_hash: payment.txHash,
        user_id: payment.userId,
        vc: '[redacted]',
      },
    };
  }

  private paymentRequired(payment: PaymentRow): Push {
    return {
      ...this.frontendPush(payment, 'payment_required'),
      payload: {
        app_id: payment.appId,
        app_name: payment.appName,
        source_id: payment.sourceId,
        status: 'payment_required',
        payment_data: {
          to: (payment.developer as { did?: string } | null)?.did ?? null,
          product: [{ product_id: payment.productId }],
        },
      },
    };
  }

  private frontendPush(payment: PaymentRow, status: string): Push {
    return {
      channel: 'frontend',
      topic: 'payment_state_update',
      status,
      payload: { app_id: payment.appId, app_name: payment.appName, source_id: payment.sourceId, status },
    };
  }

  private assertSignedAndUnpaid(payment: PaymentRow) {
    if (payment.vc && payment.developerSync === 'completed') {
      throw new InvalidStateError(`${payment.appName} is already purchased`);
    }
    if (payment.signatureStatus !== 'required_and_signed') {
      throw new InvalidStateError(
        `The purchase of ${payment.appName} must be signed first (status ${derivePaymentStatus(payment)})`,
      );
    }
  }

  /**
   * The viewer's state for a paid app, created by T1 (developer lookup) when missing or when an
   * earlier lookup failed. A failed lookup is recorded on the state, then reported as UPSTREAM.
   */
  private async stateFor(viewer: Viewer, sourceId: string, appId: string): Promise<PaymentRow> {
    const app = await this.db.catalogApp.findUnique({ where: { sourceId_appId: { sourceId, appId } } });
    if (!app) throw new NotFoundError(`App ${appId} is not in the catalogue of ${sourceId}`);
    if (!app.paid) throw new InvalidStateError(`${app.name} is free: there is nothing to buy`);
    const productId = productIdOf(app);
    const where = { userId_appId_productId: { userId: viewer.userId, appId, productId } };
    const existing = await this.db.payment.findUnique({ where });
    if (existing && !existing.paymentNeed.startsWith('error_')) return existing;

    const developerName = developerOf(app);
    let axes: Pick<PaymentRow, 'paymentNeed' | 'developerSync'> & { developer?: Prisma.InputJsonValue };
    let lookupFailure: string | null = null;
    try {
      const developer = developerName ? await this.developers.lookup(developerName) : null;
      axes = developer
        ? { paymentNeed: 'required', developerSync: 'not_started', developer: { ...developer } }
        : { paymentNeed: 'error_missing_developer', developerSync: 'failed' };
    } catch (error) {
      if (!(error instanceof DeveloperServiceError)) throw error;
      lookupFailure = error.message;
      axes = { paymentNeed: 'error_developer_fetch_failed', developerSync: 'failed' };
    }
    const data = {
      ...axes,
      larePassSync: 'not_started',
      signatureStatus: 'not_evaluated',
      paymentStatus: 'not_evaluated',
      developerName,
    };
    const payment = existing
      ? await this.commit(existing, data)
      : await this.created({ userId: viewer.userId, sourceId, appId, appName: app.name, productId, ...data });
    if (lookupFailure) throw new UpstreamError(`The developer service could not be reached: ${lookupFailure}`);
    if (payment.paymentNeed === 'error_missing_developer') {
      throw new InvalidStateError(`${app.name} names no developer to buy it from`);
    }
    return this.syncKick(payment);
  }

  /** T2: ask the wallet for an existing signature, unless the signature state rules it out. */
  private async syncKick(payment: PaymentRow): Promise<PaymentRow> {
    if (SIGNATURE_BLOCKS_SYNC.includes(payment.signatureStatus)) return payment;
    if (payment.larePassSync === 'not_started' || payment.larePassSync === 'in_progress') {
      return this.commit(payment, { larePassSync: 'in_progress' }, [
        { channel: 'larepass', topic: 'fetch_payment_signature', payload: { product_id: payment.productId } },
      ]);
    }
    return payment;
  }

  private async created(data: Prisma.PaymentUncheckedCreateInput): Promise<PaymentRow> {
    try {
      const payment = await this.db.payment.create({ data });
      this.feed.history(await this.recordMilestone(this.db, null, payment));
      await this.publish(payment);
      return payment;
    } catch (error) {
      if ((error as { code?: string }).code !== 'P2002') throw error;
      // Created concurrently by the same buyer's other request: use that one.
      return (await this.db.payment.findUnique({
        where: { userId_appId_productId: { userId: data.userId, appId: data.appId, productId: data.productId } },
      })) as PaymentRow;
    }
  }

  private async byProduct(viewer: Viewer, productId: string): Promise<PaymentRow> {
    const payment = await this.db.payment.findFirst({
      where: { userId: viewer.userId, productId },
      orderBy: { id: 'desc' },
    });
    if (!payment) throw new NotFoundError(`You have no purchase of product ${productId}`);
    return payment;
  }

  private async existing(viewer: Viewer, input: { sourceId: string; appId: string; productId: string }) {
    const { sourceId, appId } = parseInput(appRef, input);
    const { productId } = parseInput(productRef, input);
    const payment = await this.db.payment.findUnique({
      where: { userId_appId_productId: { userId: viewer.userId, appId, productId } },
    });
    if (!payment || payment.sourceId !== sourceId) {
      throw new NotFoundError(
        `You have no purchase of ${appId} (product ${productId}) in ${sourceId}; call purchaseApp first`,
      );
    }
    return payment;
  }

  /**
   * Writes a change with its pushes and history in one transaction, then publishes it.
   *
   * Whether the visible status moved is decided against the row as it is inside the transaction,
   * not against `payment` (read earlier, perhaps before a concurrent request of the same buyer
   * committed the very same move: twenty concurrent Buy clicks recorded twenty milestones). The
   * row is locked first, so no other commit changes it between that read and the update: on
   * PostgreSQL by a no-op UPDATE (the Prisma API has no `SELECT … FOR UPDATE`; one SQL text for
   * both providers); SQLite runs one write transaction at a time anyway.
   */
  private async commit(payment: PaymentRow, patch: Patch, pushes: Push[] = []): Promise<PaymentRow> {
    const { updated, records } = await this.db.$transaction(async (tx) => {
      await tx.$executeRaw`UPDATE "Payment" SET "pollAttempts" = "pollAttempts" WHERE "id" = ${payment.id}`;
      const before = (await tx.payment.findUnique({ where: { id: payment.id } })) ?? payment;
      const row = await tx.payment.update({ where: { id: payment.id }, data: patch });
      if (pushes.length) {
        await tx.paymentNotification.createMany({
          data: pushes.map((push) => ({
            paymentId: row.id,
            userId: row.userId,
            channel: push.channel,
            topic: push.topic,
            status: push.status ?? null,
            payload: push.payload,
          })),
        });
      }
      return { updated: row, records: await this.recordMilestone(tx, before, row) };
    });
    this.feed.history(records);
    await this.publish(updated);
    return updated;
  }

  /** A history record whenever the visible status changes (never with a secret). */
  private async recordMilestone(tx: Pick<Db, 'historyRecord'>, before: PaymentRow | null, after: PaymentRow) {
    const status: PaymentStatus = derivePaymentStatus(after);
    if (before && derivePaymentStatus(before) === status) return [];
    return this.history.record(
      [
        {
          type: 'PAYMENT',
          message: `payment of ${after.appName}: ${status.toLowerCase().replaceAll('_', ' ')}`,
          app: after.appName,
          userId: after.userId,
          time: new Date(),
          extended: { paymentId: after.id, productId: after.productId, status },
        },
      ],
      tx,
    );
  }

  private async publish(payment: PaymentRow) {
    this.bus.publish('payment:updated', {
      paymentId: payment.id,
      userId: payment.userId,
      sourceId: payment.sourceId,
      appId: payment.appId,
    });
  }
}
