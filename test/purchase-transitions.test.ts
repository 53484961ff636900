import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Viewer } from '../src/auth/viewer.js';
import type { PaymentRow } from '../src/db/models.js';
import { derivePaymentStatus } from '../src/domain/payment-status.js';
import { type DeveloperBehaviour, startFakeDeveloperService } from './support/fake-developer-service.js';
import { startTestServer, type TestServer, waitFor } from './support/server.js';

/**
 * Every trigger of the purchase state machine (src/domain/payments.ts) from a given state, through
 * the service, against a real database and a fake developer service over HTTP: the axes after it,
 * the visible status, and what was pushed to the frontend and the wallet.
 */

type Axes = Pick<PaymentRow, 'paymentNeed' | 'developerSync' | 'larePassSync' | 'signatureStatus' | 'paymentStatus'>;
type Trigger =
  | 'purchase'
  | 'restore'
  | 'signed'
  | 'notSigned'
  | 'submitSignature'
  | 'startFrontend'
  | 'submitTransaction'
  | 'resend';

interface Row {
  name: string;
  /** null: no payment state yet. */
  from: (Partial<Axes> & { jws?: string | null; vc?: string | null; signingForRestore?: boolean }) | null;
  trigger: Trigger;
  developer?: DeveloperBehaviour;
  expect: Partial<Axes> & { status: string; jws?: string | null };
  pushes?: string[];
  error?: string;
}

const FRESH: Axes = {
  paymentNeed: 'required',
  developerSync: 'not_started',
  larePassSync: 'not_started',
  signatureStatus: 'not_evaluated',
  paymentStatus: 'not_evaluated',
};
const SIGNED = { signatureStatus: 'required_and_signed', larePassSync: 'completed', jws: 'signed.jws.value' };
const PURCHASED = { ...SIGNED, developerSync: 'completed', paymentStatus: 'developer_confirmed', vc: 'vc-held' };

