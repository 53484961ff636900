/**
 * The purchase state of a paid app: five independent axes, the values each can take, and which
 * value each may move to. A payment row stores every axis as a string column; `paymentAxesOf`
 * reads them as these types.
 */

/** Whether the buyer has to pay: yes once the developer is known, or why the developer is not. */
export const PAYMENT_NEEDS = [
  'not_required',
  'required',
  'error_missing_developer',
  'error_developer_fetch_failed',
] as const;
export type PaymentNeed = (typeof PAYMENT_NEEDS)[number];

/**
 * Where a sync with an outside party stands: the developer service (`developerSync`, asked for
 * the purchase credential) or the signing wallet, LarePass (`larePassSync`, asked for a signature).
 */
export const SYNC_STATES = ['not_started', 'in_progress', 'completed', 'failed'] as const;
export type SyncState = (typeof SYNC_STATES)[number];

/** Where the buyer's signature of the purchase stands. */
export const SIGNATURE_STATUSES = [
  'not_evaluated',
  'not_required',
  'required',
  'required_and_signed',
  'required_but_pending',
  'error_no_record',
  'error_need_resign',
] as const;
export type SignatureStatus = (typeof SIGNATURE_STATUSES)[number];

/** How far the buyer's payment went (the `paymentStatus` column, not the status a frontend shows). */
export const PAYMENT_PROGRESS = [
  'not_evaluated',
  'not_notified',
  'notification_sent',
  'frontend_started',
  'frontend_completed',
  'developer_confirmed',
] as const;
export type PaymentProgress = (typeof PAYMENT_PROGRESS)[number];

/** The five axes of a purchase state, named as the payment row's columns. */
export interface PaymentAxes {
  paymentNeed: PaymentNeed;
  developerSync: SyncState;
  larePassSync: SyncState;
  signatureStatus: SignatureStatus;
  paymentStatus: PaymentProgress;
}
export type PaymentAxis = keyof PaymentAxes;

/** The values of each axis. */
export const PAYMENT_AXES: { readonly [Axis in PaymentAxis]: readonly PaymentAxes[Axis][] } = {
  paymentNeed: PAYMENT_NEEDS,
  developerSync: SYNC_STATES,
  larePassSync: SYNC_STATES,
  signatureStatus: SIGNATURE_STATUSES,
  paymentStatus: PAYMENT_PROGRESS,
};

type Moves<T extends string> = { readonly [From in T]: readonly T[] };

/**
 * Which value each axis may move to from each one (staying put is always allowed). Values never
 * written (`not_required` for need and signature, `required_but_pending`, `not_notified`, a failed
 * wallet sync) still list where a row holding one would go.
 */
export const PAYMENT_MOVES: { readonly [Axis in PaymentAxis]: Moves<PaymentAxes[Axis]> } = {
  /**
   * A known developer makes payment `required`, and that is final. A failed developer lookup is
   * kept on the state and repeated at the buyer's next request, which may fail the other way.
   */
  paymentNeed: {
    not_required: ['required'],
    required: [],
    error_missing_developer: ['required', 'error_developer_fetch_failed'],
    error_developer_fetch_failed: ['required', 'error_missing_developer'],
  },
  /**
   * A polling round claims the sync (`in_progress`, one round at a time) from any other value and
   * ends `completed` (the developer answered) or `failed` (exhausted, or unreachable). A single
   * query, when the wallet already held a signature, ends it the same ways from any value. It is
   * `not_started` again only when a failed developer lookup is repeated and succeeds.
   */
  developerSync: {
    not_started: ['in_progress', 'completed', 'failed'],
    in_progress: ['completed', 'failed'],
    completed: ['in_progress', 'failed'],
    failed: ['not_started', 'in_progress', 'completed'],
  },
  /**
   * The wallet is asked (`in_progress`) for an existing signature or to sign; its answer completes
   * the sync. A new sign request (the buyer clicks Buy, or restores) asks it again.
   */
  larePassSync: {
    not_started: ['in_progress', 'completed'],
    in_progress: ['completed'],
    completed: ['in_progress'],
    failed: ['in_progress', 'completed'],
  },
  /**
   * The wallet's answer or a sign request moves any signature to `required` (none yet, or the old
   * one dropped) or `required_and_signed`. Only the developer's answer to a signature moves it to
   * `error_no_record` (no payment seen) or `error_need_resign` (the signature is refused); that
   * answer may arrive after the buyer was asked to sign again, so it applies over `required` too.
   */
  signatureStatus: {
    not_evaluated: ['required', 'required_and_signed'],
    not_required: ['required', 'required_and_signed'],
    required: ['required_and_signed', 'error_no_record', 'error_need_resign'],
    required_and_signed: ['required', 'error_no_record', 'error_need_resign'],
    required_but_pending: ['required', 'required_and_signed'],
    error_no_record: ['required', 'required_and_signed', 'error_need_resign'],
    error_need_resign: ['required', 'required_and_signed', 'error_no_record'],
  },
  /**
   * The buyer is asked to pay (`notification_sent`) once, when signed (a restore counts them asked
   * before signing, as the original did, yet its signature goes to the developer first: see
   * awaitsPurchaseCheck; a Buy's signature after that is still sent what to pay: asksToPayWith).
   * The frontend then reports that it started paying and the transaction it sent; the developer's
   * credential confirms the payment from any of these, and a confirmed payment is final.
   */
  paymentStatus: {
    not_evaluated: ['notification_sent', 'frontend_started', 'frontend_completed', 'developer_confirmed'],
    not_notified: ['notification_sent', 'frontend_started', 'frontend_completed', 'developer_confirmed'],
    notification_sent: ['frontend_started', 'frontend_completed', 'developer_confirmed'],
    frontend_started: ['frontend_completed', 'developer_confirmed'],
    frontend_completed: ['frontend_started', 'developer_confirmed'],
    developer_confirmed: [],
  },
};

