import { z } from 'zod';
import type { DeveloperService } from '../adapters/developer-service/port.js';
import type { Viewer } from '../auth/viewer.js';
import type { Db } from '../db/client.js';
import type { Prisma } from '../db/models.js';
import { InvalidStateError, UpstreamError, ValidationError } from '../domain/errors.js';
import { parseInput } from '../domain/parse-input.js';
import { derivePaymentStatus } from '../domain/payment-status.js';
import { productIdOf } from '../domain/payment-terms.js';
import {
  awaitsPaymentRequest,
  awaitsPurchaseCheck,
  developerLookupFailed,
  isPaying,
  isPurchased,
  mayPayWith,
  type PaymentAxes,
  paymentAxesOf,
  signatureBlocksWalletSync,
  takesWalletAnswer,
} from '../domain/payments.js';
import type { ChangeFeed } from '../events/change-feed.js';
import type { Logger } from '../platform/logger.js';
import type { CatalogService } from './catalog-service.js';
import { CredentialPolling, type PollingOptions } from './credential-polling.js';
import { developerOf, lookUpDeveloper } from './developer-lookup.js';
import type { HistoryService } from './history-service.js';
import { type PaymentDelivery, recordPaymentDelivery } from './payment-delivery.js';
import type { PushTargets } from './payment-pushes.js';
import {
  type Applies,
  checkPushes,
  type Opening,
  type Patch,
  type Payment,
  PaymentTransitions,
} from './payment-transitions.js';
import { appRef, notInCatalogue, paymentOfApp, paymentOfProduct } from './purchase-lookup.js';

/**
 * The purchase flow of paid apps: what each request of the buyer, their frontend and their
 * signing wallet does to the five axes of the buyer's payment state (src/domain/payments.ts).
 * Every change is written by `PaymentTransitions`, with its pushes and history, and announced
 * after it committed; the developer is asked for the credential by `CredentialPolling`.
 *
 * Departures from the original, on purpose: polling the developer for the credential starts
 * when the buyer has paid (or started paying), not right after signing (but for the signature a
 * restore asked for: the buyer says they paid already); and Buy on a state whose signature was
 * never evaluated asks for a signature at once.
 */

/**
 * The buyer's signature as the wallet gives it: a JWS in compact serialization (RFC 7515 §7.1),
 * three base64url segments without padding, joined by dots; the header and the signature are
 * never empty (the payload may be, when detached). It is stored and sent to the developer's
 * service as is, so anything else (a path, a line break) was stored and forwarded, to fail there.
 * Only its shape is checked: whether it is valid is the developer service's to say.
 */
export const MAX_JWS_LENGTH = 16_384;
const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$/;
const jws = z
  .string()
  .trim()
  .min(1, 'jws must not be empty')
  .max(MAX_JWS_LENGTH, `jws must be at most ${MAX_JWS_LENGTH} characters`)
  .regex(
    JWS_COMPACT,
    'jws must be a compact JWS: three base64url segments joined by dots, header and signature not empty',
  );
/**
 * The longest `frontendData` kept, as JSON. It is the frontend's own note while it pays (a
 * transaction in flight, a chosen chain), echoed in every paymentUpdated event and payment read,
 * so the generic input bounds (which let through ~1 MB of it) are far too loose.
 */
export const MAX_FRONTEND_DATA_LENGTH = 8_192;
const frontendInput = z.object({
  frontendData: z
    .unknown()
    .transform((data) => data ?? {})
    .refine(
      (data) => JSON.stringify(data).length <= MAX_FRONTEND_DATA_LENGTH,
      `frontendData must be at most ${MAX_FRONTEND_DATA_LENGTH} characters as JSON`,
    ),
});
const txHash = z
  .string()
  .trim()
  .regex(/^0x[0-9a-fA-F]{1,128}$/, 'txHash must be a 0x-prefixed hex transaction hash');

/**
 * Buy (or restore) clicked several times (a double click, two tabs) pushed the wallet one request per click.
 * Clicks handled at the same time each act only on the state they found (unchangedSince); clicks
 * handled one after another (SQLite's way) each find the request the one before sent, and Buy
 * sends it again only once it is REPEAT_SIGN_REQUEST_MS old (the wallet may have lost it).
 */
const REPEAT_SIGN_REQUEST_MS = 5000;

/** The signature and payment axes a click found (a new state's, when it found none). */
type Seen = Pick<PaymentAxes, 'signatureStatus' | 'paymentStatus'>;

function unchangedSince(seen: Seen): Applies {
  return (current) => current.signatureStatus === seen.signatureStatus && current.paymentStatus === seen.paymentStatus;
}

