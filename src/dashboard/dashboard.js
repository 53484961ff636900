// The operator's live view. Fed only over one graphql-ws socket (live-client.js; no polling): one
// runtimeSnapshot to start from, then runtimeEvents from its sequence. After a reconnect it
// resumes with `since` = the last sequence applied; on RESYNC it starts again from a snapshot.
// Beside that feed: the viewer (which buttons to show), the history feed and, for admins, the
// payment states, each a first list plus a subscription.

import { AppMap, OwnedMap } from './app-map.js';
import { bindControls } from './controls.js';
import { HISTORY, HISTORY_ADDED, PAYMENT_UPDATED, PAYMENTS, VIEWER } from './documents.js';
import { showConnection, tickTimes } from './format.js';
import { CONNECTION_CLOSED, createLiveClient } from './live-client.js';
import { renderHistory, renderPayments } from './render-activity.js';
import { renderApps } from './render-apps.js';
import { renderChartRepo } from './render-chart-repo.js';
import { renderFilters } from './render-filters.js';
import { renderComponents, renderSummary, renderUpdated } from './render-overview.js';
import { renderTasks } from './render-tasks.js';
import { addHistory, addPayments, appKey, onChange, resetState, state, touch } from './state.js';

// These two documents are also GraphQL Code Generator documents (codegen.yml plucks the
// /* GraphQL */ literals), so the persisted-documents manifest it writes holds them. Under
// PERSISTED_DOCUMENTS the server runs a document sent as text only when it is a manifest document,
// whitespace aside, and the manifest's are normalised with their fields sorted: keep every
// selection in alphabetical order here (test/production-switches.test.ts checks it, and reads
// exactly these two from this file: the snapshot first).
const SNAPSHOT = /* GraphQL */ `query DashboardSnapshot {
  runtimeSnapshot {
    apps {
      appName entrances { invisible name state title url } health installedVersion progress reason sourceId stage state
      targetVersion updatedAt userId
    }
    chartRepo {
      appStates {
        appId appName currentStep { index name status total } error { message step } lastUpdate sourceId state userId
      }
      droppedItems
      imageStates {
        analysisStatus appName downloadProgress downloadedSize errorMessage imageName status totalSize
      }
      lastError lastUpdate
      queues {
        hydrator {
          activeTasks completedTasks failedTasks queueLength recentFailed { appName lastError taskId }
          tasks { appName lastError retryCount sourceId status stepName taskId totalSteps userId } workerCount
        }
        imageAnalyzer {
          activeWorkers analyzingCount averageAnalysisTimeMs failedAnalyzed healthStatus isRunning
          processingTasks { appName status taskId } queueLength queuedTasks { appName status taskId }
          recentFailed { appName error taskId } successfulAnalyzed totalAnalyzed
        }
      }
      reachable
    }
    components { healthy lastCheck message metrics name state }
    sequence
    summary {
      activeComponents appsByStage { count stage } canceledTasks completedTasks failedTasks healthyApps
      pendingTasks runningTasks totalApps totalTasks unhealthyApps
    }
    tasks { appName completedAt createdAt error message progress retryOfTaskId sourceId startedAt status taskId type userId }
  }
}`;
const EVENTS = /* GraphQL */ `subscription DashboardEvents($since: Float) {
  runtimeEvents(since: $since) {
    app {
      appName entrances { invisible name state title url } health installedVersion progress reason sourceId stage state
      targetVersion updatedAt userId
    }
    chartRepo {
      appStates {
        appId appName currentStep { index name status total } error { message step } lastUpdate sourceId state userId
      }
      droppedItems
      imageStates {
        analysisStatus appName downloadProgress downloadedSize errorMessage imageName status totalSize
      }
      lastError lastUpdate
      queues {
        hydrator {
          activeTasks completedTasks failedTasks queueLength recentFailed { appName lastError taskId }
          tasks { appName lastError retryCount sourceId status stepName taskId totalSteps userId } workerCount
        }
        imageAnalyzer {
          activeWorkers analyzingCount averageAnalysisTimeMs failedAnalyzed healthStatus isRunning
          processingTasks { appName status taskId } queueLength queuedTasks { appName status taskId }
          recentFailed { appName error taskId } successfulAnalyzed totalAnalyzed
        }
      }
      reachable
    }
    component { healthy lastCheck message metrics name state }
    kind
    removedApp { appName sourceId userId }
    removedComponent
    sequence
    summary {
      activeComponents appsByStage { count stage } canceledTasks completedTasks failedTasks healthyApps
      pendingTasks runningTasks totalApps totalTasks unhealthyApps
    }
    task { appName completedAt createdAt error message progress retryOfTaskId sourceId startedAt status taskId type userId }
  }
}`;

const $ = (selector) => document.querySelector(selector);

const setConnection = (kind, text) => showConnection($('#connection'), kind, text);

/**
 * Connections acknowledged since the page loaded (or a sign-in); each after the first followed a
 * lost one. `client.reconnects` counts attempts, failed ones too: "resumed after 9 reconnect(s)"
 * after one restart.
 */
