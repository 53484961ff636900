// The tasks: tabs by status with their counts, then the rows of the chosen tab with times,
// durations, the reason of a failure and the cancel/retry buttons the viewer may use.

import { badge, elapsed, esc, progressBar, timeAgo } from './format.js';
import { filters, showsTask, state, TASK_STATUSES } from './state.js';
import { patchTabs } from './tabs.js';

const $ = (selector) => document.querySelector(selector);
/** Rows drawn per tab; the rest are counted. */
const TASK_ROWS = 100;
/** The task types retryTask re-submits (OperationService.retry). */
const RETRYABLE_TYPES = ['INSTALL', 'UPGRADE', 'UNINSTALL', 'CLONE', 'STOP', 'RESUME'];

/** Whether the viewer may act on the task: their own, or anyone's for an admin (access-rules.ts). */
function mayAct(task) {
  const viewer = state.viewer;
  return Boolean(viewer && (viewer.isAdmin || viewer.userId === task.userId));
}

/** The buttons this viewer may use on this task now (the service's rules, mirrored). */
function actions(task) {
  if (!mayAct(task)) return '';
  const buttons = [];
  if (task.status === 'PENDING' || task.status === 'RUNNING') {
    buttons.push(`<button type="button" data-action="cancel" data-task="${esc(task.taskId)}">Cancel</button>`);
  }
  if ((task.status === 'FAILED' || task.status === 'CANCELED') && RETRYABLE_TYPES.includes(task.type)) {
    buttons.push(`<button type="button" data-action="retry" data-task="${esc(task.taskId)}">Retry</button>`);
  }
  return buttons.join(' ');
}

function outcome(task) {
  const message = state.taskMessages.get(task.taskId);
  if (!message) return '';
  return `<div class="outcome ${message.ok ? 'ok' : 'error'}" role="status">${esc(message.text)}</div>`;
}

function row(t) {
  const reason =
    t.error && (t.status === 'FAILED' || t.status === 'CANCELED') ? `<div class="reason">${esc(t.error)}</div>` : '';
  const retried = t.retryOfTaskId ? `<div class="muted">retry of ${esc(t.retryOfTaskId)}</div>` : '';
  // Queued time until a worker started it, then run time (still ticking while running).
  const waited = t.startedAt ? elapsed(t.createdAt, t.startedAt) : elapsed(t.createdAt, t.completedAt);
  const ran = t.startedAt ? elapsed(t.startedAt, t.completedAt) : '<span class="muted">—</span>';
  return `<tr data-task-id="${esc(t.taskId)}" data-status="${esc(t.status)}">
    <td data-label="Task"><code title="${esc(t.taskId)}">${esc(t.taskId)}</code><div class="muted">${esc(t.type)}</div>${retried}</td>
    <td data-label="User">${esc(t.userId)}</td>
    <td data-label="App">${esc(t.appName)}<div class="muted">${esc(t.sourceId)}</div></td>
    <td data-label="Status">${badge(t.status)}${reason}</td>
    <td data-label="Progress">${progressBar(t.progress, `progress of ${t.appName}`)}</td>
    <td data-label="Created">${timeAgo(t.createdAt)}</td>
    <td data-label="Queued / ran">${waited} / ${ran}</td>
    <td data-label="Actions" class="actions">${actions(t)}${outcome(t)}</td>
  </tr>`;
}

export function renderTasks() {
  const shown = [...state.tasks.values()].filter(showsTask);
  const counts = Object.fromEntries(TASK_STATUSES.map((status) => [status, 0]));
  for (const task of shown) counts[task.status] = (counts[task.status] ?? 0) + 1;
  const tabs = [['', 'all', shown.length], ...TASK_STATUSES.map((s) => [s, s.toLowerCase(), counts[s]])];
  patchTabs(
    $('#task-tabs'),
    'tab',
    tabs.map(([key, label, count]) => ({ key, label, count, selected: filters.status === key })),
  );
  const rows = shown
    .filter((task) => !filters.status || task.status === filters.status)
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  const tbody = $('#tasks tbody');
  if (rows.length) patchRows(tbody, rows.slice(0, TASK_ROWS));
  else tbody.innerHTML = '<tr class="empty"><td colspan="8">No tasks here.</td></tr>';
  $('#tasks-more').textContent = rows.length > TASK_ROWS ? `${rows.length - TASK_ROWS} older tasks not shown` : '';
}

/** The HTML each cell of a drawn row was last drawn from, by row (what patchRows compares with). */
const drawn = new WeakMap();

/**
 * Draws the rows in place: a row already shown is kept, and only its cells whose HTML changed are
 * replaced; rows move only when the order changed. Redrawn whole at every event (progress, every
 * step of every running task), a row lost the keyboard focus of its Cancel button, a press on it
 * landed on a button gone by the release, and its "disabled while asked" state went.
 */
function patchRows(tbody, tasks) {
  const wanted = new Set(tasks.map((task) => task.taskId));
  const shown = new Map();
  // Rows no longer wanted go first: left in place while the others are put in order, each row
  // below one of them was moved, and a moved row loses the focus.
  for (const tr of [...tbody.children]) {
    if (tr.dataset.taskId && wanted.has(tr.dataset.taskId)) shown.set(tr.dataset.taskId, tr);
    else tr.remove();
  }
  const parse = document.createElement('tbody');
  tasks.forEach((task, index) => {
    parse.innerHTML = row(task);
    const fresh = parse.firstElementChild;
    const cells = [...fresh.children].map((cell) => cell.outerHTML);
    let tr = shown.get(task.taskId);
    if (tr) {
      shown.delete(task.taskId);
      tr.dataset.status = task.status;
      const before = drawn.get(tr) ?? [];
      cells.forEach((html, i) => {
        if (html !== before[i]) tr.children[i].replaceWith(fresh.children[0]);
        else fresh.children[0].remove();
      });
    } else {
      tr = fresh;
    }
    drawn.set(tr, cells);
    if (tbody.children[index] !== tr) tbody.insertBefore(tr, tbody.children[index] ?? null);
  });
}