/** Whether an axis may move from `from` to `to`. */
export function canAxisMoveTo<Axis extends PaymentAxis>(
  axis: Axis,
  from: PaymentAxes[Axis],
  to: PaymentAxes[Axis],
): boolean {
  return from === to || (PAYMENT_MOVES[axis][from] as readonly string[]).includes(to);
}

/** The moves from `before` to `after` that the rules above do not allow, as `axis: from → to`. */
export function movesOutsideRules(before: PaymentAxes, after: PaymentAxes): string[] {
  return (Object.keys(PAYMENT_AXES) as PaymentAxis[])
    .filter((axis) => !canAxisMoveTo(axis, before[axis], after[axis]))
    .map((axis) => `${axis}: ${before[axis]} → ${after[axis]}`);
}

/**
 * A row with its five axis columns read as the domain types, for the purchase flow to act on. A
 * value outside its axis (only a hand-edited row can hold one) is refused rather than acted on.
 */
export function paymentAxesOf<Row extends { readonly [Axis in PaymentAxis]: string }>(
  row: Row,
): Omit<Row, PaymentAxis> & PaymentAxes {
  for (const axis of Object.keys(PAYMENT_AXES) as PaymentAxis[]) {
    if (!(PAYMENT_AXES[axis] as readonly string[]).includes(row[axis])) {
      throw new Error(`unknown ${axis} ${row[axis]}`);
    }
  }
  return row as Omit<Row, PaymentAxis> & PaymentAxes;
}

// ── rules the purchase flow decides by ─────────────────────────────────────────────────────────

/** Bought: the developer's credential is held and the sync that fetched it completed. */
export function isPurchased(p: { vc?: string | null; developerSync: string }): boolean {
  return Boolean(p.vc) && p.developerSync === 'completed';
}

/** The developer could not be looked up when the state was created: it is looked up again. */
export function developerLookupFailed(need: PaymentNeed): boolean {
  return need === 'error_missing_developer' || need === 'error_developer_fetch_failed';
}

/** The buyer has not been asked to pay yet: that request goes out once the purchase is signed. */
export function awaitsPaymentRequest(progress: PaymentProgress): boolean {
  return progress === 'not_evaluated' || progress === 'not_notified';
}

/**
 * Whether the signature the wallet returns (submitSignature) is one to ask the buyer to pay with,
 * and they were not asked for it yet: it answers a Buy's sign request (a restore's goes to the
 * developer first: awaitsPurchaseCheck), before paying, and either the buyer was never asked to
 * pay, or they were (`notification_sent`) while the sign request is still open. A restore counts
 * the buyer asked to pay before they hold anything to pay with, as the original did, and a refused
 * signature is replaced by a new one: either way the buyer was never sent what to pay for the
 * signature the Buy asked for. Told from the row as the commit finds it (locked): of several
 * answers (a retried push, answers crossing), only the first finds the request open.
 */
export function asksToPayWith(p: {
  signatureStatus: SignatureStatus;
  paymentStatus: PaymentProgress;
  signingForRestore: boolean;
}): boolean {
  if (p.signingForRestore) return false;
  if (awaitsPaymentRequest(p.paymentStatus)) return true;
  const open = p.signatureStatus === 'required' || p.signatureStatus === 'required_but_pending';
  return p.paymentStatus === 'notification_sent' && open;
}

/** The buyer paid, or started to: the developer can be asked for the credential. */
export function isPaying(progress: PaymentProgress): boolean {
  return progress === 'frontend_started' || progress === 'frontend_completed';
}

