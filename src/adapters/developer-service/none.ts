import { InvalidStateError } from '../../domain/errors.js';
import { type DeveloperInfo, type DeveloperService, DeveloperServiceError, type GrantResult } from './port.js';

/** Why a purchase is refused; names the setting that would make it possible. */
export const NO_DEVELOPER_SERVICE =
  'Paid apps cannot be bought on this server: no developer service is configured (set DEVELOPER_SERVICE_URL_TEMPLATE)';

/**
 * The developer service of a deployment that configured none (config.ts): every purchase is
 * refused with the reason, where the simulated one would have granted it.
 */
export class NoDeveloperService implements DeveloperService {
  readonly kind = 'none';

  async lookup(_developerName: string): Promise<DeveloperInfo | null> {
    // Not a DeveloperServiceError: that one is recorded on a new payment state as a failed lookup
    // to retry; here nothing would change by retrying, so the click is refused before any state.
    throw new InvalidStateError(NO_DEVELOPER_SERVICE);
  }

  async activateAndGrant(_request: { developerName: string; productId: string; jws: string }): Promise<GrantResult> {
    // A payment state created before the template was removed: its credential is never granted.
    throw new DeveloperServiceError(NO_DEVELOPER_SERVICE);
  }
}
