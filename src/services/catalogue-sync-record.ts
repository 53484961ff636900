import type { SyncSuccess } from '../db/catalogue-sql.js';
import { clipText } from '../platform/clip-text.js';
import type { SyncOutcome, SyncSettings } from './catalogue-sync-outcome.js';

/** When a sync started (its clock time, and its ticket: its place in the source row's order). */
export interface SyncMark {
  attemptAt: Date;
  ticket: number;
}

/** Longest error text kept on a source row (and shown in the `syncer` component). */
export const MAX_ERROR_LENGTH = 500;

/**
 * The status a successful sync stores. `ticket`: the sync's (only stored over an earlier sync's
 * outcome); `lag`: the index lags the hash call (keptHash), said before any rejected entries.
 */
export function successStatus(
  settings: SyncSettings,
  { attemptAt, ticket }: SyncMark,
  outcome: SyncOutcome,
  catalogHash: string | null,
  lag: string | null = null,
): SyncSuccess {
  const rejected = outcome.rejected.length
    ? `${outcome.rejected.length} entries rejected; first: ${outcome.rejected[0]}`
    : null;
  const error = [lag, rejected].filter(Boolean).join('; ');
  return {
    catalogHash,
    at: attemptAt,
    error: error ? clipText(error, MAX_ERROR_LENGTH) : null,
    durationMs: outcome.durationMs,
    nextSyncAt: new Date(attemptAt.getTime() + settings.intervalMs),
    ticket,
  };
}
