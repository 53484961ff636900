import { canSee, userScope, type Viewer } from '../auth/viewer.js';
import { whenAvailable } from '../db/availability.js';
import { KEYS_PER_OR, readInChunks } from '../db/chunks.js';
import type { Db } from '../db/client.js';
import { type DriverSql, driverSqlOf, providerOf } from '../db/driver-sql.js';
import { findTasks } from '../db/hot-path-sql.js';
import { conditionsSql, countRows, pageRows, TASK_LIST_COLUMNS } from '../db/list-sql.js';
import type { Prisma, TaskRow, TaskView } from '../db/models.js';
import { removeFinishedTasks } from '../db/retention-sql.js';
import { type AppKey, appKeyString, MAX_APP_NAME_LENGTH, MAX_SOURCE_ID_LENGTH } from '../domain/app-key.js';
import { checkIdArgument } from '../domain/errors.js';
import { atOrAfter, atOrBefore, defineFilter, equalsId, oneOf, ownerCondition } from '../domain/filters.js';
import type { TimeInput } from '../domain/instant.js';
import { MAX_TASK_ID_LENGTH, type TaskStatus, type TaskType } from '../domain/tasks.js';
import type { EventBus } from '../events/change-feed.js';
import { readEach, startingWith } from '../events/subscription-reads.js';
import { type Removal, removeInBatches } from '../platform/bounded-removal.js';
import { type Connection, type PageArgs, paginateArray, paginateWindow } from './pagination.js';

export interface TaskFilter {
  userId?: string | null;
  sourceId?: string | null;
  appName?: string | null;
  status?: TaskStatus[] | null;
  type?: TaskType[] | null;
  createdAfter?: TimeInput | null;
  createdBefore?: TimeInput | null;
}

/** What each TaskFilter field means, for the SQL and the subscription alike (userId: userScope). */
export const TASK_FILTER = defineFilter<Omit<TaskFilter, 'userId'>, TaskRow, Prisma.TaskWhereInput>({
  sourceId: equalsId('sourceId', MAX_SOURCE_ID_LENGTH),
  appName: equalsId('appName', MAX_APP_NAME_LENGTH),
  status: oneOf('status'),
  type: oneOf('type'),
  createdAfter: atOrAfter('createdAt'),
  createdBefore: atOrBefore('createdAt'),
});

export const TASK_CURSOR = 'task';

/**
 * The most tasks `App.tasks` reads at once for a page of apps, to cut each app's page in memory;
 * beyond, each app's page is read on its own (TaskService.tasksOfApps).
 */
const APP_TASKS_READ_AT_ONCE = 1_000;
/** Apps whose pages are read at the same time past that bound. */
const PAGES_AT_ONCE = 8;

/** Reads of tasks. (Creating and running them is the task engine's job.) */
export class TaskService {
  /**
   * Pages and reads by id straight on the driver (db/driver-sql.ts, db/list-sql.ts): through
   * Prisma a `tasks(first: 20)` page cost 4.8 ms of server CPU (G1 benchmark).
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
   * Every change of a task the viewer may see matching the filter, read per subscriber. One task
   * (`taskId`) starts with its state as it is: a client subscribes once the mutation gave it the
   * id, and a task that moved or ended before that would otherwise never be shown (an uninstall on
   * the simulated app service had ended, and its subscriber waited for nothing).
   */
  subscribe(viewer: Viewer, filter_: TaskFilter = {}, taskId?: string | null): AsyncIterable<TaskRow> {
    checkIdArgument('taskId', taskId, MAX_TASK_ID_LENGTH);
    const userId = userScope(viewer, filter_.userId);
    const wanted = TASK_FILTER.compile(filter_);
    // The event carries the key: skip reading the tasks whose key already fails the filter.
    const wantedKey = wanted.only(['sourceId', 'appName']);
    // Listening before the first read: a change between them is read again, never missed.
    const changes = this.bus.subscribe(
      'task:updated',
      (event) =>
        (userId === undefined || event.userId === userId) &&
        (!taskId || event.taskId === taskId) &&
        wantedKey.matches(event),
    );
    const events = taskId ? startingWith<{ taskId: string }>({ taskId }, changes) : changes;
    return readEach(events, async (event) => {
      const task = await whenAvailable(() => this.db.task.findUnique({ where: { taskId: event.taskId } }));
      // The owner again: the first read is of whatever task id the client named.
      const visible = task !== null && (userId === undefined || task.userId === userId);
      return visible && wanted.matches(task) ? task : null;
    });
  }

  /** A page of the tasks the viewer may see, with the columns the API shows (TaskView). */
  list(viewer: Viewer, filter: TaskFilter = {}, page: PageArgs = {}): Promise<Connection<TaskView>> {
    return this.page<TaskView>(userScope(viewer, filter.userId), filter, page, TASK_LIST_COLUMNS);
  }

