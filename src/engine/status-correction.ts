import { setImmediate } from 'node:timers/promises';
import type { AppService, AppStateEvent } from '../adapters/app-service/port.js';
import { failureMessage, isDatabaseUnavailable } from '../db/availability.js';
import type { Db } from '../db/client.js';
import type { DatabaseClock } from '../db/database-clock.js';
import { driverSqlOf } from '../db/driver-sql.js';
import type { AppRow, HistoryRow, Prisma } from '../db/models.js';
import { allActiveTasks, allAppStates } from '../db/state-reads.js';
import { appKeyString } from '../domain/app-key.js';
import type { ChangeFeed } from '../events/change-feed.js';
import { isRecord } from '../platform/json.js';
import type { Logger } from '../platform/logger.js';
import type { HistoryEntry, HistoryService } from '../services/history-service.js';
import { goneFromListMessage } from './app-removals.js';
import { type Correction, correctedResult, planCorrections, withholdMassRemovals } from './correction-rules.js';
import { listedChart } from './report-rules.js';
import type { TaskEngine } from './task-engine.js';

/**
 * Status correction (the original's StatusCorrectionChecker, market-domain.md §7): compares the
 * app service's full list of apps (and of middlewares) with the stored app states and active
 * tasks, and takes the app service as the truth where they disagree (correction-rules.ts): an app
 * that appeared gets its state row, one that vanished loses it (APP_REMOVED in the runtime), a
 * changed state or set of entrances is applied, a task whose end the list shows completes. State
 * rows are written the way state reports write them (the engine's path, which never lets an older
 * state overwrite a newer one) and tasks end the engine's way (TaskEngine.finish). Each
 * correction is one `system` history record of the app's owner. The leader runs it at start and
 * every STATUS_CORRECTION_INTERVAL_MS (jobs.ts), in both modes.
 */

export interface CorrectionCounts {
  appeared: number;
  removed: number;
  corrected: number;
  tasksCompleted: number;
}

/** The figures of the `status_correction` component. */
export interface StatusCorrectionStatus {
  intervalMs: number;
  checks: number;
  lastCheckAt: Date | null;
  lastDurationMs: number | null;
  /** Apps (system apps included) in the last list read. */
  listedApps: number;
  /** How the middlewares were read the last time. */
  middlewares: 'listed' | 'unavailable' | 'not supported' | null;
  /** Since the process started. */
  corrections: CorrectionCounts;
  /** Removals the last run withheld as implausible (see withholdMassRemovals), 0 when none. */
  removalsWithheld: number;
  /** Items of the last list that could not be read (each logged), and corrections of the last run that failed. */
  unreadableApps: number;
  failedCorrections: number;
  lastError: string | null;
}

/**
 * The runs' reads of the app service's list, which the `app_service` component judges it by: a
 * run the database failed after the list was read says nothing about the app service (during a
 * PostgreSQL outage `app_service` showed ERROR "database unavailable" and paged its team).
 */
export interface AppServiceReads {
  /** Why the last read of the list failed, or null when it succeeded (or none was made). */
  lastError: string | null;
  /** Whether a read is in progress. */
  reading: boolean;
}

export interface StatusCorrectionDeps {
  db: Db;
  appService: AppService;
  engine: Pick<TaskEngine, 'applyListedState' | 'finish'>;
  history: HistoryService;
  feed: ChangeFeed;
  logger: Logger;
  intervalMs: number;
  /**
   * The clock of the times it compares with rows the engine stamped (a task's start, on the
   * database's clock): the engine's own DatabaseClock.
   */
  clock: Pick<DatabaseClock, 'date'>;
  /** @default 30000 (the original's) */
  minTaskAgeMs?: number;
}

/**
 * The condition of a write onto an app's row that status correction judged: the row as it read it,
 * before it asked for the list. A row changed since (a state report, an operation accepted: a
 * failed first install retried while the list was asked for) is not the one the list was compared
 * with: the write refuses, and the next run judges the row again. The listed state is written on
 * the same condition (RowAsRead, applyReportedState).
 */
function asRead(row: Pick<AppRow, 'id' | 'updatedAt'>): { id: number; updatedAt: Date } {
  return { id: row.id, updatedAt: row.updatedAt };
}

