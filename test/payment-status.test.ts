import { describe, expect, test } from 'vitest';
import { derivePaymentStatus, type PaymentStatusInput, statusesOfAxes } from '../src/domain/payment-status.js';
import {
  grantRefusal,
  PAYMENT_NEEDS,
  PAYMENT_PROGRESS,
  SIGNATURE_STATUSES,
  SYNC_STATES,
} from '../src/domain/payments.js';

const base: PaymentStatusInput = {
  paymentNeed: 'required',
  developerSync: 'not_started',
  signatureStatus: 'not_evaluated',
  paymentStatus: 'not_evaluated',
  signingForRestore: false,
  productId: 'p-1',
  jws: null,
  vc: null,
};

describe('frontend payment status, as the status query derives it from the five axes', () => {
  test.each<[string, Partial<PaymentStatusInput>, string]>([
    ['need not_required', { paymentNeed: 'not_required' }, 'FREE'],
    [
      '1: VC present and developer sync completed',
      { vc: 'vc', developerSync: 'completed', paymentStatus: 'frontend_started' },
      'PURCHASED',
    ],
    [
      '1 needs both: VC without completed sync',
      { vc: 'vc', developerSync: 'in_progress', paymentStatus: 'frontend_completed' },
      'WAITING_DEVELOPER_CONFIRMATION',
    ],
    ['2: frontend completed', { paymentStatus: 'frontend_completed' }, 'WAITING_DEVELOPER_CONFIRMATION'],
    [
      'after paying, "sign again" shows over the progress',
      { paymentStatus: 'frontend_completed', signatureStatus: 'error_need_resign', jws: 'j' },
      'SIGNATURE_NEED_RESIGN',
    ],
    [
      'after paying, "no record" shows over the progress',
      { paymentStatus: 'frontend_completed', signatureStatus: 'error_no_record', jws: 'j' },
      'SIGNATURE_NO_RECORD',
    ],
    [
      'after paying, the signature asked for again shows over the progress',
      { paymentStatus: 'frontend_started', signatureStatus: 'required' },
      'SIGNATURE_REQUIRED',
    ],
    ['3: frontend started', { paymentStatus: 'frontend_started' }, 'PAYMENT_FRONTEND_STARTED'],
    [
      '4: notification sent + signed',
      { paymentStatus: 'notification_sent', signatureStatus: 'required_and_signed' },
      'PAYMENT_REQUIRED',
    ],
    [
      '4: notification sent + JWS + need re-sign',
      { paymentStatus: 'notification_sent', signatureStatus: 'error_need_resign', jws: 'j' },
      'SIGNATURE_NEED_RESIGN',
    ],
    [
      '4: notification sent + JWS + no record',
      { paymentStatus: 'notification_sent', signatureStatus: 'error_no_record', jws: 'j' },
      'PAYMENT_RETRY_REQUIRED',
    ],
    [
      '4: notification sent + JWS',
      { paymentStatus: 'notification_sent', signatureStatus: 'required', jws: 'j' },
      'PAYMENT_REQUIRED',
    ],
    [
      '4: notification sent, nothing else',
      { paymentStatus: 'notification_sent', signatureStatus: 'required' },
      'NOTIFICATION_SENT',
    ],
    // Rule 5 of the original (signed → PAYMENT_REQUIRED) would ask to pay with a signature that
    // may have been paid for: until the developer answers for it, it is being checked.
    ['5: signed (the wallet held it), not answered for yet', { signatureStatus: 'required_and_signed' }, 'SYNCING'],
    [
      '5: signed, the developer being asked (after a failed query, or a restore once asked to pay)',
      { signatureStatus: 'required_and_signed', developerSync: 'in_progress', paymentStatus: 'notification_sent' },
      'SYNCING',
    ],
    [
      '5: signed for a restore, asked to pay by it, before the developer is asked',
      {
        signatureStatus: 'required_and_signed',
        paymentStatus: 'notification_sent',
        developerSync: 'completed',
        signingForRestore: true,
      },
      'SYNCING',
    ],
    [
      '5: signed for a restore, the developer could not be asked',
      {
        signatureStatus: 'required_and_signed',
        paymentStatus: 'notification_sent',
        developerSync: 'failed',
        signingForRestore: true,
      },
      'NOT_BUY',
    ],
    [
      '5: signed, the developer could not be asked: not bought, as far as anyone knows',
      { signatureStatus: 'required_and_signed', developerSync: 'failed' },
      'NOT_BUY',
    ],
    [
      '5: signed and asked to pay, the developer could not be asked since',
      { signatureStatus: 'required_and_signed', developerSync: 'failed', paymentStatus: 'notification_sent' },
      'NOT_BUY',
    ],
    [
      'after paying, a developer that could not be asked leaves it waiting',
      { signatureStatus: 'required_and_signed', developerSync: 'failed', paymentStatus: 'frontend_completed' },
      'WAITING_DEVELOPER_CONFIRMATION',
    ],
    ['6: signature required', { signatureStatus: 'required' }, 'SIGNATURE_REQUIRED'],
    ['6: signature required but pending', { signatureStatus: 'required_but_pending' }, 'SIGNATURE_REQUIRED'],
    ['7: no record', { signatureStatus: 'error_no_record' }, 'SIGNATURE_NO_RECORD'],
    ['7: need re-sign', { signatureStatus: 'error_need_resign' }, 'SIGNATURE_NEED_RESIGN'],
    ['8: nothing yet, with a product', {}, 'NOT_BUY'],
    ['8: nothing yet, no product', { productId: '' }, 'NOT_EVALUATED'],
  ])('%s → %s', (_rule, axes, status) => {
    expect(derivePaymentStatus({ ...base, ...axes })).toBe(status);
  });
});

