// The summary cards, the "updated N s ago" line and the components with their metrics.

import { ago, badge, esc, keyValues, text, timeAgo } from './format.js';
import { state } from './state.js';

const $ = (selector) => document.querySelector(selector);

/**
 * "up/of": a component up is one that works as it should (`healthy`: RUNNING, or DISABLED on
 * purpose, as /metrics counts it; the summary's activeComponents leaves DISABLED out); one STOPPED
 * (an instance stopped cleanly, kept a while) is no fault and not counted.
 */
function componentsUp() {
  const counted = [...state.components.values()].filter((c) => c.state !== 'STOPPED');
  return `${counted.filter((c) => c.healthy).length}/${counted.length}`;
}

export function renderSummary() {
  const s = state.summary;
  if (!s) return;
  const cards = [
    ['Apps', s.totalApps, ''],
    ['Healthy', s.healthyApps, ''],
    ['Unhealthy', s.unhealthyApps, s.unhealthyApps ? 'warn' : ''],
    ['Pending tasks', s.pendingTasks, ''],
    ['Running tasks', s.runningTasks, ''],
    ['Completed', s.completedTasks, ''],
    ['Failed', s.failedTasks, s.failedTasks ? 'warn' : ''],
    ['Canceled', s.canceledTasks, ''],
    ['Components up', componentsUp(), ''],
  ];
  $('#summary').innerHTML = cards
    .map(([label, value, tone]) => `<div class="card ${tone}"><b>${esc(value)}</b><span>${esc(label)}</span></div>`)
    .join('');
  // Each stage links to the apps filtered by it (the filter is the URL's).
  $('#stages').innerHTML = s.appsByStage
    .map(
      (x) =>
        `<a href="?stage=${esc(x.stage)}" data-stage-link="${esc(x.stage)}">${esc(x.stage.toLowerCase())} ${esc(x.count)}</a>`,
    )
    .join(' · ');
}

/** "updated 3 s ago", kept current by the page's tick; the sequence number is its tooltip. */
export function renderUpdated() {
  const el = $('#updated');
  if (state.updatedAt === null) {
    el.textContent = 'waiting for data…';
    return;
  }
  el.textContent = `updated ${ago(state.updatedAt)}`;
  el.title = `runtime sequence ${state.sequence ?? '—'} · ${new Date(state.updatedAt).toLocaleString()}`;
}

export function renderComponents() {
  $('#components').innerHTML = [...state.components.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map(
      (c) => `<li data-component="${esc(c.name)}">
        <div class="line">${badge(c.state)} <b>${esc(c.name)}</b>
          <span class="muted">checked ${timeAgo(c.lastCheck)}</span></div>
        ${c.message ? `<div class="${c.state === 'ERROR' || c.state === 'DEGRADED' ? 'reason' : 'muted'}">${text(c.message)}</div>` : ''}
        ${keyValues(c.metrics, `metrics:${c.name}`, `All figures of ${c.name}, as JSON`)}
      </li>`,
    )
    .join('');
}
