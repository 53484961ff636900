import type { Viewer } from '../auth/viewer.js';
import { PRISMA_PARAMETERS } from '../db/chunks.js';
import type { Db } from '../db/client.js';
import { type DriverSql, driverSqlOf } from '../db/driver-sql.js';
import { findCatalogApp } from '../db/hot-path-sql.js';
import {
  appCategories,
  CATALOG_LIST_COLUMNS,
  conditionsSql,
  countRows,
  pageRows,
  type Relations,
} from '../db/list-sql.js';
import type { CatalogAppRow, CatalogListRow, CatalogView, MarketSourceRow, Prisma } from '../db/models.js';
import { MAX_SOURCE_ID_LENGTH } from '../domain/app-key.js';
import { checkArgumentLength, checkIdArgument } from '../domain/errors.js';
import { contains, defineFilter, equalsId, type StoredCondition, some } from '../domain/filters.js';
import { searchFold } from '../domain/search-fold.js';
import { byText } from '../domain/text-order.js';
import { CatalogEntries } from './catalog-entries.js';
import { type Connection, type PageArgs, paginateWindow } from './pagination.js';

export interface CatalogFilter {
  sourceId?: string | null;
  search?: string | null;
  category?: string | null;
  /** Only paid apps (true) or only free ones (false). */
  paid?: boolean | null;
}

/**
 * The CatalogFilter fields CATALOG_FILTER applies. `paid` is applied by `list` itself: filters.ts
 * has no rule for a boolean yet (its rules take a falsy value for "no condition", so `paid:
 * false` would select everything, and Prisma's boolean filter has no `in` for `oneOf`).
 */
type CatalogFilterRules = Omit<CatalogFilter, 'paid'>;

/** A catalogue app by its source and name (the name install takes). */
export interface CatalogAppKey {
  sourceId: string;
  name: string;
}

/** The version columns of a catalogue app. */
export type CatalogVersion = Pick<CatalogAppRow, 'sourceId' | 'name' | 'version'>;

const catalogKey = (key: CatalogAppKey) => JSON.stringify([key.sourceId, key.name]);

/**
 * Most (source, name) keys one catalogue query names: each is a bound parameter, and each source
 * one more (at most as many), within what Prisma allows per statement (db/chunks.ts): 5,000 failed
 * every runtime snapshot of over ~1,000 apps that asked for their entries, on SQLite.
 */
const CATALOG_KEYS_PER_QUERY = Math.floor(PRISMA_PARAMETERS / 2);

export const CATALOG_CURSOR = 'catalog';

/** The lookup-cache key of the visible sources' list. */
const VISIBLE_SOURCES = 'visible-sources';

/**
 * Longest catalogue search text. A search is a substring of an app's name, title and description
 * (`searchText`), which are short: nothing longer can match, and SQLite refuses LIKE patterns
 * past 50,000 bytes while PostgreSQL would scan with any length.
 */
export const MAX_SEARCH_LENGTH = 200;

/** Longest category name a filter may name (as long as an entry's categories may be: catalogue-entry.ts). */
export const MAX_CATEGORY_LENGTH = 128;

/**
 * The text a search looks for in `searchText`, as typed (`%`, `_` and `\` are themselves), folded
 * as the stored text is (domain/search-fold.ts). MAX_SEARCH_LENGTH applies to the search as typed.
 */
export function searchPattern(search: string): string {
  return searchFold(search);
}

/** A catalogue app with its categories, as CatalogFilter's category rule reads it. */
export type CatalogAppWithCategories = CatalogAppRow & { categories: { category: string }[] };

/** The category filter's `some` in SQL: an app's categories are rows of CatalogAppCategory. */
const CATALOG_RELATIONS: Relations = { categories: { table: 'CatalogAppCategory', foreignKey: 'catalogAppId' } };

/** What each CatalogFilter field means (list queries only; the predicate is for tests). */

