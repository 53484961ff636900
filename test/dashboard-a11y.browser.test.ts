import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromiumAvailable, launchChromium } from './support/browser.js';
import { InstallAppMutation } from './support/operations.js';
import { startSeededServer } from './support/seed.js';
import { dataOf, execute, type TestServer } from './support/server.js';

/** A clone title with an unterminated RIGHT-TO-LEFT OVERRIDE (U+202E). */
const RLO_TITLE = 'Mirror \u202egit';
const URL_SHOWN = 'https://mirror.admin.olares.local';

/**
 * Whether the first text of `locator` is drawn left to right: its first character left of its
 * last. A bidi override leaking from the text before it draws it mirrored.
 */
const drawnLeftToRight = (locator: Locator) =>
  locator.evaluate((el) => {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    let node = walker.nextNode();
    while (node && (node.textContent ?? '').trim().length < 2) node = walker.nextNode();
    if (!node) throw new Error('no text');
    const at = (i: number) => {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      return range.getBoundingClientRect().left;
    };
    const text = node.textContent ?? '';
    const first = text.search(/\S/);
    return at(first) < at(text.trimEnd().length - 1);
  });

/** An app name as long as the app service allows. */
const LONG_NAME = `long${'x'.repeat(123)}`;

/** Apps of the catalogue that tests install to make events flow. */
const CHURN = ['grafana', 'minio', 'syncthing'];
/** More of them, for another test. */
const OTHERS = ['navidrome', 'uptime-kuma', 'audiobookshelf'];

/** Installs `appName` as the local admin; returns the task id. */
async function install(server: TestServer, appName: string): Promise<string> {
  const result = dataOf(
    await execute(server, InstallAppMutation, { input: { sourceId: 'market.olares', appName, version: '1.0.0' } }),
  ).installApp;
  if (result.__typename !== 'InstallAppSuccess') throw new Error(`install refused: ${result.__typename}`);
  return result.task.taskId;
}

const live = (page: Page) =>
  expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');