/**
 * Nobody knows yet whether the signature held was paid for: the wallet held it already
 * (signatureCallback; the buyer was never asked to pay with it), or signed it for a restore
 * (`signingForRestore`: the buyer says they bought before), or the developer is being asked
 * about it (a polling round before paying: a restore, a retried query), or could not be (the
 * round gave up on errors). Until the developer answers, the buyer is not asked to pay: they may
 * have paid with it already (on another device), and paying again is paying twice. SYNCING while
 * the answer may come, NOT_BUY once the round gave up (payment-status.ts); Buy or a restore asks
 * the developer again. Asking the buyer to pay (requestPayment) ends a restore's mark.
 */
export function awaitsPurchaseCheck(p: {
  signatureStatus: string;
  paymentStatus: string;
  developerSync: string;
  signingForRestore: boolean;
}): boolean {
  if (p.signatureStatus !== 'required_and_signed') return false;
  if (p.paymentStatus === 'frontend_started' || p.paymentStatus === 'frontend_completed') return false;
  return (
    p.signingForRestore ||
    p.developerSync === 'in_progress' ||
    p.developerSync === 'failed' ||
    p.paymentStatus === 'not_evaluated' ||
    p.paymentStatus === 'not_notified'
  );
}

/**
 * The buyer may pay with the signature held: a signed purchase, or one the developer found no
 * payment for before the buyer paid (`error_no_record` with its signature: "pay again",
 * PAYMENT_RETRY_REQUIRED, or SIGNATURE_NO_RECORD for a signature never paid for). Not after paying:
 * the developer must find that payment first (restorePurchase), or the buyer would pay twice.
 */
export function mayPayWith(p: {
  signatureStatus: SignatureStatus;
  paymentStatus: PaymentProgress;
  jws?: string | null;
}): boolean {
  if (p.signatureStatus === 'required_and_signed') return true;
  return p.signatureStatus === 'error_no_record' && Boolean(p.jws) && !isPaying(p.paymentStatus);
}

/**
 * Whether the wallet's answer to "do you hold a signature?" (fetch_payment_signature) is still
 * news. The outbox delivers at least once, so the answer can come late: not once the buyer signed
 * since (that signature is newer), nor while the developer is being polled with a signature (the
 * round answers), nor when it repeats the signature the developer already answered for.
 *
 * Nor once the buyer paid (or started to): the wallet is only asked that question before paying,
 * so any answer then is late. The signature paid with is the one the developer must find, whatever
 * it answered ("no record": restorePurchase asks again with it); after "sign again" the new
 * signature comes with the answer to the sign request Buy sends (submitSignature), never with this
 * one. Taken, a late answer put the old signature in its place, or dropped it for a new sign
 * request, and a restore asked the developer about a signature never paid with.
 */
export function takesWalletAnswer(
  p: {
    signatureStatus: SignatureStatus;
    developerSync: SyncState;
    paymentStatus: PaymentProgress;
    jws?: string | null;
  },
  jws: string | null,
): boolean {
  if (p.signatureStatus === 'required_and_signed' || p.developerSync === 'in_progress') return false;
  if (isPaying(p.paymentStatus)) return false;
  const answered = p.signatureStatus === 'error_no_record' || p.signatureStatus === 'error_need_resign';
  return !(answered && jws !== null && jws === p.jws);
}

/**
 * Why a credential the developer granted is not written to the payment as its commit finds it
 * (locked), or null when it is. The grant answers a query about a signature this payment was
 * given (the wallet held it, or the buyer signed it), so it proves the purchase whatever was
 * written since: a newer signature, a round that ended in "no record" or "sign again", the buyer
 * asked to pay or paying. Not written only to a payment that holds a credential already (bought:
 * a second grant would push both again) or whose state was created again for another developer
 * since (a failed lookup repeated: a purchase from someone else).
 */
export function grantRefusal(
  current: { vc?: string | null; developerName: string | null },
  asked: { developerName: string | null },
): string | null {
  if (current.vc) return 'the payment holds a credential already';
  if (current.developerName !== asked.developerName) return 'the purchase is now from another developer';
  return null;
}

/**
 * Asking the wallet for an existing signature is pointless once a signature was asked for, or
 * once the developer answered the one there was.
 */
export function signatureBlocksWalletSync(signature: SignatureStatus): boolean {
  return (
    signature === 'required' ||
    signature === 'required_but_pending' ||
    signature === 'error_need_resign' ||
    signature === 'error_no_record'
  );
}

/**
 * The developer sync values a polling round may start from: never over a running round, and over
 * a completed one only when the buyer acted (paid, signed again, or restores), which forces a new round.
 */
export const POLL_STARTS_FROM: readonly SyncState[] = ['not_started', 'failed'];