export class PurchaseService {
  private readonly transitions: PaymentTransitions;
  private readonly polling: CredentialPolling;

  constructor(
    private readonly db: Db,
    private readonly catalog: CatalogService,
    private readonly history: HistoryService,
    private readonly developers: DeveloperService,
    private readonly feed: ChangeFeed,
    logger: Logger,
    polling: PollingOptions,
    pushes: PushTargets,
    /** The database's clock (DatabaseClock): the outbox's due times are on it. */
    clock: { date(): Date },
  ) {
    this.transitions = new PaymentTransitions(db, history, feed, logger, pushes, clock);
    this.polling = new CredentialPolling(db, developers, this.transitions, logger, polling);
  }

  // ── mutations ────────────────────────────────────────────────────────────────────────────

  /** The buyer clicks Buy (the state is created first when there is none). */
  async purchase(viewer: Viewer, input: { sourceId: string; appId: string }): Promise<Payment> {
    const { sourceId, appId } = parseInput(appRef, input);
    // A new purchase only from a source the buyer is offered (a restore: see there).
    if (!(await this.catalog.offers(viewer, sourceId))) throw notInCatalogue(appId, sourceId);
    const state = await this.stateFor(viewer, { sourceId, appId, offered: true }, { forRestore: false, also: {} });
    // A click that found the state another one just created asks the wallet too, unless that one
    // asked already: else its sign request could commit first, and then nobody asked.
    let payment = (await this.askWalletOnce(state.payment, state.seen)).payment;
    if (isPurchased(payment)) return payment;
    const unchanged = unchangedSince(state.seen);
    payment = await this.transitions.commit(payment, { paymentNeed: 'required' });
    const sig = payment.signatureStatus;
    if (sig === 'error_no_record') {
      // After paying, the developer must find the payment first (restore); before, the signature
      // was never paid for: pay with it (the original did nothing here, for good).
      if (isPaying(payment.paymentStatus) || !payment.jws) return payment;
      return this.transitions.requestPayment(payment, { signatureStatus: 'required_and_signed' }, unchanged);
    }
    if (sig === 'required' && (await this.transitions.askedToSignWithin(payment, REPEAT_SIGN_REQUEST_MS))) {
      return payment;
    }
    if (sig === 'error_need_resign' || sig === 'required' || sig === 'not_evaluated') {
      const resign = sig === 'error_need_resign';
      return this.transitions.requestSignature(payment, { resign, forRestore: false }, unchanged);
    }
    if (sig === 'required_and_signed') {
      if (payment.paymentStatus === 'frontend_completed') return this.polling.start(payment);
      // Perhaps paid for already (the wallet held it; the developer could not say): ask again, not to pay.
      if (awaitsPurchaseCheck(payment)) return this.polling.start(payment, { force: true });
      if (awaitsPaymentRequest(payment.paymentStatus)) return this.transitions.requestPayment(payment, {}, unchanged);
    }
    return payment;
  }

  /** "Restore purchase" on a new device: ask the developer, or have the buyer sign first. */
  async restore(viewer: Viewer, input: { sourceId: string; appId: string }): Promise<Payment> {
    const { sourceId, appId } = parseInput(appRef, input);
    // As in the original, the buyer counts as asked to pay (see below).
    const opening: Opening = { forRestore: true, also: { paymentStatus: 'notification_sent' } };
    // From a source hidden from the buyer only a purchase they began there (see stateFor).
    const offered = await this.catalog.offers(viewer, sourceId);
    const { payment, seen } = await this.stateFor(viewer, { sourceId, appId, offered }, opening);
    if (isPurchased(payment)) return payment;
    const sig = payment.signatureStatus;
    if (sig === 'required_and_signed' && payment.jws) return this.polling.start(payment, { force: true });
    // Restores repeated (15 aliased in 8 requests at once sent the wallet 120 sign requests) ask
    // as Buy does: only on the state they found, and again only once the last request is old.
    const unchanged = unchangedSince(seen);
    if (sig === 'required' && (await this.transitions.askedToSignWithin(payment, REPEAT_SIGN_REQUEST_MS))) {
      return payment;
    }
    // The signature the wallet returns goes to the developer (forRestore, see submitSignature).
    if (sig === 'not_evaluated' || sig === 'required' || sig === 'required_but_pending') {
      // As in the original, the buyer counts as asked to pay: "no record" then reads "pay again".
      const patch: Patch = awaitsPaymentRequest(payment.paymentStatus) ? { paymentStatus: 'notification_sent' } : {};
      return this.transitions.requestSignature(payment, { resign: false, forRestore: true }, unchanged, patch);
    }
    if (sig === 'error_need_resign') {
      return this.transitions.requestSignature(payment, { resign: true, forRestore: true }, unchanged);
    }
    // No record: a transaction the chain had not confirmed yet, or one paid on another device,
    // may be found now.
    if (sig === 'error_no_record' && payment.jws) return this.polling.start(payment, { force: true });
    return payment;
  }

