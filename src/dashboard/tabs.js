// A tab list drawn in place. Rebuilt with innerHTML at every event, it lost the keyboard focus
// of the tab a keyboard or screen-reader user stood on (Enter on a tab, or any live change while
// one had focus, left the focus on <body>).
import { esc } from './format.js';

/**
 * Draws `tabs` ({ key, label, count, selected }) into the tab list `list`, whose buttons carry
 * `data-<attribute>="<key>"`: buttons whose keys are already there are updated, not replaced.
 * Only the selected tab is in the Tab order (tabindex 0); the arrow keys move between the others
 * (bindTabKeys).
 */
export function patchTabs(list, attribute, tabs) {
  const name = `data-${attribute}`;
  const buttons = [...list.children];
  const same = buttons.length === tabs.length && tabs.every((tab, i) => buttons[i].getAttribute(name) === tab.key);
  if (!same) {
    // Each tab names the panel it shows (the list's data-panel), for assistive technology.
    const controls = list.dataset.panel ? ` aria-controls="${esc(list.dataset.panel)}"` : '';
    list.innerHTML = tabs
      .map((tab) => `<button type="button" role="tab" ${name}="${esc(tab.key)}"${controls}></button>`)
      .join('');
  }
  tabs.forEach((tab, i) => {
    const button = list.children[i];
    const count = tab.count === undefined || tab.count === null ? '' : ` <span class="count">${esc(tab.count)}</span>`;
    const html = `${esc(tab.label)}${count}`;
    if (button.innerHTML !== html) button.innerHTML = html;
    button.setAttribute('aria-selected', String(tab.selected));
    button.tabIndex = tab.selected ? 0 : -1;
  });
}

/** Left/Right (and Home/End) move the focus along a tab list; Enter or Space then selects (a click). */
export function bindTabKeys(list) {
  list.addEventListener('keydown', (event) => {
    const buttons = [...list.querySelectorAll('[role=tab]')];
    const at = buttons.indexOf(document.activeElement);
    if (at === -1) return;
    const next = {
      ArrowRight: (at + 1) % buttons.length,
      ArrowLeft: (at - 1 + buttons.length) % buttons.length,
      Home: 0,
      End: buttons.length - 1,
    }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    buttons[next].focus();
  });
}