export const CATALOG_FILTER = defineFilter<CatalogFilterRules, CatalogAppWithCategories, Prisma.CatalogAppWhereInput>(
  {
    sourceId: equalsId('sourceId', MAX_SOURCE_ID_LENGTH),
    search: contains('searchText', searchPattern),
    category: some('categories', 'category'),
  },
  null,
);

/**
 * How long a catalogue entry read for a mutation is reused. The catalogue changes rarely (a sync
 * every few minutes in the original) while every install reads it: caching takes two queries off
 * each mutation. A change shows within this time.
 */
export const LOOKUP_CACHE_MS = 10_000;

/**
 * Most lookups the cache holds. Expired entries are dropped as new ones come in, so it normally
 * holds what was looked up in the last LOOKUP_CACHE_MS; the cap also bounds it when requests name
 * more distinct (or nonexistent) apps than that in one period. An entry is a small row.
 */
const LOOKUP_CACHE_MAX_ENTRIES = 10_000;

export interface LookupCacheOptions {
  /** Default LOOKUP_CACHE_MAX_ENTRIES. */
  maxEntries?: number;
  /** A monotonic clock in ms; default `performance.now`. */
  now?: () => number;
}

interface Lookup {
  at: number;
  value: Promise<unknown>;
}

/** Market sources as every list shows them: highest priority first, then by id. */
export function inSourceOrder<T extends Pick<MarketSourceRow, 'priority' | 'sourceId'>>(rows: T[]): T[] {
  return rows.sort((a, b) => b.priority - a.priority || byText(a.sourceId, b.sourceId));
}

/**
 * Whether the viewer may see a source and take apps from it: everyone the visible sources (every
 * local one and the active remote; `marketSources` is the same rule as a query), an admin any
 * source too (to try one before selecting it). To anyone else an inactive remote is a source that
 * does not exist: its URL and errors are the admins' business.
 */
export function isOfferedTo(viewer: Viewer, source: Pick<MarketSourceRow, 'type' | 'isActive'>): boolean {
  return viewer.isAdmin || source.type !== 'remote' || source.isActive;
}

/**
 * The app catalogue and the market sources it comes from: the active remote's and the local
 * sources' for every user, an inactive source's for admins (isOfferedTo).
 */
export class CatalogService {
  /**
   * Insertion order is the order of `at` (an entry is re-inserted, never updated in place), so
   * the expired entries are always the first ones: dropping them costs nothing per lookup.
   */
  private readonly lookups = new Map<string, Lookup>();
  private readonly maxLookups: number;
  private readonly now: () => number;

  /**
   * Catalogue pages and category lists straight on the driver (db/driver-sql.ts, db/list-sql.ts):
   * through Prisma a `catalog(first: 20)` page cost 6.9 ms of server CPU (G1 benchmark).
   */
  private readonly sql: DriverSql;
  /** The entries of catalogue pages, kept parsed until they change. */
  private readonly entries: CatalogEntries;

  constructor(
    private readonly db: Db,
    private readonly maxPageSize: number,
    cache: LookupCacheOptions = {},
  ) {
    this.sql = driverSqlOf(db);
    this.entries = new CatalogEntries(this.sql);
    this.maxLookups = cache.maxEntries ?? LOOKUP_CACHE_MAX_ENTRIES;
    this.now = cache.now ?? (() => performance.now());
  }

  /** Entries in the lookup cache (for tests and diagnostics). */
  get lookupCacheSize(): number {
    return this.lookups.size;
  }

