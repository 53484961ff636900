// The per-app "App Processing Flow" page: /dashboard/app?user=…&source=…&app=…
// Fed over the dashboard's one WebSocket only (no polling): a query to start from, with the
// runtime sequence it was read at, then runtimeEvents for this app from that sequence. After a
// reconnect it resumes from the last sequence applied; on RESYNC it starts again from the query.

import { CATALOGUE_EVENTS, FLOW_EVENTS, FLOW_QUERY, SYNCER_QUERY } from './app-flow-documents.js';
import { buildSteps } from './app-flow-steps.js';
import { identityHtml, refreshTimes, stepHtml } from './app-flow-view.js';
import { DASHBOARD_PATH, esc, FILTER_KEYS, filterQuery, MAX_FILTER_LENGTH, pacer, showConnection } from './format.js';
import { bindSignIn, CONNECTION_CLOSED, closedUnder, createLiveClient } from './live-client.js';

/** Bounds on the link's parameters: ids and names are short; anything longer is not a real link. */
const MAX_PARAM = 128;
/**
 * `back` holds the dashboard's filters (format.js filterQuery: known keys, each value at most
 * MAX_FILTER_LENGTH characters); percent-encoded, a character takes up to 9: anything longer than
 * the longest such query is not the dashboard's.
 */
const MAX_BACK = FILTER_KEYS.reduce((sum, key) => sum + key.length + 2 + 9 * MAX_FILTER_LENGTH, 0);
/** Recent tasks shown (the query's `first`); events add to them, the oldest leave. */
const TASKS_SHOWN = 10;
/** The Syncer changes often while it syncs; the catalogue entry is read again at most this often. */
const SYNCER_REFRESH_MS = 2000;

const $ = (selector) => document.querySelector(selector);

/** The page's parameters, or a message saying what is wrong with the link. */
function parseParams(search, referrer = '') {
  const query = new URLSearchParams(search);
  const params = {};
  const problems = [];
  for (const [key, label] of [
    ['user', 'user (the owner)'],
    ['source', 'source (the market source id)'],
    ['app', 'app (the app name)'],
  ]) {
    const value = (query.get(key) ?? '').trim();
    if (!value) problems.push(`the ${label} is missing`);
    else if (value.length > MAX_PARAM) problems.push(`the ${key} is longer than ${MAX_PARAM} characters`);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
    else if (/[\u0000-\u001f\u007f]/.test(value)) problems.push(`the ${key} contains control characters`);
    else params[key] = value;
  }
  // The dashboard's own filters, passed along (or read from the dashboard page that linked
  // here) so that the way back keeps them.
  const back = query.get('back') ?? dashboardFilters(referrer);
  params.back = back.length <= MAX_BACK ? filterQuery(back) : '';
  return problems.length ? { problems, back: params.back } : { params };
}

/** The query of the dashboard page (same origin, DASHBOARD_PATH) this page was opened from, if any. */
function dashboardFilters(referrer) {
  try {
    const from = new URL(referrer);
    return from.origin === location.origin && from.pathname === DASHBOARD_PATH ? from.search : '';
  } catch {
    return '';
  }
}

/** What the page knows; `sequence` null until the query answered (or after RESYNC or a sign-in). */
const initialState = () => ({
  app: null,
  appLoaded: false,
  catalogEntry: null,
  source: null,
  sourcesLoaded: false,
  chartRepo: null,
  components: new Map(),
  tasks: new Map(),
  sequence: null,
});
const state = initialState();

/** Keeps the newest TASKS_SHOWN tasks: a page left open must not grow with every event. */
function trimTasks() {
  if (state.tasks.size <= TASKS_SHOWN) return;
  const newest = [...state.tasks.values()].sort((a, b) => String(b.createdAt).localeCompare(String(a.createdAt)));
  state.tasks = new Map(newest.slice(0, TASKS_SHOWN).map((task) => [task.taskId, task]));
}

const isThisApp = (item, params) =>
  item.appName === params.app && item.sourceId === params.source && item.userId === params.user;

