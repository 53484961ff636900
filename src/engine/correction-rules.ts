/**
 * What status correction does about one comparison of the app service's list with the stored
 * states and active tasks: pure rules, no database (status-correction.ts applies them).
 */

import { mayBeListedAs } from '../adapters/app-service/app-listing.js';
import type { AppEntrance, AppStateEvent, UnreadableListedApp } from '../adapters/app-service/port.js';
import type { AppRow, Prisma, TaskRow } from '../db/models.js';
import { appKeyString } from '../domain/app-key.js';
import { isRecord } from '../platform/json.js';

/** One correction to make. */
export type Correction =
  /** Listed, with no state row: the row is created from the listed state. */
  | { kind: 'appeared'; listed: AppStateEvent }
  /**
   * Listed in another state (or with other entrances) than the row holds, and listed later than
   * the row's state, or at its time over a failure this server wrote itself (`ownState`, that
   * failure, see heldOwnFailure; else null); `takesVersion`: the row also takes the listed version
   * (no task of ours, the app at rest: never a first install still on its way, whose cancel would
   * leave it behind): where it has none, or where the list, no older than the row, shows another
   * one (runsOtherVersion: an upgrade that failed here and that the app service carried out).
   */
  | { kind: 'corrected'; row: AppRow; listed: AppStateEvent; takesVersion: boolean; ownState: string | null }
  /** Not listed any more, not a system app, no active task, nothing newer than the list: the row goes. */
  | { kind: 'removed'; row: AppRow }
  /** A running task whose end the app service's list shows (its end state, or the app gone for an uninstall). */
  | { kind: 'taskCompleted'; task: TaskRow; listed: AppStateEvent | null };

export interface Comparison {
  /** The app service's list of apps (system apps included; they are left alone). */
  listed: AppStateEvent[];
  /** Its middlewares, or null when they could not be listed (stored middlewares are then kept). */
  middlewares: AppStateEvent[] | null;
  rows: AppRow[];
  /** PENDING and RUNNING tasks, read after the rows and, as they were, before the list was asked for. */
  active: TaskRow[];
  /** When the run began, before its reads and the list: a row with a later state was written after it, and is kept. */
  requestedAt: Date;
  /** Names the app service lists as its own system apps (this list's and earlier ones'). */
  systemNames: ReadonlySet<string>;
  /**
   * How long a task must have run before a list that does not show its start may end it (the
   * original's 30 s): a list older than the task may still show the state from before it.
   */
  minTaskAgeMs: number;
  /** Items of the list that could not be read: an app they may be is never taken for gone. */
  unreadable?: UnreadableListedApp[];
  /**
   * Apps (app keys) whose task ended at or after `requestedAt`, read after the rows and the list:
   * the list may predate that end (an uninstall that removed the row), so an absent row proves nothing.
   */
  endedSinceRequest?: ReadonlySet<string>;
}

/** What a task's result says when status correction completed it. */
const CORRECTED_BY = 'status correction';

/** The result of a task status correction completed: the envelope written when the app service accepted it, completed. */
export function correctedResult(task: Pick<TaskRow, 'type' | 'result'>): Prisma.InputJsonObject {
  const envelope = isRecord(task.result) ? task.result : { operation: task.type.toLowerCase() };
  return { ...envelope, status: 'success', correctedBy: CORRECTED_BY } as Prisma.InputJsonObject;
}

/** Removals one run makes without question; more, and more than half of the apps, are withheld. */
export const REMOVALS_BEYOND_DOUBT = 5;

/**
 * States an app passes through during an operation: a list that shows one is in the middle of
 * something whose end (an uninstall's included) may already be stored, so no row is created from it.
 */
export function isTransitional(state: string): boolean {
  const lower = state.toLowerCase();
  return lower === 'pending' || (lower.endsWith('ing') && lower !== 'running');
}

/** The state an operation ends in on the app service; null: the app is gone (uninstall), or no such end. */
const END_STATE: Record<string, string | null | undefined> = {
  INSTALL: 'running',
  CLONE: 'running',
  UPGRADE: 'running',
  RESUME: 'running',
  STOP: 'stopped',
  UNINSTALL: null,
};

/** One app of one user, whatever its source: the app service runs one app of a name per user. */
function userApp(app: { userId: string; appName: string }): string {
  return `${app.userId}/${app.appName}`;
}

/**
 * The corrections a comparison calls for, each app's state correction before its task's end.
 * It runs over every stored app at every status correction (a minute by default), in one turn of
 * the event loop: each row's key is built once, a listed app is copied only for a correction, and
 * dates are compared by their numbers. Measured on 100k apps with 945 to correct
 * (after warm-up, two alternating runs of seven plans each): 449–493 → 251–348 ms per plan.
 */
