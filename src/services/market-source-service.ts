import { z } from 'zod';
import type { Viewer } from '../auth/viewer.js';
import type { Db } from '../db/client.js';
import { providerOf } from '../db/driver-sql.js';
import { isUniqueViolation } from '../db/hot-path-sql.js';
import type { MarketSourceRow } from '../db/models.js';
import { MAX_SOURCE_ID_LENGTH, SOURCE_ID_CHARACTERS, SOURCE_ID_RULE } from '../domain/app-key.js';
import { ConflictError, ForbiddenError, InvalidStateError, NotFoundError, ValidationError } from '../domain/errors.js';
import { parseInput, shownText } from '../domain/parse-input.js';
import type { ChangeFeed } from '../events/change-feed.js';
import { readMarketSourceUrl } from '../platform/config-values.js';
import { REDACTED, redactSecrets } from '../platform/redact.js';
import { type CatalogService, inSourceOrder, isOfferedTo } from './catalog-service.js';
import type { HistoryEntry, HistoryService } from './history-service.js';

export const MAX_SOURCE_TITLE_LENGTH = 100;
export const MAX_SOURCE_DESCRIPTION_LENGTH = 1_000;
/** Priorities sort sources (higher first); the defaults are 100 (remote) and 50 (local). */
export const MIN_PRIORITY = 0;
export const MAX_PRIORITY = 1_000;
/** Priority of a source added without one: the original's default for remote sources. */
const DEFAULT_PRIORITY = 100;

const sourceId = z
  .string()
  .min(1, 'sourceId must not be empty')
  .max(MAX_SOURCE_ID_LENGTH, `sourceId must be at most ${MAX_SOURCE_ID_LENGTH} characters`)
  .regex(SOURCE_ID_CHARACTERS, `sourceId ${SOURCE_ID_RULE}`);

/**
 * A market source's base URL (readMarketSourceUrl, the rule MARKET_SOURCE_URL is held to too).
 * Private and loopback addresses are accepted on purpose: self-hosted market sources live there.
 * That is also why only admins may add sources — the server will fetch whatever address is stored
 * here. Userinfo (`user:password@`) is accepted for sources behind basic authentication; it is
 * never answered or logged (see schema/market-sources.ts).
 */
const baseUrl = z.string().transform((value, context) => {
  const read = readMarketSourceUrl(value);
  if (read.problem === null) return read.url;
  context.addIssue({ code: 'custom', message: `baseUrl ${read.problem}` });
  return z.NEVER;
});

const addInput = z.object({
  sourceId,
  title: shownText('title', MAX_SOURCE_TITLE_LENGTH),
  baseUrl,
  description: z
    .string()
    .trim()
    .max(MAX_SOURCE_DESCRIPTION_LENGTH, `description must be at most ${MAX_SOURCE_DESCRIPTION_LENGTH} characters`)
    .nullish(),
  priority: z
    .number()
    .int('priority must be a whole number')
    .min(MIN_PRIORITY, `priority must be between ${MIN_PRIORITY} and ${MAX_PRIORITY}`)
    .max(MAX_PRIORITY, `priority must be between ${MIN_PRIORITY} and ${MAX_PRIORITY}`)
    .nullish(),
});
const selectInput = z.object({ sourceId, nsfw: z.boolean() });
const sourceRef = z.object({ sourceId });

export type AddSourceInput = z.input<typeof addInput>;
export type SelectSourceInput = z.input<typeof selectInput>;

/** What a removal took away. */
export interface SourceRemoval {
  sourceId: string;
  catalogAppsRemoved: number;
}

/** Runs one sync of a source now and records its outcome on the MarketSource row (the Syncer). */
export type SyncSource = (sourceId: string) => Promise<void>;

const ACTIVE_REMOTE = 'remote';

/** `scheme://user:password@` in a URL, anywhere in a text: the credentials part. */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]*@/gi;

