import type { Db } from '../db/client.js';
import type { CatalogAppRow, MarketSourceRow, Prisma } from '../db/models.js';
import { type Connection, type PageArgs, paginateQuery } from './pagination.js';

export interface CatalogFilter {
  sourceId?: string | null;
  search?: string | null;
  category?: string | null;
}

export const CATALOG_CURSOR = 'catalog';

/**
 * How long a catalogue entry read for a mutation is reused. The catalogue changes rarely (a sync
 * every few minutes in the original) while every install reads it: caching takes two queries off
 * each mutation. A change shows within this time.
 */
const LOOKUP_CACHE_MS = 10_000;

/** The app catalogue and the market sources it comes from. Visible to every user. */
export class CatalogService {
  private readonly lookups = new Map<string, { at: number; value: Promise<unknown> }>();

  constructor(
    private readonly db: Db,
    private readonly maxPageSize: number,
  ) {}

  private cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    const hit = this.lookups.get(key);
    if (hit && Date.now() - hit.at < LOOKUP_CACHE_MS) return hit.value as Promise<T>;
    const value = load();
    this.lookups.set(key, { at: Date.now(), value });
    value.catch(() => this.lookups.delete(key)); // never cache a failure
    return value;
  }

  /** The catalogue entry `name` of a source (cached briefly, see LOOKUP_CACHE_MS). */
  findApp(sourceId: string, name: string): Promise<CatalogAppRow | null> {
    return this.cached(`app/${sourceId}/${name}`, () =>
      this.db.catalogApp.findUnique({ where: { sourceId_name: { sourceId, name } } }),
    );
  }

  /** Whether a market source exists (cached briefly). */
  async sourceExists(sourceId: string): Promise<boolean> {
    return (await this.cached(`source/${sourceId}`, () => this.marketSource(sourceId))) !== null;
  }

  /** Visible sources: the active remote plus every local source, highest priority first. */
  marketSources(): Promise<MarketSourceRow[]> {
    return this.db.marketSource.findMany({
      where: { OR: [{ type: 'local' }, { type: 'remote', isActive: true }] },
      orderBy: [{ priority: 'desc' }, { sourceId: 'asc' }],
    });
  }

  marketSource(sourceId: string): Promise<MarketSourceRow | null> {
    return this.db.marketSource.findUnique({ where: { sourceId } });
  }

  list(filter: CatalogFilter = {}, page: PageArgs = {}): Promise<Connection<CatalogAppRow>> {
    const search = filter.search?.trim().toLowerCase();
    const where: Prisma.CatalogAppWhereInput = {
      ...(filter.sourceId ? { sourceId: filter.sourceId } : {}),
      ...(search ? { searchText: { contains: search } } : {}),
      ...(filter.category ? { categories: { some: { category: filter.category } } } : {}),
    };
    return paginateQuery(
      CATALOG_CURSOR,
      page,
      this.maxPageSize,
      (window) => this.db.catalogApp.findMany({ ...window, where: { AND: [where, window.where] } }),
      () => this.db.catalogApp.count({ where }),
    );
  }

  getById(id: number): Promise<CatalogAppRow | null> {
    return this.db.catalogApp.findUnique({ where: { id } });
  }

  /** Category names of each app, in one query. */
  async categoriesOf(appIds: readonly number[]): Promise<string[][]> {
    const rows = await this.db.catalogAppCategory.findMany({
      where: { catalogAppId: { in: [...appIds] } },
      orderBy: { category: 'asc' },
    });
    return appIds.map((id) => rows.filter((row) => row.catalogAppId === id).map((row) => row.category));
  }
}