describe.skipIf(!chromiumAvailable())('the dashboard for assistive technology and any script', () => {
  let server: TestServer;
  let browser: Browser;
  /** A failed install of excalidraw, which the admin may retry. */
  let failedTaskId = '';
  /** A failed install of memos, retried by the live-region test. */
  let announcedTaskId = '';
  beforeAll(async () => {
    ({ server } = await startSeededServer('sqlite', {
      // The simulated app service moves installs on, so that runtime events flow.
      env: { SIMULATED_STEP_MS: '100' },
      preseed: async (seed) => {
        for (const name of [...CHURN, ...OTHERS]) await seed.catalogApp({ name });
        const admin = seed.user('admin');
        await admin.app({ appName: LONG_NAME, state: 'running' });
        const mirror = await admin.app({ appName: 'gitea0a1b2c', rawAppName: 'gitea', state: 'running' });
        // The app service's entrance of the clone: its title, and its state and URL beside it.
        await seed.db.appState.update({
          where: { id: mirror.row.id },
          data: {
            title: RLO_TITLE,
            entrances: [
              { name: 'web', title: RLO_TITLE, url: URL_SHOWN, state: 'starting', authLevel: null, icon: null },
            ],
          },
        });
        const failed = await (await admin.app({ appName: 'excalidraw', state: 'installFailed' })).task({
          status: 'FAILED',
          error: 'image pull failed',
        });
        failedTaskId = failed.taskId;
        // Another, for the other Retry test: each retries a task of its own, whatever their order.
        await seed.catalogApp({ name: 'memos' });
        const announced = await (await admin.app({ appName: 'memos', state: 'installFailed' })).task({
          status: 'FAILED',
          error: 'image pull failed',
        });
        announcedTaskId = announced.taskId;
        // More history than its list shows without scrolling.
        for (let i = 0; i < 30; i += 1) await admin.history({ type: 'app.installed', app: `seeded-${i}` });
      },
    }));
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('a title with a right-to-left override does not reverse the fields beside it, on the dashboard and the app page', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/dashboard`);
    await live(page);
    const cell = page.locator('tr[data-app="admin/market.olares/gitea0a1b2c"] [data-label=App]');
    await cell.locator('a[data-entrance=web]').waitFor();
    // The entrance state written after the title: "(starting)", not ")gnitrats(".
    expect(await drawnLeftToRight(cell.locator('.entrances > .muted'))).toBe(true);

    await page.goto(`${server.url}/dashboard/app?user=admin&source=market.olares&app=gitea0a1b2c`);
    const url = page.locator('li.step[data-step=database] .url');
    await expect.poll(() => url.innerText(), { timeout: 15_000 }).toBe(URL_SHOWN);
    expect(await drawnLeftToRight(url)).toBe(true);
    await page.close();
  });

  test('Retry pressed with the keyboard keeps the focus on that Retry button once its outcome is shown', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/dashboard`);
    await live(page);
    const row = page.locator(`tr[data-task-id="${failedTaskId}"]`);
    const retry = row.locator('button[data-action=retry]');
    await retry.focus();
    await page.keyboard.press('Enter');
    await row.locator('.outcome').waitFor({ timeout: 15_000 });
    const focused = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      return { tag: el?.tagName, action: el?.dataset.action, task: el?.dataset.task };
    });
    expect(focused).toEqual({ tag: 'BUTTON', action: 'retry', task: failedTaskId });
    await page.close();
  });

  test('the outcome of a Retry is said by the page live region, and the button names the task it acts on', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/dashboard`);
    await live(page);
    // The live region is there, empty, before anything is said in it.
    const announcer = page.locator('#announcer');
    expect(await announcer.count()).toBe(1);
    expect(await announcer.getAttribute('aria-live')).toBe('polite');
    expect(await announcer.textContent()).toBe('');
    const retry = page.getByRole('button', { name: 'Retry install of memos for admin' });
    expect(await retry.getAttribute('data-task')).toBe(announcedTaskId);
    await retry.click();
    const shown = page.locator(`tr[data-task-id="${announcedTaskId}"] .outcome`);
    await shown.waitFor({ timeout: 15_000 });
    expect(await announcer.textContent()).toBe(`Retry install of memos for admin: ${await shown.innerText()}`);
    await page.close();
  });

  test('the connection badge, a live region, is not written again while events flow', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/dashboard`);
    await live(page);
    await page.evaluate(() => {
      const w = window as unknown as { badgeMutations: number };
      w.badgeMutations = 0;
      new MutationObserver((records) => {
        w.badgeMutations += records.length;
      }).observe(document.querySelector('#connection') as Node, {
        attributes: true,
        characterData: true,
        childList: true,
        subtree: true,
      });
    });
    const taskIds: string[] = [];
    for (const appName of CHURN) taskIds.push(await install(server, appName));
    for (const taskId of taskIds) {
      await expect
        .poll(() => page.locator(`tr[data-task-id="${taskId}"]`).getAttribute('data-status'), { timeout: 20_000 })
        .toBe('COMPLETED');
    }
    expect(await page.evaluate(() => (window as unknown as { badgeMutations: number }).badgeMutations)).toBe(0);
    expect(await page.locator('#connection').innerText()).toBe('live');
    await page.close();
  });

  test('the app page draws its steps again at most four times a second while its app changes', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const [appName] = OTHERS as [string];
    await page.goto(`${server.url}/dashboard/app?user=admin&source=market.olares&app=${appName}`);
    await live(page);
    await page.locator('li.step[data-step=database]').waitFor();
    await page.evaluate(() => {
      const w = window as unknown as { rebuilds: number };
      w.rebuilds = 0;
      new MutationObserver((records) => {
        w.rebuilds += records.length;
      }).observe(document.querySelector('#flow') as Node, { childList: true });
    });
    const startedAt = Date.now();
    const taskId = await install(server, appName);
    const task = page.locator(`li.step[data-step=database] li[data-task-id="${taskId}"]`);
    await expect.poll(() => task.innerText(), { timeout: 20_000 }).toContain('COMPLETED');
    const seconds = (Date.now() - startedAt) / 1000;
    const rebuilds = await page.evaluate(() => (window as unknown as { rebuilds: number }).rebuilds);
    // Each event of the install was drawn at once before (14 rebuilds for 14 events in 1.5 s).
    expect(rebuilds).toBeGreaterThan(0);
    expect(rebuilds).toBeLessThanOrEqual(Math.ceil(seconds * 4) + 1);
    await page.close();
  });

  test('a search cut at 100 characters does not cut an emoji in half, from the link or from the field', async () => {
    const page = await browser.newPage();
    const long = `${'a'.repeat(99)}\u{1F600}`;
    const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
    const search = page.locator('#filters input[name=q]');
    await page.goto(`${server.url}/dashboard?q=${encodeURIComponent(long)}`);
    await live(page);
    expect(await search.inputValue()).toBe('a'.repeat(99));
    // The filters the page carries to the app page and back (format.js filterQuery), cut the same way.
    // (A string: vitest would rewrite an import() written in the test's own code.)
    const carried = await page.evaluate(
      `import('/dashboard/format.js').then((m) => new URLSearchParams(m.filterQuery(location.search)).get('q'))`,
    );
    expect(carried).toBe('a'.repeat(99));

    await search.fill(`${'b'.repeat(99)}\u{1F600}`);
    await expect.poll(() => new URL(page.url()).searchParams.get('q')).toBe('b'.repeat(99));
    expect(loneSurrogate.test(await search.inputValue())).toBe(false);
    await page.close();
  });

  test('every region that scrolls can be reached with the keyboard and has a name (axe scrollable-region-focusable)', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/dashboard`);
    await live(page);
    await expect.poll(() => page.locator('#history li').count()).toBeGreaterThanOrEqual(30);
    const scrolling = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('body *')].flatMap((el) => {
        const style = getComputedStyle(el);
        const scrolls = (overflow: string, content: number, box: number) =>
          /auto|scroll/.test(overflow) && content > box;
        if (
          !scrolls(style.overflowY, el.scrollHeight, el.clientHeight) &&
          !scrolls(style.overflowX, el.scrollWidth, el.clientWidth)
        ) {
          return [];
        }
        const name = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || '';
        return [{ id: el.id || `${el.tagName} ${el.className}`, tabIndex: el.tabIndex, named: name.length > 0 }];
      }),
    );
    expect(scrolling.map((region) => region.id)).toContain('history');
    expect(scrolling.filter((region) => region.tabIndex < 0 || !region.named)).toEqual([]);
    await page.close();
  }, 60_000);

  test('under prefers-reduced-motion nothing on either page moves by itself; without it, the progress bars slide', async () => {
    const page = await browser.newPage();
    /** The transitions and animations of every element, with a progress bar added (format.js progressBar's shape). */
    const motion = () =>
      page.evaluate(() => {
        document.body.insertAdjacentHTML('beforeend', '<span class="bar"><i style="width:50%"></i></span>');
        return [...document.querySelectorAll<HTMLElement>('body *')].flatMap((el) => {
          const style = getComputedStyle(el);
          const moves = style.transitionDuration.split(',').some((d) => Number.parseFloat(d) > 0);
          return moves || style.animationName !== 'none' ? [el.tagName] : [];
        });
      });
    const pages = [`${server.url}/dashboard`, `${server.url}/dashboard/app?user=admin&source=market.olares&app=memos`];
    for (const url of pages) {
      await page.emulateMedia({ reducedMotion: 'no-preference' });
      await page.goto(url);
      expect(await motion(), url).toContain('I');
      await page.emulateMedia({ reducedMotion: 'reduce' });
      await page.goto(url);
      expect(await motion(), url).toEqual([]);
    }
    await page.close();
  }, 60_000);

  test('the connection badge reads at 4.5:1 or more, a long app name wraps on a desktop, and tabs name their panel', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/dashboard`);
    await live(page);
    // WCAG 2 contrast of the badge text on its background, in each state (set here by hand).
    const contrastIn = (state: string) =>
      page.evaluate((stateName) => {
        const el = document.querySelector('#connection') as HTMLElement;
        const was = el.dataset.state;
        el.dataset.state = stateName;
        const style = getComputedStyle(el);
        el.dataset.state = was;
        const luminance = (css: string) => {
          const [r, g, b] = (css.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map((v) => {
            const c = Number(v) / 255;
            return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
          }) as [number, number, number];
          return 0.2126 * r + 0.7152 * g + 0.0722 * b;
        };
        const [light, dark] = [luminance(style.color), luminance(style.backgroundColor)].sort((a, b) => b - a) as [
          number,
          number,
        ];
        return (light + 0.05) / (dark + 0.05);
      }, state);
    for (const state of ['live', 'connecting', 'reconnecting', 'failed']) {
      expect(await contrastIn(state), state).toBeGreaterThanOrEqual(4.5);
    }

    const wrap = page.locator('#apps-section .table-wrap');
    await page.locator(`tr[data-app="admin/market.olares/${LONG_NAME}"]`).waitFor();
    const widths = await wrap.evaluate((el) => ({ scroll: el.scrollWidth, client: el.clientWidth }));
    expect(widths.scroll).toBeLessThanOrEqual(widths.client);

    for (const tab of await page.locator('[role=tab]').all()) {
      const panel = await tab.getAttribute('aria-controls');
      expect(panel).toBeTruthy();
      expect(await page.locator(`#${panel}`).getAttribute('role')).toBe('tabpanel');
    }
    await page.close();
  });
});