/** One run: when it began (before its reads), and the apps (keys) whose row took its listed state. */
type Run = { at: Date; applied: Set<string> };

/** Most system-app names remembered from earlier lists (a vanished system app is recognised by name). */
const MAX_SYSTEM_NAMES = 10_000;

export class StatusCorrection {
  private readonly figures: StatusCorrectionStatus;
  private readonly systemNames = new Set<string>();
  private readonly reads: AppServiceReads = { lastError: null, reading: false };

  constructor(private readonly deps: StatusCorrectionDeps) {
    this.figures = {
      intervalMs: deps.intervalMs,
      checks: 0,
      lastCheckAt: null,
      lastDurationMs: null,
      listedApps: 0,
      middlewares: null,
      corrections: { appeared: 0, removed: 0, corrected: 0, tasksCompleted: 0 },
      removalsWithheld: 0,
      unreadableApps: 0,
      failedCorrections: 0,
      lastError: null,
    };
  }

  status(): StatusCorrectionStatus {
    return { ...this.figures, corrections: { ...this.figures.corrections } };
  }

  appServiceReads(): AppServiceReads {
    return { ...this.reads };
  }

  /**
   * One comparison and its corrections; throws (after recording it) when the list cannot be read.
   * `interrupted`, asked between corrections, says why the run must end there (null: go on); the
   * corrections left are planned again by the next run, on whichever instance leads then.
   */
  async run(interrupted: () => string | null = () => null): Promise<void> {
    const { db } = this.deps;
    const started = performance.now();
    const requestedAt = this.deps.clock.date();
    this.figures.lastCheckAt = requestedAt;
    try {
      // Rows and tasks before the list: what they hold committed before it was asked for, and the app
      // service knows a state before it reports it, so the list shows the app unless it went; a row
      // changed since is not removed (the delete is on updatedAt). Read after the list, an install that
      // ended meanwhile, its completedAt stamped before requestedAt, was an app the list left out: removed.
      // Rows before tasks: a task accepted in between touches its row; one that ended is among `ended`.
      const sql = driverSqlOf(db); // whole tables: see state-reads.ts
      const rows = await allAppStates(sql);
      const active = await allActiveTasks(sql);
      const { apps: listed, unreadable } = await this.listApps();
      const middlewares = await this.listMiddlewares();
      for (const app of listed) if (app.system) this.rememberSystem(app.appName);
      const ended = await db.task.findMany({
        where: { completedAt: { gte: requestedAt } },
        select: { userId: true, sourceId: true, appName: true },
      });
      const planned = planCorrections({
        listed,
        middlewares,
        rows,
        active,
        requestedAt,
        systemNames: this.systemNames,
        minTaskAgeMs: this.deps.minTaskAgeMs ?? 30_000,
        unreadable,
        endedSinceRequest: new Set(ended.map(appKeyString)),
      });
      const stored = rows.filter((row) => !this.systemNames.has(row.appName)).length;
      const counts = { all: listed.length, market: listed.filter((app) => !app.system).length };
      const { corrections, withheld, why } = withholdMassRemovals(planned, counts, stored);
      this.figures.listedApps = listed.length;
      this.figures.removalsWithheld = withheld;
      this.figures.unreadableApps = unreadable.length;
      const failed = await this.applyEach(corrections, requestedAt, interrupted);
      this.figures.failedCorrections = failed.length;
      this.figures.lastError = why && `status correction withheld ${withheld} removals: ${why}`;
      if (why) this.deps.logger.warn({ withheld, listed: listed.length, stored }, this.figures.lastError ?? why);
      // A list of which nothing could be read corrects nothing: that is a failure, not a quiet run.
      if (listed.length === 0 && unreadable.length > 0) {
        this.figures.lastError = `none of the ${unreadable.length} apps the app service listed could be read`;
      } else if (failed.length > 0) {
        this.figures.lastError = `${failed.length} of ${corrections.length} corrections failed, the first: ${failed[0]}`;
      }
    } catch (error) {
      this.figures.lastError = failureMessage(error);
      throw error;
    } finally {
      this.figures.checks += 1;
      this.figures.lastDurationMs = Math.round(performance.now() - started);
    }
  }

