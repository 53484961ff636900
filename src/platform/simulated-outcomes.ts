/**
 * The grammar of SIMULATED_DEVELOPER_OUTCOMES (what the simulated developer service answers per
 * product or developer; the behaviour of each outcome is described in
 * src/adapters/developer-service/simulated.ts). It lives with the configuration so that a bad value
 * stops the server at start, and the setting is parsed once, here.
 */

const GRANT_OUTCOMES = ['no-record', 'resign', 'error'] as const;
const LOOKUP_OUTCOMES = ['missing-developer', 'lookup-error'] as const;
const VC_AFTER = /^vc-after-([1-9][0-9]*)$/;

export type GrantOutcome = { kind: 'vc-after'; queries: number } | { kind: (typeof GRANT_OUTCOMES)[number] };
type LookupOutcome = { kind: (typeof LOOKUP_OUTCOMES)[number] };
export type Outcome = GrantOutcome | LookupOutcome;

/**
 * Reads the environment format `key=outcome,key=outcome` (keys are productIds or developer names).
 * Unset or blank means no entries. A key listed twice is an error rather than last-wins, because
 * the earlier entry would be silently ignored.
 */
export function parseSimulatedOutcomes(raw: string | undefined): Record<string, string> {
  const outcomes: Record<string, string> = {};
  if (!raw) return outcomes;
  for (const entry of raw.split(',')) {
    const text = entry.trim();
    // Tolerates a trailing comma, or one left behind when an entry was deleted.
    if (text === '') continue;
    const parts = text.split('=');
    const key = parts[0]?.trim() ?? '';
    const value = parts[1]?.trim() ?? '';
    if (parts.length !== 2 || key === '' || value === '') {
      throw new Error(`simulated developer outcome entry "${text}" is not of the form key=outcome`);
    }
    if (!parseOutcome(value)) {
      throw new Error(
        `simulated developer outcome entry "${text}" has an unknown outcome; expected vc-after-N (N ≥ 1), ` +
          `no-record, resign, error, missing-developer or lookup-error`,
      );
    }
    if (Object.hasOwn(outcomes, key)) {
      throw new Error(`simulated developer outcome entry "${text}" repeats the key ${key}`);
    }
    outcomes[key] = value;
  }
  return outcomes;
}

export function parseOutcome(value: string): Outcome | null {
  const vcAfter = VC_AFTER.exec(value);
  if (vcAfter) {
    const queries = Number(vcAfter[1]);
    return Number.isSafeInteger(queries) ? { kind: 'vc-after', queries } : null;
  }
  for (const kind of GRANT_OUTCOMES) if (value === kind) return { kind };
  for (const kind of LOOKUP_OUTCOMES) if (value === kind) return { kind };
  return null;
}

export function isGrantOutcome(outcome: Outcome): outcome is GrantOutcome {
  return outcome.kind !== 'missing-developer' && outcome.kind !== 'lookup-error';
}
