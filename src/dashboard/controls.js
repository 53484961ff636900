// What the operator can do on the page: filter (held in the URL), switch tabs, open details,
// cancel or retry a task (mutations over the same socket), and sign in when the server asks.

import { CANCEL_TASK, RETRY_TASK } from './documents.js';
import { clip } from './format.js';
import { bindSignIn, closedUnder } from './live-client.js';
import { actionName } from './render-tasks.js';
import { reloadFilters, setFilters, state, TASK_MESSAGES_LIMIT, touch } from './state.js';
import { bindTabKeys } from './tabs.js';

const $ = (selector) => document.querySelector(selector);

/** The text shown under a task after a cancel or retry: what the server answered. */
function outcomeOf(action, payload) {
  if (!payload.task) return { ok: false, text: `${payload.code ?? 'refused'}: ${payload.message ?? ''}` };
  if (action === 'retry') return { ok: true, text: `retried as ${payload.task.taskId}` };
  return { ok: true, text: payload.task.status === 'CANCELED' ? 'canceled' : 'cancel requested' };
}

async function act(client, button) {
  const { action, task: taskId } = button.dataset;
  const field = action === 'cancel' ? 'cancelTask' : 'retryTask';
  // aria-disabled, not disabled: a disabled button loses the keyboard focus.
  if (button.getAttribute('aria-disabled') === 'true') return;
  button.setAttribute('aria-disabled', 'true');
  let outcome;
  try {
    const result = await client.request(action === 'cancel' ? CANCEL_TASK : RETRY_TASK, { input: { taskId } });
    const payload = result?.data?.[field];
    outcome = payload ? outcomeOf(action, payload) : { ok: false, text: result?.errors?.[0]?.message ?? 'no answer' };
    // A retry's new task is shown at once; the runtime feed brings its changes (and the canceled
    // task's: the answer may be older than an event already applied, so it is not written back).
    if (action === 'retry' && payload?.task && !state.tasks.has(payload.task.taskId)) {
      state.tasks.set(payload.task.taskId, payload.task);
    }
  } catch (error) {
    // Cut off by a reconnect, the mutation may well have run: only the feed can tell.
    const text = closedUnder(error)
      ? 'connection lost; result unknown — the list will show it'
      : error instanceof Error
        ? error.message
        : String(error);
    outcome = { ok: false, text };
  }
  button.removeAttribute('aria-disabled'); // kept when its cell is not drawn again
  const task = state.tasks.get(taskId);
  announce(`${task ? actionName(action === 'cancel' ? 'Cancel' : 'Retry', task) : action}: ${outcome.text}`);
  state.taskMessages.delete(taskId); // re-added as the newest
  state.taskMessages.set(taskId, outcome);
  for (const oldest of state.taskMessages.keys()) {
    if (state.taskMessages.size <= TASK_MESSAGES_LIMIT) break;
    state.taskMessages.delete(oldest);
  }
  touch('tasks');
}

/** Says `text` through the page's persistent live region (#announcer), where screen readers hear it. */
function announce(text) {
  $('#announcer').textContent = text;
}

function bindFilters() {
  const form = $('#filters');
  form.addEventListener('change', (event) => {
    const { name, value } = event.target;
    if (name === 'user' || name === 'source' || name === 'stage') setFilters({ [name]: value });
  });
  // Typing replaces the history entry instead of adding one per key.
  form.addEventListener('input', (event) => {
    if (event.target.name === 'q') setFilters({ q: clip(event.target.value) }, { push: false });
  });
  form.addEventListener('submit', (event) => event.preventDefault());
  form.addEventListener('reset', (event) => {
    event.preventDefault();
    setFilters({ user: '', source: '', stage: '', q: '' });
  });
  window.addEventListener('popstate', reloadFilters);
}

export function bindControls(client) {
  bindFilters();
  document.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const stageLink = target?.closest('a[data-stage-link]');
    if (stageLink) {
      event.preventDefault();
      setFilters({ stage: stageLink.dataset.stageLink });
      $('#apps-section').scrollIntoView({ block: 'start' });
      return;
    }
    const tab = target?.closest('[data-tab]');
    if (tab) setFilters({ status: tab.dataset.tab });
    const repoTab = target?.closest('[data-repo-tab]');
    if (repoTab) setFilters({ repo: repoTab.dataset.repoTab });
    const button = target?.closest('button[data-action]');
    if (button) act(client, button);
  });
  // <details> do not bubble their toggle: listen while capturing, to keep them open across renders.
  document.addEventListener(
    'toggle',
    (event) => {
      const key = event.target?.dataset?.openKey;
      if (!key) return;
      if (event.target.open) state.openDetails.add(key);
      else state.openDetails.delete(key);
    },
    true,
  );
  bindTabKeys($('#task-tabs'));
  bindTabKeys($('#repo-tabs'));
  bindSignIn(client, { form: $('#login'), input: $('#token'), signOut: $('#sign-out'), problem: $('#auth-problem') });
}