  /**
   * Applies each correction on its own: one that fails (a value its database refuses, say) is
   * logged and leaves the others to be made, as it would at every run. A database gone fails the
   * run instead. Returns why each failed one failed.
   */
  private async applyEach(corrections: Correction[], at: Date, interrupted: () => string | null): Promise<string[]> {
    const failed: string[] = [];
    const run: Run = { at, applied: new Set() };
    for (const [done, correction] of corrections.entries()) {
      // Between corrections, requests go first: on SQLite every statement completes synchronously,
      // so a run of 2,000 appeared apps answered nothing, /health included, for 40 s.
      await setImmediate();
      const why = interrupted();
      if (why) {
        const left = corrections.length - done;
        this.deps.logger.info(
          { done, left },
          `status correction stopped part-way (${why}): the next run makes the rest`,
        );
        break;
      }
      try {
        await this.apply(correction, run);
      } catch (error) {
        if (isDatabaseUnavailable(error)) throw error;
        const app = 'row' in correction ? correction.row : 'task' in correction ? correction.task : correction.listed;
        const reason = `${correction.kind} of ${app.appName} (${app.userId}): ${failureMessage(error)}`;
        this.deps.logger.error({ err: error, correction: correction.kind, app: app.appName }, 'a correction failed');
        failed.push(reason);
      }
    }
    return failed;
  }

  private async listApps(): ReturnType<AppService['listAppsInFull']> {
    this.reads.reading = true;
    try {
      const listed = await this.deps.appService.listAppsInFull();
      this.reads.lastError = null;
      return listed;
    } catch (error) {
      this.reads.lastError = failureMessage(error);
      throw error;
    } finally {
      this.reads.reading = false;
    }
  }

  /** The middlewares, or null when their absence proves nothing (not listed, or not listable). */
  private async listMiddlewares(): Promise<AppStateEvent[] | null> {
    const { appService, logger } = this.deps;
    if (!appService.listMiddlewares) {
      this.figures.middlewares = 'not supported';
      return null;
    }
    try {
      const middlewares = await appService.listMiddlewares();
      this.figures.middlewares = 'listed';
      return middlewares;
    } catch (error) {
      this.figures.middlewares = 'unavailable';
      logger.warn({ err: error }, 'status correction could not list the middlewares; stored ones are kept');
      return null;
    }
  }

  private rememberSystem(appName: string): void {
    if (this.systemNames.size >= MAX_SYSTEM_NAMES) return;
    this.systemNames.add(appName);
  }

  /**
   * Whether this run's state correction ended the task already (the engine ends a task whose end
   * state a state row takes, as for a state report): still a completion by status correction.
   * Not when another run marked it first (another leader's, late): that run recorded it. Asked
   * only of an app whose row took this run's listed state: a task read before the list that ended
   * on its own report meanwhile was completed by that report, not by status correction.
   */
  private async endedBy(taskId: string, run: Date): Promise<boolean> {
    const { db } = this.deps;
    const select = { type: true, status: true, completedAt: true, result: true, updatedAt: true } as const;
    const task = await db.task.findUnique({ where: { taskId }, select });
    if (task?.status !== 'COMPLETED' || task.completedAt === null || task.completedAt < run) return false;
    if (isRecord(task.result) && task.result.correctedBy !== undefined) return false;
    // Its result envelope says who completed it, as one this run completed itself does; the
    // first run to mark it is the one that records it.
    const result = correctedResult(task);
    const { count } = await db.task.updateMany({ where: { taskId, updatedAt: task.updatedAt }, data: { result } });
    return count > 0;
  }

