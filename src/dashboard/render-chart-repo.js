// What the chart repository reports, in tabs: apps by state with their current step, images
// with their download progress, the hydrator's tasks and the image analyzer's queues. Each app
// links to its processing-flow page (/dashboard/app).

import { badge, esc, progressBar, text, timeAgo } from './format.js';
import { flowHref } from './render-apps.js';
import { filters, showsRepoItem, state } from './state.js';
import { patchTabs } from './tabs.js';

const $ = (selector) => document.querySelector(selector);
const TABS = [
  ['apps', 'Apps'],
  ['images', 'Images'],
  ['hydrator', 'Hydrator'],
  ['analyzer', 'Image analyzer'],
];

/**
 * Rows drawn per list: a chart repo may report thousands, redrawn on every change it makes; the
 * filters find the rest.
 */
const MAX_ROWS = 200;
/** The line under a list cut at MAX_ROWS: how many more rows match. */
const more = (total) =>
  total > MAX_ROWS
    ? `<p class="muted more" data-more-rows="${total - MAX_ROWS}">${esc(total - MAX_ROWS)} more — narrow them down with the filters</p>`
    : '';

const empty = (line) => `<p class="muted">${esc(line)}</p>`;
const wrap = (head, rows, colspan, none) =>
  `<div class="table-wrap"><table class="stack"><thead><tr>${head
    .map((h) => `<th>${esc(h)}</th>`)
    .join('')}</tr></thead><tbody>${
    rows.length ? rows.join('') : `<tr class="empty"><td colspan="${colspan}">${esc(none)}</td></tr>`
  }</tbody></table></div>`;

function appsTab(repo) {
  const apps = (repo.appStates ?? []).filter((a) =>
    showsRepoItem({ userId: a.userId, sourceId: a.sourceId, appName: a.appName, text: [a.state, a.error?.message] }),
  );
  // Grouped by state, then by name; the states with their counts above.
  apps.sort((a, b) => a.state.localeCompare(b.state) || a.appName.localeCompare(b.appName));
  const byState = new Map();
  for (const app of apps) byState.set(app.state, (byState.get(app.state) ?? 0) + 1);
  const states = [...byState].map(([name, n]) => `${badge(name)} <span class="count">${esc(n)}</span>`).join(' ');
  const rows = apps.slice(0, MAX_ROWS).map((a) => {
    const step = a.currentStep;
    const stepText = step
      ? `${text(step.name)} <span class="muted">${esc(step.index)} of ${esc(step.total)}</span> ${badge(step.status)}`
      : '<span class="muted">—</span>';
    const error = a.error
      ? `<div class="reason">${a.error.step ? `${text(a.error.step)}: ` : ''}${text(a.error.message)}</div>`
      : '';
    return `<tr data-repo-app="${esc(`${a.userId}/${a.sourceId}/${a.appName}`)}">
      <td data-label="App"><a href="${esc(flowHref(a))}">${text(a.appName || a.appId)}</a>
        <div class="muted">${text(a.userId)} · ${text(a.sourceId)}</div></td>
      <td data-label="State">${badge(a.state)}${error}</td>
      <td data-label="Current step">${stepText}</td>
      <td data-label="Updated">${timeAgo(a.lastUpdate)}</td></tr>`;
  });
  const table = wrap(['App', 'State', 'Current step', 'Updated'], rows, 4, 'No app processing reported.');
  return `${states ? `<p class="line">${states}</p>` : ''}${table}${more(apps.length)}`;
}

function imagesTab(repo) {
  const images = (repo.imageStates ?? []).filter((i) =>
    showsRepoItem({ appName: i.appName, text: [i.imageName, i.status, i.errorMessage] }),
  );
  const mb = (bytes) => (Number.isFinite(bytes) ? `${(bytes / 1_048_576).toFixed(1)} MB` : '—');
  const rows = images.slice(0, MAX_ROWS).map(
    (i) => `<tr data-image="${esc(i.imageName)}">
      <td data-label="Image"><code>${text(i.imageName)}</code><div class="muted">${text(i.appName)}</div></td>
      <td data-label="Download">${badge(i.status)} ${progressBar(Math.round(Number(i.downloadProgress) || 0), i.imageName)}
        <div class="muted">${esc(mb(i.downloadedSize))} of ${esc(mb(i.totalSize))}</div></td>
      <td data-label="Analysis">${badge(i.analysisStatus)}${i.errorMessage ? `<div class="reason">${text(i.errorMessage)}</div>` : ''}</td>
    </tr>`,
  );
  return `${wrap(['Image', 'Download', 'Analysis'], rows, 3, 'No images reported.')}${more(images.length)}`;
}