  /** The signing wallet returns the buyer's signature. */
  async submitSignature(
    viewer: Viewer,
    input: { productId: string; appId?: string | null; jws: string; txHash?: string | null },
  ): Promise<Payment> {
    const signature = parseInput(jws, input.jws, 'jws');
    // Optional (the sign request's `txHash?`): an empty one, as a client whose zero value is ""
    // sends it, means none, blank or not; a non-empty one must be a hash.
    const hash = input.txHash?.trim() ? parseInput(txHash, input.txHash, 'txHash') : null;
    let payment = await paymentOfProduct(this.db, viewer, input);
    if (isPurchased(payment)) throw new InvalidStateError(`${payment.appName} is already purchased`);
    const patch: Patch = { signatureStatus: 'required_and_signed', jws: signature, larePassSync: 'completed' };
    if (hash) patch.txHash = hash;
    // A Buy's signature asks the buyer to pay, once however often the wallet answers; a restore's
    // goes to the developer first, the buyer says they paid already (awaitsPurchaseCheck).
    payment = await this.transitions.takeSignature(payment, patch);
    // Only ask the developer once the buyer paid, or has started to (the original polled at once),
    // or about a restore's signature; a new signature is the buyer acting, so it asks again after
    // the developer answered the one before ("sign again" or "no record" after paying, or for a
    // restore: the original never asked again).
    if (isPaying(payment.paymentStatus) || hash || payment.signingForRestore) {
      return this.polling.start(payment, { force: true });
    }
    return payment;
  }

  /** The signing wallet answers whether it already holds a signature for the product. */
  async signatureCallback(
    viewer: Viewer,
    input: { productId: string; appId?: string | null; signed: boolean; jws?: string | null },
  ): Promise<Payment> {
    if (input.signed && !input.jws?.trim()) {
      throw new ValidationError('jws is required when signed is true', [
        { path: 'jws', message: 'required when signed' },
      ]);
    }
    const payment = await paymentOfProduct(this.db, viewer, input);
    const held = input.signed ? parseInput(jws, input.jws, 'jws') : null;
    // The wallet answers a push the outbox may have retried, so an answer can come late: it never
    // undoes a purchase (a failed credential query would have read as not bought), nor replaces
    // or drops a signature the buyer gave since, nor cuts a polling round short (takesWalletAnswer),
    // judged on the row as the commit finds it.
    const takes = (current: Payment) => !isPurchased(current) && takesWalletAnswer(current, held);
    if (!takes(payment)) return payment;
    const patch: Patch = held
      ? { larePassSync: 'completed', signatureStatus: 'required_and_signed', jws: held }
      : { larePassSync: 'completed', signatureStatus: 'required' };
    // A held signature is SYNCING until the developer answers for it (checkPushes says so).
    const answered = await this.transitions.commit(payment, patch, checkPushes, takes);
    return held && answered.jws === held && answered.developerSync !== 'in_progress'
      ? this.polling.queryOnce(answered)
      : answered;
  }

  /** The frontend is about to pay. */
  async startFrontendPayment(
    viewer: Viewer,
    input: { sourceId: string; appId: string; productId: string; frontendData?: unknown },
  ): Promise<Payment> {
    const { frontendData } = parseInput(frontendInput, { frontendData: input.frontendData });
    const payment = await paymentOfApp(this.db, viewer, input);
    this.assertSignedAndUnpaid(payment);
    return this.transitions.commit(payment, {
      paymentStatus: 'frontend_started',
      signatureStatus: 'required_and_signed', // paying again after "no record": it is news to the developer
      frontendData: frontendData as Prisma.InputJsonValue,
    });
  }

  /** The frontend reports the on-chain transaction: wait for the developer's confirmation. */
  async submitTransaction(
    viewer: Viewer,
    input: { sourceId: string; appId: string; productId: string; txHash: string },
  ): Promise<Payment> {
    const hash = parseInput(txHash, input.txHash, 'txHash');
    const payment = await paymentOfApp(this.db, viewer, input);
    this.assertSignedAndUnpaid(payment);
    return this.polling.start(await this.transitions.paid(payment, hash), { force: true });
  }

  /** Pushes the credential to the signing wallet again (e.g. it lost it). */
  async resendCredential(viewer: Viewer, input: { productId: string; appId?: string | null }): Promise<Payment> {
    const payment = await paymentOfProduct(this.db, viewer, input);
    if (!isPurchased(payment) || payment.paymentStatus !== 'developer_confirmed') {
      throw new InvalidStateError(`There is no confirmed credential for ${payment.appName} to send again`);
    }
    return this.transitions.resendCredential(payment);
  }