  private async apply(correction: Correction, run: Run): Promise<void> {
    const { db, engine, feed } = this.deps;
    switch (correction.kind) {
      case 'appeared': {
        const { listed } = correction;
        // A new row, holding the listed chart; none when a row came meanwhile.
        if (!(await engine.applyListedState(listed, null))) return;
        await this.record(correction.kind, listed, `${listed.appName} appeared on the app service (${listed.state})`, {
          state: listed.state,
        });
        return;
      }
      case 'corrected': {
        const { row, listed, ownState } = correction;
        // The version first, onto the row as read; the state then onto the row as that write left it.
        const versionedAt = correction.takesVersion ? await this.completeListedRow(listed, row) : null;
        const versioned = versionedAt !== null;
        // False: the row changed since it was read, or holds a newer state.
        const took = await engine.applyListedState(listed, { updatedAt: versionedAt ?? row.updatedAt, ownState });
        if (took) run.applied.add(appKeyString(row));
        if (!took && !versioned) return;
        const changes = [
          ...(took && row.state !== listed.state ? [`${row.state || '(none)'} → ${listed.state}`] : []),
          ...(versioned ? [`installed version ${listed.listedVersion}`] : []),
        ];
        const what = changes.join(', ') || 'entrances';
        await this.record(correction.kind, row, `${row.appName} corrected from the app service's list: ${what}`, {
          previousState: row.state,
          state: took ? listed.state : row.state,
        });
        return;
      }
      case 'removed': {
        const { row } = correction;
        const message = goneFromListMessage(row.appName, row.state);
        const entry = this.historyEntry('removed', row, message, { previousState: row.state });
        // The row goes with its history record, in one transaction: the record is how the webhook
        // catch-up finds a removal that a process dying right after it never announced.
        const records = await db.$transaction(async (tx) => {
          const { count } = await tx.appState.deleteMany({ where: asRead(row) });
          return count === 0 ? null : await this.deps.history.record([entry], tx);
        });
        if (!records) return;
        feed.app(row);
        this.announce('removed', row, message, records);
        return;
      }
      case 'taskCompleted': {
        const { task, listed } = correction;
        const shows = listed ? `reports it ${listed.state}` : 'no longer lists it';
        const result = correctedResult(task);
        const finished = await engine.finish(task.taskId, 'COMPLETED', { result });
        if (!finished && !(run.applied.has(appKeyString(task)) && (await this.endedBy(task.taskId, run.at)))) return;
        const message = `${task.type.toLowerCase()} of ${task.appName} completed by status correction: the app service ${shows}`;
        await this.record('tasksCompleted', task, message, { taskId: task.taskId, state: listed?.state ?? null });
      }
    }
  }

  /**
   * A row as it was read (without the installed version, or on another one than the list shows) takes what the list
   * says of the installed chart (listedChart). The time the row then holds as `updatedAt`, or null when it did not take it.
   */
  private async completeListedRow(listed: AppStateEvent, row: AppRow): Promise<Date | null> {
    const data = listedChart(listed);
    if (Object.keys(data).length === 0) return null;
    const updatedAt = this.deps.clock.date();
    const where = { ...asRead(row), installedVersion: row.installedVersion };
    const { count } = await this.deps.db.appState.updateMany({ where, data: { ...data, updatedAt } });
    if (count > 0) this.deps.feed.app(row);
    return count > 0 ? updatedAt : null;
  }

  /** Counts a correction made and writes its `system` history record (announced once written). */
  private async record(
    kind: keyof CorrectionCounts | 'taskCompleted',
    app: Pick<AppRow, 'userId' | 'sourceId' | 'appName'>,
    message: string,
    extended: Record<string, Prisma.InputJsonValue | null>,
  ): Promise<void> {
    const counted = kind === 'taskCompleted' ? 'tasksCompleted' : kind;
    const records = await this.deps.history.record([this.historyEntry(counted, app, message, extended)]);
    this.announce(counted, app, message, records);
  }

  /** A correction's `system` history record, in its owner's history. */
  private historyEntry(
    counted: keyof CorrectionCounts,
    app: Pick<AppRow, 'userId' | 'sourceId' | 'appName'>,
    message: string,
    extended: Record<string, Prisma.InputJsonValue | null>,
  ): HistoryEntry {
    return {
      type: 'system',
      message,
      app: app.appName,
      userId: app.userId,
      time: new Date(),
      extended: { correction: counted, sourceId: app.sourceId, ...extended },
    };
  }

  /** A correction made and written: counted, its history record announced, logged. */
  private announce(
    counted: keyof CorrectionCounts,
    app: Pick<AppRow, 'userId' | 'appName'>,
    message: string,
    records: HistoryRow[],
  ): void {
    this.figures.corrections[counted] += 1;
    this.deps.feed.history(records);
    this.deps.logger.info({ correction: counted, app: app.appName, userId: app.userId }, message);
  }
}
