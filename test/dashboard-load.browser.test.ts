import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromiumAvailable, launchChromium } from './support/browser.js';
import { InstallAppMutation, RuntimeSnapshotQuery, UninstallAppMutation } from './support/operations.js';
import { CHURN_APPS } from './support/rows.js';
import { dataOf, execute, startTestServer, type TestServer } from './support/server.js';

const live = (page: Page) =>
  expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');

describe.skipIf(!chromiumAvailable())('the live dashboard under a stream of changes', () => {
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { SIMULATED_STEP_MS: '20' } });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** Installs, then uninstalls, each app in turn (each as soon as the last is accepted) until `until` passes. */
  async function churn(apps: readonly (readonly [string, string])[], until: number): Promise<void> {
    await Promise.all(
      apps.map(async ([appName, version]) => {
        while (Date.now() < until) {
          const input = { sourceId: 'market.olares', appName };
          const installed = await execute(server, InstallAppMutation, { input: { ...input, version } });
          if (installed.data?.installApp.__typename !== 'InstallAppSuccess') {
            await execute(server, UninstallAppMutation, { input });
          }
          await new Promise((resolve) => setTimeout(resolve, 50)); // pacing the load, not synchronising
        }
      }),
    );
  }

  /** What the page shows (task id → status, app key → stage) equals runtimeSnapshot. */
  async function showsSnapshot(page: Page): Promise<boolean> {
    const { runtimeSnapshot } = dataOf(await execute(server, RuntimeSnapshotQuery, {}));
    const shown = await page.evaluate(() => ({
      tasks: [...document.querySelectorAll<HTMLElement>('tr[data-task-id]')].map(
        (tr) => `${tr.dataset.taskId} ${tr.dataset.status}`,
      ),
      apps: [...document.querySelectorAll<HTMLElement>('tr[data-app]')].map(
        (tr) => `${tr.dataset.app} ${tr.dataset.stage}`,
      ),
    }));
    const tasks = new Set(runtimeSnapshot.tasks.map((t) => `${t.taskId} ${t.status}`));
    const apps = new Set(runtimeSnapshot.apps.map((a) => `${a.userId}/market.olares/${a.appName} ${a.stage}`));
    return (
      shown.tasks.length === Math.min(100, tasks.size) &&
      shown.tasks.every((t) => tasks.has(t)) &&
      shown.apps.length === apps.size &&
      shown.apps.every((a) => apps.has(a))
    );
  }

  test('while events stream in, the page draws at most four times a second, and then shows the final state', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    let frames = 0;
    page.on('websocket', (socket) => socket.on('framereceived', () => (frames += 1)));
    await page.goto(`${server.url}/dashboard`);
    await live(page);
    const draws = async () => Number(await page.evaluate(() => document.documentElement.dataset.draws));

    const stream = churn(CHURN_APPS, Date.now() + 6000);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // the stream under way
    const [framesBefore, drawsBefore, startedAt] = [frames, await draws(), Date.now()];
    await new Promise((resolve) => setTimeout(resolve, 3000)); // the window measured
    const [framesAfter, drawsAfter, seconds] = [frames, await draws(), (Date.now() - startedAt) / 1000];
    await stream;

    const rates = { frames: (framesAfter - framesBefore) / seconds, draws: (drawsAfter - drawsBefore) / seconds };
    expect(rates.frames, JSON.stringify(rates)).toBeGreaterThan(20); // a stream, not a trickle
    expect(rates.draws, JSON.stringify(rates)).toBeLessThanOrEqual(4.5);
    await expect.poll(() => showsSnapshot(page), { timeout: 15_000 }).toBe(true);
    await page.close();
  }, 60_000);

  test("another app's changes leave an app's row, its focused link and the history's items as they were", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/dashboard`);
    await live(page);
    const stage = (appName: string) =>
      page.locator(`tr[data-app="admin/market.olares/${appName}"]`).getAttribute('data-stage');
    await execute(server, InstallAppMutation, {
      input: { sourceId: 'market.olares', appName: 'excalidraw', version: '0.17.6' },
    });
    await expect.poll(() => stage('excalidraw'), { timeout: 15_000 }).toBe('RUNNING');
    await expect.poll(() => page.locator('[data-history-id]').count()).toBeGreaterThan(0);
    // Marks on the elements themselves: a row or item drawn again is another element, without it.
    await page.evaluate(() => {
      const row = document.querySelector('tr[data-app="admin/market.olares/excalidraw"]') as HTMLElement;
      Object.assign(row, { kept: true });
      for (const item of document.querySelectorAll('[data-history-id]')) Object.assign(item, { kept: true });
      row.querySelector<HTMLAnchorElement>('[data-label=App] a')?.focus();
    });
    const ids = () =>
      page
        .locator('[data-history-id]')
        .evaluateAll((items) => items.map((item) => item.getAttribute('data-history-id')));
    const historyBefore = new Set(await ids());

    await execute(server, InstallAppMutation, {
      input: { sourceId: 'market.olares', appName: 'stirling-pdf', version: '0.36.6' },
    });
    await expect.poll(() => stage('stirling-pdf'), { timeout: 15_000 }).toBe('RUNNING');
    await expect.poll(async () => (await ids()).some((id) => !historyBefore.has(id))).toBe(true);
    const after = await page.evaluate(
      (before) => {
        const row = document.querySelector('tr[data-app="admin/market.olares/excalidraw"]') as HTMLElement & {
          kept?: boolean;
        };
        const focused = document.activeElement;
        const items = [...document.querySelectorAll('[data-history-id]')] as (HTMLElement & { kept?: boolean })[];
        return {
          rowKept: row.kept === true,
          focusInRow: Boolean(focused && focused.tagName === 'A' && row.contains(focused)),
          // Those still listed (the newest 50 are) that were there before.
          redrawn: items.filter((item) => !item.kept && before.includes(item.dataset.historyId ?? '')).length,
        };
      },
      [...historyBefore],
    );
    expect(after).toEqual({ rowKept: true, focusInRow: true, redrawn: 0 });
    await page.close();
  }, 60_000);

  test('on a 390 px phone, no label of a task card runs over the next one, and a finished task has no Actions line', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await page.goto(`${server.url}/dashboard`);
    await live(page);
    await page.locator('tr[data-task-id][data-status=COMPLETED]').first().waitFor({ timeout: 15_000 });
    const cards = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('tr[data-task-id]')].map((tr) => {
        // Each visible cell's label (its ::before): from the cell's content top, as tall as it is.
        const labels = [...tr.querySelectorAll<HTMLElement>('td')]
          .filter((td) => td.getBoundingClientRect().height > 0)
          .map((td) => {
            const top = td.getBoundingClientRect().top + Number.parseFloat(getComputedStyle(td).paddingTop);
            const height = Number.parseFloat(getComputedStyle(td, '::before').height);
            return { label: td.dataset.label, top, bottom: top + height };
          });
        const overlaps = labels.flatMap((label, i) => {
          const next = labels[i + 1];
          return next && label.bottom > next.top + 0.5 ? [`${label.label} over ${next.label}`] : [];
        });
        const actions = tr.querySelector<HTMLElement>('td[data-label=Actions]')?.getBoundingClientRect().height;
        return { status: tr.dataset.status, overlaps, actions };
      }),
    );
    expect(cards.length).toBeGreaterThan(0);
    expect(cards.flatMap((card) => card.overlaps)).toEqual([]);
    const finished = cards.filter((card) => card.status === 'COMPLETED');
    expect(finished.length).toBeGreaterThan(0);
    expect(finished.map((card) => card.actions)).toEqual(finished.map(() => 0));
    await page.close();
  }, 60_000);

  test('after a server stops, dashboards open on it try again at spread-out times, not in step', async () => {
    const stopped = await startTestServer('sqlite');
    const context = await browser.newContext();
    const attempts: number[][] = [];
    try {
      for (let i = 0; i < 8; i += 1) {
        const page = await context.newPage();
        const times: number[] = [];
        attempts.push(times);
        page.on('websocket', () => times.push(Date.now()));
        await page.goto(`${stopped.url}/dashboard`);
        await live(page);
      }
      await stopped.app.stop(); // closes every socket at once: each page starts its backoff together
      // The first connection and four attempts after it (0.5, 1, 2 and 4 s apart without jitter).
      await expect.poll(() => Math.min(...attempts.map((times) => times.length)), { timeout: 20_000 }).toBe(5);
    } finally {
      await context.close();
      await stopped.database.drop();
    }
    const fourth = attempts.map((times) => times[4] ?? 0);
    // In step, the pages try within 0.2 s of each other (0.17 s on a loaded machine); with jitter
    // (a random half of each wait: the fourth attempt 3.75 to 7.5 s after the stop, SD ~0.67 s) 8
    // pages spread over about 2 s, under 0.4 s about once in 10,000 runs.
    expect(Math.max(...fourth) - Math.min(...fourth), JSON.stringify(fourth)).toBeGreaterThan(400);
  }, 60_000);

  test('after a server restart the badge counts the connections lost, not the attempts made while it was down', async () => {
    const first = await startTestServer('sqlite', { env: { SIMULATED_STEP_MS: '150' } });
    const page = await browser.newPage();
    // Every text the badge shows, in order.
    await page.addInitScript(() => {
      const badges: string[] = [];
      Object.assign(window, { badges });
      new MutationObserver(() => {
        const text = document.querySelector('#connection')?.textContent ?? '';
        if (badges.at(-1) !== text) badges.push(text);
      }).observe(document, { subtree: true, childList: true, characterData: true });
    });
    await page.goto(`${first.url}/dashboard`);
    await live(page);
    await first.app.stop();
    // Down long enough for several attempts (backoff 0.25–0.5 s, 0.5–1 s, 1–2 s …): the page counts them.
    await expect
      .poll(() => page.locator('#connection').innerText(), { timeout: 15_000 })
      .toMatch(/^reconnecting \([3-9]\d*\)/);
    const restarted = await startTestServer('sqlite', {
      env: { SIMULATED_STEP_MS: '150', PORT: new URL(first.url).port },
      database: first.database,
    });
    try {
      await expect
        .poll(() => page.locator('#connection').innerText(), { timeout: 20_000 })
        .toBe('live · reconnected after 1 lost connection(s)');
      // The new instance numbers its changes anew: the replay answers RESYNC. Until the replay
      // answered, the badge says it is catching up, never live (and then not live again).
      const badges = await page.evaluate(() => (window as unknown as { badges: string[] }).badges);
      const back = badges.slice(badges.findLastIndex((text) => text.startsWith('reconnecting')) + 1);
      expect(back).toEqual(['catching up…', 'live · reconnected after 1 lost connection(s)']);
    } finally {
      await page.close();
      await restarted.stop();
      await first.database.drop();
    }
  }, 60_000);
});