  /**
   * The outbox worker delivered a push, or gave up on it: a PAYMENT history record for the buyer
   * (see recordPaymentDelivery).
   */
  recordDelivery(delivery: PaymentDelivery): Promise<void> {
    return recordPaymentDelivery({ db: this.db, history: this.history, feed: this.feed }, delivery);
  }

  // ── credential polling ───────────────────────────────────────────────────────────────────

  /** Resumes polling rounds whose poller died (see CredentialPolling.resume). */
  resumePolling(): Promise<void> {
    return this.polling.resume();
  }

  /** How often to look for polling rounds to resume. */
  get resumeIntervalMs(): number {
    return this.polling.resumeIntervalMs;
  }

  stop(): void {
    this.polling.stop();
  }

  // ── reads ────────────────────────────────────────────────────────────────────────────────

  private assertSignedAndUnpaid(payment: Payment) {
    if (isPurchased(payment)) throw new InvalidStateError(`${payment.appName} is already purchased`);
    if (!mayPayWith(payment)) {
      throw new InvalidStateError(
        `The purchase of ${payment.appName} must be signed first (status ${derivePaymentStatus(payment)})`,
      );
    }
  }

  /**
   * The viewer's state for a paid app, created (after looking the developer up) when missing or
   * when an earlier lookup failed. A failed lookup is recorded on the state, then reported as
   * UPSTREAM. A state created with its developer found is created asking the wallet as `opening`
   * says (PaymentTransitions.create); otherwise the wallet is asked for an existing signature,
   * unless the state rules it out. Also what the click found (see unchangedSince).
   *
   * A source not `offered` to the viewer (an inactive remote, to a non-admin) does not exist for
   * them: only a payment they began there is found (a purchase made before the admin selected
   * another source stays theirs); any other app of it is not in its catalogue, paid, free or
   * missing alike, and nothing is created or pushed.
   */
  private async stateFor(
    viewer: Viewer,
    { sourceId, appId, offered }: { sourceId: string; appId: string; offered: boolean },
    opening: Opening,
  ): Promise<{ payment: Payment; seen: Seen }> {
    const app = await this.db.catalogApp.findUnique({ where: { sourceId_appId: { sourceId, appId } } });
    const productId = app ? productIdOf(app.price, app.appId) : '';
    const where = { userId_appId_productId: { userId: viewer.userId, appId, productId } };
    const row = app && (await this.db.payment.findUnique({ where }));
    if (!app || (!offered && row?.sourceId !== sourceId)) throw notInCatalogue(appId, sourceId);
    if (!app.paid) throw new InvalidStateError(`${app.name} is free: there is nothing to buy`);
    const existing = row && paymentAxesOf(row);
    if (existing && !developerLookupFailed(existing.paymentNeed)) return { payment: existing, seen: existing };

    const developerName = developerOf(app);
    const { developer, lookupFailure, ...need } = await lookUpDeveloper(this.developers, developerName);
    const data = {
      ...need,
      ...(developer ? { developer } : {}),
      larePassSync: 'not_started',
      signatureStatus: 'not_evaluated',
      paymentStatus: 'not_evaluated',
      developerName,
    } satisfies Patch;
    const payment = existing
      ? await this.transitions.commit(existing, data)
      : await this.transitions.create(
          { userId: viewer.userId, sourceId, appId, appName: app.name, productId, ...data },
          data.paymentNeed === 'required' ? opening : undefined,
        );
    if (lookupFailure) throw new UpstreamError(`The developer service could not be reached: ${lookupFailure}`);
    if (payment.paymentNeed === 'error_missing_developer') {
      throw new InvalidStateError(`${app.name} names no developer to buy it from`);
    }
    // What this click set (or found, losing the race to create it to another): a new state.
    return this.askWalletOnce(payment, { signatureStatus: data.signatureStatus, paymentStatus: data.paymentStatus });
  }

  /**
   * Asks the wallet whether it holds a signature, once per state: whichever click finds it not
   * asked yet (the guard decides between clicks at once); one that finds it asked asks nothing.
   */
  private async askWalletOnce(payment: Payment, seen: Seen): Promise<{ payment: Payment; seen: Seen }> {
    if (signatureBlocksWalletSync(payment.signatureStatus) || payment.larePassSync !== 'not_started') {
      return { payment, seen };
    }
    const asked = await this.transitions.askWalletForSignature(
      payment,
      (current) => current.larePassSync === 'not_started',
    );
    return { payment: asked, seen };
  }
}
