import { awaitsPurchaseCheck, isPurchased } from './payments.js';

/**
 * The payment status a frontend shows, derived from the five axes by the first rule that matches.
 * Every read path uses this one function.
 */

export const PAYMENT_STATUSES = [
  'FREE',
  'NOT_BUY',
  'NOT_EVALUATED',
  'SYNCING',
  'SIGNATURE_REQUIRED',
  'SIGNATURE_NO_RECORD',
  'SIGNATURE_NEED_RESIGN',
  'PAYMENT_REQUIRED',
  'PAYMENT_RETRY_REQUIRED',
  'NOTIFICATION_SENT',
  'PAYMENT_FRONTEND_STARTED',
  'WAITING_DEVELOPER_CONFIRMATION',
  'PURCHASED',
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

/**
 * What the status is derived from: columns of a payment row as stored. A value outside its axis
 * (a hand-edited row) matches no rule below and falls through, rather than failing the whole read.
 */
export interface PaymentStatusInput {
  paymentNeed: string;
  developerSync: string;
  signatureStatus: string;
  paymentStatus: string;
  /** The wallet's latest sign request is a restore's (see awaitsPurchaseCheck). */
  signingForRestore: boolean;
  productId: string;
  jws?: string | null;
  vc?: string | null;
}

export function derivePaymentStatus(p: PaymentStatusInput): PaymentStatus {
  if (p.paymentNeed === 'not_required') return 'FREE';
  const sig = p.signatureStatus;
  if (isPurchased(p)) return 'PURCHASED';
  if (p.paymentStatus === 'frontend_started' || p.paymentStatus === 'frontend_completed') {
    // After paying, the developer's verdict on the signature (and the new signature it asks for)
    // shows over the payment's progress, as the frontend's push says: the original showed
    // WAITING_DEVELOPER_CONFIRMATION for good, with nothing left to wait for.
    if (sig === 'error_need_resign') return 'SIGNATURE_NEED_RESIGN';
    if (sig === 'error_no_record') return 'SIGNATURE_NO_RECORD';
    if (sig === 'required' || sig === 'required_but_pending') return 'SIGNATURE_REQUIRED';
  }
  if (p.paymentStatus === 'frontend_completed') return 'WAITING_DEVELOPER_CONFIRMATION';
  if (p.paymentStatus === 'frontend_started') return 'PAYMENT_FRONTEND_STARTED';
  // Before that (rule 5 of the original said PAYMENT_REQUIRED): a signature not known to be
  // unpaid is never one to pay with; the developer is being asked, or could not be.
  if (awaitsPurchaseCheck(p)) return p.developerSync === 'failed' ? 'NOT_BUY' : 'SYNCING';
  if (p.paymentStatus === 'notification_sent') {
    // Asked to pay: the signature decides whether paying can go ahead.
    if (sig === 'required_and_signed') return 'PAYMENT_REQUIRED';
    if (p.jws && sig === 'error_need_resign') return 'SIGNATURE_NEED_RESIGN';
    if (p.jws && sig === 'error_no_record') return 'PAYMENT_RETRY_REQUIRED';
    if (p.jws) return 'PAYMENT_REQUIRED';
    return 'NOTIFICATION_SENT';
  }
  if (sig === 'required_and_signed') return 'PAYMENT_REQUIRED';
  if (sig === 'required' || sig === 'required_but_pending') return 'SIGNATURE_REQUIRED';
  if (sig === 'error_no_record') return 'SIGNATURE_NO_RECORD';
  if (sig === 'error_need_resign') return 'SIGNATURE_NEED_RESIGN';
  return p.productId ? 'NOT_BUY' : 'NOT_EVALUATED';
}

/** The stored axes a status is derived from, without the texts it reads only for whether they are set. */
export type PaymentStatusAxes = Omit<PaymentStatusInput, 'productId' | 'jws' | 'vc'>;

/**
 * The statuses derivePaymentStatus gives a row with these axes, whatever its productId, jws and vc:
 * the rule reads those only for whether they are set, so every way they can be set is tried. A
 * status filter can only match a row whose axes have the wanted status among these: the candidates
 * `payments` reads before applying derivePaymentStatus (payment-service.ts).
 */
export function statusesOfAxes(axes: PaymentStatusAxes): Set<PaymentStatus> {
  const statuses = new Set<PaymentStatus>();
  for (const productId of ['', 'product']) {
    for (const jws of [null, 'jws']) {
      for (const vc of [null, 'vc']) statuses.add(derivePaymentStatus({ ...axes, productId, jws, vc }));
    }
  }
  return statuses;
}
