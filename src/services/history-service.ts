import { filter, map, pipe } from 'graphql-yoga';
import { canSee, userScope, type Viewer } from '../auth/viewer.js';
import type { Db } from '../db/client.js';
import { insertHistory, type SqlClient } from '../db/hot-path-sql.js';
import type { HistoryRow, Prisma } from '../db/models.js';
import type { ChangeFeed, EventBus } from '../events/change-feed.js';
import { type Connection, type PageArgs, paginateQuery } from './pagination.js';

export interface HistoryFilter {
  type?: string[] | null;
  app?: string | null;
  userId?: string | null;
  from?: Date | null;
  to?: Date | null;
}

export const HISTORY_CURSOR = 'history';

/** History types, after the original (market-domain §5). */
export type HistoryType =
  | 'ACTION_INSTALL'
  | 'ACTION_UNINSTALL'
  | 'ACTION_CANCEL'
  | 'ACTION_UPGRADE'
  | 'SYSTEM_INSTALL_SUCCEED'
  | 'SYSTEM_INSTALL_FAILED'
  | 'action'
  | 'system'
  /** A payment milestone: the buyer-visible status changed. */
  | 'PAYMENT';

export interface HistoryEntry {
  type: HistoryType;
  message: string;
  app: string | null;
  userId: string;
  time: Date;
  extended?: Prisma.InputJsonValue;
}

/** The part of a Prisma client (or transaction) history writes need. */
type HistoryWriter = Pick<Db, 'historyRecord'>;

/** Reads of the audit history, newest record first. */
export class HistoryService {
  constructor(
    private readonly db: Db,
    private readonly maxPageSize: number,
    private readonly feed: ChangeFeed,
    private readonly bus: EventBus,
  ) {}

  /** New records the viewer may see that match the filter (read for each subscriber). */
  subscribe(viewer: Viewer, filter_: HistoryFilter = {}): AsyncIterable<HistoryRow> {
    const userId = userScope(viewer, filter_.userId);
    return pipe(
      this.bus.subscribe('history:added'),
      filter((event) => userId === undefined || event.userId === userId),
      map((event) => this.db.historyRecord.findUnique({ where: { id: event.id } })),
      filter(
        (row): row is HistoryRow =>
          row !== null &&
          (!filter_.type?.length || filter_.type.includes(row.type)) &&
          (!filter_.app || row.app === filter_.app) &&
          (!filter_.from || row.time >= filter_.from) &&
          (!filter_.to || row.time <= filter_.to),
      ),
    );
  }

  async list(viewer: Viewer, filter: HistoryFilter = {}, page: PageArgs = {}): Promise<Connection<HistoryRow>> {
    const userId = userScope(viewer, filter.userId);
    const where: Prisma.HistoryRecordWhereInput = {
      ...(userId !== undefined ? { userId } : {}),
      // The input-bounds plugin caps the list's length (MAX_INPUT_LIST_LENGTH); repeats add nothing.
      ...(filter.type?.length ? { type: { in: [...new Set(filter.type)] } } : {}),
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

  /**
   * Appends records. Given a transaction (so the records commit with the transition), it
   * returns them for the caller to announce after the commit; without one they are announced now.
   */
  async record(entries: HistoryEntry[], tx?: HistoryWriter): Promise<HistoryRow[]> {
    const rows: HistoryRow[] = [];
    for (const data of entries) rows.push(await (tx ?? this.db).historyRecord.create({ data }));
    if (!tx) this.feed.history(rows);
    return rows;
  }

  /**
   * One record as a statement (one row in the returned array): put in a batch transaction (not
   * sent until that runs), or awaited, in an interactive one (`client`). The caller announces the
   * record once its transaction committed. Raw SQL (db/hot-path-sql.ts): every task writes these.
   */
  recordOne(entry: HistoryEntry, client: SqlClient = this.db) {
    return insertHistory(client, entry);
  }

  /** Removes records older than the retention; returns how many. */
  async removeOlderThan(cutoff: Date): Promise<number> {
    const { count } = await this.db.historyRecord.deleteMany({ where: { time: { lt: cutoff } } });
    return count;
  }

  async getById(viewer: Viewer, id: number): Promise<HistoryRow | null> {
    const row = await this.db.historyRecord.findUnique({ where: { id } });
    return row && canSee(viewer, row.userId) ? row : null;
  }
}