let connections = 0;

const client = createLiveClient({
  onState: setConnection,
  onOpen: () => {
    connections += 1;
    clearTimeout(quietReplay);
    if (state.sequence === null) startSnapshot();
    else {
      // Resuming: what was missed is still to come (or a RESYNC), however soon the socket is back.
      catchingUp = true;
      setConnection('reconnecting', 'catching up…');
      startEvents();
    }
    loadSideFeeds();
  },
  onUnauthorised: () => {
    forgetViewer();
    state.signedOut = true;
  },
  onSignIn: forgetViewer,
});

/** Another viewer may sign in next: nothing of this one's stays on the page or in flight. */
function forgetViewer() {
  stopFeed();
  stopFeed = () => {};
  // A list read again later would be the next viewer's, read as if it were this one's.
  for (const timer of listRetries.values()) clearTimeout(timer);
  listRetries.clear();
  resetState();
  connections = 0;
  catchingUp = false;
  clearTimeout(quietReplay);
}

/** A refusal by the server (not a dropped connection, which the client recovers from itself). */
function isRefusal(errors) {
  return errors?.[0] !== CONNECTION_CLOSED;
}

/**
 * After a reconnection, until the replay from `since` answered: the page may still lack changes,
 * or be told RESYNC. Marked live at the viewer's answer, the badge said `live · reconnected…`
 * for ~0.2 s before a RESYNC turned it to `catching up…`.
 */
let catchingUp = false;
/**
 * A replay with nothing to replay sends nothing: once the viewer answered (the subscriptions were
 * in place before it), this long without a word from it counts as caught up.
 */
const QUIET_REPLAY_MS = 2000;
let quietReplay;

function caughtUp() {
  catchingUp = false;
  clearTimeout(quietReplay);
}

function markLive() {
  if (catchingUp) return;
  const n = Math.max(0, connections - 1);
  const note = n ? ` · reconnected after ${n} lost connection(s)` : '';
  // No sequence number in it: it changes at every event (the header says how fresh the data is).
  setConnection('live', `live${note}`);
}

// ---- the runtime feed ---------------------------------------------------------------------

let stopFeed = () => {};

function feedHandlers(onData) {
  return {
    next: (result) => {
      if (result.data) onData(result.data);
      else setConnection('failed', `error: ${result.errors?.[0]?.message ?? 'no data'}`);
    },
    error: (errors) => {
      if (isRefusal(errors)) setConnection('failed', `error: ${errors?.[0]?.message ?? 'subscription refused'}`);
    },
  };
}

/**
 * The starting point, as a query over the socket (one answer): the `runtimeSnapshot` subscription
 * pushed up to SNAPSHOT_MAX_HZ full snapshots until its `complete` reached the server, and on a
 * slow link (50 KB/s, 612 apps: 240 KB each) four more queued ahead of the events for 20 s.
 */
function startSnapshot() {
  stopFeed();
  stopFeed = client.subscribe(
    SNAPSHOT,
    {},
    feedHandlers((data) => {
      applySnapshot(data.runtimeSnapshot);
      startEvents();
    }),
  );
}

/**
 * Events from `state.sequence` on. The server shares one execution of a live stream (no `since`)
 * among the dashboards of a viewer, but runs a stream with `since` alone for as long as it lasts
 * (what it replays depends on when it starts): one per dashboard cost 21 ms of CPU per event at
 * 200 dashboards, 3.2 ms shared. So the live stream opens first and holds its events while a
 * `since` stream replays what was missed; once the replay reaches the live stream's first event
 * (both carry every event, in one order), it closes, and the held events newer than it follow.
 */
function startEvents() {
  stopFeed();
  const held = [];
  let replaying = true;
  const handOver = () => {
    if (!replaying || held.length === 0 || state.sequence === null || state.sequence < held[0].sequence) return;
    replaying = false;
    caughtUp();
    stopReplay();
    for (const event of held.splice(0)) if (event.sequence > state.sequence) applyEvent(event);
  };
  const stopLive = client.subscribe(
    EVENTS,
    { since: null },
    feedHandlers(({ runtimeEvents: event }) => {
      if (event.kind === 'RESYNC' || !replaying) return applyEvent(event);
      held.push(event);
      handOver();
    }),
  );
  const stopReplay = client.subscribe(
    EVENTS,
    { since: state.sequence },
    feedHandlers(({ runtimeEvents: event }) => {
      if (!replaying) return;
      if (event.kind !== 'RESYNC') caughtUp(); // the replay answered: what it brings is applied now
      applyEvent(event); // a RESYNC starts over from a snapshot, ending both streams
      handOver();
    }),
  );
  stopFeed = () => {
    stopLive();
    stopReplay();
  };
}

function applySnapshot(snapshot) {
  state.apps = new AppMap(snapshot.apps.map((app) => [appKey(app), app]));
  state.tasks = new OwnedMap(snapshot.tasks.map((task) => [task.taskId, task]));
  state.components = new Map(snapshot.components.map((c) => [c.name, c]));
  state.chartRepo = snapshot.chartRepo;
  state.summary = snapshot.summary;
  state.sequence = snapshot.sequence;
  state.updatedAt = Date.now();
  caughtUp();
  markLive();
  touch('*');
}