export function planCorrections(comparison: Comparison): Correction[] {
  const { rows, requestedAt } = comparison;
  const listed = newestByUserApp(comparison.listed.filter((app) => !app.system));
  const middlewares = comparison.middlewares && new Set(comparison.middlewares.map(userApp));
  const activeByKey = new Map(comparison.active.map((task) => [task.activeKey ?? appKeyString(task), task]));
  const rowKeys = rows.map(userApp);
  const rowsByUserApp = new Map<string, AppRow[]>();
  for (let i = 0; i < rows.length; i++) {
    const key = rowKeys[i] as string;
    const row = rows[i] as AppRow;
    const same = rowsByUserApp.get(key);
    if (same) same.push(row);
    else rowsByUserApp.set(key, [row]);
  }

  const unreadable = comparison.unreadable ?? [];
  const corrections: Correction[] = [];
  for (const [key, app] of listed) {
    const candidates = rowsByUserApp.get(key);
    if (!candidates) {
      const endedSince = comparison.endedSinceRequest?.has(appKeyString(app)) ?? false;
      if (settledIn(app.state) && !endedSince) corrections.push({ kind: 'appeared', listed: app });
      continue;
    }
    // The row of the listed source; with one row only, that row (the list may not say the source).
    const row = candidates.length === 1 ? candidates[0] : candidates.find((one) => one.sourceId === app.sourceId);
    if (!row || (candidates.length > 1 && row.sourceId !== app.sourceId)) continue;
    const task = activeByKey.get(appKeyString(row));
    // A row without the installed version (an install that failed here, on a timeout or an answer
    // without op id, while the app service went on; an app first seen in its events) cannot be
    // stopped, upgraded or uninstalled through the API: the list says which chart runs.
    const unversioned = !task && !row.installedVersion && Boolean(app.listedVersion) && settledIn(app.state);
    const ownState = !task && heldOwnFailure(row, app) ? row.state : null;
    const later = app.createTime.getTime() > row.eventTime.getTime();
    const takesVersion = unversioned || (!task && runsOtherVersion(row, app, ownState));
    const corrected = ((later || ownState !== null) && differs(row, app)) || takesVersion;
    if (!corrected && !task) continue;
    const asRow = app.sourceId === row.sourceId ? app : { ...app, sourceId: row.sourceId };
    if (corrected) corrections.push({ kind: 'corrected', row, listed: asRow, takesVersion, ownState });
    if (task && endShown(task, asRow, comparison, row)) {
      corrections.push({ kind: 'taskCompleted', task, listed: asRow });
    }
  }
  for (let i = 0; i < rows.length; i++) {
    const key = rowKeys[i] as string;
    if (listed.has(key) || middlewares?.has(key)) continue;
    const row = rows[i] as AppRow;
    const task = activeByKey.get(appKeyString(row));
    if (task) {
      if (endShown(task, null, comparison, row)) corrections.push({ kind: 'taskCompleted', task, listed: null });
      continue;
    }
    if (comparison.systemNames.has(row.appName)) continue;
    // Middlewares are listed apart; when that list could not be read, their absence proves nothing.
    if (row.cfgType === 'middleware' && !middlewares) continue;
    if (row.eventTime > requestedAt) continue;
    // A task of the app ended after the list was asked for: the list predates that end (e.g. a
    // lost first install failed at start, left out of the list while its task still ran).
    if (comparison.endedSinceRequest?.has(appKeyString(row))) continue;
    if (unreadable.some((item) => mayBeListedAs(item, row))) continue;
    corrections.push({ kind: 'removed', row });
  }
  return corrections;
}

/**
 * Removals that look like a list gone wrong rather than apps gone (an empty list while apps are
 * stored, or more than half of the stored apps and more than a handful at once) are withheld:
 * a transient answer must not uninstall everything in the database. Returns the corrections to
 * make and how many removals were withheld, with why.
 */
export function withholdMassRemovals(
  corrections: Correction[],
  listed: { all: number /** not system apps: a real list always holds those (files, settings …) */; market: number },
  storedApps: number,
): { corrections: Correction[]; withheld: number; why: string | null } {
  const removals = corrections.filter((correction) => correction.kind === 'removed').length;
  if (removals === 0) return { corrections, withheld: 0, why: null };
  let why: string | null = null;
  if (listed.all === 0) why = `the app service listed no apps while ${storedApps} are stored`;
  // As empty, unless one app went (the last one, uninstalled outside the market, stays removable).
  else if (listed.market === 0 && removals > 1)
    why = `the app service listed only system apps while ${storedApps} are stored`;
  else if (removals > REMOVALS_BEYOND_DOUBT && removals * 2 > storedApps)
    why = `the list would remove ${removals} of the ${storedApps} stored apps`;
  if (!why) return { corrections, withheld: 0, why: null };
  return { corrections: corrections.filter((correction) => correction.kind !== 'removed'), withheld: removals, why };
}

function newestByUserApp(apps: AppStateEvent[]): Map<string, AppStateEvent> {
  const newest = new Map<string, AppStateEvent>();
  for (const app of apps) {
    const key = userApp(app);
    const seen = newest.get(key);
    if (!seen || seen.createTime.getTime() < app.createTime.getTime()) newest.set(key, app);
  }
  return newest;
}