/**
 * A base URL as it may be shown: a source behind basic authentication has its credentials in
 * the stored URL (the Syncer needs them), and they are never answered.
 */
export function publicUrl(url: string): string {
  return url.replace(USERINFO, `$1${REDACTED}@`);
}

/** A sync's stored error as it may be shown: without the URL's credentials or any other secret it names. */
export function publicSyncError(error: string): string {
  return redactSecrets(publicUrl(error));
}

/**
 * Market-source management (market-domain.md §6.1): admins add remote sources, choose the single
 * active remote, remove inactive ones and ask for a sync. Every change is a `system` history
 * record of the admin's, and drops the catalogue's cached lookups of the source.
 *
 * Other instances of a cluster keep their cached lookups up to LOOKUP_CACHE_MS longer.
 */
export class MarketSourceService {
  constructor(
    private readonly db: Db,
    private readonly catalog: CatalogService,
    private readonly history: HistoryService,
    private readonly feed: ChangeFeed,
    private readonly sync: SyncSource,
    /** After a source was added or removed: announces its installed apps (CatalogueChanges). */
    private readonly announceApps: (sourceId: string) => Promise<void> = async () => {},
  ) {
    this.postgres = providerOf(db) === 'postgresql';
  }

  /** Selections lock the remote sources first on PostgreSQL (see trySelect). */
  private readonly postgres: boolean;

  /**
   * The sources whose apps are offered (the active remote and every local source), or with
   * `includeInactive` every source. Only admins may ask for the inactive ones: a non-admin asking
   * is refused rather than quietly given less than asked for.
   */
  async list(
    viewer: Viewer,
    { includeInactive }: { includeInactive?: boolean | null } = {},
  ): Promise<MarketSourceRow[]> {
    if (!includeInactive) return this.catalog.marketSources();
    this.assertAdmin(viewer, 'list inactive market sources');
    return inSourceOrder(await this.db.marketSource.findMany());
  }

  /** One source by id, as `list` would show it to the viewer (isOfferedTo; null as for no such source). */
  async get(viewer: Viewer, sourceId: string): Promise<MarketSourceRow | null> {
    const source = await this.catalog.marketSource(sourceId);
    return source && isOfferedTo(viewer, source) ? source : null;
  }

  /** How many catalogue apps each source holds, in one query. */
  async appCounts(sourceIds: readonly string[]): Promise<number[]> {
    const groups = await this.db.catalogApp.groupBy({
      by: ['sourceId'],
      where: { sourceId: { in: [...sourceIds] } },
      _count: { _all: true },
    });
    const counts = new Map(groups.map((group) => [group.sourceId, group._count._all]));
    return sourceIds.map((id) => counts.get(id) ?? 0);
  }

  /**
   * Adds a remote source, inactive until selected. An existing sourceId, or one differing from the
   * new one only in letter case, is a CONFLICT naming it. Two adds at once both pass the check;
   * the unique index on lower("sourceId") (migration 0021) refuses the later insert, answered the same.
   */
  async add(viewer: Viewer, rawInput: AddSourceInput): Promise<MarketSourceRow> {
    this.assertAdmin(viewer, 'add market sources');
    const input = parseInput(addInput, rawInput);
    try {
      const [row, records] = await this.db.$transaction(async (tx) => {
        const existing = await sameIdButCase(tx, input.sourceId);
        if (existing !== null) throw idConflict(input.sourceId, existing);
        const created = await tx.marketSource.create({
          data: {
            sourceId: input.sourceId,
            title: input.title,
            type: 'remote',
            baseUrl: input.baseUrl,
            description: input.description ?? null,
            priority: input.priority ?? DEFAULT_PRIORITY,
            isActive: false,
            activeRemote: null,
          },
        });
        return [created, await this.history.record([this.entry(viewer, `Market source ${input.sourceId} added`)], tx)];
      });
      this.changed(input.sourceId, records);
      // A source added under a removed one's id takes its installed apps back.
      await this.announceApps(input.sourceId);
      return row;
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      throw idConflict(input.sourceId, (await sameIdButCase(this.db, input.sourceId)) ?? input.sourceId);
    }
  }

