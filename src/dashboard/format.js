// Formatting shared by the dashboard's renderers. Every value shown comes from users or from
// external services (app service, chart repo), so everything goes through `esc` before it
// reaches innerHTML, and such text shown as text goes through `text`, which also isolates its
// direction.

/** HTML-escapes any value (null and undefined become ''). */
export const esc = (value) => String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * A value from users or upstream (a title, a name, a user id, an error) as the text of an element:
 * escaped, and isolated in a <bdi> so that its direction stays inside it. Inserted bare, a clone
 * titled "Mirror \u202egit" (an unterminated RIGHT-TO-LEFT OVERRIDE) showed the entrance URL next
 * to it reversed, and an Arabic title put the version beside it on its other side.
 */
export function text(value) {
  const html = esc(value);
  return html && `<bdi>${html}</bdi>`;
}

/** The same isolation for a value inside a plain string (a fact joined from several values). */
export const isolate = (value) => `\u2068${value ?? ''}\u2069`;

/**
 * The dashboard's addresses, relative to where its modules were served from (…/dashboard/*.js):
 * behind a gateway that serves this server under a path prefix, the pages, their links and the
 * WebSocket keep that prefix.
 */
export const DASHBOARD_PATH = new URL('../dashboard', import.meta.url).pathname;
export const FLOW_PATH = new URL('app', import.meta.url).pathname;
export const GRAPHQL_PATH = new URL('../graphql', import.meta.url).pathname;

/** The dashboard's filters, kept in its URL (state.js) and carried to the flow page and back. */
export const FILTER_KEYS = ['user', 'source', 'stage', 'q', 'status', 'repo'];
/** The longest value a filter keeps. */
export const MAX_FILTER_LENGTH = 100;

/**
 * `value` cut to at most `max` UTF-16 units (as the search field's maxlength counts), never between
 * the two halves of a character outside the BMP (an emoji): `slice` there left a lone surrogate,
 * which the URL and the search showed as U+FFFD.
 */
export function clip(value, max = MAX_FILTER_LENGTH) {
  const text = String(value ?? '');
  if (text.length <= max) return text;
  const cut = /[\uD800-\uDBFF]/.test(text[max - 1] ?? '') ? max - 1 : max;
  return text.slice(0, cut);
}

/** The dashboard's filters in a query string, as a query string: known keys only, each bounded. */
export function filterQuery(search) {
  const from = new URLSearchParams(String(search ?? '').replace(/^\?/, ''));
  const kept = new URLSearchParams();
  for (const key of FILTER_KEYS) {
    const value = from.get(key);
    if (value) kept.set(key, clip(value));
  }
  return kept.toString();
}

/**
 * "3 s", "4 min", "2 h 5 min", "3 d": a duration in milliseconds, short; '' for none. `fine`
 * keeps what a second hides ("850 ms", "3.2 s"), for how long a task ran.
 */
export function duration(ms, { fine = false } = {}) {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (fine && ms < 1000) return `${Math.round(ms)} ms`;
  if (fine && ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
  return `${Math.floor(h / 24)} d`;
}

/** "12 s ago" for a timestamp (ISO text or epoch ms); '' for none. */
export function ago(time, now = Date.now()) {
  const at = typeof time === 'number' ? time : Date.parse(time ?? '');
  if (!Number.isFinite(at)) return '';
  return `${duration(Math.max(0, now - at))} ago`;
}

/** A local date-time for a title attribute. */
export function absolute(time) {
  const at = Date.parse(time ?? '');
  return Number.isFinite(at) ? new Date(at).toLocaleString() : '';
}

/**
 * A relative time that the page's one-second tick keeps current (see `tickTimes`), with the
 * absolute time as its tooltip.
 */
export function timeAgo(time) {
  if (!time) return '<span class="muted">—</span>';
  return `<time datetime="${esc(time)}" data-ago="${esc(time)}" title="${esc(absolute(time))}">${esc(ago(time))}</time>`;
}

/**
 * How long something took: from `from` to `to`, or, while `to` is unset, until now (kept current
 * by the tick, shown in italics as still running).
 */
export function elapsed(from, to) {
  if (!from) return '<span class="muted">—</span>';
  if (to) return esc(duration(Date.parse(to) - Date.parse(from)));
  return `<i data-elapsed="${esc(from)}">${esc(duration(Date.now() - Date.parse(from)))}</i>`;
}

/**
 * Shows the connection's state in the page's badge (`el`, a polite live region): written only when
 * it changed. Written at every runtime event, it was 416 DOM mutations in 20 s under load, each a
 * change a screen reader may announce again ("live", "live", …).
 */
export function showConnection(el, kind, label, title = '') {
  if (el.dataset.state !== kind) el.dataset.state = kind;
  if (el.textContent !== label) el.textContent = label;
  if (el.title !== title) el.title = title;
}

/**
 * Draws are at least this far apart while changes stream in. Each draw used to be scheduled 16 ms
 * after a change, so under a steady stream (54 messages/s) the page drew without pause: the main
 * thread was busy 27.7 s of 30 s and a tab took up to 3.7 s to switch. Four draws a second keep
 * progress moving visibly; a change after a quiet spell, or the operator's own (a filter, a tab),
 * is drawn at once.
 */
export const DRAW_GAP_MS = 250;

/**
 * `draw` paced: the function returned asks for a draw, run at once after a quiet spell (or with
 * `now`), else when DRAW_GAP_MS since the last one is over; asks in between share that one draw.
 */
export function pacer(draw) {
  let timer = null;
  let lastAt = Number.NEGATIVE_INFINITY;
  const run = () => {
    timer = null;
    lastAt = performance.now();
    draw();
  };
  return (now = false) => {
    const waitMs = now ? 0 : Math.max(0, lastAt + DRAW_GAP_MS - performance.now());
    if (timer !== null) {
      if (waitMs > 0) return; // already due when the gap is over
      clearTimeout(timer);
    }
    timer = setTimeout(run, waitMs);
  };
}

/** Refreshes every relative time and running duration on the page (called once a second). */
export function tickTimes(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll('[data-ago]')) el.textContent = ago(el.dataset.ago, now);
  for (const el of root.querySelectorAll('[data-elapsed]')) {
    el.textContent = duration(now - Date.parse(el.dataset.elapsed));
  }
}

