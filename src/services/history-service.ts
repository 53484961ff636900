import { canSee, userScope, type Viewer } from '../auth/viewer.js';
import type { Db } from '../db/client.js';
import type { HistoryRow, Prisma } from '../db/models.js';
import { type Connection, type PageArgs, paginateQuery } from './pagination.js';

export interface HistoryFilter {
  type?: string[] | null;
  app?: string | null;
  userId?: string | null;
  from?: Date | null;
  to?: Date | null;
}

export const HISTORY_CURSOR = 'history';

/** Reads of the audit history, newest record first. */
export class HistoryService {
  constructor(
    private readonly db: Db,
    private readonly maxPageSize: number,
  ) {}

  async list(viewer: Viewer, filter: HistoryFilter = {}, page: PageArgs = {}): Promise<Connection<HistoryRow>> {
    const userId = userScope(viewer, filter.userId);
    const where: Prisma.HistoryRecordWhereInput = {
      ...(userId !== undefined ? { userId } : {}),
      ...(filter.type?.length ? { type: { in: filter.type } } : {}),
      ...(filter.app ? { app: filter.app } : {}),
      ...(filter.from || filter.to
        ? { time: { ...(filter.from ? { gte: filter.from } : {}), ...(filter.to ? { lte: filter.to } : {}) } }
        : {}),
    };
    return paginateQuery(
      HISTORY_CURSOR,
      page,
      this.maxPageSize,
      (window) => this.db.historyRecord.findMany({ ...window, where: { AND: [where, window.where] } }),
      () => this.db.historyRecord.count({ where }),
    );
  }

  async getById(viewer: Viewer, id: number): Promise<HistoryRow | null> {
    const row = await this.db.historyRecord.findUnique({ where: { id } });
    return row && canSee(viewer, row.userId) ? row : null;
  }
}