  /** A page of one user's tasks (everyone's: undefined) matching the filter, with `columns` (all by default). */
  private page<Row extends { id: number }>(
    userId: string | undefined,
    filter: Omit<TaskFilter, 'userId'>,
    args: PageArgs,
    columns?: Parameters<typeof pageRows>[4],
  ): Promise<Connection<Row>> {
    const conditions = conditionsSql('Task', [...ownerCondition(userId), ...TASK_FILTER.compile(filter).stored]);
    return paginateWindow(
      TASK_CURSOR,
      args,
      this.maxPageSize,
      (window) => pageRows<Row>(this.sql, 'Task', conditions, window, columns),
      () => countRows(this.sql, 'Task', conditions),
    );
  }

  /**
   * Deletes the tasks that ended before `cutoff` (HISTORY_RETENTION_DAYS, as their history
   * records), in bounded statements until none is left or `deadline` (epoch ms) has passed.
   * Nothing else deletes a task row: without this, every operation ever asked for stayed.
   */
  removeFinishedBefore(cutoff: Date, deadline = Infinity): Promise<Removal> {
    return removeInBatches((limit) => removeFinishedTasks(this.db, providerOf(this.db), cutoff, limit), deadline);
  }

  /** By the task's own id; null when it does not exist or belongs to someone the viewer may not see. */
  async get(viewer: Viewer, taskId: string): Promise<TaskRow | null> {
    checkIdArgument('taskId', taskId, MAX_TASK_ID_LENGTH);
    const [task] = await findTasks(this.sql, [taskId]);
    return task && canSee(viewer, task.userId) ? task : null;
  }

  /**
   * Tasks by id, in the order asked (null for one that is gone), seen by no one in particular: for
   * a task the service has just answered with, whose viewer it already checked (loaders.showTask).
   */
  async byIds(taskIds: readonly string[]): Promise<(TaskRow | null)[]> {
    const byId = new Map((await findTasks(this.sql, [...new Set(taskIds)])).map((task) => [task.taskId, task]));
    return taskIds.map((taskId) => byId.get(taskId) ?? null);
  }

  /**
   * The task lists of several apps with the same arguments: `App.tasks` under a list of apps. An
   * app has few tasks, so all of theirs are read in one query and each app's page is cut in
   * memory. Unless they have many (an app installed and uninstalled over and over has thousands,
   * all read for `tasks(first: 1)`): past APP_TASKS_READ_AT_ONCE rows, each app's page is read on
   * its own, as `tasks` pages are.
   */
  async tasksOfApps(
    keys: readonly AppKey[],
    args: PageArgs & { status?: TaskStatus[] | null },
  ): Promise<Connection<TaskRow>[]> {
    const status = args.status?.length ? { status: { in: [...new Set(args.status)] } } : {};
    // Each app once (its loader does not cache, so an app asked for twice comes twice): in two
    // chunks, its tasks would be read, and listed, twice.
    const apps = [...new Map(keys.map((key) => [appKeyString(key), key])).values()];
    // The bound is the request's, over every chunk: what one chunk read, the next may read less.
    let room = APP_TASKS_READ_AT_ONCE;
    const rows = await readInChunks(apps, KEYS_PER_OR, async (chunk) => {
      if (room < 0) return [];
      const where = { OR: chunk.map(({ userId, sourceId, appName }) => ({ userId, sourceId, appName })), ...status };
      const read = await this.db.task.findMany({ where, take: room + 1 });
      room -= read.length;
      return read;
    });
    if (room < 0) return this.pagesOfApps(apps, keys, args);
    const byApp = new Map<string, TaskRow[]>();
    for (const row of rows) {
      const key = appKeyString(row);
      const list = byApp.get(key);
      if (list) list.push(row);
      else byApp.set(key, [row]);
    }
    return keys.map((key) => paginateArray(TASK_CURSOR, args, this.maxPageSize, byApp.get(appKeyString(key)) ?? []));
  }

  /** Each app's page on its own, a few at a time (each is two statements: the pool is shared). */
  private async pagesOfApps(
    apps: readonly AppKey[],
    keys: readonly AppKey[],
    args: PageArgs & { status?: TaskStatus[] | null },
  ): Promise<Connection<TaskRow>[]> {
    const pages = new Map<string, Connection<TaskRow>>();
    for (let start = 0; start < apps.length; start += PAGES_AT_ONCE) {
      const some = apps.slice(start, start + PAGES_AT_ONCE);
      const read = await Promise.all(some.map((key) => this.pageOfApp(key, args)));
      for (const [index, key] of some.entries()) pages.set(appKeyString(key), read[index] as Connection<TaskRow>);
    }
    return keys.map((key) => pages.get(appKeyString(key)) as Connection<TaskRow>);
  }

  /** One app's page of tasks, read as a `tasks` page is (an index walk of the page, a count). */
  private pageOfApp(key: AppKey, args: PageArgs & { status?: TaskStatus[] | null }): Promise<Connection<TaskRow>> {
    return this.page<TaskRow>(key.userId, { sourceId: key.sourceId, appName: key.appName, status: args.status }, args);
  }
}
