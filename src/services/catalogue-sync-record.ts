import { recordNextSync, recordSyncFailure, type SyncSuccess } from '../db/catalogue-sql.js';
import type { DriverSql } from '../db/driver-sql.js';
import { clipText } from '../platform/clip-text.js';
import type { SyncOutcome, SyncSettings } from './catalogue-sync-outcome.js';

/** When a sync started (its clock time, and its ticket: its place in the source row's order). */
export interface SyncMark {
  attemptAt: Date;
  ticket: number;
}

/** Longest error text kept on a source row (and shown in the `syncer` component). */
const MAX_ERROR_LENGTH = 500;

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

/**
 * Stores a failed sync: one more consecutive failure, counted in SQL from the row as it is now,
 * and the next attempt after the backoff that count gives, in one transaction. Null when the row
 * holds the outcome of a sync started after this one (or is gone): nothing was written.
 */
export function storeFailure(
  sql: DriverSql,
  settings: SyncSettings,
  sourceRowId: number,
  { attemptAt, ticket }: SyncMark,
  outcome: SyncOutcome,
): Promise<{ failures: number; nextSyncAt: Date } | null> {
  const error = clipText(outcome.error ?? 'failed', MAX_ERROR_LENGTH);
  return sql.$transaction(async (tx) => {
    const failure = { at: attemptAt, error, durationMs: outcome.durationMs, ticket };
    const failures = await recordSyncFailure(tx, sourceRowId, failure);
    if (failures === null) return null;
    const nextSyncAt = new Date(attemptAt.getTime() + syncDelayMs(settings, failures));
    await recordNextSync(tx, sourceRowId, nextSyncAt);
    return { failures, nextSyncAt };
  });
}

/** How long after a sync's start the next is due: SYNC_INTERVAL_MS, doubled per consecutive failure up to SYNC_BACKOFF_MAX_MS. */
export function syncDelayMs(settings: SyncSettings, failures: number): number {
  if (failures === 0) return settings.intervalMs;
  return Math.min(settings.backoffMaxMs, settings.intervalMs * 2 ** (failures - 1));
}

/** What of a source row tells when its next sync is due. */
export interface SyncSchedule {
  nextSyncAt: Date | null;
  syncAttemptAt: Date | null;
  syncFailures: number;
}

/**
 * Whether a source's next sync is due by `soon`: at the time its last outcome stored, or earlier
 * when the settings in force now give an earlier one. The stored time counted the settings of the
 * instance that synced: after a restart with a lower SYNC_INTERVAL_MS (an operator who wants new
 * apps sooner) the source waited out the old interval, 5 minutes by default, up to an hour of
 * backoff. A higher interval never delays a time already stored.
 */
export function isSyncDue(source: SyncSchedule, settings: SyncSettings, soon: Date): boolean {
  if (source.nextSyncAt === null) return true;
  const stored = source.nextSyncAt.getTime();
  const bySettings =
    source.syncAttemptAt === null
      ? stored
      : source.syncAttemptAt.getTime() + syncDelayMs(settings, source.syncFailures);
  return Math.min(stored, bySettings) <= soon.getTime();
}
