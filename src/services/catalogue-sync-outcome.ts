import { MarketSourceError } from '../adapters/market-source/port.js';
import { SourceGone } from './catalogue-writes.js';

/** What a sync of the Syncer (catalogue-sync.ts) settles with, and the helpers that word it. */

export interface SyncSettings {
  intervalMs: number;
  /** The longest wait after failures (SYNC_BACKOFF_MAX_MS, at least intervalMs). */
  backoffMaxMs: number;
  /** Most entry text one sync reads (SYNC_MAX_CATALOGUE_BYTES; see readEntries). */
  maxCatalogueBytes: number;
}

/** What a sync changed, for the catalogue-change announcement and the history record. */
export interface CatalogueChange {
  sourceId: string;
  added: string[];
  updated: string[];
  removed: string[];
}

export interface SyncOutcome extends CatalogueChange {
  /** False when the source's hash had not moved (nothing read past `hash`). */
  read: boolean;
  /** Entries the source sent that were not entries (each with its reason); their old rows stay. */
  rejected: string[];
  /** Why the sync failed; the catalogue is unchanged then. */
  error: string | null;
  /** The source's row was removed while the sync ran (SourceGone). */
  gone?: boolean;
  /**
   * A sync that started later (here or on another instance) stored its outcome first: this one's
   * older reading was dropped, nothing of it written (SyncSuperseded).
   */
  superseded?: boolean;
  durationMs: number;
}

/** One remote source's sync figures (the seed's Syncer status), for the `syncer` component. */
export interface SourceSyncStatus {
  sourceId: string;
  active: boolean;
  /** The last successful sync (an unchanged hash counts: the source was checked). */
  lastSyncAt: Date | null;
  lastAttemptAt: Date | null;
  /** The last failure's reason while failing; after a success, entries it rejected, else null. */
  lastError: string | null;
  consecutiveFailures: number;
  durationMs: number | null;
  nextSyncAt: Date | null;
  appCount: number;
}

/** What cuts syncs short, with why (`the server is stopping`, `this instance stopped leading`). */
export class SyncCut extends Error {}

export interface SyncRound {
  again?: boolean;
  reread?: boolean;
  signal?: AbortSignal;
  /** The sync's ticket, taken at its start (takeSyncTicket); a sync again of the same row keeps it. */
  ticket?: number;
}

export function emptyOutcome(sourceId: string): SyncOutcome {
  return { sourceId, read: false, added: [], updated: [], removed: [], rejected: [], error: null, durationMs: 0 };
}

export function describe(error: unknown): string {
  if (error instanceof MarketSourceError || error instanceof SourceGone) return error.message;
  // A database failure while writing: say so without the driver's whole text.
  // Prisma's messages may start with a line break: keep the first line that says something.
  const lines = String((error as Error)?.message ?? error).split('\n');
  return `could not store the catalogue: ${lines.map((line) => line.trim()).find(Boolean) ?? 'unknown error'}`;
}

export function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}
