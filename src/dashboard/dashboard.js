// The operator's live view. Fed only by subscriptions over graphql-ws (no polling): one
// runtimeSnapshot to start from, then runtimeEvents from its sequence. After a reconnect it
// resumes with `since` = the last sequence applied; on RESYNC it starts again from a snapshot.
// No external assets: this file speaks the graphql-transport-ws protocol itself.

// The two documents are also GraphQL Code Generator documents (codegen.yml plucks the
// /* GraphQL */ literals), so the persisted-documents manifest it writes holds them. Under
// PERSISTED_DOCUMENTS the server runs a document sent as text only when it is a manifest document,
// whitespace aside, and the manifest's are normalised with their fields sorted: keep every
// selection in alphabetical order here (test/production-switches.test.ts checks it).
const SNAPSHOT = /* GraphQL */ `subscription DashboardSnapshot {
  runtimeSnapshot {
    apps { appName health installedVersion sourceId stage userId }
    chartRepo { lastError lastUpdate reachable }
    components { healthy message name state }
    sequence
    summary {
      activeComponents appsByStage { count stage } canceledTasks completedTasks failedTasks healthyApps
      pendingTasks runningTasks totalApps totalTasks unhealthyApps
    }
    tasks { appName createdAt progress status taskId type userId }
  }
}`;
const EVENTS = /* GraphQL */ `subscription DashboardEvents($since: Float) {
  runtimeEvents(since: $since) {
    app { appName health installedVersion sourceId stage userId }
    chartRepo { lastError lastUpdate reachable }
    component { healthy message name state }
    kind
    removedApp { appName sourceId userId }
    sequence
    summary {
      activeComponents appsByStage { count stage } canceledTasks completedTasks failedTasks healthyApps
      pendingTasks runningTasks totalApps totalTasks unhealthyApps
    }
    task { appName createdAt progress status taskId type userId }
  }
}`;

const state = {
  sequence: null,
  summary: null,
  apps: new Map(),
  tasks: new Map(),
  components: new Map(),
  chartRepo: null,
};
let socket = null;
let attempts = 0;
let reconnects = 0;
let token = sessionStorage.getItem('market-token') ?? '';

const $ = (selector) => document.querySelector(selector);
const esc = (value) => String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const appKey = (app) => `${app.userId}/${app.sourceId}/${app.appName}`;

function setConnection(kind, text) {
  const el = $('#connection');
  el.dataset.state = kind;
  el.textContent = text;
}

function connect() {
  setConnection(
    reconnects ? 'reconnecting' : 'connecting',
    reconnects ? `reconnecting (${reconnects})…` : 'connecting…',
  );
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;
  socket = new WebSocket(url, 'graphql-transport-ws');
  socket.onopen = () => {
    socket.send(
      JSON.stringify({ type: 'connection_init', payload: token ? { authorization: `Bearer ${token}` } : {} }),
    );
  };
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === 'connection_ack') {
      attempts = 0;
      if (state.sequence === null) subscribe('snapshot', SNAPSHOT, {});
      else subscribe('events', EVENTS, { since: state.sequence });
    } else if (data.type === 'ping') {
      socket.send(JSON.stringify({ type: 'pong' }));
    } else if (data.type === 'next') {
      if (data.id === 'snapshot') applySnapshot(data.payload.data.runtimeSnapshot);
      else if (data.id === 'events') applyEvent(data.payload.data.runtimeEvents);
    } else if (data.type === 'error') {
      setConnection('failed', `error: ${data.payload?.[0]?.message ?? 'subscription refused'}`);
    }
  };
  socket.onclose = (event) => {
    if (event.code === 4403) {
      setConnection('failed', 'not authorised');
      $('#login').hidden = false;
      return;
    }
    reconnects += 1;
    attempts += 1;
    setTimeout(connect, Math.min(10_000, 250 * 2 ** attempts));
  };
}

function subscribe(id, query, variables) {
  socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }));
}

function applySnapshot(snapshot) {
  // The snapshot subscription only gives the starting point; from here on, events.
  socket.send(JSON.stringify({ id: 'snapshot', type: 'complete' }));
  state.apps = new Map(snapshot.apps.map((app) => [appKey(app), app]));
  state.tasks = new Map(snapshot.tasks.map((task) => [task.taskId, task]));
  state.components = new Map(snapshot.components.map((c) => [c.name, c]));
  state.chartRepo = snapshot.chartRepo;
  state.summary = snapshot.summary;
  state.sequence = snapshot.sequence;
  subscribe('events', EVENTS, { since: state.sequence });
  setConnection('live', `live · sequence ${state.sequence}${reconnects ? ` · ${reconnects} reconnect(s)` : ''}`);
  render();
}

