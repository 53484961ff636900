import type { Db } from '../db/client.js';
import { DbNull, type PaymentRow, type Prisma } from '../db/models.js';
import { derivePaymentStatus } from '../domain/payment-status.js';
import type { ProductTerms } from '../domain/payment-terms.js';
import {
  asksToPayWith,
  grantRefusal,
  movesOutsideRules,
  type PaymentAxes,
  type PaymentAxis,
  paymentAxesOf,
} from '../domain/payments.js';
import type { ChangeFeed } from '../events/change-feed.js';
import type { Logger } from '../platform/logger.js';
import type { HistoryService } from './history-service.js';
import { enqueueOutbound, notifyOutbound, type OutboundMessage } from './outbox-messages.js';
import {
  credentialPush,
  fetchSignaturePush,
  frontendPush,
  outboundFor,
  type Push,
  type PushTargets,
  paymentRequiredPush,
  readTerms,
  signBodyOf,
  signRequestPush,
} from './payment-pushes.js';

/** A payment row with its five axes typed. */
export type Payment = Omit<PaymentRow, PaymentAxis> & PaymentAxes;

/**
 * Whether a change still applies to the payment as its commit finds it (locked), for a decision
 * taken on an earlier read (see PaymentTransitions.commit).
 */
export type Applies = (current: Payment) => boolean;

/** A change of a payment row; the axes take only their own values. */
export type Patch = Omit<Prisma.PaymentUpdateInput, PaymentAxis> & Partial<PaymentAxes>;

/** The pushes of a change, or how to tell them from the row as the commit found it and left it. */
export type Pushes = Push[] | ((before: Payment, after: Payment) => Push[]);

/** What the request that creates a payment asks the wallet (PaymentTransitions.create). */
export interface Opening {
  /** The signature is for a restore (see requestSignature). */
  forRestore: boolean;
  /** More of the first state, written with the sign request. */
  also: Patch;
}

/** A change as its transaction wrote it, to publish once committed. */
interface Written {
  /** The row as the transaction found it; null: created there. */
  before: Payment | null;
  updated: Payment;
  records: Awaited<ReturnType<HistoryService['record']>>;
  /** Outbox messages written. @default 0 */
  enqueued?: number;
}

/**
 * The frontend's push when a change moves the visible status to SYNCING (the developer is being
 * asked whether a signature was paid for) or NOT_BUY (it could not be: domain/payments.ts
 * awaitsPurchaseCheck). Told from the locked row: whether the status moves is known only there.
 */
export function checkPushes(before: Payment, after: Payment): Push[] {
  const status = derivePaymentStatus(after);
  if (status === derivePaymentStatus(before) || (status !== 'SYNCING' && status !== 'NOT_BUY')) return [];
  return [frontendPush(after, status === 'SYNCING' ? 'syncing' : 'not_buy')];
}

/** Whether the payment holds what a returned signature writes (a concurrent call wrote it, or this one). */
function holdsSignature(payment: Payment, patch: Patch): boolean {
  return (
    payment.signatureStatus === patch.signatureStatus &&
    payment.jws === patch.jws &&
    payment.larePassSync === patch.larePassSync &&
    (patch.txHash === undefined || payment.txHash === patch.txHash)
  );
}

/**
 * Writes the changes of payment states: each in one transaction with its pushes and, when the
 * visible status moves, a history record; then announced through the change feed. The named
 * transitions are the ones both the buyer's requests and the credential polling make.
 */
export class PaymentTransitions {
  constructor(
    private readonly db: Db,
    private readonly history: HistoryService,
    private readonly feed: ChangeFeed,
    private readonly logger: Logger,
    private readonly targets: PushTargets,
    /** The pushes' due time is on it: the outbox workers of every instance claim on the database's clock. */
    private readonly clock: { date(): Date },
  ) {}

