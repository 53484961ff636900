// Lists drawn in place (the tasks, the apps, the history). Redrawn whole with innerHTML at every
// event, a row lost the keyboard focus of its button or link, a press on it landed on an element
// gone by the release (6 of 8 presses on an app link under load), a text selection went, and
// every row of every list was parsed again at every draw (4.3 s of 30 s of a busy page's CPU).

/** What each row was last drawn from: `{ inputs, cells }` by element (what patchRows compares with). */
const drawn = new WeakMap();

/**
 * The element in `root` that stands for `focused`, drawn again: the same tag with the same data
 * attributes (a task's Retry button is `button[data-action=retry][data-task=…]`).
 */
function counterpart(root, focused) {
  const names = (el) => el.getAttributeNames().filter((name) => name.startsWith('data-'));
  const identity = names(focused);
  if (!identity.length) return null;
  const same = (el) =>
    el.tagName === focused.tagName &&
    names(el).length === identity.length &&
    identity.every((name) => el.getAttribute(name) === focused.getAttribute(name));
  return [root, ...root.querySelectorAll(focused.tagName)].find(same) ?? null;
}

/**
 * Replaces `old` with `fresh`, and the keyboard focus with it: the focus inside `old` goes to its
 * counterpart in `fresh`, or to `fresh` itself when that is gone. Left to the browser, it fell to
 * <body> (Retry pressed with the keyboard: the outcome written beside it replaced its cell), and
 * a keyboard or screen-reader user started again from the top of the page.
 */
function replaceKeepingFocus(old, fresh) {
  const focused = document.activeElement;
  const inside = focused && focused !== document.body && old.contains(focused);
  old.replaceWith(fresh);
  if (!inside) return;
  const target = counterpart(fresh, focused);
  if (target) target.focus();
  else {
    if (!fresh.hasAttribute('tabindex')) fresh.tabIndex = -1;
    fresh.focus();
  }
}

const sameInputs = (a, b) => a.length === b.length && a.every((value, i) => Object.is(value, b[i]));

/**
 * Draws `items` as the children of `list`, in their order, each element keyed by its
 * `data-<attribute>` (`key(item)`). A row whose `inputs(item)` (what its HTML is made of: the
 * item's object, which an event replaces, and anything else it shows) are those it was drawn from
 * is not touched; another is parsed from `html(item)` and only its cells (children) whose HTML
 * changed are replaced, its own attributes updated. Children without the key attribute (an
 * "empty" line) go. Relative times and running durations in a row are kept current by the tick
 * (format.js), not by drawing it again.
 */
export function patchRows(list, items, { attribute, key, inputs, html }) {
  const dataKey = attribute.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  const wanted = new Set(items.map(key));
  const shown = new Map();
  // Rows no longer wanted go first: left in place while the others are put in order, each row
  // below one of them was moved, and a moved row loses the focus.
  for (const el of [...list.children]) {
    const id = el.dataset[dataKey];
    if (id !== undefined && wanted.has(id) && !shown.has(id)) shown.set(id, el);
    else el.remove();
  }
  const parse = document.createElement(list.tagName);
  items.forEach((item, index) => {
    const id = key(item);
    const now = inputs(item);
    let el = shown.get(id);
    const before = el && drawn.get(el);
    if (!before || !sameInputs(before.inputs, now)) {
      parse.innerHTML = html(item);
      const fresh = parse.firstElementChild;
      const cells = [...fresh.children].map((cell) => cell.outerHTML);
      if (el && before && el.children.length === cells.length) {
        for (const { name, value } of fresh.attributes)
          if (el.getAttribute(name) !== value) el.setAttribute(name, value);
        cells.forEach((cellHtml, i) => {
          if (cellHtml !== before.cells[i]) replaceKeepingFocus(el.children[i], fresh.children[0]);
          else fresh.children[0].remove();
        });
      } else {
        if (el) replaceKeepingFocus(el, fresh);
        el = fresh;
      }
      drawn.set(el, { inputs: now, cells });
    }
    if (list.children[index] !== el) list.insertBefore(el, list.children[index] ?? null);
  });
}

const lines = new WeakMap();

/** Shows one line instead of rows (nothing to list, or why not); drawn again only when it changed. */
export function showLine(list, lineHtml) {
  const shown = lines.get(list);
  if (shown?.html === lineHtml && list.children.length === 1 && list.firstElementChild === shown.el) return;
  list.innerHTML = lineHtml;
  lines.set(list, { html: lineHtml, el: list.firstElementChild });
}
