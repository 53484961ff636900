// What the dashboard knows, and the filters that choose what it shows. The runtime part is fed
// by runtimeSnapshot and runtimeEvents (dashboard.js), the feeds by their own subscriptions; the
// filters live in the URL's query string, so a reload keeps them and back/forward moves
// between them.

import { AppMap, OwnedMap } from './app-map.js';
import { clip, FILTER_KEYS, pacer } from './format.js';

export const TASK_STATUSES = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELED'];
export const APP_STAGES = [
  'FETCHING',
  'HYDRATING',
  'INSTALLING',
  'RUNNING',
  'UPGRADING',
  'UNINSTALLING',
  'STOPPING',
  'STOPPED',
  'RESUMING',
  'FAILED',
  'UNKNOWN',
];
/** History records kept (and shown), newest first. */
export const HISTORY_LIMIT = 50;

/** What the server sent: all of it is forgotten when the viewer may have changed (resetState). */
function serverData() {
  return {
    /** Sequence of the last runtime change applied; null until a snapshot arrived (or after RESYNC). */
    sequence: null,
    /** When the last snapshot or event arrived (epoch ms, this browser's clock). */
    updatedAt: null,
    summary: null,
    /** By appKey; keeps its list order and owners as apps change (app-map.js). */
    apps: new AppMap(),
    tasks: new OwnedMap(),
    components: new Map(),
    chartRepo: null,
    /** `{ userId, isAdmin }` once the viewer query answered. */
    viewer: null,
    /** Newest first, at most HISTORY_LIMIT. */
    history: [],
    /** Whether the first list of history records arrived (the feed only adds to it after that). */
    historyLoaded: false,
    /** Why the history (or payments) list could not be read, while it is tried again; else null. */
    historyError: null,
    paymentsError: null,
    /** Payment states by id (admins only). */
    payments: new Map(),
    /** Payment states older than those listed (only the newest started are), less those heard of since. */
    paymentsHidden: 0,
    /** The creation time of the oldest payment listed (null before the list arrived). */
    paymentsOldestListed: null,
    /** The server refused the tab's credentials: nothing is loading until someone signs in. */
    signedOut: false,
    /** The outcome of the last cancel/retry per task id: `{ ok, text }`. */
    taskMessages: new Map(),
  };
}

export const state = {
  ...serverData(),
  /** Which <details> (by data-open-key) the operator opened, kept across re-renders. */
  openDetails: new Set(),
  /** Sections whose data changed since they were last drawn. */
  dirty: new Set(),
};

/** Payment states kept (admins only): the newest by updatedAt; a long-open page must not grow. */
export const PAYMENTS_LIMIT = 200;
/** Cancel/retry outcomes kept: the latest ones (the rows they belong to may be long gone). */
export const TASK_MESSAGES_LIMIT = 50;

/**
 * Forgets everything the server sent (filters, open details aside): after a 4403 or a sign-in the
 * next viewer may be someone else, who must see nothing of the previous one's; the next
 * connection starts again from a snapshot (sequence null).
 */
export function resetState() {
  Object.assign(state, serverData());
  touchAllNow(); // at once: not a quarter of a second more of the previous viewer's data
}

export const appKey = (app) => `${app.userId}/${app.sourceId}/${app.appName}`;

let draw = () => {};
let draws = 0;

/** Who draws the page after a change (dashboard.js): at most once per DRAW_GAP_MS while changes stream. */
export function onChange(drawer) {
  draw = drawer;
}

const schedule = pacer(() => {
  draw();
  // How many draws so far, for the tests (test/dashboard-load.browser.test.ts bounds their rate).
  document.documentElement.dataset.draws = String(++draws);
});

/** Marks sections to draw again ('*': all of them) and asks for a draw. */
export function touch(...sections) {
  for (const section of sections) state.dirty.add(section);
  schedule(false);
}

/** The operator changed what is shown (a filter, a tab): drawn at once, not at the live changes' pace. */
function touchAllNow() {
  state.dirty.add('*');
  schedule(true);
}

/** Adds history records (from the list or the subscription), newest first, without duplicates. */
export function addHistory(records) {
  const byId = new Map(state.history.map((record) => [record.id, record]));
  for (const record of records) byId.set(record.id, record);
  state.history = [...byId.values()].sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
  state.history.length = Math.min(state.history.length, HISTORY_LIMIT);
  touch('history', 'filters');
}

/** Adds payment states (from the list or the subscription): the newest PAYMENTS_LIMIT by last change are kept. */
export function addPayments(payments) {
  for (const payment of payments) {
    const known = state.payments.get(payment.id);
    // One of those left out of the list, changed since: no longer among the hidden ones.
    const hidden = !known && state.paymentsOldestListed !== null && payment.createdAt < state.paymentsOldestListed;
    if (hidden && state.paymentsHidden > 0) state.paymentsHidden -= 1;
    if (!known || known.updatedAt <= payment.updatedAt) state.payments.set(payment.id, payment);
  }
  if (state.payments.size > PAYMENTS_LIMIT) {
    const newest = [...state.payments.values()].sort((a, b) => String(b.updatedAt).localeCompare(String(a.updatedAt)));
    state.payments = new Map(newest.slice(0, PAYMENTS_LIMIT).map((payment) => [payment.id, payment]));
  }
  touch('payments', 'filters');
}