function applyEvent(event) {
  if (event.kind === 'RESYNC') {
    // Missed too much: start again from a snapshot; until it is here, what the page shows is old.
    state.sequence = null;
    setConnection('reconnecting', 'catching up…');
    startSnapshot();
    return;
  }
  if (event.app) state.apps.set(appKey(event.app), event.app);
  if (event.removedApp) state.apps.delete(appKey(event.removedApp));
  if (event.task && event.kind === 'TASK_REMOVED') {
    state.tasks.delete(event.task.taskId);
    state.taskMessages.delete(event.task.taskId);
  } else if (event.task) state.tasks.set(event.task.taskId, event.task);
  if (event.component) state.components.set(event.component.name, event.component);
  if (event.removedComponent) state.components.delete(event.removedComponent);
  if (event.chartRepo) state.chartRepo = event.chartRepo;
  if (event.summary) state.summary = event.summary;
  state.sequence = event.sequence;
  state.updatedAt = Date.now();
  markLive();
  if (event.app || event.removedApp) touch('apps', 'tasks', 'filters');
  if (event.task) touch('tasks', 'filters');
  if (event.component || event.removedComponent) touch('components');
  if (event.chartRepo) touch('chartRepo');
  touch('summary');
}

// ---- the viewer, the history feed and the payment states ----------------------------------

function loadSideFeeds() {
  client
    .request(VIEWER, {})
    .then((result) => {
      state.viewer = result?.data?.viewer ?? null;
      // The runtime subscriptions were sent before this answer on the same socket, so they are in place.
      if (catchingUp) {
        quietReplay = setTimeout(() => {
          caughtUp();
          markLive();
        }, QUIET_REPLAY_MS);
      } else if (state.sequence !== null) markLive();
      touch('tasks', 'payments');
      if (state.viewer?.isAdmin) loadPayments();
    })
    .catch(() => {});
  loadHistory();
}

function loadHistory() {
  // Subscribe first, then list: a record added in between arrives by one or the other.
  client.subscribe(HISTORY_ADDED, {}, { next: (result) => result.data && addHistory([result.data.historyAdded]) });
  listUntilRead('history', HISTORY, (data) => {
    state.historyLoaded = true;
    addHistory(data.history.edges.map((edge) => edge.node));
  });
}

const listRetries = new Map();

/**
 * Reads a list (`history`, `payments`). An answer without data is shown as the list's error; one
 * that says the database is away (UNAVAILABLE) has the list read again, 2 s later and then less
 * often, until it answers: taken for an empty list, it showed "Nothing yet." until the socket was replaced. A new
 * read (after a reconnection) replaces the one waiting.
 */
function listUntilRead(name, query, read, delayMs = 2000) {
  clearTimeout(listRetries.get(name));
  client
    .request(query, {})
    .then((result) => {
      const error = result?.errors?.[0];
      state[`${name}Error`] = result?.data ? null : (error?.message ?? 'no answer');
      if (result?.data) read(result.data);
      // Only "not now" (the database away) is worth asking again; a refusal would only be refused again.
      else if (error?.extensions?.code === 'UNAVAILABLE')
        listRetries.set(
          name,
          setTimeout(() => listUntilRead(name, query, read, Math.min(2 * delayMs, 30_000)), delayMs),
        );
      touch(name);
    })
    .catch(() => {});
}

function loadPayments() {
  client.subscribe(PAYMENT_UPDATED, {}, { next: (result) => result.data && addPayments([result.data.paymentUpdated]) });
  listUntilRead('payments', PAYMENTS, (data) => {
    // The newest started, one page: how many older ones are left out is said.
    const listed = data.payments.edges.map((edge) => edge.node);
    state.paymentsHidden = data.payments.totalCount - listed.length;
    state.paymentsOldestListed = listed.reduce((oldest, p) => (p.createdAt < oldest ? p.createdAt : oldest), '\uffff');
    addPayments(listed);
  });
}

// ---- drawing ------------------------------------------------------------------------------

const SECTIONS = {
  filters: renderFilters,
  summary: renderSummary,
  tasks: renderTasks,
  apps: renderApps,
  components: renderComponents,
  history: renderHistory,
  payments: renderPayments,
  chartRepo: renderChartRepo,
};

/** Draws the sections that changed since the last draw, however many events arrived meanwhile. */
function draw() {
  const all = state.dirty.has('*');
  for (const [name, render] of Object.entries(SECTIONS)) if (all || state.dirty.has(name)) render();
  state.dirty.clear();
  renderUpdated();
  for (const details of document.querySelectorAll('details[data-open-key]')) {
    if (state.openDetails.has(details.dataset.openKey)) details.open = true;
  }
}

onChange(draw);

bindControls(client);
setInterval(() => {
  renderUpdated();
  tickTimes();
}, 1000);
touch('*');
client.start();