const figures = (pairs) =>
  `<dl class="kv figures">${pairs.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${text(v ?? '—')}</dd></div>`).join('')}</dl>`;

function hydratorTab(repo) {
  const h = repo.queues?.hydrator;
  if (!h) return empty('No hydrator figures reported.');
  const tasks = (h.tasks ?? []).filter((t) =>
    showsRepoItem({ userId: t.userId, sourceId: t.sourceId, appName: t.appName, text: [t.taskId, t.stepName] }),
  );
  const rows = tasks.slice(0, MAX_ROWS).map(
    (t) => `<tr data-hydrator-task="${esc(t.taskId)}">
      <td data-label="Task"><code>${esc(t.taskId)}</code><div class="muted">${text(t.appName)}</div></td>
      <td data-label="Status">${badge(t.status)} ${text(t.stepName ?? '')} <span class="muted">of ${esc(t.totalSteps)}</span></td>
      <td data-label="Retries">${esc(t.retryCount)}${t.lastError ? `<div class="reason">${text(t.lastError)}</div>` : ''}</td>
    </tr>`,
  );
  const failed = (h.recentFailed ?? [])
    .slice(0, MAX_ROWS)
    .map(
      (f) =>
        `<li><code>${esc(f.taskId)}</code> ${text(f.appName)} <span class="reason">${text(f.lastError)}</span></li>`,
    );
  return `${figures([
    ['queue', h.queueLength],
    ['active', h.activeTasks],
    ['completed', h.completedTasks],
    ['failed', h.failedTasks],
    ['workers', h.workerCount],
  ])}${wrap(['Task', 'Step', 'Retries'], rows, 3, 'No hydrator tasks.')}${more(tasks.length)}${
    failed.length ? `<h3>Recently failed</h3><ul class="plain">${failed.join('')}</ul>` : ''
  }`;
}

function analyzerTab(repo) {
  const a = repo.queues?.imageAnalyzer;
  if (!a) return empty('No image-analyzer figures reported.');
  const list = (title, tasks, detail) => {
    const shown = (tasks ?? []).filter((t) => showsRepoItem({ appName: t.appName, text: [t.taskId] }));
    const items = shown
      .slice(0, MAX_ROWS)
      .map((t) => `<li><code>${esc(t.taskId)}</code> ${text(t.appName)} ${detail(t)}</li>`);
    return `<h3>${esc(title)} <span class="muted">${esc(tasks?.length ?? 0)}</span></h3>${
      items.length ? `<ul class="plain">${items.join('')}</ul>${more(shown.length)}` : ''
    }`;
  };
  return `${figures([
    ['running', a.isRunning ? 'yes' : 'no'],
    ['health', a.healthStatus],
    ['queue', a.queueLength],
    ['workers', a.activeWorkers],
    ['analyzing', a.analyzingCount],
    ['analyzed', a.totalAnalyzed],
    ['succeeded', a.successfulAnalyzed],
    ['failed', a.failedAnalyzed],
    ['avg time', Number.isFinite(a.averageAnalysisTimeMs) ? `${Math.round(a.averageAnalysisTimeMs)} ms` : '—'],
  ])}${list('Processing', a.processingTasks, (t) => badge(t.status))}${list('Queued', a.queuedTasks, (t) =>
    badge(t.status),
  )}${list('Recently failed', a.recentFailed, (t) => `<span class="reason">${text(t.error)}</span>`)}`;
}

const RENDER_TAB = { apps: appsTab, images: imagesTab, hydrator: hydratorTab, analyzer: analyzerTab };

export function renderChartRepo() {
  const repo = state.chartRepo;
  $('#chart-repo-status').innerHTML = repo
    ? `${repo.reachable ? badge('REACHABLE') : badge('UNREACHABLE')}${
        repo.lastError ? ` <span class="reason">${text(repo.lastError)}</span>` : ''
      } <span class="muted">fetched ${timeAgo(repo.lastUpdate)}</span>${
        repo.droppedItems
          ? ` <span class="muted" title="items of its answers left out: a required field missing or of the wrong type, or another user's or source's in a per-user answer">· ${esc(repo.droppedItems)} item(s) left out</span>`
          : ''
      }`
    : '<span class="muted">no data (source disabled or not collected yet)</span>';
  const current = RENDER_TAB[filters.repo] ? filters.repo : 'apps';
  const count = {
    apps: repo?.appStates?.length,
    images: repo?.imageStates?.length,
    hydrator: repo?.queues?.hydrator?.queueLength,
    analyzer: repo?.queues?.imageAnalyzer?.queueLength,
  };
  patchTabs(
    $('#repo-tabs'),
    'repo-tab',
    TABS.map(([key, label]) => ({ key, label, count: count[key], selected: key === current })),
  );
  $('#repo-panel').innerHTML = repo ? RENDER_TAB[current](repo) : '';
}