const ROWS: Row[] = [
  {
    name: 'T1+T2+T5 Buy with no state: created, wallet asked for an existing signature and to sign',
    from: null,
    trigger: 'purchase',
    expect: {
      paymentNeed: 'required',
      larePassSync: 'in_progress',
      signatureStatus: 'required',
      status: 'SIGNATURE_REQUIRED',
    },
    pushes: ['larepass:fetch_payment_signature', 'larepass:market_payment', 'frontend:signature_required'],
  },
  {
    // The original did nothing here, for good: no mutation could move the purchase on.
    name: 'T5 Buy when the developer had no record of a signature never paid for: the frontend is asked to pay with it',
    from: { signatureStatus: 'error_no_record', jws: 'x' },
    trigger: 'purchase',
    expect: { signatureStatus: 'required_and_signed', paymentStatus: 'notification_sent', status: 'PAYMENT_REQUIRED' },
    pushes: ['frontend:payment_required'],
  },
  {
    name: 'T5 Buy when the developer had no record after paying: nothing to do (a restore asks the developer again)',
    from: {
      ...SIGNED,
      signatureStatus: 'error_no_record',
      developerSync: 'completed',
      paymentStatus: 'frontend_completed',
    },
    trigger: 'purchase',
    expect: { signatureStatus: 'error_no_record', status: 'SIGNATURE_NO_RECORD' },
    pushes: [],
  },
  {
    name: 'T5 Buy after "sign again": the old signature is dropped, a re-sign is requested',
    from: { signatureStatus: 'error_need_resign', jws: 'old' },
    trigger: 'purchase',
    expect: { signatureStatus: 'required', jws: null, status: 'SIGNATURE_REQUIRED' },
    pushes: ['larepass:market_payment', 'frontend:signature_required'],
  },
  {
    // The original asked to pay (T5): with a signature the buyer may have paid with already.
    name: 'T5 Buy on a signature the wallet held, not answered for yet: the developer is asked, not the buyer to pay',
    from: { ...SIGNED },
    trigger: 'purchase',
    developer: { respond: 'grant' },
    expect: { paymentStatus: 'developer_confirmed', status: 'PURCHASED' },
    pushes: ['frontend:purchased', 'larepass:save_payment_vc'],
  },
  {
    name: 'T5 Buy after the developer could not be asked about a held signature: asked again, not to pay',
    from: { ...SIGNED, developerSync: 'failed' },
    trigger: 'purchase',
    developer: { respond: 'grant' },
    expect: { paymentStatus: 'developer_confirmed', status: 'PURCHASED' },
    pushes: ['frontend:syncing', 'frontend:purchased', 'larepass:save_payment_vc'],
  },
  {
    name: 'T5 Buy after the developer could not be asked, still unreachable: checked again, never asked to pay',
    from: { ...SIGNED, developerSync: 'failed', paymentStatus: 'notification_sent' },
    trigger: 'purchase',
    developer: { respond: 'http-error', status: 503 },
    expect: { developerSync: 'failed', paymentStatus: 'notification_sent', status: 'NOT_BUY' },
    pushes: ['frontend:syncing', 'frontend:not_buy'],
  },
  {
    name: 'T5 Buy when paid but unconfirmed: polling starts',
    from: { ...SIGNED, paymentStatus: 'frontend_completed' },
    trigger: 'purchase',
    developer: { respond: 'grant' },
    expect: { developerSync: 'completed', status: 'PURCHASED' },
  },
  {
    name: 'T5 Buy when purchased: unchanged',
    from: { ...PURCHASED },
    trigger: 'purchase',
    expect: { status: 'PURCHASED' },
    pushes: [],
  },
  {
    name: 'T3 the wallet has no signature: one is required',
    from: { larePassSync: 'in_progress' },
    trigger: 'notSigned',
    expect: { larePassSync: 'completed', signatureStatus: 'required', status: 'SIGNATURE_REQUIRED' },
    pushes: [],
  },
  {
    name: 'T3+T4 existing signature, developer grants (code 0): purchased',
    from: { larePassSync: 'in_progress' },
    trigger: 'signed',
    developer: { respond: 'grant' },
    expect: { developerSync: 'completed', paymentStatus: 'developer_confirmed', status: 'PURCHASED' },
    pushes: ['frontend:syncing', 'frontend:purchased', 'larepass:save_payment_vc'],
  },
  {
    name: 'T3+T4 existing signature, developer has no record (1501)',
    from: {},
    trigger: 'signed',
    developer: { respond: 'json', body: { code: 1501 } },
    expect: { developerSync: 'completed', signatureStatus: 'error_no_record', status: 'SIGNATURE_NO_RECORD' },
    pushes: ['frontend:syncing', 'frontend:signature_no_record'],
  },
  {
    name: 'T3+T4 existing signature, no record (1502)',
    from: {},
    trigger: 'signed',
    developer: { respond: 'json', body: { code: 1502 } },
    expect: { signatureStatus: 'error_no_record', status: 'SIGNATURE_NO_RECORD' },
  },
  {
    name: 'T3+T4 existing signature, unknown code (42) counts as no record',
    from: {},
    trigger: 'signed',
    developer: { respond: 'json', body: { code: 42 } },
    expect: { signatureStatus: 'error_no_record', status: 'SIGNATURE_NO_RECORD' },
  },
  {
    name: 'T3+T4 existing signature, developer wants a new one (1100)',
    from: {},
    trigger: 'signed',
    developer: { respond: 'json', body: { code: 1100 } },
    expect: { developerSync: 'completed', signatureStatus: 'error_need_resign', status: 'SIGNATURE_NEED_RESIGN' },
    pushes: ['frontend:syncing', 'frontend:signature_need_resign'],
  },
  {
    name: 'T3+T4 existing signature, developer wants a new one (1101)',
    from: {},
    trigger: 'signed',
    developer: { respond: 'json', body: { code: 1101 } },
    expect: { signatureStatus: 'error_need_resign', status: 'SIGNATURE_NEED_RESIGN' },
  },
  {
    name: 'T3+T4 existing signature, developer wants a new one (1604)',
    from: {},
    trigger: 'signed',
    developer: { respond: 'json', body: { code: 1604 } },
    expect: { signatureStatus: 'error_need_resign', status: 'SIGNATURE_NEED_RESIGN' },
  },
  {
    // The original left it at PAYMENT_REQUIRED, with no push: paying again perhaps.
    name: 'T3+T4 existing signature, developer unreachable: asked again in a polling round, then not bought as far as known',
    from: {},
    trigger: 'signed',
    developer: { respond: 'http-error', status: 503 },
    expect: { developerSync: 'failed', signatureStatus: 'required_and_signed', status: 'NOT_BUY' },
    pushes: ['frontend:syncing', 'frontend:not_buy'],
  },
  {
    name: 'T6 signature before any payment: the frontend is asked to pay, no polling yet',
    from: { signatureStatus: 'required', larePassSync: 'in_progress' },
    trigger: 'submitSignature',
    expect: {
      signatureStatus: 'required_and_signed',
      larePassSync: 'completed',
      paymentStatus: 'notification_sent',
      developerSync: 'not_started',
      status: 'PAYMENT_REQUIRED',
    },
    pushes: ['frontend:payment_required'],
  },
  {
    // A restore counted the buyer asked to pay before they had a signature: they never got the payment data.
    name: 'T6 the signature a Buy asked for after a restore counted the buyer asked to pay: the frontend is asked to pay',
    from: { signatureStatus: 'required', larePassSync: 'in_progress', paymentStatus: 'notification_sent' },
    trigger: 'submitSignature',
    expect: {
      signatureStatus: 'required_and_signed',
      paymentStatus: 'notification_sent',
      developerSync: 'not_started',
      status: 'PAYMENT_REQUIRED',
    },
    pushes: ['frontend:payment_required'],
  },
  {
    name: 'T6 a second signature after the buyer was asked to pay with one asks nothing more',
    from: { ...SIGNED, paymentStatus: 'notification_sent' },
    trigger: 'submitSignature',
    expect: { signatureStatus: 'required_and_signed', jws: 'new.jws.value', status: 'PAYMENT_REQUIRED' },
    pushes: [],
  },
  {
    name: 'T6 the signature a restore asked for goes to the developer, not to a payment request',
    from: { signatureStatus: 'required', paymentStatus: 'notification_sent', signingForRestore: true },
    trigger: 'submitSignature',
    developer: { respond: 'grant' },
    expect: { paymentStatus: 'developer_confirmed', status: 'PURCHASED' },
    pushes: ['frontend:syncing', 'frontend:purchased', 'larepass:save_payment_vc'],
  },
  {
    name: 'T6 signature while paying: polling starts',
    from: { signatureStatus: 'required', paymentStatus: 'frontend_started' },
    trigger: 'submitSignature',
    developer: { respond: 'grant' },
    expect: { status: 'PURCHASED' },
  },
  {
    name: 'T7a the frontend starts paying a signed purchase',
    from: { ...SIGNED, paymentStatus: 'notification_sent' },
    trigger: 'startFrontend',
    expect: { paymentStatus: 'frontend_started', status: 'PAYMENT_FRONTEND_STARTED' },
    pushes: [],
  },
  {
    name: 'T7a paying before signing is refused',
    from: { signatureStatus: 'required' },
    trigger: 'startFrontend',
    expect: { status: 'SIGNATURE_REQUIRED' },
    error: 'INVALID_STATE',
  },
  {
    name: 'T7a paying again after paying, while the developer has no record of it, is refused (restore asks again)',
    from: {
      ...SIGNED,
      signatureStatus: 'error_no_record',
      developerSync: 'completed',
      paymentStatus: 'frontend_completed',
    },
    trigger: 'startFrontend',
    expect: { status: 'SIGNATURE_NO_RECORD' },
    error: 'INVALID_STATE',
  },
  {
    name: 'T7a paying after "no record" of a signature never paid for is accepted',
    from: {
      ...SIGNED,
      signatureStatus: 'error_no_record',
      developerSync: 'completed',
      paymentStatus: 'notification_sent',
    },
    trigger: 'startFrontend',
    expect: {
      signatureStatus: 'required_and_signed',
      paymentStatus: 'frontend_started',
      status: 'PAYMENT_FRONTEND_STARTED',
    },
    pushes: [],
  },
  {
    name: 'T7b+T8+T9 the frontend paid: waiting, then the credential after two "no record"',
    from: { ...SIGNED, paymentStatus: 'frontend_started' },
    trigger: 'submitTransaction',
    developer: {
      respond: 'sequence',
      steps: [
        { respond: 'json', body: { code: 1501 } },
        { respond: 'json', body: { code: 1501 } },
        { respond: 'grant' },
      ],
    },
    expect: { developerSync: 'completed', status: 'PURCHASED' },
    pushes: ['frontend:waiting_developer_confirmation', 'frontend:purchased', 'larepass:save_payment_vc'],
  },
  {
    name: 'T7b+T8 exhausted with "no record": the signature is marked no record',
    from: { ...SIGNED, paymentStatus: 'frontend_started' },
    trigger: 'submitTransaction',
    developer: { respond: 'json', body: { code: 1501 } },
    expect: {
      developerSync: 'completed',
      signatureStatus: 'error_no_record',
      // As the push says (the original kept showing WAITING_DEVELOPER_CONFIRMATION).
      status: 'SIGNATURE_NO_RECORD',
    },
    pushes: ['frontend:waiting_developer_confirmation', 'frontend:signature_no_record'],
  },
  {
    name: 'T7b+T8 the developer wants a new signature (1100) after paying: shown at once',
    from: { ...SIGNED, paymentStatus: 'frontend_started' },
    trigger: 'submitTransaction',
    developer: { respond: 'json', body: { code: 1100 } },
    expect: { developerSync: 'completed', signatureStatus: 'error_need_resign', status: 'SIGNATURE_NEED_RESIGN' },
    pushes: ['frontend:waiting_developer_confirmation', 'frontend:signature_need_resign'],
  },
  {
    name: 'T5 Buy after "sign again" once paid: re-sign requested, shown as such',
    from: {
      ...SIGNED,
      signatureStatus: 'error_need_resign',
      developerSync: 'completed',
      paymentStatus: 'frontend_completed',
    },
    trigger: 'purchase',
    expect: { signatureStatus: 'required', jws: null, status: 'SIGNATURE_REQUIRED' },
    pushes: ['larepass:market_payment', 'frontend:signature_required'],
  },
  {
    name: 'T6 the new signature after "sign again" once paid: the developer is asked again, and grants',
    from: { signatureStatus: 'required', developerSync: 'completed', paymentStatus: 'frontend_completed' },
    trigger: 'submitSignature',
    developer: { respond: 'grant' },
    expect: { developerSync: 'completed', paymentStatus: 'developer_confirmed', status: 'PURCHASED' },
  },
  {
    name: 'T3 a late "signed" answer about a purchase changes nothing, even with the developer unreachable',
    from: { ...PURCHASED },
    trigger: 'signed',
    expect: { developerSync: 'completed', status: 'PURCHASED' },
    pushes: [],
  },
  {
    name: 'T3 a late "no signature" answer after the buyer signed keeps the signature',
    from: { ...SIGNED, paymentStatus: 'notification_sent' },
    trigger: 'notSigned',
    expect: { signatureStatus: 'required_and_signed', status: 'PAYMENT_REQUIRED' },
    pushes: [],
  },
  {
    name: 'T7b+T8 exhausted with network errors: sync failed',
    from: { ...SIGNED, paymentStatus: 'frontend_started' },
    trigger: 'submitTransaction',
    developer: { respond: 'http-error', status: 500 },
    expect: { developerSync: 'failed', status: 'WAITING_DEVELOPER_CONFIRMATION' },
  },
  {
    name: 'T10 restore when purchased: purchased',
    from: { ...PURCHASED },
    trigger: 'restore',
    expect: { status: 'PURCHASED' },
    pushes: [],
  },
  {
    name: 'T10 restore with a signature: the developer is asked',
    from: { ...SIGNED, paymentStatus: 'notification_sent' },
    trigger: 'restore',
    developer: { respond: 'grant' },
    expect: { status: 'PURCHASED' },
  },
  {
    name: 'T10 restore with no signature: sign, then straight to the developer',
    from: {},
    trigger: 'restore',
    expect: {
      signatureStatus: 'required',
      larePassSync: 'in_progress',
      paymentStatus: 'notification_sent',
      status: 'NOTIFICATION_SENT',
    },
    pushes: ['larepass:market_payment', 'frontend:signature_required'],
  },
  {
    name: 'T10 restore after "sign again": re-sign',
    from: { signatureStatus: 'error_need_resign', jws: 'old' },
    trigger: 'restore',
    expect: { signatureStatus: 'required', jws: null, status: 'SIGNATURE_REQUIRED' },
    pushes: ['larepass:market_payment', 'frontend:signature_required'],
  },
  {
    // The original only said so: a payment made on another device since was never found.
    name: 'T10 restore after "no record" before paying: the developer is asked again',
    from: { signatureStatus: 'error_no_record', jws: 'x', developerSync: 'completed' },
    trigger: 'restore',
    developer: { respond: 'grant' },
    expect: { paymentStatus: 'developer_confirmed', status: 'PURCHASED' },
  },
  {
    name: 'T10 restore after "no record" once paid: the developer is asked again (the chain may have confirmed since)',
    from: {
      ...SIGNED,
      signatureStatus: 'error_no_record',
      developerSync: 'completed',
      paymentStatus: 'frontend_completed',
    },
    trigger: 'restore',
    developer: { respond: 'grant' },
    expect: { paymentStatus: 'developer_confirmed', status: 'PURCHASED' },
  },
  {
    name: 'T11 resend the credential of a purchase',
    from: { ...PURCHASED },
    trigger: 'resend',
    expect: { status: 'PURCHASED' },
    pushes: ['larepass:save_payment_vc'],
  },
  {
    name: 'T11 resend without a credential is refused',
    from: { ...SIGNED, paymentStatus: 'notification_sent' },
    trigger: 'resend',
    expect: { status: 'PAYMENT_REQUIRED' },
    error: 'INVALID_STATE',
  },
];

