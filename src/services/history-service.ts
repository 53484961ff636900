import { canSee, userScope, type Viewer } from '../auth/viewer.js';
import { whenAvailable } from '../db/availability.js';
import type { Db } from '../db/client.js';
import { providerOf, type SqlRunner } from '../db/driver-sql.js';
import { insertHistory } from '../db/hot-path-sql.js';
import type { HistoryRow, Prisma } from '../db/models.js';
import { removeOldHistory } from '../db/retention-sql.js';
import { MAX_APP_NAME_LENGTH } from '../domain/app-key.js';
import { atOrAfter, atOrBefore, defineFilter, equalsId, oneOfIds } from '../domain/filters.js';
import type { TimeInput } from '../domain/instant.js';
import type { EventBus } from '../events/change-feed.js';
import { readEach } from '../events/subscription-reads.js';
import { type Removal, removeInBatches } from '../platform/bounded-removal.js';
import { type Connection, type PageArgs, paginateQuery } from './pagination.js';

export interface HistoryFilter {
  type?: string[] | null;
  app?: string | null;
  userId?: string | null;
  from?: TimeInput | null;
  to?: TimeInput | null;
}

/** Longest record type a filter may name: every type is far shorter (`SYSTEM_INSTALL_FAILED`). */
export const MAX_HISTORY_TYPE_LENGTH = 64;

/**
 * What each HistoryFilter field means, for the SQL and the subscription alike (userId: userScope).
 * The input-bounds plugin caps the type list's length (MAX_INPUT_LIST_LENGTH); repeats add nothing.
 */
export const HISTORY_FILTER = defineFilter<Omit<HistoryFilter, 'userId'>, HistoryRow, Prisma.HistoryRecordWhereInput>({
  type: oneOfIds('type', MAX_HISTORY_TYPE_LENGTH),
  app: equalsId('app', MAX_APP_NAME_LENGTH),
  from: atOrAfter('time'),
  to: atOrBefore('time'),
});

export const HISTORY_CURSOR = 'history';

/** History types: the original's task records, plus payment milestones. */
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

/**
 * The audit history: writes records and reads them, newest first. It never announces a record:
 * the caller does, through `ChangeFeed.history`, once the transaction that wrote it committed.
 */
export class HistoryService {
  constructor(
    private readonly db: Db,
    private readonly maxPageSize: number,
    private readonly bus: EventBus,
  ) {}

  /** New records the viewer may see that match the filter (read for each subscriber). */
  subscribe(viewer: Viewer, filter_: HistoryFilter = {}): AsyncIterable<HistoryRow> {
    const userId = userScope(viewer, filter_.userId);
    const wanted = HISTORY_FILTER.compile(filter_);
    const added = this.bus.subscribe('history:added', (event) => userId === undefined || event.userId === userId);
    return readEach(added, async (event) => {
      const row = await whenAvailable(() => this.db.historyRecord.findUnique({ where: { id: event.id } }));
      return row && wanted.matches(row) ? row : null;
    });
  }

  async list(viewer: Viewer, filter: HistoryFilter = {}, page: PageArgs = {}): Promise<Connection<HistoryRow>> {
    const userId = userScope(viewer, filter.userId);
    const where: Prisma.HistoryRecordWhereInput = {
      ...(userId !== undefined ? { userId } : {}),
      ...HISTORY_FILTER.compile(filter).where,
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
   * Appends records, in `tx` when given (so they commit with the change they record), and returns
   * them for the caller to announce once they committed.
   */
  async record(entries: HistoryEntry[], tx: HistoryWriter = this.db): Promise<HistoryRow[]> {
    const rows: HistoryRow[] = [];
    for (const data of entries) rows.push(await tx.historyRecord.create({ data }));
    return rows;
  }

  /**
   * One record as one statement (one row in the returned array), in the caller's transaction `tx`
   * (its task's submission, start or end). The caller announces the record once that transaction
   * committed. Raw SQL (db/hot-path-sql.ts): every task writes these.
   */
  recordOne(entry: HistoryEntry, tx: SqlRunner) {
    return insertHistory(tx, entry);
  }

  /**
   * Deletes the records written before `cutoff` (HISTORY_RETENTION_DAYS), in bounded statements
   * until none is left or `deadline` (epoch ms) has passed.
   */
  removeOlderThan(cutoff: Date, deadline = Infinity): Promise<Removal> {
    return removeInBatches((limit) => removeOldHistory(this.db, providerOf(this.db), cutoff, limit), deadline);
  }

  async getById(viewer: Viewer, id: number): Promise<HistoryRow | null> {
    const row = await this.db.historyRecord.findUnique({ where: { id } });
    return row && canSee(viewer, row.userId) ? row : null;
  }
}
