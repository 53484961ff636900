import { mkdirSync } from 'node:fs';
import { SignJWT } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromiumAvailable, launchChromium } from './support/browser.js';
import {
  chartRepoStatusFixture,
  chartRepoStatusFor,
  type FakeChartRepo,
  startFakeChartRepo,
} from './support/fake-chart-repo.js';
import { fakeEntry, startFakeMarketSource } from './support/fake-market-source.js';
import { InstallAppMutation } from './support/operations.js';
import { AUTH_ENV, dataOf, execute, startTestServer, type TestServer, TOKENS } from './support/server.js';
import { rawRequest } from './support/untyped.js';

/** The chart repo's answer (the `data` of its envelope), in its own snake_case. */
type RawStatus = {
  apps: { app_name: string; user_id: string; state: string; current_step?: Record<string, unknown> }[];
  [key: string]: unknown;
};
/**
 * The chart repo's answer to one user's call: that user's part of the fixture. Its image analyzer
 * is one for the whole node, so every answer carries the whole queue, and which user's answer the
 * collector reads last does not change what is shown.
 */
function answerFor(userId: string): RawStatus {
  const answer = chartRepoStatusFor(userId) as RawStatus & { tasks: Record<string, unknown> };
  const everyone = chartRepoStatusFixture() as { tasks: Record<string, unknown> };
  return { ...answer, tasks: { ...answer.tasks, image_analyzer: everyone.tasks.image_analyzer } };
}

const flowUrl = (server: TestServer, app: string, extra = '') =>
  `${server.url}/dashboard/app?user=admin&source=market.olares&app=${encodeURIComponent(app)}${extra}`;

/** What an operator reads in one step of the flow. */
const step = (page: Page, id: string) => page.locator(`li.step[data-step="${id}"]`);
const statusOf = (page: Page, id: string) => step(page, id).getAttribute('data-status');

/** Every request for /graphql that is not the WebSocket: the page must never make one. */
function watchHttp(page: Page): string[] {
  const requests: string[] = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (!['127.0.0.1', 'localhost'].includes(url.hostname)) requests.push(`external: ${request.url()}`);
    else if (url.pathname === '/graphql' && request.resourceType() !== 'websocket') requests.push(request.url());
  });
  return requests;
}

async function noHorizontalScroll(page: Page): Promise<void> {
  const widths = await page.evaluate(() => ({
    page: document.documentElement.scrollWidth,
    body: document.body.scrollWidth,
    viewport: window.innerWidth,
  }));
  expect(widths.page).toBeLessThanOrEqual(widths.viewport);
  expect(widths.body).toBeLessThanOrEqual(widths.viewport);
}

