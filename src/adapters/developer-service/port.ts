/**
 * The developer's credential service: given the buyer's signed purchase
 * (JWS), it grants a Verifiable Credential once the developer has seen the payment. Two
 * implementations: SimulatedDeveloperService (local development or SIMULATED_DEVELOPER_SERVICE,
 * outcome configurable per product) and HttpDeveloperService (DEVELOPER_SERVICE_URL_TEMPLATE); with
 * neither, NoDeveloperService refuses every purchase.
 */

export interface DeveloperInfo {
  name: string;
  did: string;
  rsaPubKey: string | null;
}

/** What a credential query means for the purchase (the original's internal codes). */
export type GrantResult =
  | { outcome: 'granted'; vc: string } // code 0 with a credential
  | { outcome: 'no_record' } // 1: the developer has no (confirmed) record of this purchase yet
  | { outcome: 'need_resign' }; // 2: the signature is invalid or expired: sign again

export class DeveloperServiceError extends Error {
  override name = 'DeveloperServiceError';
}

export interface DeveloperService {
  readonly kind: 'simulated' | 'http' | 'none';
  /** The developer's identity; null when no such developer exists. Throws DeveloperServiceError when the lookup fails. */
  lookup(developerName: string): Promise<DeveloperInfo | null>;
  /** One credential query. Throws DeveloperServiceError on network errors and non-2xx answers. */
  activateAndGrant(request: { developerName: string; productId: string; jws: string }): Promise<GrantResult>;
}
