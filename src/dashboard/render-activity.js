// The live history feed and, for admins, the payment states.

import { badge, esc, text, timeAgo } from './format.js';
import { patchRows, showLine } from './patch-rows.js';
import { showsHistory, showsPayment, state } from './state.js';

const $ = (selector) => document.querySelector(selector);

/** ACTION_INSTALL, SYSTEM_INSTALL_FAILED …: a colour for what kind of record it is. */
function historyTone(type) {
  if (/FAIL|ERROR/i.test(type)) return 'FAILED';
  if (/SUCCEED|SUCCESS|COMPLETE/i.test(type)) return 'COMPLETED';
  return '';
}

const historyItem = (h) => `<li data-history-id="${esc(h.id)}">
  <div class="line"><span class="tag ${esc(historyTone(h.type))}">${esc(h.type)}</span>
    <span class="muted">${timeAgo(h.time)} · ${text(h.userId)}${h.app ? ` · ${text(h.app)}` : ''}</span></div>
  <div>${text(h.message)}</div>
</li>`;

export function renderHistory() {
  const records = state.history.filter(showsHistory);
  $('#history').dataset.loaded = String(state.historyLoaded);
  const list = $('#history');
  if (records.length) {
    patchRows(list, records, { attribute: 'history-id', key: (h) => h.id, inputs: (h) => [h], html: historyItem });
  } else {
    showLine(
      list,
      state.historyError
        ? `<li class="reason">History could not be read (${text(state.historyError)}); trying again…</li>`
        : `<li class="muted">${state.historyLoaded ? 'Nothing yet.' : state.signedOut ? 'Not signed in.' : 'Loading…'}</li>`,
    );
  }
  $('#history-count').textContent = `${records.length}`;
}

export function renderPayments() {
  const section = $('#payments-section');
  section.hidden = !state.viewer?.isAdmin;
  if (section.hidden) {
    // A hidden section still holds its rows: an admin's must not stay for the next viewer.
    $('#payments tbody').innerHTML = '';
    $('#payments-more').textContent = '';
    return;
  }
  $('#payments-more').textContent =
    state.paymentsHidden > 0
      ? `${state.paymentsHidden} older payment states not shown (listed: the newest started, and any that changes while this page is open)`
      : '';
  const payments = [...state.payments.values()]
    .filter(showsPayment)
    .sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0));
  $('#payments tbody').innerHTML = payments.length
    ? payments
        .map(
          (p) => `<tr data-payment-id="${esc(p.id)}">
            <td data-label="User">${text(p.userId)}</td>
            <td data-label="App">${text(p.appName)}<div class="muted">${text(p.sourceId)} · ${text(p.appId)}</div></td>
            <td data-label="Status">${badge(p.status)}</td>
            <td data-label="Axes"><dl class="kv">
              <div><dt>need</dt><dd>${text(p.paymentNeed)}</dd></div>
              <div><dt>developer</dt><dd>${text(p.developerSync)}</dd></div>
              <div><dt>LarePass</dt><dd>${text(p.larePassSync)}</dd></div>
              <div><dt>signature</dt><dd>${text(p.signatureStatus)}</dd></div>
              <div><dt>payment</dt><dd>${text(p.paymentStatus)}</dd></div>
            </dl>${p.txHash ? `<code class="muted">${text(p.txHash)}</code>` : ''}</td>
            <td data-label="Changed">${timeAgo(p.updatedAt)}</td>
          </tr>`,
        )
        .join('')
    : state.paymentsError
      ? `<tr class="empty"><td colspan="5" class="reason">Payment states could not be read (${text(state.paymentsError)}); trying again…</td></tr>`
      : '<tr class="empty"><td colspan="5">No payment states.</td></tr>';
}