function applyEvent(event) {
  if (event.kind === 'RESYNC') {
    // Missed too much: start again from a snapshot.
    socket.send(JSON.stringify({ id: 'events', type: 'complete' }));
    state.sequence = null;
    subscribe('snapshot', SNAPSHOT, {});
    return;
  }
  if (event.app) state.apps.set(appKey(event.app), event.app);
  if (event.removedApp) state.apps.delete(appKey(event.removedApp));
  if (event.task && event.kind === 'TASK_REMOVED') state.tasks.delete(event.task.taskId);
  else if (event.task) state.tasks.set(event.task.taskId, event.task);
  if (event.component) state.components.set(event.component.name, event.component);
  if (event.chartRepo) state.chartRepo = event.chartRepo;
  if (event.summary) state.summary = event.summary;
  state.sequence = event.sequence;
  setConnection(
    'live',
    `live · sequence ${state.sequence}${reconnects ? ` · resumed after ${reconnects} reconnect(s)` : ''}`,
  );
  render();
}

function render() {
  const s = state.summary;
  if (s) {
    const cards = [
      ['Apps', s.totalApps],
      ['Healthy', s.healthyApps],
      ['Unhealthy', s.unhealthyApps],
      ['Pending tasks', s.pendingTasks],
      ['Running tasks', s.runningTasks],
      ['Completed', s.completedTasks],
      ['Failed', s.failedTasks],
      ['Components up', s.activeComponents],
    ];
    $('#summary').innerHTML = cards
      .map(([label, value]) => `<div class="card"><b>${esc(value)}</b><span>${esc(label)}</span></div>`)
      .join('');
    $('#stages').textContent = s.appsByStage.map((x) => `${x.stage.toLowerCase()} ${x.count}`).join(' · ');
  }
  const tasks = [...state.tasks.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1)).slice(0, 50);
  $('#tasks tbody').innerHTML = tasks
    .map(
      (
        t,
      ) => `<tr data-task-id="${esc(t.taskId)}"><td>${esc(t.taskId)}</td><td>${esc(t.userId)}</td><td>${esc(t.appName)}</td>
      <td>${esc(t.type)}</td><td><span class="badge ${esc(t.status)}">${esc(t.status)}</span></td>
      <td><span class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${esc(t.progress)}"><i style="width:${Number(t.progress) || 0}%"></i></span> ${esc(t.progress)}%</td></tr>`,
    )
    .join('');
  const apps = [...state.apps.values()].sort((a, b) => appKey(a).localeCompare(appKey(b)));
  $('#apps tbody').innerHTML = apps
    .map(
      (
        a,
      ) => `<tr data-app="${esc(appKey(a))}"><td>${esc(a.userId)}</td><td>${esc(a.sourceId)}</td><td>${esc(a.appName)}</td>
      <td><span class="badge ${esc(a.stage)}">${esc(a.stage)}</span></td><td><span class="badge ${esc(a.health)}">${esc(a.health)}</span></td>
      <td>${esc(a.installedVersion ?? '')}</td></tr>`,
    )
    .join('');
  $('#components').innerHTML = [...state.components.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map(
      (c) =>
        `<li data-component="${esc(c.name)}"><span class="badge ${esc(c.state)}">${esc(c.state)}</span> ${esc(c.name)} <span class="muted">${esc(c.message ?? '')}</span></li>`,
    )
    .join('');
  const repo = state.chartRepo;
  $('#chart-repo').innerHTML = repo
    ? `${repo.reachable ? 'reachable' : 'unreachable'}${repo.lastError ? ` — ${esc(repo.lastError)}` : ''}${repo.lastUpdate ? ` · updated ${esc(repo.lastUpdate)}` : ''}`
    : 'no data (source disabled or not collected yet)';
}

$('#login').addEventListener('submit', (event) => {
  event.preventDefault();
  token = $('#token').value.trim();
  sessionStorage.setItem('market-token', token);
  $('#login').hidden = true;
  reconnects = 0;
  connect();
});

connect();
