import type { Db } from '../db/client.js';
import type { CatalogAppRow, MarketSourceRow, Prisma } from '../db/models.js';
import { type Connection, type PageArgs, paginateQuery } from './pagination.js';

export interface CatalogFilter {
  sourceId?: string | null;
  search?: string | null;
  category?: string | null;
}

export const CATALOG_CURSOR = 'catalog';

/** The app catalogue and the market sources it comes from. Visible to every user. */
export class CatalogService {
  constructor(
    private readonly db: Db,
    private readonly maxPageSize: number,
  ) {}

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