  /**
   * Writes a change with its pushes and history in one transaction, then announces it. Each push
   * is a PaymentNotification row and, when its channel has a URL, an outbox message keyed by the
   * row (`payment:<id>:<uuid>`) that the outbox worker delivers: both exist exactly when the change does.
   *
   * Whether the visible status moved is decided against the row as it is inside the transaction,
   * not against `payment` (read earlier, perhaps before a concurrent request of the same buyer
   * committed the very same move: twenty concurrent Buy clicks recorded twenty milestones). The
   * row is locked first, so no other commit changes it between that read and the update: on
   * PostgreSQL by a no-op UPDATE (the Prisma API has no `SELECT … FOR UPDATE`; one SQL text for
   * both providers); SQLite runs one write transaction at a time anyway. With `applies`, the change
   * is made only when the locked row still calls for it (else nothing is written or pushed, and
   * the row is returned as it is): for a decision taken on a read that a concurrent request or a
   * polling round may have overtaken meanwhile.
   */
  async commit(payment: Payment, patch: Patch, pushes: Pushes = [], applies?: Applies): Promise<Payment> {
    const written = await this.db.$transaction(async (tx) => {
      await tx.$executeRaw`UPDATE "Payment" SET "pollAttempts" = "pollAttempts" WHERE "id" = ${payment.id}`;
      const locked = await tx.payment.findUnique({ where: { id: payment.id } });
      const current = locked ? paymentAxesOf(locked) : payment;
      if (applies && !applies(current)) return { skipped: true as const, updated: current };
      const pushesOf = (row: Payment) => (typeof pushes === 'function' ? pushes(current, row) : pushes);
      return { skipped: false as const, ...(await this.write(tx, payment.id, current, patch, pushesOf)) };
    });
    if (written.skipped) return written.updated;
    return this.published(written);
  }

  /**
   * Creates a purchase state; a concurrent request of the same buyer that created it first wins,
   * and its state is returned. With `opening`, the request creating it asks the wallet whether it
   * holds a signature, then to sign, in the transaction that creates it: the first state anyone
   * sees (paymentUpdated, history) is the one the request leaves, SIGNATURE_REQUIRED (or a
   * restore's NOTIFICATION_SENT), never a NOT_BUY committed a moment before (each step was a
   * transaction of its own). A concurrent request finds the wallet asked.
   */
  async create(
    data: Omit<Prisma.PaymentUncheckedCreateInput, PaymentAxis> & PaymentAxes,
    opening?: Opening,
  ): Promise<Payment> {
    const terms = opening ? await readTerms(this.db, { ...data, signBody: null }, 'current') : null;
    try {
      const written = await this.db.$transaction(async (tx) => {
        const created = paymentAxesOf(await tx.payment.create({ data }));
        if (!opening) return { before: null, updated: created, records: await this.recordMilestone(tx, null, created) };
        const { patch, pushes } = this.signRequest(created, terms, { resign: false, forRestore: opening.forRestore });
        const signBody = patch.signBody as Prisma.InputJsonObject;
        const asks = [fetchSignaturePush(created, signBody, this.targets), ...pushes];
        return this.write(tx, created.id, null, { ...opening.also, ...patch }, () => asks);
      });
      return this.published(written);
    } catch (error) {
      if ((error as { code?: string }).code !== 'P2002') throw error;
      const existing = await this.db.payment.findUnique({
        where: { userId_appId_productId: { userId: data.userId, appId: data.appId, productId: data.productId } },
      });
      // Another unique key of the transaction (a push's outbox message) failed: not a race.
      if (!existing) throw error;
      return paymentAxesOf(existing);
    }
  }