// ---- filters in the URL -------------------------------------------------------------------

/** The filters in the address bar now (unknown keys ignored, values bounded). */
export function readFilters() {
  const params = new URLSearchParams(location.search);
  const filters = {};
  for (const key of FILTER_KEYS) filters[key] = clip(params.get(key));
  if (filters.stage && !APP_STAGES.includes(filters.stage)) filters.stage = '';
  if (filters.status && !TASK_STATUSES.includes(filters.status)) filters.status = '';
  return filters;
}

export let filters = readFilters();

/**
 * Changes filters and writes them to the URL: `push` adds a history entry (a deliberate choice
 * such as a tab or a select), otherwise the entry is replaced (typing in the search box).
 */
export function setFilters(changes, { push = true } = {}) {
  filters = { ...filters, ...changes };
  const params = new URLSearchParams();
  for (const key of FILTER_KEYS) if (filters[key]) params.set(key, filters[key]);
  const query = params.toString();
  const url = `${location.pathname}${query ? `?${query}` : ''}${location.hash}`;
  if (url !== `${location.pathname}${location.search}${location.hash}`) {
    if (push) history.pushState(null, '', url);
    else history.replaceState(null, '', url);
  }
  touchAllNow();
}

/** After back/forward: the filters are whatever the URL says now. */
export function reloadFilters() {
  filters = readFilters();
  touchAllNow();
}

const contains = (values, q) =>
  values.some((value) =>
    String(value ?? '')
      .toLowerCase()
      .includes(q),
  );

/** Whether an app passes the user, source, stage and search filters. */
export function showsApp(app) {
  if (filters.user && app.userId !== filters.user) return false;
  if (filters.source && app.sourceId !== filters.source) return false;
  if (filters.stage && app.stage !== filters.stage) return false;
  const q = filters.q.toLowerCase();
  // The titles its row shows too: a clone is known by the title it was given ("Family photos"),
  // which only its entrances carry (its appName is the original's name and six hex digits).
  const titles = (app.entrances ?? []).filter((e) => !e.invisible).map((e) => e.title);
  return !q || contains([app.appName, app.userId, app.sourceId, app.reason, app.state, ...titles], q);
}

/**
 * Whether a task passes the filters (its status tab aside): the stage filter keeps the tasks of
 * the apps in that stage, so `stage=FAILED` shows the failed apps and what was done to them.
 */
export function showsTask(task) {
  if (filters.user && task.userId !== filters.user) return false;
  if (filters.source && task.sourceId !== filters.source) return false;
  if (filters.stage) {
    const app = state.apps.get(appKey(task));
    if (app?.stage !== filters.stage) return false;
  }
  const q = filters.q.toLowerCase();
  return !q || contains([task.appName, task.taskId, task.userId, task.type, task.error], q);
}

/** History records have no source or stage: user and search apply. */
export function showsHistory(record) {
  if (filters.user && record.userId !== filters.user) return false;
  const q = filters.q.toLowerCase();
  return !q || contains([record.app, record.message, record.type, record.userId], q);
}

export function showsPayment(payment) {
  if (filters.user && payment.userId !== filters.user) return false;
  if (filters.source && payment.sourceId !== filters.source) return false;
  const q = filters.q.toLowerCase();
  return !q || contains([payment.appName, payment.appId, payment.userId, payment.status], q);
}

/** Chart-repo rows carry some of user, source and app name (or null); a filter applies where they do. */
export function showsRepoItem({ userId, sourceId, appName, text = [] }) {
  if (filters.user && userId != null && userId !== filters.user) return false;
  if (filters.source && sourceId != null && sourceId !== filters.source) return false;
  const q = filters.q.toLowerCase();
  return !q || contains([appName, userId, ...text], q);
}

/**
 * The users and sources seen anywhere, for the filter menus: those of the apps and tasks are
 * counted as they change (app-map.js); walking all 50,000 apps at each draw took 118 ms.
 */
export function knownOwners() {
  const users = new Set([...state.apps.users.keys(), ...state.tasks.users.keys()]);
  const sources = new Set([...state.apps.sources.keys(), ...state.tasks.sources.keys()]);
  for (const payment of state.payments.values()) {
    if (payment.userId) users.add(payment.userId);
    if (payment.sourceId) sources.add(payment.sourceId);
  }
  for (const record of state.history) if (record.userId) users.add(record.userId);
  return { users: [...users].sort(), sources: [...sources].sort() };
}
