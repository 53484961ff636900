// The tasks: tabs by status with their counts, then the rows of the chosen tab with times,
// durations, the reason of a failure, why a pending task waits and the cancel/retry buttons the
// viewer may use.

import { badge, elapsed, esc, progressBar, text, timeAgo, waitingHtml } from './format.js';
import { patchRows, showLine } from './patch-rows.js';
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

/** What a button does to which task, for a screen reader: "Retry install of immich for alice". */
export const actionName = (action, task) =>
  `${action} ${task.type.toLowerCase()} of ${task.appName} for ${task.userId}`;

/** The buttons this viewer may use on this task now (the service's rules, mirrored). */
function actions(task) {
  if (!mayAct(task)) return '';
  const button = (action, label) =>
    `<button type="button" data-action="${action}" data-task="${esc(task.taskId)}" aria-label="${esc(actionName(label, task))}">${label}</button>`;
  const buttons = [];
  if (task.status === 'PENDING' || task.status === 'RUNNING') buttons.push(button('cancel', 'Cancel'));
  if ((task.status === 'FAILED' || task.status === 'CANCELED') && RETRYABLE_TYPES.includes(task.type)) {
    buttons.push(button('retry', 'Retry'));
  }
  return buttons.join(' ');
}

/**
 * The outcome of the viewer's last Cancel or Retry on the task, shown under its buttons. Screen
 * readers hear it from the page's one announcer (controls.js): a live region written already
 * filled, as this one is, is not read out.
 */
function outcome(task) {
  const message = state.taskMessages.get(task.taskId);
  if (!message) return '';
  return `<div class="outcome ${message.ok ? 'ok' : 'error'}">${text(message.text)}</div>`;
}

function row(t) {
  const reason =
    t.error && (t.status === 'FAILED' || t.status === 'CANCELED') ? `<div class="reason">${text(t.error)}</div>` : '';
  const retried = t.retryOfTaskId ? `<div class="muted">retry of ${esc(t.retryOfTaskId)}</div>` : '';
  // Queued time until a worker started it, then run time (still ticking while running).
  const waited = t.startedAt ? elapsed(t.createdAt, t.startedAt) : elapsed(t.createdAt, t.completedAt);
  const ran = t.startedAt ? elapsed(t.startedAt, t.completedAt) : '<span class="muted">—</span>';
  const buttons = `${actions(t)}${outcome(t)}`;
  return `<tr data-task-id="${esc(t.taskId)}" data-status="${esc(t.status)}">
    <td data-label="Task"><code title="${esc(t.taskId)}">${esc(t.taskId)}</code><div class="muted">${esc(t.type)}</div>${retried}</td>
    <td data-label="User">${text(t.userId)}</td>
    <td data-label="App">${text(t.appName)}<div class="muted">${text(t.sourceId)}</div></td>
    <td data-label="Status">${badge(t.status)}${reason}${waitingHtml(t)}</td>
    <td data-label="Progress">${progressBar(t.progress, `progress of ${t.appName}`)}</td>
    <td data-label="Created">${timeAgo(t.createdAt)}</td>
    <td data-label="Queued / ran">${waited} / ${ran}</td>
    <td data-label="Actions" class="actions${buttons ? '' : ' none'}">${buttons}</td>
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
  if (rows.length) {
    patchRows(tbody, rows.slice(0, TASK_ROWS), {
      attribute: 'task-id',
      key: (task) => task.taskId,
      // An event replaces the task's object; the buttons depend on the viewer, the outcome on its message.
      inputs: (task) => [task, state.viewer, state.taskMessages.get(task.taskId)],
      html: row,
    });
  } else showLine(tbody, '<tr class="empty"><td colspan="8">No tasks here.</td></tr>');
  $('#tasks-more').textContent = rows.length > TASK_ROWS ? `${rows.length - TASK_ROWS} older tasks not shown` : '';
}