  /**
   * The update of a change with its pushes and history, in the transaction `tx` that found the row
   * as `before` (locked; null: created in it).
   */
  private async write(
    tx: Prisma.TransactionClient,
    id: number,
    before: Payment | null,
    patch: Patch,
    pushesOf: (row: Payment) => Push[],
  ): Promise<Written> {
    const row = paymentAxesOf(await tx.payment.update({ where: { id }, data: patch }));
    const messages: OutboundMessage[] = [];
    for (const push of pushesOf(row)) {
      // One row at a time: each outbox message names its row's id.
      const notification = await tx.paymentNotification.create({
        data: {
          paymentId: row.id,
          userId: row.userId,
          channel: push.channel,
          topic: push.topic,
          status: push.status ?? null,
          payload: push.recorded ?? push.body,
        },
      });
      const message = outboundFor(this.targets, push, notification.id);
      if (message) messages.push(message);
    }
    const enqueued = await enqueueOutbound(tx, messages, this.clock.date());
    const records = await this.recordMilestone(tx, before, row);
    return { before, updated: row, records, enqueued };
  }

  /** After a change committed: the outbox woken, the history and the payment announced. */
  private published({ before, updated, records, enqueued = 0 }: Written): Payment {
    // Woken inside the transaction, the outbox worker could not see the messages yet.
    if (enqueued) notifyOutbound();
    const moves = before ? movesOutsideRules(before, updated) : [];
    if (moves.length) this.logger.warn({ paymentId: updated.id, moves }, 'payment state moved outside its rules');
    this.feed.history(records);
    this.announce(updated);
    return updated;
  }

  /** Announces a change written without `commit` (a claim of the polling round). */
  announce(payment: Payment): void {
    this.feed.payment({
      paymentId: payment.id,
      userId: payment.userId,
      sourceId: payment.sourceId,
      appId: payment.appId,
    });
  }

  /**
   * The developer granted the credential for the signature `payment` held when it was asked:
   * bought, unless the payment as the commit finds it refuses the grant (grantRefusal), which is
   * logged with the reason. Whoever asked (a polling round, the one query about a held signature,
   * an instance that stalled with a query out) takes the same rule.
   */
  async granted(payment: Payment, vc: string): Promise<Payment> {
    let refusal: string | null = null;
    const written = await this.commit(
      payment,
      { vc, developerSync: 'completed', paymentStatus: 'developer_confirmed', frontendData: DbNull },
      [frontendPush(payment, 'purchased'), credentialPush(payment, vc)],
      (current) => {
        refusal = grantRefusal(current, payment);
        return refusal === null;
      },
    );
    if (refusal) this.logger.info({ paymentId: payment.id, reason: refusal }, 'credential granted, not written');
    return written;
  }

  /** The developer has no record of the payment: pay again if asked to pay already, else restore. */
  noRecord(payment: Payment, applies?: Applies): Promise<Payment> {
    const status = payment.paymentStatus === 'notification_sent' ? 'payment_retry_required' : 'signature_no_record';
    const patch: Patch = { developerSync: 'completed', signatureStatus: 'error_no_record' };
    return this.commit(payment, patch, [frontendPush(payment, status)], applies);
  }

  /** The developer refused the signature: the buyer must sign again. */
  needResign(payment: Payment, applies?: Applies): Promise<Payment> {
    const patch: Patch = { developerSync: 'completed', signatureStatus: 'error_need_resign' };
    return this.commit(payment, patch, [frontendPush(payment, 'signature_need_resign')], applies);
  }

  /**
   * Asks the wallet to sign, for a Buy or a restore (`forRestore`: the signature answering it is
   * then checked with the developer before anything else, see awaitsPurchaseCheck), dropping the
   * refused signature first when `resign`, with `also` in the same change. The sign body carries
   * the product's terms as the catalogue prices them now, and is kept on the payment.
   */
  async requestSignature(
    payment: Payment,
    how: { resign: boolean; forRestore: boolean },
    applies?: Applies,
    also: Patch = {},
  ): Promise<Payment> {
    const { patch, pushes } = this.signRequest(payment, await readTerms(this.db, payment, 'current'), how);
    return this.commit(payment, { ...also, ...patch }, pushes, applies);
  }

