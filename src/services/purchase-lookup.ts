import { z } from 'zod';
import type { Viewer } from '../auth/viewer.js';
import type { Db } from '../db/client.js';
import { MAX_APP_NAME_LENGTH, MAX_SOURCE_ID_LENGTH } from '../domain/app-key.js';
import { NotFoundError, ValidationError } from '../domain/errors.js';
import { parseInput } from '../domain/parse-input.js';
import { paymentAxesOf } from '../domain/payments.js';
import type { Payment } from './payment-transitions.js';

/**
 * How the requests of the purchase flow find the buyer's payment. A payment is of one (user, app,
 * product); the wallet's answers and the credential resend name the product, and the app too when
 * they answer a push of this server (`callback_input`).
 */

export const appRef = z.object({
  sourceId: z.string().trim().min(1).max(MAX_SOURCE_ID_LENGTH),
  appId: z.string().trim().min(1).max(MAX_APP_NAME_LENGTH),
});
const productRef = z.object({
  productId: z.string().trim().min(1, 'productId must not be empty').max(128),
  appId: z.string().trim().min(1, 'appId must not be empty').max(MAX_APP_NAME_LENGTH).nullish(),
});

/**
 * The buyer's payment of a product, of the app named when one is. Without an app, a product that
 * several of the buyer's payments are of (two apps a source sells under one product id, from
 * different developers) is refused: taking the newest applied a signature given for one app to
 * the other, and sent it to the other's developer.
 */
export async function paymentOfProduct(
  db: Db,
  viewer: Viewer,
  input: { productId: string; appId?: string | null },
): Promise<Payment> {
  const { productId, appId } = parseInput(productRef, input);
  if (appId) {
    const payment = await paymentOf(db, viewer, appId, productId);
    if (!payment) throw new NotFoundError(`You have no purchase of ${appId} (product ${productId})`);
    return payment;
  }
  const payments = await db.payment.findMany({
    where: { userId: viewer.userId, productId },
    orderBy: { id: 'asc' },
    take: 3,
  });
  const [payment, other] = payments;
  if (!payment) throw new NotFoundError(`You have no purchase of product ${productId}`);
  if (other) {
    const apps = payments.map((row) => row.appId).join(', ');
    throw new ValidationError(
      `Several of your purchases are of product ${productId} (apps ${apps}${payments.length > 2 ? ', …' : ''}): name the app (appId)`,
      [{ path: 'appId', message: 'required: several of your purchases are of this product' }],
    );
  }
  return paymentAxesOf(payment);
}

/**
 * What a purchase, or a restore, of an app of no catalogue (or of a source not offered to the
 * buyer, which does not exist for them) answers: the same words either way.
 */
export function notInCatalogue(appId: string, sourceId: string): NotFoundError {
  return new NotFoundError(`App ${appId} is not in the catalogue of ${sourceId}`);
}

/** The buyer's payment of an app's product, begun from whichever source offered the app (see productIdOf). */
export async function paymentOfApp(
  db: Db,
  viewer: Viewer,
  input: { sourceId: string; appId: string; productId: string },
): Promise<Payment> {
  const { sourceId, appId } = parseInput(appRef, input);
  const { productId } = parseInput(productRef, { productId: input.productId });
  const payment = await paymentOf(db, viewer, appId, productId);
  if (!payment) {
    throw new NotFoundError(
      `You have no purchase of ${appId} (product ${productId}) in ${sourceId}; call purchaseApp first`,
    );
  }
  return payment;
}

/** The buyer's one payment of (app, product), if any. */
async function paymentOf(db: Db, viewer: Viewer, appId: string, productId: string): Promise<Payment | null> {
  const row = await db.payment.findUnique({
    where: { userId_appId_productId: { userId: viewer.userId, appId, productId } },
  });
  return row && paymentAxesOf(row);
}