  private cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    const now = this.now();
    const hit = this.lookups.get(key);
    if (hit && now - hit.at < LOOKUP_CACHE_MS) return hit.value as Promise<T>;
    this.lookups.delete(key);
    this.evict(now);
    const entry: Lookup = { at: now, value: load() };
    this.lookups.set(key, entry);
    // Never cache a failure (but leave alone a newer entry that replaced this one meanwhile).
    entry.value.catch(() => {
      if (this.lookups.get(key) === entry) this.lookups.delete(key);
    });
    return entry.value as Promise<T>;
  }

  /** Drops the expired entries, then the oldest ones while the cache is full, to make room for one. */
  private evict(now: number): void {
    for (const [key, entry] of this.lookups) {
      if (now - entry.at < LOOKUP_CACHE_MS && this.lookups.size < this.maxLookups) return;
      this.lookups.delete(key);
    }
  }

  /**
   * The catalogue entry `name` of a source (cached briefly, see LOOKUP_CACHE_MS). Raw SQL
   * (db/hot-path-sql.ts): every install and upgrade runs it, usually for an app not in the cache.
   */
  findApp(sourceId: string, name: string): Promise<CatalogAppRow | null> {
    return this.cached(`app/${sourceId}/${name}`, () => findCatalogApp(this.sql, sourceId, name));
  }

  /** Whether a market source exists (cached briefly). */
  async sourceExists(sourceId: string): Promise<boolean> {
    return (await this.cachedSource(sourceId)) !== null;
  }

  /** Whether the source exists and is offered to the viewer (see isOfferedTo; cached briefly). */
  async offers(viewer: Viewer, sourceId: string): Promise<boolean> {
    const source = await this.cachedSource(sourceId);
    return source !== null && isOfferedTo(viewer, source);
  }

  private cachedSource(sourceId: string): Promise<MarketSourceRow | null> {
    return this.cached(`source/${sourceId}`, () => this.marketSource(sourceId));
  }

  /**
   * Drops the cached lookups of a source and of its apps, after the source was added, selected,
   * removed or synced: this instance sees the change at once (others within LOOKUP_CACHE_MS).
   * Walks the cache (at most its size cap of small entries); only admin actions call it.
   */
  forgetSource(sourceId: string): void {
    this.lookups.delete(VISIBLE_SOURCES);
    const apps = `app/${sourceId}/`;
    for (const key of this.lookups.keys()) {
      if (key === `source/${sourceId}` || key.startsWith(apps)) this.lookups.delete(key);
    }
  }

  /** The ids of the visible sources (cached briefly, see LOOKUP_CACHE_MS). */
  private async visibleSourceIds(): Promise<string[]> {
    const sources = await this.cached(VISIBLE_SOURCES, () => this.marketSources());
    return sources.map((source) => source.sourceId);
  }

  /** Visible sources (isOfferedTo for everyone), highest priority first. */
  async marketSources(): Promise<MarketSourceRow[]> {
    const rows = await this.db.marketSource.findMany({
      where: { OR: [{ type: 'local' }, { type: 'remote', isActive: true }] },
    });
    return inSourceOrder(rows);
  }

  marketSource(sourceId: string): Promise<MarketSourceRow | null> {
    return this.db.marketSource.findUnique({ where: { sourceId } });
  }

  async list(viewer: Viewer, filter: CatalogFilter = {}, page: PageArgs = {}): Promise<Connection<CatalogView>> {
    checkArgumentLength('search', filter.search, MAX_SEARCH_LENGTH);
    checkIdArgument('category', filter.category, MAX_CATEGORY_LENGTH);
    const { paid, ...rules } = filter;
    // Without a source named, the sources users see: the active remote and the local ones (the
    // Syncer keeps inactive remotes' catalogues too, so that selecting one shows it at once). A
    // source named is listed to an admin whatever it is, to others only when it is visible.
    const visible: StoredCondition[] =
      rules.sourceId && viewer.isAdmin
        ? []
        : [{ op: 'oneOf', column: 'sourceId', relation: '', value: await this.visibleSourceIds() }];
    const paidCondition: StoredCondition[] =
      paid === null || paid === undefined ? [] : [{ op: 'equals', column: 'paid', relation: '', value: paid }];
    const stored = [...CATALOG_FILTER.compile(rules).stored, ...paidCondition, ...visible];
    const conditions = conditionsSql('CatalogApp', stored, CATALOG_RELATIONS);
    const connection = await paginateWindow(
      CATALOG_CURSOR,
      page,
      this.maxPageSize,
      (window) => pageRows<CatalogListRow>(this.sql, 'CatalogApp', conditions, window, CATALOG_LIST_COLUMNS),
      () => countRows(this.sql, 'CatalogApp', conditions),
    );
    // The page's rows only, not the one read past its end to know whether more follow.
    await this.entries.attach(connection.edges.map((edge) => edge.node));
    return connection as Connection<CatalogView>;
  }

  async getById(viewer: Viewer, id: number): Promise<CatalogAppRow | null> {
    const app = await this.db.catalogApp.findUnique({ where: { id } });
    if (!app || (await this.offers(viewer, app.sourceId))) return app;
    // An inactive source's apps, as `catalog` lists them, only to admins (ids count up from 1),
    // and to whoever installed the app from it, or a clone of it (`App.catalogApp` shows it them).
    const where = {
      userId: viewer.userId,
      sourceId: app.sourceId,
      OR: [{ appName: app.name }, { rawAppName: app.name }],
    };
    return (await this.db.appState.findFirst({ where, select: { id: true } })) ? app : null;
  }

  /**
   * The catalogue apps named by each key (null where its source has none), in one query for up
   * to CATALOG_KEYS_PER_QUERY distinct keys: installed apps ask for theirs, thousands at a time
   * in a runtime snapshot, mostly the same few apps for many users. Their entries come from the
   * ones kept parsed, as for pages.
   */
  appsNamed(keys: readonly CatalogAppKey[]): Promise<(CatalogAppRow | null)[]> {
    return this.byKeys(keys, async (where) =>
      this.entries.attach(await this.db.catalogApp.findMany({ where, omit: { entry: true } })),
    );
  }

  /** Like `appsNamed`, reading only the versions (no entry): for "is an upgrade available". */
  latestVersions(keys: readonly CatalogAppKey[]): Promise<(CatalogVersion | null)[]> {
    return this.byKeys(keys, (where) =>
      this.db.catalogApp.findMany({ where, select: { sourceId: true, name: true, version: true } }),
    );
  }

  private async byKeys<Row extends CatalogVersion>(
    keys: readonly CatalogAppKey[],
    find: (where: Prisma.CatalogAppWhereInput) => Promise<Row[]>,
  ): Promise<(Row | null)[]> {
    const wanted = [...new Map(keys.map((key) => [catalogKey(key), key])).values()];
    const found = new Map<string, Row>();
    for (let start = 0; start < wanted.length; start += CATALOG_KEYS_PER_QUERY) {
      const names = new Map<string, string[]>();
      for (const { sourceId, name } of wanted.slice(start, start + CATALOG_KEYS_PER_QUERY)) {
        names.set(sourceId, [...(names.get(sourceId) ?? []), name]);
      }
      const where = { OR: [...names].map(([sourceId, list]) => ({ sourceId, name: { in: list } })) };
      for (const row of await find(where)) found.set(catalogKey(row), row);
    }
    return keys.map((key) => found.get(catalogKey(key)) ?? null);
  }

  /** Which of these market sources exist (removed ones don't), in one query. */
  async existingSources(sourceIds: readonly string[]): Promise<boolean[]> {
    const rows = await this.db.marketSource.findMany({
      where: { sourceId: { in: [...new Set(sourceIds)] } },
      select: { sourceId: true },
    });
    const existing = new Set(rows.map((row) => row.sourceId));
    return sourceIds.map((sourceId) => existing.has(sourceId));
  }

  /** Category names of each app, by name, in one query. */
  async categoriesOf(appIds: readonly number[]): Promise<string[][]> {
    const byApp = new Map<number, string[]>();
    for (const { catalogAppId, category } of await appCategories(this.sql, appIds)) {
      const list = byApp.get(catalogAppId);
      if (list) list.push(category);
      else byApp.set(catalogAppId, [category]);
    }
    return appIds.map((id) => byApp.get(id)?.sort(byText) ?? []);
  }
}