  /** The change and pushes of a sign request (requestSignature), with the product's `terms`. */
  private signRequest(
    payment: Payment,
    terms: ProductTerms | null,
    { resign, forRestore }: { resign: boolean; forRestore: boolean },
  ): { patch: Patch; pushes: Push[] } {
    const signBody = signBodyOf(payment, terms, true);
    return {
      patch: {
        signatureStatus: 'required',
        larePassSync: 'in_progress',
        signBody,
        signingForRestore: forRestore,
        ...(resign ? { jws: null } : {}),
      },
      pushes: [signRequestPush(payment, signBody, resign, this.targets), frontendPush(payment, 'signature_required')],
    };
  }

  /** Asks the wallet whether it already holds a signature for the product (no transaction: it asks for any). */
  async askWalletForSignature(payment: Payment, applies?: Applies): Promise<Payment> {
    const signBody = signBodyOf(payment, await readTerms(this.db, payment, 'current'), false);
    return this.commit(
      payment,
      { larePassSync: 'in_progress', signBody },
      [fetchSignaturePush(payment, signBody, this.targets)],
      applies,
    );
  }

  /**
   * Asks the frontend to pay, with what it needs to: the signature is one to pay with now, even one
   * a restore had the wallet sign (the developer found no payment for it).
   */
  async requestPayment(payment: Payment, patch: Patch = {}, applies?: Applies): Promise<Payment> {
    const terms = await readTerms(this.db, payment, 'signed');
    return this.commit(
      payment,
      { ...patch, paymentStatus: 'notification_sent', signingForRestore: false },
      [paymentRequiredPush(payment, terms)],
      applies,
    );
  }

  /**
   * The wallet returns a signature, which `patch` writes. When the buyer is to pay with it and was
   * not asked for it yet (asksToPayWith, on the locked row), they are asked, with what to pay
   * (requestPayment): the wallet may answer twice (the outbox delivers at least once) or several
   * answers cross, and only the first asks. Any other answer is only written: a restore's shows
   * SYNCING from here on (checkPushes tells the frontend).
   */
  async takeSignature(payment: Payment, patch: Patch): Promise<Payment> {
    let taken = payment;
    if (asksToPayWith(taken)) taken = await this.requestPayment(taken, patch, asksToPayWith);
    return holdsSignature(taken, patch) ? taken : this.commit(taken, patch, checkPushes);
  }

  /** Whether a sign request went to the buyer's wallet for this payment less than `ms` ago. */
  async askedToSignWithin(payment: Payment, ms: number): Promise<boolean> {
    const since = new Date(Date.now() - ms);
    const where = { paymentId: payment.id, topic: 'market_payment', createdAt: { gte: since } };
    return (await this.db.paymentNotification.findFirst({ where, select: { id: true } })) !== null;
  }

  /** Pushes the credential to the wallet again (only called with one: see resendCredential). */
  resendCredential(payment: Payment): Promise<Payment> {
    return this.commit(payment, {}, payment.vc ? [credentialPush(payment, payment.vc)] : []);
  }

  /** The frontend paid: it waits for the developer's confirmation. */
  paid(payment: Payment, txHash: string): Promise<Payment> {
    // Paid again after "no record": a signature the developer is to look for afresh.
    const patch: Patch = { paymentStatus: 'frontend_completed', signatureStatus: 'required_and_signed', txHash };
    // The same transaction reported again (a frontend retrying, the same report sent through two
    // instances at once) changes nothing: each pushed "waiting for the developer" to the frontend
    // again. Another hash is taken, the last one reported wins: a wallet that speeds a transaction
    // up replaces it with one of a new hash.
    const news: Applies = (current) => !(current.paymentStatus === 'frontend_completed' && current.txHash === txHash);
    return this.commit(payment, patch, [frontendPush(payment, 'waiting_developer_confirmation')], news);
  }

  /** A history record whenever the visible status changes (never with a secret). */
  private async recordMilestone(tx: Pick<Db, 'historyRecord'>, before: Payment | null, after: Payment) {
    const status = derivePaymentStatus(after);
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
}
