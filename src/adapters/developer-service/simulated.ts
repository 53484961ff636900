import { createHash } from 'node:crypto';
import { type GrantOutcome, isGrantOutcome, type Outcome, parseOutcome } from '../../platform/simulated-outcomes.js';
import { type DeveloperInfo, type DeveloperService, DeveloperServiceError, type GrantResult } from './port.js';

/**
 * The embedded default developer service. It answers deterministically, so the demo and the tests
 * can walk every path of the purchase flow (paid at once, paid after some polls, a signature to
 * redo, a developer that cannot be reached) without a real developer.
 *
 * What happens is chosen per key of the outcomes map, where a key is either a productId or a
 * developer name:
 * - `vc-after-N` (N ≥ 1): the Nth query for the same product and the same signature grants a
 *   credential, earlier ones answer no_record; queries after the Nth keep granting the same one.
 * - `no-record`, `resign`: every query answers no_record, need_resign.
 * - `error`: every query throws, as a network error would.
 * - `missing-developer`, `lookup-error`: the lookup of that developer returns null or throws.
 *
 * A credential query looks at its productId first, then at its developer name, so one entry can
 * cover all products of a developer; a lookup only sees the developer name, so the two lookup
 * outcomes only mean something under a developer name. Outcomes of the other kind are skipped.
 */

export const DEFAULT_SIMULATED_OUTCOME = 'vc-after-2';

export interface SimulatedDeveloperServiceOptions {
  /** Outcome per productId or developer name, e.g. `{ 'com.example.pro': 'resign', acme: 'lookup-error' }`. */
  outcomes: Record<string, string>;
  /** For products and developers not listed; must be a credential outcome. @default 'vc-after-2' */
  defaultOutcome?: string;
}

export class SimulatedDeveloperService implements DeveloperService {
  readonly kind = 'simulated';
  private readonly outcomes: Map<string, Outcome>;
  private readonly defaultOutcome: GrantOutcome;
  /** Queries so far per product and signature; keyed by a hash so no signature is kept in memory. */
  private readonly queries = new Map<string, number>();

  constructor(options: SimulatedDeveloperServiceOptions) {
    this.outcomes = new Map(
      Object.entries(options.outcomes).map(([key, value]) => {
        const outcome = parseOutcome(value);
        if (!outcome) throw new Error(`unknown simulated developer outcome "${value}" for "${key}"`);
        return [key, outcome];
      }),
    );
    const fallback = options.defaultOutcome ?? DEFAULT_SIMULATED_OUTCOME;
    const parsed = parseOutcome(fallback);
    if (!parsed || !isGrantOutcome(parsed)) {
      throw new Error(
        `the default simulated developer outcome must be vc-after-N, no-record, resign or error, not "${fallback}"`,
      );
    }
    this.defaultOutcome = parsed;
  }

  async lookup(developerName: string): Promise<DeveloperInfo | null> {
    const outcome = this.outcomes.get(developerName);
    if (outcome?.kind === 'missing-developer') return null;
    if (outcome?.kind === 'lookup-error') {
      throw new DeveloperServiceError(`simulated lookup of developer ${developerName} failed`);
    }
    return { name: developerName, did: `did:key:sim-${developerName}`, rsaPubKey: null };
  }

  async activateAndGrant(request: { developerName: string; productId: string; jws: string }): Promise<GrantResult> {
    const { developerName, productId } = request;
    const outcome = this.grantOutcomeOf(productId, developerName);
    switch (outcome.kind) {
      case 'no-record':
        return { outcome: 'no_record' };
      case 'resign':
        return { outcome: 'need_resign' };
      case 'error':
        throw new DeveloperServiceError(`simulated developer service of ${developerName} is unreachable`);
      case 'vc-after': {
        const jwsHash = createHash('sha256').update(request.jws).digest('hex');
        const key = `${productId}\n${jwsHash}`;
        const count = (this.queries.get(key) ?? 0) + 1;
        this.queries.set(key, count);
        if (count < outcome.queries) return { outcome: 'no_record' };
        return { outcome: 'granted', vc: `vc:sim:${productId}:${jwsHash.slice(0, 12)}` };
      }
    }
  }

  private grantOutcomeOf(productId: string, developerName: string): GrantOutcome {
    for (const key of [productId, developerName]) {
      const outcome = this.outcomes.get(key);
      if (outcome && isGrantOutcome(outcome)) return outcome;
    }
    return this.defaultOutcome;
  }
}