  /**
   * Makes a remote source the single active one, with the nsfw flag, in one transaction. Two
   * selections at once on PostgreSQL: the later one clears the row active when it started, not
   * the one the earlier selection just made active, and the unique index on `activeRemote`
   * refuses its write; run again, it sees the new state. A second refusal (a third selection
   * interfering) answers CONFLICT.
   */
  async select(viewer: Viewer, rawInput: SelectSourceInput): Promise<MarketSourceRow> {
    this.assertAdmin(viewer, 'select the market source');
    const input = parseInput(selectInput, rawInput);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.trySelect(viewer, input.sourceId, input.nsfw);
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        if (attempt >= 2) {
          throw new ConflictError('Another selection of the active market source ran at the same time; try again');
        }
      }
    }
  }

  private async trySelect(viewer: Viewer, sourceId: string, nsfw: boolean): Promise<MarketSourceRow> {
    const [row, records, previous] = await this.db.$transaction(async (tx) => {
      // PostgreSQL: the remote sources' rows locked first, in one order, so that selections run
      // one after the other. Locking them as the updates below reach them, two selections took
      // them in opposite orders and one was aborted as a deadlock (an "Unexpected error." among
      // ten at once). SQLite runs one writing transaction at a time anyway.
      if (this.postgres) {
        await tx.$queryRaw`SELECT 1 FROM "MarketSource" WHERE "type" = 'remote' ORDER BY "sourceId" FOR UPDATE`;
      }
      const source = await tx.marketSource.findUnique({ where: { sourceId } });
      if (!source) throw new NotFoundError(`Market source ${sourceId} does not exist`);
      if (source.type !== 'remote') {
        throw new ValidationError(`Market source ${sourceId} is a local source; only remote sources can be selected`, [
          { path: 'sourceId', message: 'names a local source' },
        ]);
      }
      const others = { type: 'remote', NOT: { sourceId }, OR: [{ activeRemote: ACTIVE_REMOTE }, { isActive: true }] };
      const before = await tx.marketSource.findMany({ where: others, select: { sourceId: true } });
      await tx.marketSource.updateMany({ where: others, data: { activeRemote: null, isActive: false } });
      const selected = await tx.marketSource.update({
        where: { sourceId },
        data: { activeRemote: ACTIVE_REMOTE, isActive: true, nsfw },
      });
      const message = `Market source ${sourceId} selected${nsfw ? ' (nsfw apps shown)' : ''}`;
      return [selected, await this.history.record([this.entry(viewer, message)], tx), before];
    });
    this.changed(sourceId, records);
    for (const { sourceId: other } of previous) this.changed(other, []);
    return row;
  }

  /**
   * Removes an inactive remote source and its catalogue, in one transaction. Apps installed from
   * it keep their state and tasks. The active remote is refused (select another one first), and
   * so are the local sources, which are built in.
   */
  async remove(viewer: Viewer, rawInput: { sourceId: string }): Promise<SourceRemoval> {
    this.assertAdmin(viewer, 'remove market sources');
    const { sourceId: id } = parseInput(sourceRef, rawInput);
    const [removal, records] = await this.db.$transaction(async (tx) => {
      const source = await tx.marketSource.findUnique({ where: { sourceId: id } });
      if (!source) throw new NotFoundError(`Market source ${id} does not exist`);
      if (source.type !== 'remote') {
        throw new ValidationError(`Market source ${id} is a built-in local source and cannot be removed`, [
          { path: 'sourceId', message: 'names a local source' },
        ]);
      }
      const activeError = () =>
        new InvalidStateError(`Market source ${id} is the active source; select another one before removing it`);
      if (source.activeRemote !== null || source.isActive) throw activeError();
      // The row goes first, and only while still inactive: a selection committed since the read
      // above leaves nothing deleted (on PostgreSQL this statement re-reads the row it waited for).
      const { count } = await tx.marketSource.deleteMany({
        where: { sourceId: id, activeRemote: null, isActive: false },
      });
      if (count === 0) throw activeError();
      // Categories explicitly: SQLite enforces the cascade only with its foreign_keys pragma on.
      await tx.catalogAppCategory.deleteMany({ where: { app: { sourceId: id } } });
      const apps = await tx.catalogApp.deleteMany({ where: { sourceId: id } });
      const message = `Market source ${id} removed with its ${apps.count} catalogue apps`;
      const written = await this.history.record([this.entry(viewer, message)], tx);
      return [{ sourceId: id, catalogAppsRemoved: apps.count }, written] as const;
    });
    this.changed(id, records);
    await this.announceApps(id);
    return removal;
  }

  /** Syncs a source now (the Syncer records the outcome on its row) and returns the row as it is then. */
  async syncNow(viewer: Viewer, rawInput: { sourceId: string }): Promise<MarketSourceRow> {
    this.assertAdmin(viewer, 'sync market sources');
    const { sourceId: id } = parseInput(sourceRef, rawInput);
    const missing = () => new NotFoundError(`Market source ${id} does not exist`);
    const source = await this.db.marketSource.findUnique({ where: { sourceId: id }, select: { type: true } });
    if (!source) throw missing();
    if (source.type !== 'remote') {
      // Local sources (upload, studio, cli) have nothing to sync from: their apps come in otherwise.
      throw new ValidationError(`Market source ${id} is local: only remote sources sync`, [
        { path: 'sourceId', message: 'a local source' },
      ]);
    }
    try {
      await this.sync(id);
    } finally {
      this.catalog.forgetSource(id);
    }
    // Removed while it synced: gone is gone.
    const row = await this.db.marketSource.findUnique({ where: { sourceId: id } });
    if (!row) throw missing();
    return row;
  }

  private assertAdmin(viewer: Viewer, what: string): void {
    if (!viewer.isAdmin) throw new ForbiddenError(`Only admins may ${what}`);
  }

  private entry(viewer: Viewer, message: string): HistoryEntry {
    return { type: 'system', message, app: null, userId: viewer.userId, time: new Date() };
  }

  /**
   * After a commit: lookups of the source read it again, here at once and on every instance once
   * the announcement arrives (a store page reads `catalog` again on it), and the history records
   * are announced.
   */
  private changed(sourceId: string, records: Parameters<ChangeFeed['history']>[0]): void {
    this.catalog.forgetSource(sourceId);
    this.feed.catalogue({ sourceId, added: [], updated: [], removed: [], sourcesChanged: true });
    this.feed.history(records);
  }
}

/** The id of the source whose id is `sourceId` ignoring letter case (the same one first), or null. */
async function sameIdButCase(db: Pick<Db, 'marketSource'>, sourceId: string): Promise<string | null> {
  // Source ids are ASCII (SOURCE_ID_CHARACTERS), so lower-casing folds them as lower() does in the index.
  const folded = sourceId.toLowerCase();
  const ids = (await db.marketSource.findMany({ select: { sourceId: true } })).map((row) => row.sourceId);
  return ids.includes(sourceId) ? sourceId : (ids.find((id) => id.toLowerCase() === folded) ?? null);
}

/** The CONFLICT of adding `sourceId` beside `existing`, the same id or the same but for letter case. */
function idConflict(sourceId: string, existing: string): ConflictError {
  return new ConflictError(
    existing === sourceId
      ? `Market source ${sourceId} already exists`
      : `Market source ${sourceId} differs from the existing source ${existing} only in letter case: ids must differ in more than case`,
  );
}
