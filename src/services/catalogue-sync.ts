import { type MarketSourceClient, MarketSourceError, type SourceIndex } from '../adapters/market-source/port.js';
import { findCatalogSummaries, findMarketSource, recordUnchangedSync, takeSyncTicket } from '../db/catalogue-sql.js';
import type { Db } from '../db/client.js';
import { type DriverSql, driverSqlOf } from '../db/driver-sql.js';
import { isUniqueViolation } from '../db/hot-path-sql.js';
import type { MarketSourceRow } from '../db/models.js';
import { NotFoundError } from '../domain/errors.js';
import { byText } from '../domain/text-order.js';
import type { Logger } from '../platform/logger.js';
import { changedApps, fingerprint, keptHash, readEntries, refuseNameClashes, rejectionLog } from './catalogue-plan.js';
import {
  type CatalogueChange,
  describe,
  elapsed,
  emptyOutcome,
  type SourceSyncStatus,
  SyncCut,
  type SyncOutcome,
  type SyncRound,
  type SyncSettings,
} from './catalogue-sync-outcome.js';
import { isSyncDue, type SyncMark, storeFailure, successStatus } from './catalogue-sync-record.js';
import {
  type CatalogueWrite,
  SourceGone,
  type StoredUpsert,
  SyncSuperseded,
  writeCatalogue,
} from './catalogue-writes.js';
import { SyncFlights } from './sync-flights.js';

export type { CatalogueChange, SourceSyncStatus, SyncOutcome, SyncSettings };

/**
 * The Syncer: keeps each remote market source's catalogue in the database, as the original's
 * Syncer does (seed 002). One sync of a source:
 * 1. `hash`: one small request; the hash the last complete sync kept (keptHash) ends it there;
 * 2. `info`: the index of every app; each app's summary is fingerprinted, and only apps whose
 *    fingerprint is new or changed are read further;
 * 3. `applications/info` for those, in batches of MAX_DETAIL_BATCH, DETAIL_CONCURRENCY at a time;
 * 4. one transaction: changed entries upserted, vanished apps removed, the source's sync status.
 * A failure anywhere leaves the catalogue as the last good sync wrote it, and is recorded on the
 * source (its error, consecutive failures, the next attempt after an exponential backoff).
 * Sources are independent: each has its own schedule, failures and single flight. A stop (or a
 * leader stepping down) cuts the syncs running short (`interrupt`, `stop`): their calls in flight
 * are abandoned, nothing is written, and the source's status stays as it was (no failure, no
 * backoff: the next sync, here or on the next leader, starts over).
 *
 * Syncs of one source can run side by side (the leader's scheduled one, a syncMarketSource on
 * another instance); the database orders them. Each sync takes the source row's next `syncTicket`
 * at its start (one UPDATE), and each write of its outcome (the catalogue with its status, an
 * unchanged hash, a failure) requires the row's `syncOutcomeTicket` below its own, and sets it: the
 * sync that started later (read the source later) wins whatever order they finish in, the earlier
 * one's write is dropped (SyncSuperseded, logged). Chosen over a per-source cluster lock: held
 * across a source's slow answers, a lock makes the other instance wait (or give up) and needs an
 * expiry for a holder that died (Redis is not always there, advisory locks not on SQLite); a ticket
 * is one statement on both providers, never waits, and leaves nothing behind a crash.
 */

