// The apps: stage, health, why (App.reason), versions and the entrances that open them.

import { badge, entranceHref, esc, FLOW_PATH, filterQuery, text, timeAgo } from './format.js';
import { patchRows, showLine } from './patch-rows.js';
import { appKey, filters, showsApp, state } from './state.js';

const $ = (selector) => document.querySelector(selector);

/**
 * The per-app processing-flow page (/dashboard/app) for one (user, source, app); `back` carries
 * this page's filters (only those, each bounded, as the flow page keeps them), so that its way
 * back returns to the same view.
 */
export function flowHref({ userId, sourceId, appName }) {
  const params = new URLSearchParams({ user: userId ?? '', source: sourceId ?? '', app: appName ?? '' });
  const back = filterQuery(location.search);
  if (back) params.set('back', back);
  return `${FLOW_PATH}?${params}`;
}

function entrances(app) {
  const visible = (app.entrances ?? []).filter((e) => !e.invisible);
  if (!visible.length) return '';
  return `<div class="entrances">${visible
    .map((e) => {
      const label = text(e.title || e.name);
      const href = entranceHref(e.url);
      const stateNote = e.state && e.state !== 'running' ? ` <span class="muted">(${text(e.state)})</span>` : '';
      return href
        ? `<a href="${esc(href)}" target="_blank" rel="noopener noreferrer" data-entrance="${esc(e.name)}">${label} ↗</a>${stateNote}`
        : `<span class="muted" title="no URL published yet">${label}</span>${stateNote}`;
    })
    .join(' ')}</div>`;
}

function versions(app) {
  if (app.targetVersion && app.targetVersion !== app.installedVersion) {
    return `${text(app.installedVersion ?? '—')} → ${text(app.targetVersion)}`;
  }
  return text(app.installedVersion ?? '');
}

function row(a) {
  const reason = a.reason ? `<div class="reason">${text(a.reason)}</div>` : '';
  const raw = a.state ? `<div class="muted">${text(a.state)}${a.progress ? ` · ${text(a.progress)}` : ''}</div>` : '';
  return `<tr data-app="${esc(appKey(a))}" data-stage="${esc(a.stage)}">
    <td data-label="User">${text(a.userId)}</td>
    <td data-label="Source">${text(a.sourceId)}</td>
    <td data-label="App"><a href="${esc(flowHref(a))}" title="processing flow">${text(a.appName)}</a>${entrances(a)}</td>
    <td data-label="Stage">${badge(a.stage)}${raw}</td>
    <td data-label="Health">${badge(a.health)}</td>
    <td data-label="Reason"${reason ? '' : ' class="none"'}>${reason || '<span class="muted">—</span>'}</td>
    <td data-label="Version">${versions(a)}</td>
    <td data-label="Changed">${timeAgo(a.updatedAt)}</td>
  </tr>`;
}

/**
 * Rows drawn at most. Every app event, filter keystroke and tab click draws the list again: with
 * all of 5,000 apps (85k DOM nodes) typing in the search took 20 s; the filters find the rest.
 */
const APP_ROWS = 200;

export function renderApps() {
  // In list order, patched per app changed since the last draw (app-map.js), not sorted again.
  const shown = state.apps.shownKeys(showsApp, filters);
  const total = state.apps.size;
  const apps = shown.slice(0, APP_ROWS).map((key) => state.apps.get(key));
  const tbody = $('#apps tbody');
  if (apps.length) {
    patchRows(tbody, apps, {
      attribute: 'app',
      key: appKey,
      // An event replaces the app's object; its link carries the page's filters (flowHref).
      inputs: (app) => [app, location.search],
      html: row,
    });
  } else showLine(tbody, '<tr class="empty"><td colspan="8">No apps match.</td></tr>');
  $('#apps-count').textContent = shown.length === total ? `${total}` : `${shown.length} of ${total}`;
  $('#apps-more').textContent =
    shown.length > APP_ROWS ? `${shown.length - APP_ROWS} more apps not shown: narrow them with the filters` : '';
}