describe('purchase state machine transitions', () => {
  let developer: Awaited<ReturnType<typeof startFakeDeveloperService>>;
  let server: TestServer;
  beforeAll(async () => {
    developer = await startFakeDeveloperService();
    server = await startTestServer('sqlite', {
      env: {
        DEVELOPER_SERVICE_URL_TEMPLATE: developer.urlTemplate,
        PAYMENT_POLL_INTERVAL_MS: '10',
        PAYMENT_POLL_ATTEMPTS: '3',
      },
    });
  });
  afterAll(async () => {
    await server?.stop();
    await developer?.stop();
  });

  test.each(ROWS.map((row, index) => ({ ...row, index })))('$name', async (row) => {
    const { db, services } = server.app;
    const viewer: Viewer = { userId: `buyer-${row.index}`, isAdmin: false };
    const product = { sourceId: 'market.olares', appId: 'comfyui', productId: 'comfyui-license' };
    developer.setBehaviour(row.developer ?? { respond: 'http-error', status: 599 });
    const requestsBefore = developer.requests.length;
    if (row.from) {
      await db.payment.create({
        data: {
          userId: viewer.userId,
          ...product,
          appName: 'comfyui',
          developerName: 'demo-developer',
          ...FRESH,
          ...row.from,
        },
      });
    }
    const purchases = services.purchases;
    const run: Record<Trigger, () => Promise<unknown>> = {
      purchase: () => purchases.purchase(viewer, product),
      restore: () => purchases.restore(viewer, product),
      signed: () =>
        purchases.signatureCallback(viewer, { productId: product.productId, signed: true, jws: 'wallet.jws.value' }),
      notSigned: () => purchases.signatureCallback(viewer, { productId: product.productId, signed: false }),
      submitSignature: () => purchases.submitSignature(viewer, { productId: product.productId, jws: 'new.jws.value' }),
      startFrontend: () => purchases.startFrontendPayment(viewer, { ...product, frontendData: { step: 1 } }),
      submitTransaction: () => purchases.submitTransaction(viewer, { ...product, txHash: '0xabc' }),
      resend: () => purchases.resendCredential(viewer, { productId: product.productId }),
    };
    if (row.error) {
      await expect(run[row.trigger]()).rejects.toMatchObject({ code: row.error });
    } else {
      await run[row.trigger]();
    }
    const after = await waitFor(async () => {
      const payment = await db.payment.findFirst({ where: { userId: viewer.userId } });
      return payment && payment.developerSync !== 'in_progress' ? payment : undefined;
    }, 'the transition (and any polling) to finish');
    const { status, ...axes } = row.expect;
    expect({ ...after, status: derivePaymentStatus(after) }).toMatchObject({ ...axes, status });
    if (row.pushes) {
      // each row has a buyer of its own: all of the buyer's pushes come from this transition
      const pushes = await db.paymentNotification.findMany({
        where: { userId: viewer.userId },
        orderBy: { id: 'asc' },
      });
      expect(pushes.map((n) => `${n.channel}:${n.status ?? n.topic}`)).toEqual(row.pushes);
    }
    if (!row.developer) expect(developer.requests.length).toBe(requestsBefore);
  });
});