describe.skipIf(!chromiumAvailable())('the app processing-flow page in a real browser', () => {
  let chartRepo: FakeChartRepo;
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    chartRepo = await startFakeChartRepo();
    // Local development mode: the page's viewer is the admin; the demo apps of admin and alice
    // make the collector ask the chart repo on behalf of each, and it answers each with theirs.
    chartRepo.setStatus('admin/*', answerFor('admin'));
    chartRepo.setStatus('alice/*', answerFor('alice'));
    server = await startTestServer('sqlite', {
      env: { CHART_REPO_URL: chartRepo.url, COLLECT_INTERVAL_MS: '100' },
    });
    browser = await launchChromium();
    mkdirSync('test-results', { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await chartRepo?.stop();
  });

  test('an app the chart repo is processing shows its steps, step 3 of 5 and its image progress per node', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const http = watchHttp(page);
    await page.goto(flowUrl(server, 'n8n'));
    await expect.poll(() => statusOf(page, 'chart'), { timeout: 15_000 }).toBe('in-progress');

    const titles = await page.locator('li.step h3').allInnerTexts();
    expect(titles).toEqual([
      'Syncer — catalogue',
      'Hydration',
      'Chart steps',
      'Image analysis',
      'Database — app state',
    ]);
    expect(await step(page, 'chart').innerText()).toContain('3 of 5: rendering chart');
    expect(await statusOf(page, 'hydration')).toBe('in-progress');
    expect(await step(page, 'hydration').innerText()).toContain('hyd-admin-n8n-1747295975');

    const image = step(page, 'images').locator('[data-image="docker.n8n.io/n8nio/n8n:1.64.3"]');
    expect(await image.locator('[role=progressbar]').first().getAttribute('aria-valuenow')).toBe('60');
    const nodes = image.locator('[data-node] [role=progressbar]');
    expect(await nodes.evaluateAll((bars) => bars.map((bar) => bar.getAttribute('aria-valuenow')))).toEqual([
      '73',
      '48',
    ]);
    expect(await step(page, 'images').innerText()).toContain('ana-n8n-1747295980');
    expect(await statusOf(page, 'images')).toBe('in-progress');
    // n8n is not installed for admin: the database has no row for it yet.
    expect(await statusOf(page, 'database')).toBe('not-started');
    expect(await step(page, 'database').innerText()).toContain('not installed for admin');

    await page.screenshot({ path: 'test-results/dashboard-app-n8n.png', fullPage: true });
    expect(http).toEqual([]);
  });

  test("a failed app shows the chart repo's error with the step it failed at, in its steps and images", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(flowUrl(server, 'ghost'));
    await expect.poll(() => statusOf(page, 'chart'), { timeout: 15_000 }).toBe('failed');

    expect(await step(page, 'chart').locator('.reason').innerText()).toBe(
      'image docker.io/library/ghost:5.82.2-alpine: manifest unknown (at step verifying images)',
    );
    expect(await step(page, 'chart').innerText()).toContain('4 of 5: verifying images');
    expect(await statusOf(page, 'hydration')).toBe('failed');
    expect(await statusOf(page, 'images')).toBe('failed');
    expect(await step(page, 'images').locator('.reason').innerText()).toContain('manifest tagged by "5.82.2-alpine"');
    expect(await step(page, 'images').innerText()).toContain('(at fetch_manifest)');
    await page.screenshot({ path: 'test-results/dashboard-app-ghost-failed.png', fullPage: true });
  });

  test('when the chart repo moves on, the page shows the new step live, over the WebSocket only', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const http = watchHttp(page);
    let navigations = 0;
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) navigations += 1;
    });
    await page.goto(flowUrl(server, 'n8n'));
    await expect.poll(() => step(page, 'chart').innerText(), { timeout: 15_000 }).toContain('3 of 5');

    const next = answerFor('admin');
    const n8n = next.apps.find((app) => app.app_name === 'n8n' && app.user_id === 'admin');
    if (!n8n?.current_step) throw new Error('the fixture has no n8n step');
    n8n.current_step = { ...n8n.current_step, name: 'verifying images', index: 4, retry_count: 2 };
    // An upstream text is shown as text, never as markup.
    (n8n as Record<string, unknown>).error = {
      message: '<img src=x id=injected> registry timeout',
      step: 'verifying images',
    };
    chartRepo.setStatus('admin/*', next);

    await expect.poll(() => step(page, 'chart').innerText(), { timeout: 15_000 }).toContain('4 of 5: verifying images');
    expect(await statusOf(page, 'chart')).toBe('failed');
    expect(await step(page, 'chart').locator('.reason').innerText()).toBe(
      '<img src=x id=injected> registry timeout (at step verifying images)',
    );
    expect(await page.locator('#injected').count()).toBe(0);

    // The database step follows the app's own changes too: an install appears with its task.
    const install = dataOf(
      await execute(server, InstallAppMutation, {
        input: { sourceId: 'market.olares', appName: 'n8n', version: '1.70.1' },
      }),
    ).installApp;
    const taskId = install.__typename === 'InstallAppSuccess' ? install.task.taskId : 'not accepted';
    await step(page, 'database').locator(`[data-task-id="${taskId}"]`).waitFor({ timeout: 15_000 });
    await expect.poll(() => statusOf(page, 'database')).toBe('in-progress');
    expect(await step(page, 'database').innerText()).toContain('INSTALL');

    expect(navigations).toBe(1);
    expect(http).toEqual([]);
    await page.screenshot({ path: 'test-results/dashboard-app-live.png', fullPage: true });
    chartRepo.setStatus('admin/*', answerFor('admin'));
  });

  test('when a sync brings a new version, the Syncer step shows it live', async () => {
    const source = await startFakeMarketSource({ entries: [fakeEntry('notes', { version: '1.0.0' })] });
    const synced = await startTestServer('sqlite', {
      env: { DEMO_DATA: '0', MARKET_SOURCE_URL: source.url, SYNC_INTERVAL_MS: '3600000' },
    });
    try {
      const page = await browser.newPage();
      const http = watchHttp(page);
      await page.goto(flowUrl(synced, 'notes'));
      await expect.poll(() => statusOf(page, 'syncer'), { timeout: 15_000 }).toBe('done');
      expect(await step(page, 'syncer').locator('.summary').innerText()).toBe('version 1.0.0 in the catalogue');

      source.change('notes', { version: '1.1.0' });
      const sync = await rawRequest(synced, {
        query: 'mutation ($sourceId: String!) { syncMarketSource(input: { sourceId: $sourceId }) { __typename } }',
        variables: { sourceId: 'market.olares' },
      });
      expect(sync.body?.data?.syncMarketSource).toEqual({ __typename: 'SyncMarketSourceSuccess' });
      await expect
        .poll(() => step(page, 'syncer').locator('.summary').innerText(), { timeout: 15_000 })
        .toBe('version 1.1.0 in the catalogue');
      expect(http).toEqual([]);
    } finally {
      await synced.stop();
      await source.close();
    }
  });

  test('a sync that succeeded but rejected an entry is told as that, not as a failed sync', async () => {
    // photos is no entry (its version a number): the sync stores notes and says what it rejected.
    const source = await startFakeMarketSource({ entries: [fakeEntry('notes'), fakeEntry('photos', { version: 7 })] });
    const synced = await startTestServer('sqlite', {
      env: { DEMO_DATA: '0', MARKET_SOURCE_URL: source.url, SYNC_INTERVAL_MS: '3600000' },
    });
    try {
      const page = await browser.newPage();
      await page.goto(flowUrl(synced, 'notes'));
      await expect.poll(() => statusOf(page, 'syncer'), { timeout: 15_000 }).toBe('done');
      const notes = await step(page, 'syncer').innerText();
      expect(notes).toContain('The last sync succeeded, with a warning: 1 entries rejected; first: app ');
      expect(notes).toMatch(/Last sync warning\s+1 entries rejected/);
      expect(notes).not.toMatch(/sync failed|Last sync error/i);

      // The rejected app is not in the catalogue, and the page says why it may not be.
      await page.goto(flowUrl(synced, 'photos'));
      await expect.poll(() => statusOf(page, 'syncer'), { timeout: 15_000 }).toBe('failed');
      expect(await step(page, 'syncer').locator('.summary').innerText()).toBe('not in the catalogue');
      expect(await step(page, 'syncer').locator('.reason').innerText()).toMatch(
        /^The catalogue of market\.olares does not offer photos\. The last sync succeeded, with a warning: 1 entries rejected/,
      );
    } finally {
      await synced.stop();
      await source.close();
    }
  });

  test('a catalogue title with a right-to-left override does not reverse the version after it, even past an isolate end of its own', async () => {
    // Titles from a market source, third-party text: an unterminated U+202E, and one behind a
    // stray U+2069 (POP DIRECTIONAL ISOLATE), which might end the isolate around the title early.
    const titled = (name: string, title: string) =>
      fakeEntry(name, { version: '1.2.3', title: { 'en-US': title }, i18n: { 'en-US': { metadata: { title } } } });
    const source = await startFakeMarketSource({
      entries: [titled('notes', 'Notes \u202e'), titled('photos', 'Photos \u2069\u202e')],
    });
    const synced = await startTestServer('sqlite', {
      env: { DEMO_DATA: '0', MARKET_SOURCE_URL: source.url, SYNC_INTERVAL_MS: '3600000' },
    });
    try {
      const page = await browser.newPage();
      for (const app of ['notes', 'photos']) {
        await page.goto(flowUrl(synced, app));
        await expect.poll(() => statusOf(page, 'syncer'), { timeout: 15_000 }).toBe('done');
        const fact = step(page, 'syncer').locator('dt:text-is("In catalogue") + dd');
        expect(await fact.innerText()).toContain('1.2.3');
        // "1.2.3" drawn as written: its 1 left of its 3 (an override leaking onto it draws "3.2.1").
        const drawn = await fact.evaluate((dd) => {
          const walker = document.createTreeWalker(dd, NodeFilter.SHOW_TEXT);
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const at = (node.textContent ?? '').indexOf('1.2.3');
            if (at === -1) continue;
            const left = (i: number) => {
              const range = document.createRange();
              range.setStart(node, i);
              range.setEnd(node, i + 1);
              return range.getBoundingClientRect().left;
            };
            return left(at) < left(at + 4);
          }
          throw new Error('no version drawn');
        });
        expect(drawn, app).toBe(true);
      }
    } finally {
      await synced.stop();
      await source.close();
    }
  });

  test('an app the chart repo knows nothing of shows its catalogue entry and database row, and says so', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(flowUrl(server, 'vaultwarden'));
    await expect.poll(() => statusOf(page, 'database'), { timeout: 15_000 }).toBe('done');

    expect(await statusOf(page, 'syncer')).toBe('done');
    expect(await step(page, 'syncer').innerText()).toMatch(/version \S+ in the catalogue/);
    expect(await step(page, 'database').innerText()).toContain('stage running');
    expect(await step(page, 'database').innerText()).toContain('1.32.5');
    for (const id of ['hydration', 'chart', 'images']) {
      expect(await statusOf(page, id)).toBe('unknown');
      expect(await step(page, id).locator('.reason').innerText()).toBe('The chart repo has nothing for this app.');
    }
    await page.screenshot({ path: 'test-results/dashboard-app-no-chart-repo-data.png', fullPage: true });
  });

  test('a link without an app, or with an overlong one, says what is wrong instead of a blank page', async () => {
    const page = await browser.newPage({ viewport: { width: 375, height: 800 } });
    const http = watchHttp(page);
    await page.goto(`${server.url}/dashboard/app?user=admin&source=market.olares`);
    const problem = page.locator('#problem');
    await expect.poll(() => problem.innerText()).toContain('the app (the app name) is missing');
    expect(await page.locator('li.step').count()).toBe(0);
    await page.screenshot({ path: 'test-results/dashboard-app-bad-link.png', fullPage: true });

    await page.goto(flowUrl(server, 'x'.repeat(300)));
    await expect.poll(() => problem.innerText()).toContain('the app is longer than 128 characters');
    await noHorizontalScroll(page);
    expect(http).toEqual([]);
  });

  test('the way back keeps the dashboard’s filters', async () => {
    const page = await browser.newPage();
    await page.goto(flowUrl(server, 'vaultwarden', `&back=${encodeURIComponent('user=admin&stage=RUNNING')}`));
    expect(await page.locator('#back').getAttribute('href')).toBe('/dashboard?user=admin&stage=RUNNING');
    // Opened from a filtered dashboard without `back`: the way back is to that same view.
    await page.goto(flowUrl(server, 'vaultwarden'), {
      referer: `${server.url}/dashboard?source=market.olares&stage=FAILED`,
    });
    expect(await page.locator('#back').getAttribute('href')).toBe('/dashboard?source=market.olares&stage=FAILED');
    await page.goto(flowUrl(server, 'vaultwarden'), { referer: 'http://elsewhere.example/dashboard?stage=FAILED' });
    expect(await page.locator('#back').getAttribute('href')).toBe('/dashboard');
  });

  test('under PERSISTED_DOCUMENTS the page still works: its documents are in the manifest', async () => {
    const manifest = new URL('./gql/persisted-documents.json', import.meta.url).pathname;
    const strict = await startTestServer('sqlite', {
      env: { CHART_REPO_URL: chartRepo.url, COLLECT_INTERVAL_MS: '100', PERSISTED_DOCUMENTS: manifest },
    });
    try {
      const page = await browser.newPage();
      await page.goto(flowUrl(strict, 'n8n'));
      await expect.poll(() => statusOf(page, 'chart'), { timeout: 15_000 }).toBe('in-progress');
      expect(await statusOf(page, 'syncer')).toBe('done');
      expect(await page.locator('#problem').isHidden()).toBe(true);
    } finally {
      await strict.stop();
    }
  });

  test('with tokens, a user signs in on the page, sees her own app and is told she may not see another user’s', async () => {
    const guarded = await startTestServer('sqlite', {
      env: { ...AUTH_ENV, CHART_REPO_URL: chartRepo.url, COLLECT_INTERVAL_MS: '100' },
    });
    try {
      const page = await browser.newPage();
      await page.goto(`${guarded.url}/dashboard/app?user=alice&source=market.olares&app=immich`);
      await page.locator('#login').waitFor({ timeout: 15_000 });
      await page.locator('#token').fill(TOKENS.alice);
      await page.locator('#login button').click();
      await expect
        .poll(() => step(page, 'chart').innerText(), { timeout: 15_000 })
        .toContain('2 of 5: downloading chart');
      expect(await statusOf(page, 'database')).toBe('done');
      expect(await step(page, 'hydration').innerText()).toContain('unexpected EOF');

      // The token stays in this tab: another app's page opens signed in, and admin's is refused.
      await page.goto(`${guarded.url}/dashboard/app?user=admin&source=market.olares&app=n8n`);
      await expect
        .poll(() => page.locator('#problem').innerText(), { timeout: 15_000 })
        .toContain('You may not see the apps of admin');
      expect(await page.locator('#connection').innerText()).toBe('refused');
      expect(await page.locator('li.step').count()).toBe(0);
      expect(await page.locator('main').innerText()).not.toContain('rendering chart');
      await page.screenshot({ path: 'test-results/dashboard-app-forbidden.png', fullPage: true });
      expect(await page.content()).not.toContain('hyd-admin-n8n');
    } finally {
      await guarded.stop();
    }
  });

  test("when the admin's token expires on another user's app, the page forgets it; bob who signs in next sees nothing of it", async () => {
    const secret = 'dashboard-app-browser-test-jwt-secret-0123456789';
    const guarded = await startTestServer('sqlite', {
      env: {
        ...AUTH_ENV,
        AUTH_JWT_SECRET: secret,
        AUTH_JWT_CLOCK_SKEW_S: '0',
        CHART_REPO_URL: chartRepo.url,
        COLLECT_INTERVAL_MS: '100',
      },
    });
    try {
      const page = await browser.newPage();
      await page.goto(`${guarded.url}/dashboard/app?user=alice&source=market.olares&app=immich`);
      await page.locator('#login').waitFor({ timeout: 15_000 });
      // An admin may look at alice's app, with a token that lasts a few seconds.
      const adminJwt = await new SignJWT({ role: 'admin' })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('admin')
        .setExpirationTime(Math.floor(Date.now() / 1000) + 8)
        .sign(new TextEncoder().encode(secret));
      await page.locator('#token').fill(adminJwt);
      await page.locator('#login button').click();
      await expect
        .poll(() => step(page, 'chart').innerText(), { timeout: 5_000 })
        .toContain('2 of 5: downloading chart');

      // Expired: the server closes the socket with 4403; the page asks again and shows nothing it read.
      await page.locator('#login').waitFor({ timeout: 15_000 });
      await expect.poll(() => statusOf(page, 'chart')).toBe('unknown');
      expect(await page.locator('main').innerText()).not.toContain('downloading chart');

      await page.locator('#token').fill(TOKENS.bob);
      await page.locator('#login button').click();
      await expect
        .poll(() => page.locator('#problem').innerText(), { timeout: 15_000 })
        .toContain('You may not see the apps of alice');
      expect(await page.locator('li.step').count()).toBe(0);
      expect(await page.content()).not.toContain('hyd-alice-immich');
    } finally {
      await guarded.stop();
    }
  });

  test('after the server restarts, the page reconnects by itself and follows the chart repo again', async () => {
    const first = await startTestServer('sqlite', {
      env: { CHART_REPO_URL: chartRepo.url, COLLECT_INTERVAL_MS: '100' },
    });
    const port = new URL(first.url).port;
    let restarted: TestServer | undefined;
    try {
      const page = await browser.newPage();
      const http = watchHttp(page);
      await page.goto(flowUrl(first, 'n8n'));
      await expect.poll(() => step(page, 'chart').innerText(), { timeout: 15_000 }).toContain('3 of 5');

      await first.app.stop();
      await expect.poll(() => page.locator('#connection').getAttribute('data-state')).toBe('reconnecting');
      const next = answerFor('admin');
      const n8n = next.apps.find((app) => app.app_name === 'n8n' && app.user_id === 'admin');
      if (!n8n?.current_step) throw new Error('the fixture has no n8n step');
      n8n.current_step = { ...n8n.current_step, name: 'publishing', index: 5 };
      chartRepo.setStatus('admin/*', next);
      restarted = await startTestServer('sqlite', {
        env: { CHART_REPO_URL: chartRepo.url, COLLECT_INTERVAL_MS: '100', PORT: port },
        database: first.database,
      });

      await expect.poll(() => step(page, 'chart').innerText(), { timeout: 20_000 }).toContain('5 of 5: publishing');
      expect(await page.locator('#connection').getAttribute('data-state')).toBe('live');
      expect(http).toEqual([]);
    } finally {
      chartRepo.setStatus('admin/*', answerFor('admin'));
      await restarted?.app.stop();
      await first.app.stop().catch(() => {}); // already stopped unless the test failed early
      await first.database.drop();
    }
  });

  test('at 375 px wide the page has no horizontal scroll', async () => {
    const page = await browser.newPage({ viewport: { width: 375, height: 800 } });
    for (const app of ['n8n', 'ghost']) {
      await page.goto(flowUrl(server, app));
      await expect.poll(() => page.locator('[data-image]').count(), { timeout: 15_000 }).toBeGreaterThan(0);
      await noHorizontalScroll(page);
      await page.screenshot({ path: `test-results/dashboard-app-${app}-375.png`, fullPage: true });
    }
  });
});
