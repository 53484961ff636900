import { canSee, userScope, type Viewer } from '../auth/viewer.js';
import { whenAvailable } from '../db/availability.js';
import type { Db } from '../db/client.js';
import { type DriverSql, driverSqlOf } from '../db/driver-sql.js';
import { findActiveTasks, findAppState, findAppStates } from '../db/hot-path-sql.js';
import { conditionsSql, countRows, pageRows } from '../db/list-sql.js';
import type { AppRow, Prisma, TaskRow } from '../db/models.js';
import { type CandidateCondition, distinctAppStates, stageCandidatesSql } from '../db/stage-candidates-sql.js';
import { type AppKey, appKeyString, MAX_APP_NAME_LENGTH, MAX_SOURCE_ID_LENGTH } from '../domain/app-key.js';
import {
  type AppStage,
  deriveStage,
  type Health,
  outcomesOfState,
  PROGRESS_FETCHING_WORDS,
  type StageAndHealth,
} from '../domain/app-stage.js';
import { checkIdArgument } from '../domain/errors.js';
import { defineFilter, derived, equals, equalsId, oneOf, ownerCondition } from '../domain/filters.js';
import type { EventBus } from '../events/change-feed.js';
import { readEach } from '../events/subscription-reads.js';
import { batchedCount, batchedFinder, type ClientGone } from './derived-pages.js';
import { type Connection, type PageArgs, type PageWindow, paginateWindow } from './pagination.js';

export interface AppFilter {
  userId?: string | null;
  sourceId?: string | null;
  appName?: string | null;
  stage?: AppStage[] | null;
  health?: Health | null;
}

/** An app row with its derived stage and health, as AppFilter's stage and health rules read it. */
export type AppWithStage = AppRow & { derived: StageAndHealth };

/**
 * What each AppFilter field means, for the SQL and the subscription alike (userId: userScope).
 * Stage and health are derived (from the row and its active task), so they apply in memory.
 */
export const APP_FILTER = defineFilter<Omit<AppFilter, 'userId'>, AppWithStage, Prisma.AppStateWhereInput>({
  sourceId: equalsId('sourceId', MAX_SOURCE_ID_LENGTH),
  appName: equalsId('appName', MAX_APP_NAME_LENGTH),
  stage: derived(oneOf('stage')),
  health: derived(equals('health')),
});

export const APP_CURSOR = 'app';

/** Reads of the per-user app state rows ("apps"), with the derived stage and health. */
export class InstalledAppService {
  /**
   * The reads by key (one app, a page's active tasks, Task.app), straight on the driver
   * (db/driver-sql.ts): through Prisma, `app(sourceId, appName)` spent most of its 1.6 ms of CPU
   * in Prisma's request pipeline and the adapter re-preparing the statement.
   */
  private readonly sql: DriverSql;

  constructor(
    private readonly db: Db,
    private readonly maxPageSize: number,
    private readonly bus: EventBus,
  ) {
    this.sql = driverSqlOf(db);
  }

  /**
   * Every change of an app the viewer may see matching the filter, read per subscriber. An app
   * that is gone (uninstalled) has no row to send; its removal shows through its task.
   */
  subscribe(viewer: Viewer, filter_: AppFilter = {}): AsyncIterable<AppRow> {
    const userId = userScope(viewer, filter_.userId);
    const wanted = APP_FILTER.compile(filter_);
    const wantedKey = wanted.only(['sourceId', 'appName']);
    const changes = this.bus.subscribe(
      'app:updated',
      (event) => (userId === undefined || event.userId === userId) && wantedKey.matches(event),
    );
    return readEach(changes, (event) =>
      whenAvailable(async () => {
        const row = await this.db.appState.findUnique({ where: { userId_sourceId_appName: event } });
        if (!row || !wanted.hasDerived) return row;
        const [derived] = await this.stagesOf([row]);
        return derived && wanted.matches({ ...row, derived }) ? row : null;
      }),
    );
  }

