// HTML for the app processing-flow page. Every value shown comes from users or from external
// services (app service, chart repo, market source), so everything goes through `esc` before it
// reaches innerHTML (`text` for text from users and sources, which also isolates its direction);
// numbers used in styles go through Number().

import { STATUS_LABEL } from './app-flow-steps.js';
import { badge, duration, esc, progressBar, text, waitingHtml } from './format.js';

/** "12 s ago", "4 min ago", "in 3 min": a time relative to now; '' for none. */
export function relative(time, now = Date.now()) {
  const at = Date.parse(time ?? '');
  if (!Number.isFinite(at)) return '';
  const text = duration(Math.abs(now - at));
  return at > now + 1000 ? `in ${text}` : `${text} ago`;
}

/** A relative time, drawn empty: the page fills it in (refreshTimes) when it draws and every second. */
function timeHtml(time) {
  if (!time) return '<span class="muted">—</span>';
  return `<time datetime="${esc(time)}" data-relative="${esc(time)}" title="${esc(time)}"></time>`;
}

/** Keeps every relative time on the page current (the page calls it once a second). */
export function refreshTimes(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll('[data-relative]')) el.textContent = relative(el.dataset.relative, now);
}

function bytes(n) {
  if (!Number.isFinite(n)) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** A step's status as a badge: its kind (data-value, styled by app-flow.css) in words. */
const stepBadge = (status) => badge(status, STATUS_LABEL[status] ?? status);
const word = (value) => `<span class="word">${text(value)}</span>`;

function factValue(value, extra) {
  const main = value && typeof value === 'object' && 'time' in value ? timeHtml(value.time) : text(value);
  return `${main === '' ? '<span class="muted">—</span>' : main}${extra ? ` <span class="muted">${text(extra)}</span>` : ''}`;
}

function facts(list) {
  if (list.length === 0) return '';
  const rows = list.map(([label, value, extra]) => `<dt>${esc(label)}</dt><dd>${factValue(value, extra)}</dd>`);
  return `<dl class="facts">${rows.join('')}</dl>`;
}

function hydratorHtml(step) {
  const tasks = [...(step.hydratorTasks ?? [])];
  for (const failed of step.failedTasks ?? []) {
    if (!tasks.some((t) => t.taskId === failed.taskId)) tasks.push({ ...failed, status: 'failed (recent)' });
  }
  if (tasks.length === 0) return '';
  const items = tasks.map(
    (t) => `<li data-hydrator-task="${esc(t.taskId)}"><b>${esc(t.taskId)}</b> ${word(t.status)}
      ${t.stepName ? `<span>at ${text(t.stepName)}</span>` : ''}${t.totalSteps ? `<span class="muted">${esc(t.totalSteps)} steps</span>` : ''}
      ${t.retryCount ? `<span>retries ${esc(t.retryCount)}</span>` : ''}
      ${t.updatedAt || t.createdAt ? `<span>${timeHtml(t.updatedAt ?? t.createdAt)}</span>` : ''}
      ${t.lastError ? `<div class="error">${text(t.lastError)}</div>` : ''}</li>`,
  );
  return `<h4>Hydrator tasks</h4><ul class="items">${items.join('')}</ul>`;
}

function imagesHtml(step) {
  const images = (step.images ?? []).map((image) => {
    const nodes = (image.nodes ?? []).map(
      (node) =>
        `<li data-node="${esc(node.nodeName)}"><span class="node">${text(node.nodeName)}</span> ${progressBar(node.progress, `${node.nodeName} download`)}
        <span class="muted">${esc(bytes(node.downloadedSize))}${node.totalSize ? ` / ${esc(bytes(node.totalSize))}` : ''}</span></li>`,
    );
    const layers = image.layerCount ? `layers ${esc(image.downloadedLayers ?? 0)} / ${esc(image.layerCount)}` : '';
    const sizes = image.totalSize ? `${esc(bytes(image.downloadedSize ?? 0))} / ${esc(bytes(image.totalSize))}` : '';
    return `<li data-image="${esc(image.imageName)}"><b class="image-name">${text(image.imageName)}</b> ${word(image.status)}
      <div>${progressBar(image.downloadProgress, `${image.imageName} download`)} <span class="muted">${sizes} ${layers} ${text(image.architecture ?? '')}</span></div>
      <div>analysis ${word(image.analysisStatus ?? 'unknown')}${image.analyzedAt ? ` ${timeHtml(image.analyzedAt)}` : ''}</div>
      ${image.errorMessage ? `<div class="error">${text(image.errorMessage)}</div>` : ''}
      ${nodes.length ? `<ul class="nodes">${nodes.join('')}</ul>` : ''}</li>`;
  });
  const tasks = (step.analyzerTasks ?? []).map(
    (
      t,
    ) => `<li data-analyzer-task="${esc(t.taskId)}"><b>${esc(t.taskId)}</b> ${word(t.status)}${t.queue === t.status ? '' : ` <span class="muted">${text(t.queue)}</span>`}
      <span>${esc(t.analyzedCount ?? 0)} of ${esc(t.imagesCount)} image(s) analysed</span>
      ${t.durationMs ? `<span>${esc(duration(t.durationMs, { fine: true }))}</span>` : ''}
      ${t.error ? `<div class="error">${text(t.error)}${t.errorStep ? ` (at ${text(t.errorStep)})` : ''}</div>` : ''}</li>`,
  );
  return `${images.length ? `<h4>Images</h4><ul class="items">${images.join('')}</ul>` : ''}${
    tasks.length ? `<h4>Image-analyzer tasks</h4><ul class="items">${tasks.join('')}</ul>` : ''
  }`;
}

function databaseHtml(step) {
  const entrances = (step.app?.entrances ?? []).map(
    (
      e,
    ) => `<li><b>${text(e.title || e.name)}</b> ${word(e.state ?? 'unknown')}${e.shared ? ' <span class="muted">shared</span>' : ''}
      ${e.url ? `<span class="url">${text(e.url)}</span>` : '<span class="muted">no address yet</span>'}</li>`,
  );
  const tasks = (step.tasks ?? []).map(
    (
      t,
    ) => `<li data-task-id="${esc(t.taskId)}"><b>${esc(t.type)}</b> ${word(t.status)} ${progressBar(t.progress, `task ${t.taskId}`)}
      <span>${timeHtml(t.createdAt)}</span>${t.version ? ` <span>${text(t.version)}</span>` : ''}
      <span class="muted task-id">${esc(t.taskId)}</span>
      ${t.error ? `<div class="error">${text(t.error)}</div>` : ''}${waitingHtml(t)}</li>`,
  );
  return `${entrances.length ? `<h4>Entrances</h4><ul class="items">${entrances.join('')}</ul>` : ''}${
    tasks.length
      ? `<h4>Recent tasks</h4><ul class="items">${tasks.join('')}</ul>`
      : '<p class="muted">No tasks for this app.</p>'
  }`;
}

const DETAILS = { hydration: hydratorHtml, images: imagesHtml, database: databaseHtml };

/** One step as a list item of the flow. */
export function stepHtml(step, number) {
  const detail = DETAILS[step.id]?.(step) ?? '';
  return `<li class="step" data-step="${esc(step.id)}" data-status="${esc(step.status)}">
    <div class="step-head"><span class="number">${number}</span><h3>${esc(step.title)}</h3>${stepBadge(step.status)}
      <span class="summary">${text(step.summary ?? '')}</span></div>
    ${step.reason ? `<p class="reason">${text(step.reason)}</p>` : ''}
    ${step.notes.map((note) => `<p class="note">${text(note)}</p>`).join('')}
    ${facts(step.facts)}${detail}</li>`;
}

/** The app's identity line: who, where, what, with the chart repo's reachability. */
export function identityHtml(params, chartRepo) {
  const repo = !chartRepo
    ? 'chart repo: no data'
    : `chart repo: ${chartRepo.reachable ? 'reachable' : 'unreachable'}${chartRepo.lastError ? ` — ${chartRepo.lastError}` : ''}`;
  return `<h2 id="app-name">${text(params.app)}</h2>
    <span class="muted">user <b>${text(params.user)}</b> · source <b>${text(params.source)}</b></span>
    <span class="muted chart-repo">${text(repo)}${chartRepo?.lastUpdate ? ` · collected ${timeHtml(chartRepo.lastUpdate)}` : ''}</span>`;
}