/** An app the list shows installed and at rest (not on its way in or out). */
function settledIn(state: string): boolean {
  return state.toLowerCase() !== 'uninstalled' && !isTransitional(state);
}

/**
 * Whether the row holds, at the time of the listed state, a failure this server wrote itself: a
 * task that failed with no report of it (refused, answered 500, timed out, lost) shows the failure
 * on its app (task-end.ts) without a time of the app service's, so the row keeps the time of the
 * app service's last report. The app service has one state at a time: listed at that very time in
 * another state, at rest, the app never left it (an upgrade refused: still `running`, on the old
 * version). Left as it was, a `…Failed` row outranked a list that never changed, through every run
 * (stopApp refused a running app). A listed step under way (`stopping`) is no such proof: it stays
 * failed, to be retried.
 */
function heldOwnFailure(row: AppRow, listed: AppStateEvent): boolean {
  if (listed.createTime.getTime() !== row.eventTime.getTime() || row.state === listed.state) return false;
  return row.state.toLowerCase().endsWith('failed') && settledIn(listed.state);
}

/**
 * Whether the list shows the app at rest on another chart version than the row holds, later than
 * the row's state, or at its very time over a failure this server wrote itself (`ownState`). The
 * app service runs one chart at a time, and only its list says which (state events carry no
 * version, market-domain.md §6.5): an upgrade that failed here (answered HTTP 500, timed out) that
 * the app service carried out all the same runs the new one. A list at the time of the state the
 * row holds is not taken: its version may lag its state (a state cache written in two steps), and
 * would then take a completed upgrade back to the old version. So after an upgrade failed here, a
 * `running` report of the app service (which names no version) leaves the old version until the
 * app service lists a later state. Asked only with no task of ours active.
 */
function runsOtherVersion(row: AppRow, listed: AppStateEvent, ownState: string | null): boolean {
  if (!listed.listedVersion || listed.listedVersion === row.installedVersion || !settledIn(listed.state)) return false;
  const listedAt = listed.createTime.getTime();
  const rowAt = row.eventTime.getTime();
  return listedAt > rowAt || (listedAt === rowAt && ownState !== null);
}

/** Whether the list shows something else than the row: another state, or other entrances (when it lists them). */
function differs(row: AppRow, listed: AppStateEvent): boolean {
  if (row.state !== listed.state) return true;
  if (!listed.entrances) return false;
  return entranceKey(listed.entrances) !== entranceKey((row.entrances as AppEntrance[] | null) ?? []);
}

/** Entrances compared by their fields, whatever order the database keeps JSON keys in. */
function entranceKey(entrances: AppEntrance[]): string {
  return JSON.stringify(
    entrances.map((e) => [e.name, e.title, e.url, e.state, e.authLevel, e.icon, e.openMethod, e.invisible, e.shared]),
  );
}

/**
 * Whether the list shows the end of a task still RUNNING (sent, so the app service has it): its
 * app in the operation's end state (`listed`), or gone for an uninstall (`null`). Only when the
 * list is later than the task's start, or the task has run for `minTaskAgeMs` already; never for
 * another operation than the task's (op ids differ), nor by a list older than the app's stored
 * state (`row`, see onListClock). A stop or resume is answered without an op id: a lagging list
 * that still showed the app running from before its stop completed the resume 30 s later, while
 * the row (rightly) kept `stopped`. An upgrade ends in the state it started from, so only a list later than
 * its start, or one naming its op id, shows its end: a running app listed before then was running
 * the old version (a stale list completed upgrades in progress, and left their apps UPGRADING
 * with no task).
 */
function endShown(task: TaskRow, listed: AppStateEvent | null, comparison: Comparison, row: AppRow): boolean {
  if (task.status !== 'RUNNING' || !task.dispatchedAt || !task.startedAt) return false;
  const end = END_STATE[task.type];
  if (end === undefined) return false;
  if (listed === null ? end !== null : end === null || listed.state.toLowerCase() !== end) return false;
  if (listed?.opId && task.opId && listed.opId !== task.opId) return false;
  if (listed && row.eventTime.getTime() > listed.createTime.getTime() && onListClock(row, task)) return false;
  const listedSinceStart = listed !== null && listed.createTime >= task.startedAt;
  // Or the list names the upgrade's own op id: its `running` is that operation's end, whatever
  // the two clocks say (an app service whose clock is behind listed it before the start).
  if (task.type === 'UPGRADE') return listedSinceStart || (listed?.opId != null && listed.opId === task.opId);
  const ranLongEnough = comparison.requestedAt.getTime() - task.startedAt.getTime() >= comparison.minTaskAgeMs;
  return ranLongEnough || listedSinceStart;
}

/**
 * Whether the row's `eventTime` is on the app service's clock, as the list's times are: a report
 * reached it, or the task's own op id is on it. Not a first install's row no report has reached
 * (its `eventTime` is still its `createdAt`, this server's clock, see upsertAppStateForTask).
 */
function onListClock(row: AppRow, task: TaskRow): boolean {
  return row.eventTime.getTime() !== row.createdAt.getTime() || (task.opId !== null && row.opId === task.opId);
}