/**
 * Good, bad or under way, from the words the API and the chart repo use (RUNNING, failed,
 * downloading …); bad is checked first, as UNHEALTHY contains HEALTHY.
 */
export function tone(value) {
  const text = String(value ?? '');
  if (/fail|error|unhealthy|unreachable|cancel|invalid|reject/i.test(text)) return 'bad';
  if (/^(running|healthy|completed?|succe\w*|reachable|purchased|free|ok|ready|done|analy[sz]ed)$/i.test(text))
    return 'good';
  if (
    /pend|process|download|install|upgrad|fetch|hydrat|resum|stopping|queue|analy[sz]ing|sync|wait|degraded|required/i.test(
      text,
    )
  ) {
    return 'busy';
  }
  return 'plain';
}

/**
 * A status badge, coloured by its tone; the value is its data-value (escaped like any other),
 * and its text unless a `label` is given.
 */
export const badge = (value, label = value) =>
  value ? `<span class="badge tone-${tone(value)}" data-value="${esc(value)}">${esc(label)}</span>` : '';

/**
 * A progress bar 0–100 with its figure (rounded, clamped: upstream figures may be fractions or out
 * of range), readable by assistive technology (and by the tests).
 */
export function progressBar(value, label = '') {
  const pct = Math.round(Math.max(0, Math.min(100, Number(value) || 0)));
  return `<span class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pct}"${
    label ? ` aria-label="${esc(label)}"` : ''
  }><i style="width:${pct}%"></i></span> <span class="pct">${pct}%</span>`;
}

/**
 * Why a PENDING task waits, on both pages: the app service did not take its start, and it is sent
 * again at the time its `message` names (src/engine/start-retry.ts). Without it such a task looked
 * stuck in PENDING.
 */
export const waitingHtml = (task) =>
  task.status === 'PENDING' && task.message ? `<div class="waiting">${text(task.message)}</div>` : '';

/** A compact scalar for a key/value list: numbers as they are, objects as short JSON. */
function scalar(value) {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'object') {
    const text = JSON.stringify(value);
    return text.length > 80 ? `${clip(text, 77)}…` : text;
  }
  return String(value);
}

/**
 * A JSON object as key/value pairs: the first `inline` pairs always visible, the rest behind a
 * <details> (its `data-open-key` lets the page keep it open across re-renders), with all of it as
 * JSON, which scrolls: reachable with the keyboard (tabindex 0) and named `name`.
 */
export function keyValues(json, openKey, name, inline = 4) {
  if (json === null || json === undefined) return '';
  if (typeof json !== 'object' || Array.isArray(json)) return `<code>${esc(scalar(json))}</code>`;
  const pairs = Object.entries(json);
  if (!pairs.length) return '';
  const dl = (list) =>
    `<dl class="kv">${list.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${text(scalar(v))}</dd></div>`).join('')}</dl>`;
  if (pairs.length <= inline) return dl(pairs);
  return `${dl(pairs.slice(0, inline))}<details data-open-key="${esc(openKey)}"><summary>${esc(
    pairs.length - inline,
  )} more</summary>${dl(pairs.slice(inline))}<pre tabindex="0" aria-label="${esc(name)}">${esc(
    JSON.stringify(json, null, 2),
  )}</pre></details>`;
}

/**
 * An entrance URL as a link target: absolute http(s) URLs as they are, a bare host (what the app
 * service reports) over https; anything else (javascript:, data:…) is not a link.
 */
export function entranceHref(url) {
  if (!url) return null;
  const text = /^[a-z][a-z0-9+.-]*:/i.test(url) ? url : `https://${url}`;
  try {
    const parsed = new URL(text);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
  } catch {
    return null;
  }
}
