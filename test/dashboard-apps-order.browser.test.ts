import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromiumAvailable, launchChromium } from './support/browser.js';
import { InstallAppMutation, RuntimeSnapshotQuery, UninstallAppMutation } from './support/operations.js';
import { startSeededServer } from './support/seed.js';
import { dataOf, execute, type TestServer } from './support/server.js';

/** Apps seeded for three users: more than the 200 rows drawn, in several stages. */
const SEEDED = 3 * 120;
const STATES = ['running', 'stopped', 'installFailed', 'running', 'downloading'];
/** Installed and uninstalled by the admin while the page is open: "admin/…" sorts first, so they move the 200-row cut. */
const CHURNED = Array.from({ length: 12 }, (_, i) => `churn-${String.fromCharCode(97 + ((i * 7) % 26))}${i}`);
const ROWS = 200;

describe.skipIf(!chromiumAvailable())('the apps list of the live dashboard under a stream of changes', () => {
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    ({ server } = await startSeededServer('sqlite', {
      env: { SIMULATED_STEP_MS: '20' },
      preseed: async (seed) => {
        await seed.remoteSource();
        for (const name of CHURNED) await seed.catalogApp({ name });
        for (const userId of ['alice', 'bob', 'carol']) {
          const user = seed.user(userId);
          for (let i = 0; i < SEEDED / 3; i += 1) {
            // Names out of order, so the page's order is its own doing, not the rows'.
            const appName = `app-${String((i * 37) % 1000).padStart(3, '0')}`;
            await user.app({ appName, state: STATES[i % STATES.length] ?? 'running' });
          }
        }
      },
    }));
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** Installs, then uninstalls, each churned app in turn until `until` passes. */
  async function churn(until: number): Promise<void> {
    await Promise.all(
      CHURNED.map(async (appName) => {
        while (Date.now() < until) {
          const input = { sourceId: 'market.olares', appName };
          const installed = await execute(server, InstallAppMutation, { input: { ...input, version: '1.0.0' } });
          if (installed.data?.installApp.__typename !== 'InstallAppSuccess') {
            await execute(server, UninstallAppMutation, { input });
          }
          await new Promise((resolve) => setTimeout(resolve, 30)); // pacing the load, not synchronising
        }
      }),
    );
  }

  /** What the page should show: runtimeSnapshot's apps passing `stage`, sorted here, the first 200, and their count. */
  async function expected(stage: string | null): Promise<{ rows: string[]; count: string }> {
    const { runtimeSnapshot } = dataOf(await execute(server, RuntimeSnapshotQuery, {}));
    // Every app here is in market.olares (the query does not ask for sourceId).
    const all = runtimeSnapshot.apps.map((a) => ({ key: `${a.userId}/market.olares/${a.appName}`, stage: a.stage }));
    const passing = all
      .filter((a) => !stage || a.stage === stage)
      .map((a) => a.key)
      .sort(new Intl.Collator('en').compare);
    const count = passing.length === all.length ? `${all.length}` : `${passing.length} of ${all.length}`;
    return { rows: passing.slice(0, ROWS), count };
  }

  const shown = (page: Page) =>
    page.evaluate(() => ({
      rows: [...document.querySelectorAll<HTMLElement>('#apps tr[data-app]')].map((tr) => tr.dataset.app ?? ''),
      count: document.querySelector('#apps-count')?.textContent ?? '',
    }));

  /** Polls until the page shows exactly what `expected` says (both read again each time, as events may still arrive). */
  async function showsExactly(page: Page, stage: string | null): Promise<void> {
    const differs = async () => {
      const [want, got] = [await expected(stage), await shown(page)];
      return JSON.stringify(got) === JSON.stringify(want) ? 'the same' : JSON.stringify({ want, got });
    };
    await expect.poll(differs, { timeout: 15_000 }).toBe('the same');
  }

  test('after changes stream in, the rows are exactly the first 200 of the apps passing the filters, in order', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/dashboard`);
    await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
    await showsExactly(page, null);

    await churn(Date.now() + 3000);
    await showsExactly(page, null);

    // A filter chosen mid-stream: apps enter and leave the filtered list as their stage changes.
    const stream = churn(Date.now() + 3000);
    await page.locator('select[name=stage]').selectOption('RUNNING');
    await stream;
    await showsExactly(page, 'RUNNING');
    await churn(Date.now() + 2000);
    await showsExactly(page, 'RUNNING');

    await page.locator('select[name=stage]').selectOption('');
    await showsExactly(page, null);
    await page.close();
  }, 90_000);

  test('while changes stream in, a draw compares a few keys per changed app, not every app it holds', async () => {
    const page = await browser.newPage();
    // Counts the comparisons of every collator the page makes (render-apps.js orders the apps by one).
    await page.addInitScript(() => {
      const Native = Intl.Collator;
      const counted = { compares: 0 };
      Object.assign(window, { counted });
      Intl.Collator = function Collator(...args: ConstructorParameters<typeof Intl.Collator>) {
        const collator = new Native(...args);
        const compare = collator.compare;
        // An own property: the prototype's `compare` is a getter without a setter.
        return Object.defineProperty(Object.create(collator), 'compare', {
          value: (a: string, b: string) => {
            counted.compares += 1;
            return compare(a, b);
          },
        });
      } as unknown as typeof Intl.Collator;
    });
    await page.goto(`${server.url}/dashboard`);
    await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
    const read = () =>
      page.evaluate(() => ({
        compares: (window as unknown as { counted: { compares: number } }).counted.compares,
        draws: Number(document.documentElement.dataset.draws),
      }));
    const before = await read();
    await churn(Date.now() + 3000);
    const after = await read();
    const draws = after.draws - before.draws;
    const perDraw = (after.compares - before.compares) / draws;
    expect(draws).toBeGreaterThan(3);
    // Sorting every app at each draw takes more than one comparison per app; patching the order
    // takes about 2 log2(apps) per app changed since the last draw (at most the 12 churned).
    expect(perDraw, JSON.stringify({ before, after })).toBeLessThan(SEEDED);
    await page.close();
  }, 60_000);
});