describe('the statuses a payment with given axes can have (the candidates of a status filter)', () => {
  test('every payment has a status among those of its axes, whatever its productId, jws and vc', () => {
    const texts = [null, '', 'x', 'another value'];
    let checked = 0;
    for (const paymentNeed of [...PAYMENT_NEEDS, 'hand_edited'])
      for (const developerSync of [...SYNC_STATES, 'hand_edited'])
        for (const signatureStatus of [...SIGNATURE_STATUSES, 'hand_edited'])
          for (const paymentStatus of [...PAYMENT_PROGRESS, 'hand_edited'])
            for (const signingForRestore of [false, true]) {
              const axes = { paymentNeed, developerSync, signatureStatus, paymentStatus, signingForRestore };
              const statuses = statusesOfAxes(axes);
              for (const productId of ['', 'p-1'])
                for (const jws of texts)
                  for (const vc of texts) {
                    expect(statuses.has(derivePaymentStatus({ ...axes, productId, jws, vc }))).toBe(true);
                    checked += 1;
                  }
            }
    expect(checked).toBe(5 * 5 * 8 * 7 * 2 * 2 * 16);
  });

  test('a status the axes cannot give is not among them', () => {
    expect([...statusesOfAxes({ ...base, paymentNeed: 'not_required' })]).toEqual(['FREE']);
    expect(statusesOfAxes(base).has('PURCHASED')).toBe(false);
    expect(statusesOfAxes({ ...base, developerSync: 'completed' }).has('PURCHASED')).toBe(true);
  });
});

describe('a credential the developer granted, as the payment its commit finds takes it', () => {
  const asked = { developerName: 'acme' };
  test('is written whatever the buyer did since the query about its signature went out', () => {
    expect(grantRefusal({ vc: null, developerName: 'acme' }, asked)).toBeNull();
  });
  test('is not written to a payment that holds a credential, nor one now bought from another developer', () => {
    expect(grantRefusal({ vc: 'vc-first', developerName: 'acme' }, asked)).toBe(
      'the payment holds a credential already',
    );
    expect(grantRefusal({ vc: null, developerName: 'other' }, asked)).toBe(
      'the purchase is now from another developer',
    );
  });
});
