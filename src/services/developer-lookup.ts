import { type DeveloperService, DeveloperServiceError } from '../adapters/developer-service/port.js';
import type { CatalogAppRow, Prisma } from '../db/models.js';
import type { PaymentAxes } from '../domain/payments.js';

/** The developer a paid app is bought from, as its catalogue entry names them. */
export function developerOf(app: CatalogAppRow): string | null {
  return ((app.price ?? {}) as { developer?: string }).developer || null;
}

/**
 * The need and developer sync a developer lookup leads to, with the developer when found; a
 * developer service that could not answer is a `lookupFailure`, anything else is thrown.
 */
export async function lookUpDeveloper(
  developers: DeveloperService,
  name: string | null,
): Promise<
  Pick<PaymentAxes, 'paymentNeed' | 'developerSync'> & {
    developer?: Prisma.InputJsonValue;
    lookupFailure?: string;
  }
> {
  try {
    const developer = name ? await developers.lookup(name) : null;
    return developer
      ? { paymentNeed: 'required', developerSync: 'not_started', developer: { ...developer } }
      : { paymentNeed: 'error_missing_developer', developerSync: 'failed' };
  } catch (error) {
    if (!(error instanceof DeveloperServiceError)) throw error;
    return { paymentNeed: 'error_developer_fetch_failed', developerSync: 'failed', lookupFailure: error.message };
  }
}