const setConnection = (kind, text) => showConnection($('#connection'), kind, text);

function showProblem(text) {
  const el = $('#problem');
  el.textContent = text;
  el.hidden = !text;
}

/** The HTML each region of the page was last drawn from. */
const drawn = new Map();

/**
 * Draws `html` into the region `selector` only when it differs from what is there. Rebuilt at
 * every event of the app (18 times in 15 s of an install, most changing nothing shown), the step
 * list sent a screen reader back to its top and lost the reader's text selection.
 */
function drawRegion(selector, html) {
  if (drawn.get(selector) === html) return;
  drawn.set(selector, html);
  const el = $(selector);
  el.innerHTML = html;
  refreshTimes(el); // times are drawn empty, so that the HTML does not change each second
}

function render(params) {
  drawRegion('#identity', identityHtml(params, state.chartRepo));
  drawRegion(
    '#flow',
    buildSteps(state, params)
      .map((step, i) => stepHtml(step, i + 1))
      .join(''),
  );
}

function applySyncer(params, data) {
  const entries = (data.catalog?.edges ?? []).map((edge) => edge.node);
  state.catalogEntry = state.app?.catalogApp ?? entries.find((entry) => entry.name === params.app) ?? null;
  state.source = (data.marketSources ?? []).find((source) => source.sourceId === params.source) ?? null;
  state.sourcesLoaded = Boolean(data.marketSources);
}

function applyStart(params, data) {
  state.app = data.app ?? null;
  state.appLoaded = true;
  applySyncer(params, data);
  state.chartRepo = data.chartRepo ?? null;
  state.components = new Map((data.components ?? []).map((c) => [c.name, c]));
  state.tasks = new Map((data.tasks?.edges ?? []).map((edge) => [edge.node.taskId, edge.node]));
  state.sequence = data.runtimeSnapshot?.sequence ?? null;
}

function errorText(errors, params) {
  const first = errors?.[0];
  if (!first) return '';
  const code = first.extensions?.code;
  if (code === 'FORBIDDEN') return `You may not see the apps of ${params.user}: ${first.message}`;
  return `The server answered with an error${code ? ` (${code})` : ''}: ${first.message}`;
}

/** Applies one runtime event to the state; true when the Syncer changed. */
function applyEventToState(event, params) {
  // The subscription's filter already narrows events to this app; checked again so that a
  // wider filter could never show another app's row here.
  if (event.app && isThisApp(event.app, params)) {
    state.app = event.app;
    if (event.app.catalogApp) state.catalogEntry = event.app.catalogApp;
  }
  if (event.removedApp && isThisApp(event.removedApp, params)) state.app = null;
  if (event.task && isThisApp(event.task, params)) {
    if (event.kind === 'TASK_REMOVED') state.tasks.delete(event.task.taskId);
    else state.tasks.set(event.task.taskId, event.task);
    trimTasks();
  }
  if (event.chartRepo) state.chartRepo = event.chartRepo;
  if (event.component) {
    state.components.set(event.component.name, event.component);
  }
  return event.component?.name === 'syncer';
}

/**
 * The Syncer's outcome has no runtime event of its own: when the source's catalogue changes
 * (catalogueChanged, `force`), or the syncer component does (at most every SYNCER_REFRESH_MS),
 * the catalogue entry and the source's sync status are read again, over the same socket. A
 * change that arrives during a read is read again after it, as that read may predate it.
 */
function syncerRefresher(client, params) {
  let refreshedAt = 0;
  let inFlight = false;
  let again = false;
  return async function refresh(force = false) {
    if (inFlight) {
      again ||= force;
      return;
    }
    if (!force && Date.now() - refreshedAt < SYNCER_REFRESH_MS) return;
    inFlight = true;
    try {
      const result = await client.request(SYNCER_QUERY, { appName: params.app, sourceId: params.source });
      if (result?.data) {
        applySyncer(params, result.data);
        render(params);
      }
    } catch {
      // The socket closed; the next start reads everything again.
    } finally {
      inFlight = false;
      refreshedAt = Date.now();
    }
    if (again) {
      again = false;
      await refresh(true);
    }
  };
}

