// The filter bar: its menus list the users and sources seen so far, and its values always show
// the filters in the URL (after a reload, back or forward too).

import { esc } from './format.js';
import { APP_STAGES, filters, knownOwners } from './state.js';

const $ = (selector) => document.querySelector(selector);

function fillSelect(select, values, current) {
  // The current value stays selectable even before any row with it arrived.
  const all = current && !values.includes(current) ? [current, ...values] : values;
  const signature = all.join('\n');
  if (select.dataset.options !== signature) {
    select.innerHTML = `<option value="">all</option>${all
      .map((v) => `<option value="${esc(v)}">${esc(v)}</option>`)
      .join('')}`;
    select.dataset.options = signature;
  }
  select.value = current;
}

export function renderFilters() {
  const form = $('#filters');
  const { users, sources } = knownOwners();
  fillSelect(form.elements.user, users, filters.user);
  fillSelect(form.elements.source, sources, filters.source);
  fillSelect(form.elements.stage, APP_STAGES, filters.stage);
  // Never overwrite what the operator is typing.
  if (document.activeElement !== form.elements.q) form.elements.q.value = filters.q;
  const active = ['user', 'source', 'stage', 'q'].filter((key) => filters[key]).length;
  form.elements.clear.disabled = active === 0;
  form.dataset.active = String(active);
}