  /** A page of apps; a derived filter's scan stops once `gone` says the client left (derived-pages.ts). */
  async list(
    viewer: Viewer,
    filter: AppFilter = {},
    page: PageArgs = {},
    gone?: ClientGone,
  ): Promise<Connection<AppRow>> {
    const userId = userScope(viewer, filter.userId);
    const wanted = APP_FILTER.compile(filter);
    const conditions = conditionsSql('AppState', [...ownerCondition(userId), ...wanted.stored]);
    if (!wanted.hasDerived) {
      return paginateWindow(
        APP_CURSOR,
        page,
        this.maxPageSize,
        (window) => pageRows<AppRow>(this.sql, 'AppState', conditions, window),
        () => countRows(this.sql, 'AppState', conditions),
      );
    }
    // Stage and health are derived (from the row and its active task): of the rows the SQL
    // conditions leave, those that can derive to the wanted values (stageCandidates) are read a
    // batch at a time, each batch's stages with them (derived-pages.ts).
    let candidates: Promise<CandidateCondition> | undefined;
    const read = async (window: PageWindow) => {
      candidates ??= this.stageCandidates(filter);
      return pageRows<AppRow>(this.sql, 'AppState', [...conditions, await candidates], window);
    };
    const keep = async (rows: AppRow[]) => {
      const stages = await this.stagesOf(rows);
      return rows.filter((row, index) => wanted.matches({ ...row, derived: stages[index] as StageAndHealth }));
    };
    return paginateWindow(APP_CURSOR, page, this.maxPageSize, batchedFinder(read, keep, gone), () =>
      batchedCount(read, keep, gone),
    );
  }

  /**
   * The rows that can match the filter's stage and health: those whose state gives a wanted value
   * without an active task (app-stage.ts outcomesOfState, per distinct state), and those with an
   * active task (few), which deriveStage then decides. Before, a filter read every row the other
   * conditions left: at 100,000 apps (2,000 users) `apps(first: 20, filter: {stage: [FAILED]})
   * { totalCount }` took 7.6-13.6 s on PostgreSQL and 35-63 s on SQLite, a stage no app had
   * 9.5-15.5 s and over 600 s. With them: see the figures in 0018_app_state_state_index.
   */
  private async stageCandidates(filter: AppFilter): Promise<CandidateCondition> {
    const wanted = APP_FILTER.compile({ stage: filter.stage ?? null, health: filter.health ?? null });
    const fits = (derived: StageAndHealth) => wanted.matches({ derived } as AppWithStage);
    const states: string[] = [];
    const statesIfProgressNames: string[] = [];
    for (const state of await distinctAppStates(this.sql)) {
      const { plain, fetching } = outcomesOfState(state);
      if (fits(plain)) states.push(state);
      else if (fits(fetching)) statesIfProgressNames.push(state);
    }
    return stageCandidatesSql({ states, statesIfProgressNames, progressWords: PROGRESS_FETCHING_WORDS });
  }

  /** One app of one user; admins may name the user, others read their own. */
  async get(
    viewer: Viewer,
    key: { sourceId: string; appName: string; userId?: string | null },
  ): Promise<AppRow | null> {
    checkIdArgument('sourceId', key.sourceId, MAX_SOURCE_ID_LENGTH);
    checkIdArgument('appName', key.appName, MAX_APP_NAME_LENGTH);
    const userId = userScope(viewer, key.userId, 'userId') ?? viewer.userId;
    return findAppState(this.sql, { userId, sourceId: key.sourceId, appName: key.appName });
  }

  async getById(viewer: Viewer, id: number): Promise<AppRow | null> {
    const row = await this.db.appState.findUnique({ where: { id } });
    return row && canSee(viewer, row.userId) ? row : null;
  }

  /** Batch read by app key (for Task.app); missing keys give null. */
  async byKeys(keys: readonly AppKey[]): Promise<(AppRow | null)[]> {
    const rows = await findAppStates(this.sql, keys);
    const byKey = new Map(rows.map((row) => [appKeyString(row), row]));
    return keys.map((key) => byKey.get(appKeyString(key)) ?? null);
  }

  /** Active (pending or running) task of each app, in one query. */
  async activeTasks(keys: readonly AppKey[]): Promise<(TaskRow | null)[]> {
    const wanted = keys.map(appKeyString);
    const tasks = await findActiveTasks(this.sql, [...new Set(wanted)]);
    const byKey = new Map(tasks.map((task) => [task.activeKey, task]));
    return wanted.map((key) => byKey.get(key) ?? null);
  }

  /** Stage and health of each row (batched over the rows' active tasks). */
  async stagesOf(rows: readonly AppRow[]): Promise<StageAndHealth[]> {
    const tasks = await this.activeTasks(rows);
    return rows.map((row, index) =>
      deriveStage({ state: row.state, progress: row.progress, activeTask: tasks[index] ?? null }),
    );
  }
}