function startPage(params) {
  const variables = {
    appName: params.app,
    sourceId: params.source,
    userId: params.user,
    filter: { appName: params.app, sourceId: params.source, userId: params.user },
    taskFilter: { appName: params.app, sourceId: params.source, userId: params.user },
  };
  let stopEvents = null;

  // Another viewer may sign in next: nothing of this one's stays on the page or in flight.
  function forgetViewer() {
    stopEvents?.();
    stopEvents = null;
    Object.assign(state, initialState());
    showProblem('');
    render(params);
  }
  const client = createLiveClient({
    onState: setConnection,
    onOpen: () => (state.sequence === null ? load() : follow()),
    onUnauthorised: forgetViewer,
    onSignIn: forgetViewer,
  });
  const refreshSyncer = syncerRefresher(client, params);
  // Events are drawn at the dashboard's pace (a draw every DRAW_GAP_MS at most while they stream).
  const renderSoon = pacer(() => render(params));

  async function load() {
    stopEvents?.();
    let result;
    try {
      result = await client.request(FLOW_QUERY, variables);
    } catch (error) {
      // A dropped connection is no refusal: the next connection loads again, and says so.
      if (closedUnder(error)) return;
      // Refused as a whole (e.g. not a persisted document); the next connection tries again.
      setConnection('failed', `error: ${error.message}`);
      showProblem(`The server refused this page's query: ${error.message}`);
      return;
    }
    showProblem(errorText(result?.errors, params));
    if (!result?.data) {
      // Refused as a whole (e.g. another user's app): the message says why; no steps to show.
      setConnection('failed', 'refused');
      drawRegion('#flow', '');
      return;
    }
    applyStart(params, result.data);
    render(params);
    follow();
  }

  function follow() {
    stopEvents?.();
    const stopCatalogue = client.subscribe(
      CATALOGUE_EVENTS,
      { sourceId: params.source },
      { next: () => refreshSyncer(true), error: () => {}, complete: () => {} },
    );
    const stopRuntime = client.subscribe(
      FLOW_EVENTS,
      {
        appName: params.app,
        filter: variables.filter,
        since: state.sequence,
        sourceId: params.source,
        userId: params.user,
      },
      {
        next: (result) => {
          if (result.errors) showProblem(errorText(result.errors, params));
          if (result.data?.runtimeEvents) applyEvent(result.data.runtimeEvents);
        },
        error: (errors) => {
          if (Array.isArray(errors) && errors[0] !== CONNECTION_CLOSED) showProblem(errorText(errors, params));
        },
        complete: () => {},
      },
    );
    stopEvents = () => {
      stopCatalogue();
      stopRuntime();
    };
    setConnection('live', `live${client.reconnects ? ` · resumed after ${client.reconnects} reconnect(s)` : ''}`);
  }

  function applyEvent(event) {
    if (event.kind === 'RESYNC') {
      // Missed too much: start again from the query.
      state.sequence = null;
      load();
      return;
    }
    if (applyEventToState(event, params)) refreshSyncer();
    state.sequence = event.sequence;
    renderSoon();
  }

  bindSignIn(client, { form: $('#login'), input: $('#token'), signOut: $('#sign-out'), problem: $('#auth-problem') });
  render(params);
  client.start();
  setInterval(() => refreshTimes(), 1000);
}

function main() {
  const parsed = parseParams(location.search, document.referrer);
  const back = parsed.params?.back ?? parsed.back;
  $('#back').href = `${DASHBOARD_PATH}${back ? `?${back}` : ''}`;
  if (parsed.problems) {
    setConnection('failed', 'bad link');
    showProblem(
      `This link does not name an app: ${parsed.problems.join('; ')}. Open an app from the dashboard, or use /dashboard/app?user=…&source=…&app=…`,
    );
    drawRegion('#identity', `<h2>${esc('No app')}</h2>`);
    return;
  }
  document.title = `${parsed.params.app} — app processing flow`;
  startPage(parsed.params);
}

main();