export class CatalogueSyncer {
  private readonly flights = new SyncFlights<SyncOutcome>();
  /**
   * The per-sync statements (the source row, the unchanged-hash status, the stored fingerprints)
   * straight on the driver (db/driver-sql.ts): through Prisma they cost more CPU than the sync of
   * an unchanged source otherwise spends.
   */
  private readonly sql: DriverSql;
  /**
   * The consecutive failures of each source this process logged, until a success ends them (one
   * log line for the recovery; the stored count is the one the API reports).
   */
  private readonly failing = new Map<string, number>();
  /** Fired to cut the syncs running short; replaced after an interrupt, kept fired after a stop. */
  private cut = new AbortController();
  private stopped = false;

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    private readonly settings: SyncSettings,
    /** Null for a source that has nothing to sync from (the bundled file switched off). */
    private readonly clientFor: (source: MarketSourceRow) => MarketSourceClient | null,
    /** Called after a sync committed a change (not for an unchanged or failed one). */
    private readonly onChange: (change: CatalogueChange) => Promise<void>,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.sql = driverSqlOf(db);
  }

  /**
   * Syncs one source now, whatever its schedule, from what it serves from now on: a sync of it
   * already running here read it before, so it is followed by one more, which every request made
   * meanwhile shares (SyncFlights). A failed sync resolves (with `error`); an unknown source
   * rejects with NOT_FOUND.
   */
  async syncNow(sourceId: string): Promise<SyncOutcome> {
    // The row is read before every sync, never remembered from an earlier one: a source removed
    // and added again (on any instance) under the same id has another URL and credentials, and a
    // remembered row sent the old ones its first request. One single-row read: an unchanged-hash
    // sync stays within its 2 ms of CPU (bench catalogue-unchanged).
    const outcome = await this.flights.after(sourceId, async () => this.sync(await this.read(sourceId)));
    // The sync was of a row removed meanwhile: the source may have been added again under the
    // same id, and is synced as it is now (or is NOT_FOUND).
    return outcome.gone ? this.flights.after(sourceId, async () => this.sync(await this.read(sourceId))) : outcome;
  }

  /** The source's row as stored now (NOT_FOUND when it is gone). */
  private async read(sourceId: string): Promise<MarketSourceRow> {
    const source = await findMarketSource(this.sql, sourceId);
    if (!source) throw new NotFoundError(`Market source ${sourceId} does not exist`);
    return source;
  }

  /**
   * Syncs the remote sources that read the bundled catalogue file (no base URL). Start-up awaits
   * it, so that the catalogue is there from the first request; it reads a local file, and only
   * when the file changed.
   */
  async syncBundled(): Promise<SyncOutcome[]> {
    const bundled = await this.db.marketSource.findMany({
      where: { type: 'remote', OR: [{ baseUrl: null }, { baseUrl: '' }, { baseUrl: { startsWith: 'bundled:' } }] },
    });
    const outcomes: SyncOutcome[] = [];
    for (const source of bundled) outcomes.push(await this.syncNow(source.sourceId));
    return outcomes;
  }

  /** Syncs, one after the other, every remote source whose next sync is due. */
  async syncDue(): Promise<SyncOutcome[]> {
    return Promise.all(await this.startDue());
  }

  /**
   * Starts the sync of every remote source that is due, each on its own, and resolves once they
   * are started, with each one's outcome to come: the scheduled job does not wait for them, so a
   * slow source (a first sync of 50,000 apps, a source answering at its timeout) never holds up
   * another source's schedule. A source still syncing is joined, not synced twice.
   */
  async startDue(): Promise<Promise<SyncOutcome>[]> {
    // Due a little early: a sync's next time counts from its start, a moment after the job's tick,
    // so the next tick found it not yet due and skipped it (a 5 s interval synced every 10 s).
    const soon = new Date(this.now().getTime() + Math.min(1000, this.settings.intervalMs / 5));
    // Every remote row is read (one per source an admin added): whether one is due depends on the settings too.
    const remote = await this.db.marketSource.findMany({ where: { type: 'remote' }, orderBy: { sourceId: 'asc' } });
    const due = remote.filter((source) => isSyncDue(source, this.settings, soon));
    // The rows read are the ones synced. A sync that throws (its failure not even recorded) resolves with the error.
    return due.map((source) =>
      this.flights
        .join(source.sourceId, () => this.sync(source))
        .catch((error: unknown) => ({
          ...emptyOutcome(source.sourceId),
          error: describe(error),
        })),
    );
  }

  /**
   * Cuts the syncs running short (`why`: a leader stepping down), and resolves once none runs;
   * later syncs run as usual. Waiting for them instead held a stop for as long as a slow source
   * took to answer a whole sync, which no timeout bounds (only each call).
   */
  interrupt(why: string): Promise<void> {
    const cut = this.cut;
    if (!this.stopped) this.cut = new AbortController();
    cut.abort(new SyncCut(why));
    return this.idle();
  }

  /** As `interrupt`, for good: a sync asked for from now on is cut short at once (the server is stopping). */
  stop(why: string): Promise<void> {
    this.stopped = true;
    return this.interrupt(why);
  }

  /** The sources whose sync is running, for a stop that overran its time to name them. */
  syncing(): string[] {
    return this.flights.keys();
  }

  /** Resolves once no sync is running (nor waits to follow one). */
  idle(): Promise<void> {
    return this.flights.idle();
  }

  /** Every remote source's sync status, as stored (so any instance reports the leader's syncs). */
  async status(): Promise<SourceSyncStatus[]> {
    // One after the other, the sources first: a sync committed between two reads at once showed
    // its time with the catalogue of before (appCount 0 after a first sync, on PostgreSQL).
    const sources = await this.db.marketSource.findMany({ where: { type: 'remote' } });
    sources.sort((a, b) => byText(a.sourceId, b.sourceId));
    const counts = await this.db.catalogApp.groupBy({ by: ['sourceId'], _count: { _all: true } });
    const apps = new Map(counts.map((count) => [count.sourceId, count._count._all]));
    return sources.map((source) => ({
      sourceId: source.sourceId,
      active: source.isActive && source.activeRemote !== null,
      lastSyncAt: source.syncedAt,
      lastAttemptAt: source.syncAttemptAt,
      lastError: source.syncError,
      consecutiveFailures: source.syncFailures,
      durationMs: source.syncDurationMs,
      nextSyncAt: source.nextSyncAt,
      appCount: apps.get(source.sourceId) ?? 0,
    }));
  }

  /**
   * One sync of `source`, a row just read. `reread`: the row moved while its hash was asked, and
   * this is the sync again from the row as it is now (once: not again). `ticket`: the sync's place
   * in the row's order (taken at its start; kept by the sync again of the same row).
   */
  private async sync(source: MarketSourceRow, round: SyncRound = {}): Promise<SyncOutcome> {
    const { again = false, reread = false, signal = this.cut.signal } = round;
    const started = performance.now();
    const attemptAt = this.now();
    const outcome = emptyOutcome(source.sourceId);
    // Before the first request to the source: a sync that starts later takes a later ticket.
    const ticket = round.ticket ?? (await takeSyncTicket(this.sql, source.id));
    if (ticket === null) return this.goneOutcome(new SourceGone(source.sourceId), started);
    const mark = { attemptAt, ticket };
    try {
      signal.throwIfAborted();
      const client = this.clientFor(source);
      if (!client) {
        outcome.error = 'nothing to sync from: no base URL, and BUNDLED_CATALOGUE_FILE is off';
        return outcome;
      }
      const { hash } = await client.hash(signal);
      if (hash === source.catalogHash) {
        // Only the source's status moves: no catalogue row is written.
        outcome.durationMs = elapsed(started);
        const { at, durationMs, nextSyncAt } = successStatus(this.settings, mark, outcome, hash);
        const unchanged = { sourceId: source.sourceId, baseUrl: source.baseUrl, catalogHash: hash };
        if ((await recordUnchangedSync(this.sql, unchanged, { at, durationMs, nextSyncAt, ticket })) === 1) {
          this.logRecovery(source);
          return outcome;
        }
        // The row moved meanwhile (another instance synced it, or it was removed and added again):
        // compare with it as it is now, and ask its URL, which may be another.
        if (!reread) {
          const now = await findMarketSource(this.sql, source.sourceId);
          if (!now) throw new SourceGone(source.sourceId);
          if (now.id !== source.id) return this.sync(now, { again, reread: true, signal });
          if (now.syncOutcomeTicket >= ticket) throw new SyncSuperseded(source.sourceId, ticket, now.syncOutcomeTicket);
          return this.sync(now, { again, reread: true, signal, ticket });
        }
      }
      outcome.read = true;
      const index = await client.index(signal);
      const write = await this.plan(source, index, client, outcome, signal);
      outcome.durationMs = elapsed(started);
      // Asked before the index, the hash call's answer is never newer than what was read, but the
      // index may be older (keptHash). A hash only for a complete sync: with entries rejected, the
      // next sync reads the index again (and, by their fingerprints, only the apps still missing).
      const kept = keptHash(hash, index.hash, source.catalogHash);
      if (kept.lag) {
        const lagging = { sourceId: source.sourceId, hash, indexHash: index.hash };
        this.logger.warn(lagging, 'a market source index lags its hash call; it is read again at the next sync');
      }
      const complete = outcome.rejected.length === 0;
      const status = successStatus(this.settings, mark, outcome, complete ? kept.hash : null, kept.lag);
      // Nothing of a sync cut short is written; once the write began, it commits as one.
      signal.throwIfAborted();
      // What it really changed, and the duration it stored, its own time included.
      Object.assign(outcome, await writeCatalogue(this.db, write, status, () => elapsed(started)));
    } catch (error) {
      // Whatever failed after the cut (a call abandoned, a batch refused meanwhile) is the cut's.
      if (signal.aborted) return this.cutShort(source, signal, started);
      if (error instanceof SourceGone) return this.goneOutcome(error, started);
      if (error instanceof SyncSuperseded) return this.superseded(error, started);
      // Another instance wrote the same entries first (instances starting together each sync the
      // bundled file; a syncMarketSource beside the leader's run): sync again from what it wrote.
      if (!again && isUniqueViolation(error)) {
        const fresh = await this.db.marketSource.findUnique({ where: { id: source.id } });
        if (fresh) return this.sync(fresh, { again: true, signal, ticket });
      }
      outcome.error = describe(error);
      outcome.durationMs = elapsed(started);
      await this.recordFailure(source, mark, outcome);
      return outcome;
    }
    this.logRecovery(source);
    if (outcome.rejected.length > 0) {
      const fields = { sourceId: outcome.sourceId, ...rejectionLog(outcome.rejected) };
      this.logger.warn(fields, 'a market source sync rejected entries; each keeps its stored row, if any');
    }
    if (outcome.added.length + outcome.updated.length + outcome.removed.length > 0) {
      // After the commit: the callback owns its failures (app/catalogue.ts logs them), so that a
      // sync that changed the catalogue never reports itself as failed.
      await this.onChange({
        sourceId: outcome.sourceId,
        added: outcome.added,
        updated: outcome.updated,
        removed: outcome.removed,
      });
    }
    return outcome;
  }

  /** Compares the index with the stored catalogue and reads the details of what changed. */
  private async plan(
    { id: sourceRowId, sourceId }: MarketSourceRow,
    index: SourceIndex,
    client: MarketSourceClient,
    outcome: SyncOutcome,
    signal: AbortSignal,
  ): Promise<CatalogueWrite> {
    const storedRows = await findCatalogSummaries(this.sql, sourceId);
    const stored = new Map(storedRows.map((row) => [row.appId, row.summaryHash]));
    if (index.apps.length === 0 && index.skipped.length === 0 && stored.size > 0) {
      // A source reloading, a proxy's empty answer: never read as "every app was withdrawn".
      throw new MarketSourceError(
        'garbage',
        `info: the index lists no apps while ${stored.size} are stored; the catalogue is kept`,
      );
    }
    // A new app's fingerprint is taken while the details are on their way (readEntries).
    const summaries = new Map(index.apps.map((app) => [app.id, app]));
    const { wanted, fingerprints } = await changedApps(index.apps, stored);
    // An app the source listed but whose summary was unreadable is kept as it was, not removed.
    const skipped = new Set(index.skipped.map((app) => app.id));
    for (const app of index.skipped) outcome.rejected.push(`app ${app.id}: ${app.reason}`);
    outcome.removed = [...stored.keys()].filter((id) => !summaries.has(id) && !skipped.has(id));
    const listed = (id: string) => {
      const { name, version, raw } = summaries.get(id) as SourceIndex['apps'][number]; // `wanted` are listed apps
      return { name, version, fingerprint: fingerprints.get(id) ?? fingerprint(raw) };
    };
    const readings = await readEntries(client, wanted, listed, { maxBytes: this.settings.maxCatalogueBytes, signal });
    const candidates = new Map<string, StoredUpsert>();
    // In the index's order, whatever order the answers came in.
    for (const id of wanted) {
      const reading = readings.get(id) ?? { ok: false as const, reason: `app ${id}: not sent by the source` };
      if (reading.ok) candidates.set(id, reading.row);
      else outcome.rejected.push(reading.reason);
    }
    for (const [id, reason] of refuseNameClashes(storedRows, candidates, new Set(outcome.removed))) {
      candidates.delete(id);
      outcome.rejected.push(reason);
    }
    return { sourceId, sourceRowId, upserts: [...candidates.values()], removals: outcome.removed };
  }

  /**
   * Records a failure, unless a sync started after this one stored its outcome (a later success
   * stays; a later failure counted already).
   */
  private async recordFailure(source: MarketSourceRow, mark: SyncMark, outcome: SyncOutcome) {
    const reason = { sourceId: source.sourceId, error: outcome.error };
    const line = 'a market source could not be synced; its catalogue stays as the last good sync wrote it';
    const stored = await storeFailure(this.sql, this.settings, source.id, mark, outcome).catch((error: unknown) => {
      // Logged all the same: the failure to store it (the database gone) is the caller's.
      this.logger.warn(reason, line);
      throw error;
    });
    if (!stored) {
      this.logger.info(reason, 'a market source sync failed after a later one stored its outcome; not recorded');
      return;
    }
    this.failing.set(source.sourceId, stored.failures);
    this.logger.warn({ ...reason, consecutiveFailures: stored.failures, nextSyncAt: stored.nextSyncAt }, line);
  }

  private goneOutcome(error: SourceGone, started: number): SyncOutcome {
    return { ...emptyOutcome(error.sourceId), error: error.message, gone: true, durationMs: elapsed(started) };
  }

  /** A sync started later stored its outcome first: this one's older reading is dropped, not an error. */
  private superseded(error: SyncSuperseded, started: number): SyncOutcome {
    const fields = { sourceId: error.sourceId, ticket: error.ticket, storedTicket: error.storedTicket };
    this.logger.info(fields, 'a market source sync was superseded by one started later; its reading was dropped');
    return { ...emptyOutcome(error.sourceId), superseded: true, durationMs: elapsed(started) };
  }

  /** A sync cut short: not the source's failure, so nothing is recorded on it (its next sync is due as before). */
  private cutShort(source: MarketSourceRow, signal: AbortSignal, started: number): SyncOutcome {
    const why = signal.reason instanceof SyncCut ? signal.reason.message : 'the sync was cut short';
    const error = `sync cut short: ${why}; nothing was written, and the next sync starts over`;
    this.logger.info({ sourceId: source.sourceId, reason: why }, 'a market source sync was cut short');
    return { ...emptyOutcome(source.sourceId), error, durationMs: elapsed(started) };
  }

  /** A success after failures this process logged is worth a line: the warnings stop there. */
  private logRecovery(source: MarketSourceRow): void {
    const failuresBefore = this.failing.get(source.sourceId);
    if (failuresBefore === undefined) return;
    this.failing.delete(source.sourceId);
    this.logger.info({ sourceId: source.sourceId, failuresBefore }, 'a market source syncs again after failures');
  }
}
