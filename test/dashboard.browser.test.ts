import { mkdirSync } from 'node:fs';
import { SignJWT } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromiumAvailable, launchChromium, recordTraffic } from './support/browser.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import {
  chartRepoStatusFixture,
  chartRepoStatusFor,
  type FakeChartRepo,
  startFakeChartRepo,
} from './support/fake-chart-repo.js';
import { startGateway } from './support/gateway.js';
import { AppsQuery, CancelTaskMutation, CloneAppMutation, InstallAppMutation } from './support/operations.js';
import { CHURN_APPS } from './support/rows.js';
import { startSeededServer } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, startTestServer, type TestServer, TOKENS } from './support/server.js';
import { proxyDatabase, startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

/** The example manifest `npm run codegen` writes, as PERSISTED_DOCUMENTS loads it. */
const MANIFEST = new URL('./gql/persisted-documents.json', import.meta.url).pathname;

/**
 * The chart repo's answer to one user's call (shared with the flow page's tests): that user's
 * part of the fixture. Its image analyzer is one for the whole node, so every answer carries the
 * whole queue, and which user's answer the collector reads last does not change what is shown.
 */
function chartRepoAnswerFor(userId: string): Record<string, unknown> {
  const answer = chartRepoStatusFor(userId) as { tasks: Record<string, unknown> };
  const everyone = chartRepoStatusFixture() as { tasks: Record<string, unknown> };
  return { ...answer, tasks: { ...answer.tasks, image_analyzer: everyone.tasks.image_analyzer } };
}

const JWT_SECRET = 'dashboard-browser-test-jwt-secret-0123456789';
/** An admin's JWT that expires `seconds` from now: the server then closes the page's socket with 4403. */
const expiringAdminJwt = (seconds: number) =>
  new SignJWT({ role: 'admin' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('admin')
    .setExpirationTime(Math.floor(Date.now() / 1000) + seconds)
    .sign(new TextEncoder().encode(JWT_SECRET));

describe.skipIf(!chromiumAvailable())('the live dashboard in a real browser', () => {
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    // photoprism fails at its installing step (the simulated app service's injected failure).
    server = await startTestServer('sqlite', { env: { SIMULATED_STEP_MS: '150', SIMULATED_FAIL_APPS: 'photoprism' } });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.app.stop().catch(() => {}); // may already be stopped by the restart test
    await server?.database.drop();
  });

  /** Installs as the local admin; returns the task id. */
  async function install(appName: string, version: string, target: TestServer = server): Promise<string> {
    const result = dataOf(
      await execute(target, InstallAppMutation, { input: { sourceId: 'market.olares', appName, version } }),
    ).installApp;
    if (result.__typename !== 'InstallAppSuccess') throw new Error(`install refused: ${result.__typename}`);
    return result.task.taskId;
  }

  async function installAndWait(appName: string, version: string, stage: string): Promise<void> {
    await install(appName, version).catch(() => {}); // refused when already there: then it is
    await expect
      .poll(
        async () => {
          const { apps } = dataOf(await execute(server, AppsQuery, { first: 100 }));
          return apps.edges.find((edge) => edge.node.appName === appName)?.node.stage;
        },
        { timeout: 20_000 },
      )
      .toBe(stage);
  }

  const historyIds = (page: Page) =>
    page
      .locator('[data-history-id]')
      .evaluateAll((items) => items.map((item) => item.getAttribute('data-history-id') ?? ''));
  const stagesShown = (page: Page) =>
    page.locator('tr[data-app]').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-stage') ?? ''));

  test('an install triggered by a mutation appears and reaches 100% without a reload, over the WebSocket only', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const traffic = recordTraffic(page);
    await page.goto(`${server.url}/dashboard`);
    await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
    await expect.poll(() => page.locator('[data-component]').count()).toBe(11); // the components of test/runtime.test.ts's list

    const result = dataOf(
      await execute(server, InstallAppMutation, {
        input: { sourceId: 'market.olares', appName: 'excalidraw', version: '0.17.6' },
      }),
    ).installApp;
    const taskId = result.__typename === 'InstallAppSuccess' ? result.task.taskId : '';
    const row = page.locator(`tr[data-task-id="${taskId}"]`);
    await row.waitFor({ timeout: 15_000 });
    await expect
      .poll(() => row.locator('[role=progressbar]').getAttribute('aria-valuenow'), { timeout: 20_000 })
      .toBe('100');
    expect(await row.locator('.badge').innerText()).toBe('COMPLETED');
    expect(await page.locator('tr[data-app="admin/market.olares/excalidraw"] .badge').first().innerText()).toBe(
      'RUNNING',
    );

    // Its time and duration: created a moment ago, and how long it ran.
    expect(await row.locator('[data-label=Created] time').innerText()).toMatch(/^\d+ s ago$/);
    expect(await row.locator('[data-label="Queued / ran"]').innerText()).toMatch(/^\d+ s \/ \d+ s$/);
    // The local admin sees the payment states (the demo data has some) and the components' figures.
    await expect.poll(() => page.locator('#payments tr[data-payment-id]').count()).toBeGreaterThan(0);
    expect(await page.locator('[data-component=database] .kv').first().innerText()).toContain('provider');
    // The header says how fresh the data is, in seconds, not a sequence number.
    expect(await page.locator('#updated').innerText()).toMatch(/^updated \d+ s ago$/);

    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard.png', fullPage: true });

    expect(traffic.polls).toEqual([]); // no polling: everything came over the WebSocket
    expect(traffic.external).toEqual([]);
    expect(traffic.failures).toEqual([]);
    // Headless Chromium never asks for a favicon, so the recording above cannot show a missing
    // one: the page itself must name an inline icon, or a desktop browser asks for /favicon.ico.
    expect(await page.evaluate(() => document.querySelector<HTMLLinkElement>('link[rel~=icon]')?.href)).toMatch(
      /^data:image\/svg\+xml,/,
    );
    await page.close();
  });

  test("dashboards of one viewer share one execution per event: each one's replay from its sequence ends once it reached the live stream", async () => {
    const pages = await Promise.all([1, 2, 3].map(() => browser.newPage()));
    try {
      for (const page of pages) {
        await page.goto(`${server.url}/dashboard`);
        await expect
          .poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 })
          .toBe('live');
      }
      const taskId = await install('stirling-pdf', '0.36.6');
      for (const page of pages) {
        const row = page.locator(`tr[data-task-id="${taskId}"]`);
        await expect
          .poll(() => row.locator('[role=progressbar]').getAttribute('aria-valuenow'), { timeout: 20_000 })
          .toBe('100');
      }
      // Every subscription of the three pages is in a cohort of three: none runs alone (a stream
      // with `since` did, for as long as the page was open).
      await expect
        .poll(() => {
          const { cohorts, subscriptions } = server.app.subscriptionStats();
          return subscriptions === 3 * cohorts && cohorts > 0;
        })
        .toBe(true);
    } finally {
      for (const page of pages) await page.close();
    }
  });

  test('on a slow link the page takes one snapshot, however many changes happen while it arrives', async () => {
    const page = await browser.newPage();
    const snapshots: number[] = [];
    let opened: () => void = () => {};
    const socketOpened = new Promise<void>((resolve) => {
      opened = resolve;
    });
    page.on('websocket', (socket) => {
      opened();
      socket.on('framereceived', ({ payload }) => {
        if (String(payload).includes('"runtimeSnapshot"')) snapshots.push(Date.now());
      });
    });
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 500,
      downloadThroughput: 20_000,
      uploadThroughput: 20_000,
    });
    // Changes while the page loads and takes its snapshot (apps no other test here uses): a
    // snapshot subscription pushed the snapshot again after each, up to SNAPSHOT_MAX_HZ a second.
    let changing = true;
    let latest = '';
    const changes = (async () => {
      await socketOpened;
      const apps = CHURN_APPS;
      for (const [appName, version] of apps) {
        if (!changing) break;
        latest = await install(appName as string, version as string).catch(() => latest); // the demo data may hold it
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    try {
      await page.goto(`${server.url}/dashboard`);
      await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 30_000 }).toBe('live');
      changing = false;
      await changes;
      // Events, not snapshots, follow: the task the last change started reaches the page.
      await page.locator(`tr[data-task-id="${latest}"]`).waitFor({ timeout: 30_000 });
      expect(snapshots).toHaveLength(1);
    } finally {
      changing = false;
      await changes;
      await page.close();
    }
  });

  test('the task tabs keep the keyboard focus across a selection and live changes; the arrow keys move along them', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${server.url}/dashboard`);
      await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
      const focused = () => page.evaluate(() => document.activeElement?.getAttribute('data-tab') ?? null);
      // Only the selected tab is in the Tab order.
      expect(await page.locator('#task-tabs [role=tab][tabindex="0"]').count()).toBe(1);
      await page.locator('#task-tabs [data-tab=""]').focus();
      await page.keyboard.press('ArrowRight');
      await page.keyboard.press('ArrowRight');
      expect(await focused()).toBe('RUNNING');
      await page.keyboard.press('Enter');
      await expect.poll(() => page.locator('#task-tabs [data-tab=RUNNING]').getAttribute('aria-selected')).toBe('true');
      expect(await focused()).toBe('RUNNING');
      // A live change redraws the counts: the focus stays where it was.
      const all = page.locator('#task-tabs [data-tab=""] .count');
      const before = Number(await all.innerText());
      // An app no other test here uses.
      await install('paperless-ngx', '2.13.5');
      await expect.poll(async () => Number(await all.innerText()), { timeout: 15_000 }).toBe(before + 1);
      expect(await focused()).toBe('RUNNING');
      await page.keyboard.press('End');
      await page.keyboard.press('Space');
      await expect.poll(() => page.locator('#task-tabs [role=tab]').last().getAttribute('aria-selected')).toBe('true');
      expect(await focused()).toBe('CANCELED');
    } finally {
      await page.close();
    }
  });

  test('a failed install shows its reason, on the task and on the app', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/dashboard`);
    await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
    const taskId = await install('photoprism', '240915');
    const row = page.locator(`tr[data-task-id="${taskId}"]`);
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 20_000 }).toBe('FAILED');
    expect(await row.locator('.reason').innerText()).toContain('simulated failure of photoprism');
    const app = page.locator('tr[data-app="admin/market.olares/photoprism"]');
    await expect.poll(() => app.getAttribute('data-stage'), { timeout: 15_000 }).toBe('FAILED');
    expect(await app.locator('.reason').innerText()).toContain('photoprism');
    // A failed install may be retried by its owner (here the local admin); it was not canceled.
    await expect.poll(() => row.locator('button[data-action]').allInnerTexts()).toEqual(['Retry']);
    // The "failed" tab shows it, and only failed tasks; its label counts them.
    await page.locator('#task-tabs [data-tab=FAILED]').click();
    await expect.poll(() => new URL(page.url()).searchParams.get('status')).toBe('FAILED');
    await expect.poll(() => page.locator('#task-tabs [data-tab=FAILED]').getAttribute('aria-selected')).toBe('true');
    const statuses = await page
      .locator('#tasks tbody tr[data-status]')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-status')));
    expect(new Set(statuses)).toEqual(new Set(['FAILED']));
    expect(statuses.length).toBeGreaterThanOrEqual(1);
    expect(await page.locator('#task-tabs [data-tab=FAILED] .count').innerText()).toBe(String(statuses.length));
    await page.close();
  });

  test('payment states: the newest 50 started are listed, and the page says how many older ones it leaves out', async () => {
    const db = server.app.db;
    const before = await db.payment.count();
    const axes = {
      paymentNeed: 'required',
      developerSync: 'not_started',
      larePassSync: 'not_started',
      signatureStatus: 'required',
      paymentStatus: 'not_evaluated',
    };
    await db.payment.createMany({
      data: Array.from({ length: 101 }, (_, index) => ({
        ...axes,
        userId: `buyer${index}`,
        sourceId: 'market.olares',
        appId: 'bulk-paid',
        appName: 'bulk-paid',
        productId: 'bulk-paid-license',
        createdAt: new Date(Date.now() - (101 - index) * 1000), // one by one, as buyers start
      })),
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      await page.goto(`${server.url}/dashboard`);
      await expect.poll(() => page.locator('#payments tr[data-payment-id]').count(), { timeout: 15_000 }).toBe(50);
      const more = (hidden: number) =>
        `${hidden} older payment states not shown (listed: the newest started, and any that changes while this page is open)`;
      expect(await page.locator('#payments-more').innerText()).toBe(more(before + 51));
      // An older one changes: it is shown, and no longer counted among the hidden ones.
      const oldest = await db.payment.findFirstOrThrow({ where: { appId: 'bulk-paid' }, orderBy: { id: 'asc' } });
      await db.payment.update({ where: { id: oldest.id }, data: { paymentStatus: 'notification_sent' } });
      server.app.services.feed.payment({
        paymentId: oldest.id,
        userId: oldest.userId,
        sourceId: oldest.sourceId,
        appId: oldest.appId,
      });
      await expect.poll(() => page.locator('#payments tr[data-payment-id]').count(), { timeout: 15_000 }).toBe(51);
      expect(await page.locator('#payments-more').innerText()).toBe(more(before + 50));
      expect(await page.locator('#payments tr[data-payment-id]').first().innerText()).toContain('buyer');
    } finally {
      await page.close();
      await db.payment.deleteMany({ where: { appId: 'bulk-paid' } });
    }
  });

  test('the history feed grows live: an install adds its records without a reload', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/dashboard`);
    await expect.poll(() => page.locator('#history').getAttribute('data-loaded'), { timeout: 15_000 }).toBe('true');
    const before = await historyIds(page);
    await install('n8n', '1.70.1');
    await expect
      .poll(
        async () => {
          const added = (await historyIds(page)).filter((id) => !before.includes(id));
          const texts = await Promise.all(added.map((id) => page.locator(`[data-history-id="${id}"]`).innerText()));
          return texts.some((text) => text.includes('n8n'));
        },
        { timeout: 20_000 },
      )
      .toBe(true);
    await page.close();
  });

  test('the search box finds a clone by the title it was given, which its row shows', async () => {
    await installAndWait('excalidraw', '0.17.6', 'RUNNING');
    const input = { sourceId: 'market.olares', appName: 'excalidraw', title: 'Team whiteboard' };
    const clone = dataOf(await execute(server, CloneAppMutation, { input })).cloneApp;
    if (clone.__typename !== 'CloneAppSuccess') throw new Error(`clone refused: ${clone.__typename}`);
    const key = `admin/market.olares/${clone.task.appName}`;
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/dashboard?q=${encodeURIComponent('team WHITEBOARD')}`);
    await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
    const shown = () =>
      page.locator('tr[data-app]').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-app')));
    // Shown once the clone reports its entrance (live, no reload), and only it: not its original.
    await expect.poll(shown, { timeout: 20_000 }).toEqual([key]);
    expect(await page.locator(`tr[data-app="${key}"]`).innerText()).toContain('Team whiteboard');
    await page.close();
  });

  test('filters live in the URL: ?stage=FAILED shows only failed apps; choosing another stage updates the URL; back restores it', async () => {
    await installAndWait('photoprism', '240915', 'FAILED'); // at least one failed app, whatever ran before
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/dashboard?stage=FAILED`);
    await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
    await expect.poll(() => stagesShown(page)).toContain('FAILED');
    expect(new Set(await stagesShown(page))).toEqual(new Set(['FAILED']));
    expect(await page.locator('#filters select[name=stage]').inputValue()).toBe('FAILED');

    await page.locator('#filters select[name=stage]').selectOption('RUNNING');
    await expect.poll(() => new URL(page.url()).searchParams.get('stage')).toBe('RUNNING');
    await expect.poll(async () => new Set(await stagesShown(page))).toEqual(new Set(['RUNNING']));

    await page.goBack();
    await expect.poll(() => new URL(page.url()).searchParams.get('stage')).toBe('FAILED');
    await expect.poll(async () => new Set(await stagesShown(page))).toEqual(new Set(['FAILED']));
    // An app's processing-flow link carries the filters, for its way back here.
    const flow = await page.locator('tr[data-app] [data-label=App] > a').first().getAttribute('href');
    expect(new URL(flow ?? '', server.url).searchParams.get('back')).toBe('stage=FAILED');

    // The search box narrows further, and a reload keeps every filter.
    await page.locator('#filters input[name=q]').fill('photoprism');
    await expect.poll(() => new URL(page.url()).searchParams.get('q')).toBe('photoprism');
    await page.reload();
    await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
    await expect
      .poll(() => page.locator('tr[data-app]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-app'))))
      .toEqual(['admin/market.olares/photoprism']);
    expect(await page.locator('#filters input[name=q]').inputValue()).toBe('photoprism');
    await page.close();
  });

  test('a filter value from the URL is shown as text, never run as markup, and is bounded', async () => {
    const page = await browser.newPage();
    const evil = '<img src=x onerror="window.__injected=1">';
    await page.goto(`${server.url}/dashboard?user=${encodeURIComponent(evil)}&q=${'x'.repeat(500)}`);
    await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
    await expect.poll(() => page.locator('#filters select[name=user]').inputValue()).toBe(evil);
    expect(await page.locator('#filters select[name=user] option:checked').innerText()).toBe(evil);
    expect(await page.locator('#filters img').count()).toBe(0);
    expect(await page.evaluate(() => (window as { __injected?: number }).__injected)).toBeUndefined();
    expect((await page.locator('#filters input[name=q]').inputValue()).length).toBe(100);
    // Nobody is called that: of the apps that arrived, none is shown, and the page says so.
    await expect.poll(() => page.locator('#apps-count').innerText()).toMatch(/^0 of [1-9]\d*$/);
    expect(await page.locator('tr[data-app], tr[data-task-id]').count()).toBe(0);
    expect(await page.locator('#apps tr.empty').innerText()).toBe('No apps match.');
    await page.close();
  });

  test('on a 375 px wide phone screen the page does not scroll sideways', async () => {
    const page = await browser.newPage({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true });
    const traffic = recordTraffic(page);
    await page.goto(`${server.url}/dashboard`);
    await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
    await expect.poll(() => page.locator('tr[data-task-id]').count()).toBeGreaterThan(0);
    await expect.poll(() => page.locator('#history').getAttribute('data-loaded')).toBe('true');
    const widths = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      inner: window.innerWidth,
    }));
    expect(widths.inner).toBe(375);
    expect(widths.scroll).toBeLessThanOrEqual(widths.inner);
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard-phone.png' }); // what the phone shows first
    await page.screenshot({ path: 'test-results/dashboard-phone-full.png', fullPage: true });
    await page.locator('#apps-section').scrollIntoViewIfNeeded();
    await page.screenshot({ path: 'test-results/dashboard-phone-apps.png' });
    expect(traffic.failures).toEqual([]);
    await page.close();
  });

  describe('with a slow app service and a chart repo at work', () => {
    let slow: TestServer;
    let chartRepo: FakeChartRepo;
    beforeAll(async () => {
      chartRepo = await startFakeChartRepo();
      // The answers of a chart repo mid-way through its work, one per user it is asked about.
      chartRepo.setStatus('admin/*', chartRepoAnswerFor('admin'));
      chartRepo.setStatus('alice/*', chartRepoAnswerFor('alice'));
      slow = await startTestServer('sqlite', {
        env: { SIMULATED_STEP_MS: '5000', CHART_REPO_URL: chartRepo.url, COLLECT_INTERVAL_MS: '100' },
      });
    });
    afterAll(async () => {
      await slow?.stop();
      await chartRepo?.stop();
    });

    test("a running task's cancel button cancels it from the keyboard, and the row says so", async () => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${slow.url}/dashboard?status=RUNNING`);
      await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
      const taskId = await install('wordpress', '6.7.1', slow);
      const row = page.locator(`tr[data-task-id="${taskId}"]`);
      await expect.poll(() => row.getAttribute('data-status'), { timeout: 15_000 }).toBe('RUNNING');
      await expect.poll(() => row.locator('button[data-action]').allInnerTexts()).toEqual(['Cancel']);
      // A newer task, above it in the running tab.
      const above = await install('mastodon', '4.3.2', slow);
      await page.locator(`tr[data-task-id="${above}"][data-status=RUNNING]`).waitFor({ timeout: 15_000 });

      // From the keyboard: the button keeps its focus while the task's progress moves on (the row
      // was drawn anew at each event, and the focus went to the page).
      const progress = row.locator('[role=progressbar]');
      const before = await progress.getAttribute('aria-valuenow');
      await row.locator('button[data-action=cancel]').focus();
      await expect.poll(() => progress.getAttribute('aria-valuenow'), { timeout: 15_000 }).not.toBe(before);
      const focused = () => page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.task);
      expect(await focused()).toBe(taskId);
      // The row above leaves the tab (canceled elsewhere): the focus stays where it was. Once the
      // app service has accepted it: a cancel before that is refused.
      await expect
        .poll(async () => (await slow.app.db.task.findUnique({ where: { taskId: above } }))?.result, {
          timeout: 15_000,
        })
        .toMatchObject({ status: 'success' });
      await execute(slow, CancelTaskMutation, { input: { taskId: above } });
      await page.locator(`tr[data-task-id="${above}"]`).waitFor({ state: 'detached', timeout: 15_000 });
      expect(await focused()).toBe(taskId);
      await page.keyboard.press('Enter');
      // Canceled, it leaves the running tab; all tasks show it.
      await row.waitFor({ state: 'detached', timeout: 15_000 });
      await page.locator('[data-tab=""]').click();
      await expect.poll(() => row.getAttribute('data-status'), { timeout: 15_000 }).toBe('CANCELED');
      expect(await row.locator('.badge').innerText()).toBe('CANCELED');
      expect(await row.locator('.outcome').innerText()).toMatch(/^cancel(ed| requested)$/);
      // Now it may be retried instead.
      await expect.poll(() => row.locator('button[data-action]').allInnerTexts()).toEqual(['Retry']);
      await page.close();
    }, 60_000);

    test('the chart-repo tabs show apps by state with their current step, images with progress and both queues', async () => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${slow.url}/dashboard`);
      const n8n = page.locator('tr[data-repo-app="admin/market.olares/n8n"]');
      await n8n.waitFor({ timeout: 15_000 });
      expect(await n8n.locator('[data-label="Current step"]').innerText()).toContain('rendering chart');
      expect(await n8n.locator('a').getAttribute('href')).toBe(
        '/dashboard/app?user=admin&source=market.olares&app=n8n',
      );
      expect(await page.locator('tr[data-repo-app="admin/market.olares/ghost"] .badge').first().innerText()).toBe(
        'failed',
      );

      await page.locator('[data-repo-tab=images]').click();
      await expect.poll(() => new URL(page.url()).searchParams.get('repo')).toBe('images');
      const image = page.locator('tr[data-image="docker.n8n.io/n8nio/n8n:1.64.3"]');
      expect(await image.locator('[role=progressbar]').getAttribute('aria-valuenow')).toBe('60');

      await page.locator('[data-repo-tab=hydrator]').click();
      await page.locator('tr[data-hydrator-task="hyd-admin-n8n-1747295975"]').waitFor();
      await page.locator('[data-repo-tab=analyzer]').click();
      await expect.poll(() => page.locator('#repo-panel').innerText()).toMatch(/workers/);

      // The filters apply here too: another user's apps leave the list (alice's immich came from
      // the chart repo's answer to alice's call).
      await page.locator('[data-repo-tab=apps]').click();
      await page.goto(`${slow.url}/dashboard?user=alice`);
      await page.locator('tr[data-repo-app="alice/market.olares/immich"]').waitFor({ timeout: 15_000 });
      expect(await page.locator('tr[data-repo-app^="admin/"]').count()).toBe(0);
      await page.goto(`${slow.url}/dashboard?repo=apps`);
      await n8n.waitFor({ timeout: 15_000 });
      await page.locator('#chart-repo-section').screenshot({ path: 'test-results/dashboard-chart-repo.png' });
      await page.close();
    });

    test("when the admin's token expires, the page forgets all of the admin's data, and alice who signs in next sees only hers", async () => {
      const locked = await startTestServer('sqlite', {
        env: {
          ...AUTH_ENV,
          AUTH_JWT_SECRET: JWT_SECRET,
          AUTH_JWT_CLOCK_SKEW_S: '0',
          CHART_REPO_URL: chartRepo.url,
          COLLECT_INTERVAL_MS: '100',
          SIMULATED_STEP_MS: '150',
        },
      });
      const historyOf = (page: Page, user: string) =>
        page
          .locator('[data-history-id]')
          .evaluateAll(
            (items, owner) =>
              items
                .filter((item) => (item.querySelector('.muted')?.textContent ?? '').split(' · ')[1] === owner)
                .map((item) => item.getAttribute('data-history-id')),
            user,
          );
      const taskOwners = (page: Page) =>
        page
          .locator('tr[data-task-id] [data-label=User]')
          .allInnerTexts()
          .then((users) => new Set(users));
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        await page.goto(`${locked.url}/dashboard`);
        await page.locator('#login').waitFor({ timeout: 15_000 });
        // The admin signs in with a token that lasts a few seconds: long enough to see everything.
        await page.locator('#token').fill(await expiringAdminJwt(10));
        await page.locator('#login button[type=submit]').click();
        await page.locator('tr[data-repo-app="admin/market.olares/n8n"]').waitFor({ timeout: 8_000 });
        await expect.poll(() => page.locator('#payments tr[data-payment-id]').count()).toBeGreaterThan(0);
        await expect.poll(() => page.locator('tr[data-app^="admin/"]').count()).toBeGreaterThan(0);
        await expect.poll(() => taskOwners(page)).toContain('admin');
        await expect.poll(() => historyOf(page, 'admin').then((ids) => ids.length)).toBeGreaterThan(0);
        const adminHistory = await historyOf(page, 'admin');

        // The token expires: the server closes the socket with 4403, and the page asks for a token
        // with nothing of the admin's left on it.
        await page.locator('#login').waitFor({ timeout: 20_000 });
        expect(await page.locator('#connection').getAttribute('data-state')).toBe('failed');
        const anyData = 'tr[data-app], tr[data-task-id], tr[data-repo-app], [data-history-id], tr[data-payment-id]';
        await expect.poll(() => page.locator(anyData).count()).toBe(0);

        await page.locator('#token').fill(TOKENS.alice);
        await page.locator('#login button[type=submit]').click();
        await expect
          .poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 })
          .toBe('live');
        await page.locator('tr[data-repo-app="alice/market.olares/immich"]').waitFor({ timeout: 15_000 });
        await expect.poll(() => page.locator('#history').getAttribute('data-loaded')).toBe('true');
        await expect.poll(() => taskOwners(page)).toEqual(new Set(['alice']));
        expect(await page.locator('tr[data-app^="alice/"]').count()).toBeGreaterThan(0);
        expect(await page.locator('tr[data-app]:not([data-app^="alice/"])').count()).toBe(0);
        expect(await page.locator('tr[data-repo-app]:not([data-repo-app^="alice/"])').count()).toBe(0);
        expect(await page.locator('#payments-section').isHidden()).toBe(true);
        expect(await page.locator('tr[data-payment-id]').count()).toBe(0);
        expect(await historyOf(page, 'admin')).toEqual([]);
        const shownHistory = await historyIds(page);
        expect(adminHistory.filter((id) => shownHistory.includes(id ?? ''))).toEqual([]);
        await page.close();
      } finally {
        await locked.stop();
      }
    });
  });

  test('when the path to the server goes silent without closing, the page notices, says so and reconnects', async () => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(server.url).port) });
    const page = await browser.newPage();
    try {
      await page.goto(`http://127.0.0.1:${proxy.port}/dashboard`);
      await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
      // A network partition: the socket stays open, nothing goes through, nothing tells the page.
      proxy.freeze();
      // Within a ping interval and its timeout (10 s + 5 s), not never.
      await expect
        .poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 25_000 })
        .toBe('reconnecting');
      // The partition ends, but the handshake of the reconnection made during it was lost: only
      // the page's own timeout (10 s) gets it out of waiting for an answer.
      proxy.restore({ dropHeld: false });
      await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 20_000 }).toBe('live');
    } finally {
      await page.close();
      await proxy.close();
    }
  }, 60_000);

  test('when the server restarts, the page reconnects by itself and shows the new state', async () => {
    const page = await browser.newPage();
    // In the page's own order: RESYNC and snapshot frames as they arrive, and the badge's states.
    await page.addInitScript(() => {
      const timeline: string[] = [];
      Object.assign(window, { timeline });
      const Native = window.WebSocket;
      window.WebSocket = class extends Native {
        constructor(...args: ConstructorParameters<typeof WebSocket>) {
          super(...args);
          this.addEventListener('message', ({ data }) => {
            if (String(data).includes('"RESYNC"')) timeline.push('resync');
            else if (String(data).includes('"runtimeSnapshot"')) timeline.push('snapshot');
          });
        }
      };
      document.addEventListener('DOMContentLoaded', () => {
        const badge = document.querySelector('#connection') as HTMLElement;
        const note = () => timeline.push(`badge ${badge.dataset.state}`);
        new MutationObserver(note).observe(badge, { attributes: true, attributeFilter: ['data-state'] });
      });
    });
    await page.goto(`${server.url}/dashboard`);
    await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
    const port = new URL(server.url).port;

    // Stop the server (every socket closes), start another on the same port and database.
    await server.app.stop();
    await expect.poll(() => page.locator('#connection').getAttribute('data-state')).toBe('reconnecting');
    const restarted = await startTestServer('sqlite', {
      env: { SIMULATED_STEP_MS: '150', PORT: port },
      database: server.database,
    });
    try {
      await expect
        .poll(() => page.locator('#connection').innerText(), { timeout: 20_000 })
        .toMatch(/^live .*reconnect/);
      const result = dataOf(
        await execute(restarted, InstallAppMutation, {
          input: { sourceId: 'market.olares', appName: 'ghost', version: '5.104.2' },
        }),
      ).installApp;
      const taskId = result.__typename === 'InstallAppSuccess' ? result.task.taskId : '';
      await page.locator(`tr[data-task-id="${taskId}"]`).waitFor({ timeout: 15_000 });
      // The restarted server numbers afresh: the page's resume got RESYNC, and from there until
      // its new snapshot arrived the badge did not say "live" (it did when the viewer's answer
      // came first).
      const timeline = await page.evaluate(() => (window as unknown as { timeline: string[] }).timeline);
      expect(timeline).toContain('resync');
      let badge = '';
      let waiting = false;
      let saysLive = false;
      for (const entry of timeline) {
        if (entry.startsWith('badge ')) {
          badge = entry.slice('badge '.length);
          if (waiting) saysLive = badge === 'live';
        } else if (entry === 'resync') {
          waiting = true;
          saysLive = badge === 'live';
        } else if (entry === 'snapshot' && waiting) {
          expect(saysLive, timeline.join(', ')).toBe(false);
          waiting = false;
        }
      }
    } finally {
      await restarted.stop();
    }
  });

  test('with tokens and PERSISTED_DOCUMENTS, a user signs in, sees only their own data, no payments, retries a failed task and signs out', async () => {
    // Every document the page sends must be in the manifest `npm run codegen` writes
    // (codegen.yml plucks src/dashboard/*.js): the server refuses any other.
    const locked = await startTestServer('sqlite', {
      env: { ...AUTH_ENV, PERSISTED_DOCUMENTS: MANIFEST, SIMULATED_STEP_MS: '150' },
    });
    try {
      const page = await browser.newPage();
      const traffic = recordTraffic(page);
      await page.goto(`${locked.url}/dashboard`);
      await page.locator('#login').waitFor({ timeout: 15_000 });
      await page.locator('#token').fill(TOKENS.alice);
      await page.locator('#login button[type=submit]').click();
      await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
      await expect.poll(() => page.locator('#history').getAttribute('data-loaded')).toBe('true');
      await page.locator('tr[data-task-id]').first().waitFor();
      const owners = await page
        .locator('tr[data-task-id] [data-label=User]')
        .allInnerTexts()
        .then((users) => new Set(users));
      expect(owners).toEqual(new Set(['alice']));
      // Payment states are for admins (the admin's page shows them: see the first test).
      expect(await page.locator('#payments-section').isHidden()).toBe(true);

      // Her failed demo install: its reason, and a retry over the socket.
      const failed = page.locator('tr[data-task-id][data-status=FAILED]').first();
      await failed.waitFor();
      expect(await failed.locator('.reason').innerText()).not.toBe('');
      await failed.locator('button[data-action=retry]').click();
      await expect.poll(() => failed.locator('.outcome').innerText(), { timeout: 15_000 }).toMatch(/^retried as /);
      const retryId = (await failed.locator('.outcome').innerText()).replace('retried as ', '');
      await page.locator(`tr[data-task-id="${retryId}"]`).waitFor({ timeout: 15_000 });
      expect(traffic.polls).toEqual([]);

      // She signs out: the token leaves the tab, her data the page, and the form asks for a token.
      await page.locator('#sign-out').click();
      await page.locator('#login').waitFor({ timeout: 15_000 });
      expect(await page.locator('#connection').getAttribute('data-state')).toBe('failed');
      expect(await page.locator('tr[data-task-id], tr[data-app], [data-history-id]').count()).toBe(0);
      expect(await page.evaluate(() => JSON.stringify(sessionStorage))).not.toContain(TOKENS.alice);
      expect(await page.locator('#token').inputValue()).toBe('');
      expect(await page.locator('#sign-out').isHidden()).toBe(true);
      await page.close();
    } finally {
      await locked.stop();
    }
  });

  test('behind a gateway that sets X-Bfl-User, the page goes live as that user with no token', async () => {
    const gated = await startTestServer('sqlite', {
      env: { ...AUTH_ENV, AUTH_USER_HEADER: 'X-Bfl-User', SIMULATED_STEP_MS: '150' },
    });
    const gateway = await startGateway(gated.url, 'X-Bfl-User', 'alice');
    try {
      const page = await browser.newPage();
      await page.goto(`${gateway.url}/dashboard`);
      await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
      const result = dataOf(
        await execute(
          gated,
          InstallAppMutation,
          {
            input: { sourceId: 'market.olares', appName: 'excalidraw', version: '0.17.6' },
          },
          { token: TOKENS.alice },
        ),
      ).installApp;
      const taskId = result.__typename === 'InstallAppSuccess' ? result.task.taskId : '';
      await page.locator(`tr[data-task-id="${taskId}"]`).waitFor({ timeout: 15_000 });
      // Only alice's apps: the identity is the gateway's, and nobody else's rows reach her page.
      const owners = await page
        .locator('tr[data-app]')
        .evaluateAll((rows) => rows.map((row) => (row.getAttribute('data-app') ?? '').split('/')[0]));
      expect(owners.length).toBeGreaterThan(0);
      expect(new Set(owners)).toEqual(new Set(['alice']));

      // Alice signs out at the gateway and bob signs in, in the same browser, and the connection
      // drops: no 4403 tells the page. It asks who it is now, and starts again from bob's snapshot.
      gateway.signIn('bob');
      gateway.cut();
      await expect
        .poll(
          async () => {
            const shown = await page
              .locator('tr[data-app]')
              .evaluateAll((rows) => rows.map((row) => (row.getAttribute('data-app') ?? '').split('/')[0]));
            return [...new Set(shown)];
          },
          { timeout: 15_000 },
        )
        .toEqual(['bob']);
      await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
      expect(await page.locator(`tr[data-task-id="${taskId}"]`).count()).toBe(0);
      expect(await page.locator('#history').textContent()).not.toContain('excalidraw');
    } finally {
      await gateway.close();
      await gated.stop();
    }
  });
});

describe.skipIf(!chromiumAvailable())('the pages behind a gateway that serves the server under a path prefix', () => {
  test('the dashboard, the flow page of an app, the way back and GraphiQL keep the prefix', async () => {
    const gated = await startTestServer('sqlite', {
      env: { ...AUTH_ENV, AUTH_USER_HEADER: 'X-Bfl-User', GRAPHIQL: '1', INTROSPECTION: '1' },
    });
    const gateway = await startGateway(gated.url, 'X-Bfl-User', 'alice', { pathPrefix: '/market' });
    const browser = await launchChromium();
    try {
      const outside = recordOutsideRequests(gateway.url);
      const page = await browser.newPage();
      page.on('request', (request) => outside.see(request.url()));
      await page.goto(`${gateway.url}/market/dashboard?stage=RUNNING`);
      await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
      const link = page.locator('tr[data-app] a[title="processing flow"]').first();
      expect(await link.getAttribute('href')).toMatch(/^\/market\/dashboard\/app\?user=alice&/);

      await link.click();
      await page.waitForURL(/\/market\/dashboard\/app\?/);
      await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
      await page.locator('#back').click();
      await page.waitForURL(`${gateway.url}/market/dashboard?stage=RUNNING`);
      await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');

      // Asked for with a trailing slash, each page is found, still under the prefix.
      await page.goto(`${gateway.url}/market/dashboard/?stage=RUNNING`);
      await page.waitForURL(`${gateway.url}/market/dashboard?stage=RUNNING`);
      await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
      const flow = 'user=alice&source=market.olares&app=immich';
      await page.goto(`${gateway.url}/market/dashboard/app/?${flow}`);
      await page.waitForURL(`${gateway.url}/market/dashboard/app?${flow}`);
      await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');

      // `/` sends a browser to GraphiQL under the prefix, and its queries go there too.
      await page.goto(`${gateway.url}/market/`);
      await page.waitForURL(`${gateway.url}/market/graphql`);
      const run = page.getByRole('button', { name: /execute query/i }).first();
      await run.waitFor({ timeout: 20_000 });
      await run.click();
      // The editor opens with several operations (src/app/graphiql-examples.ts): run asks which.
      await page.getByRole('menuitem', { name: 'Apps' }).click();
      const result = page.locator('.graphiql-response');
      // CodeMirror renders spaces as non-breaking ones; compare on normalised whitespace.
      const shown = async () => (await result.innerText()).replace(/\s+/g, ' ');
      await expect.poll(shown, { timeout: 15_000 }).toContain('"userId": "alice"');
      expect(outside.paths, 'requests that left the prefix').toEqual([]);
    } finally {
      await browser.close();
      await gateway.close();
      await gated.stop();
    }
  }, 90_000);
});

/** The paths of the requests a page made to `origin` outside `/market/`. */
function recordOutsideRequests(origin: string): { paths: string[]; see(url: string): void } {
  const paths: string[] = [];
  return {
    paths,
    see: (url) => {
      const { origin: to, pathname, protocol } = new URL(url);
      // blob: URLs (GraphiQL's editor workers) are the page's own memory, not requests.
      if (protocol === 'http:' && to === origin && !pathname.startsWith('/market/')) paths.push(pathname);
    },
  };
}

describe.skipIf(!chromiumAvailable())('the live dashboard with many apps', () => {
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    ({ server } = await startSeededServer('sqlite', {
      preseed: async (seed) => {
        for (let index = 0; index < 450; index += 1) {
          await seed
            .user(`user-${index % 9}`)
            .app({ appName: `app-${String(index).padStart(3, '0')}`, state: 'running' });
        }
      },
    }));
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('shows the first 200 apps and how many more there are; the filters reach the others', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/dashboard`);
    await expect.poll(() => page.locator('#apps-count').textContent(), { timeout: 20_000 }).toBe('450');
    expect(await page.locator('#apps tbody tr').count()).toBe(200);
    expect(await page.locator('#apps-more').textContent()).toBe(
      '250 more apps not shown: narrow them with the filters',
    );
    await page.locator('#filters input[name=q]').fill('app-449');
    await expect.poll(() => page.locator('#apps tbody tr').count()).toBe(1);
    expect(await page.locator('#apps tbody tr').getAttribute('data-app')).toContain('app-449');
    expect(await page.locator('#apps-more').textContent()).toBe('');
    await page.close();
  });
});

describe.skipIf(!chromiumAvailable() || !(await availableDatabases()).includes('postgresql'))(
  'the live dashboard while its database is away',
  () => {
    let server: TestServer;
    let browser: Browser;
    let proxy: TcpProxy;
    let database: TestDatabase;
    beforeAll(async () => {
      database = await createTestDatabase('postgresql');
      let proxiedUrl: string;
      ({ proxy, url: proxiedUrl } = await proxyDatabase(database.url));
      // The server reaches the database only through the proxy the test cuts; the demo data has history.
      server = await startTestServer('postgresql', { database: { ...database, url: proxiedUrl } });
      browser = await launchChromium();
    }, 60_000);
    afterAll(async () => {
      await browser?.close();
      await server?.stop();
      await proxy?.close();
      await database?.drop();
    });

    test('history and payments say they could not be read and are read once the database is back', async () => {
      proxy.cut('refuse');
      const page = await browser.newPage();
      try {
        await page.goto(`${server.url}/dashboard`);
        // The runtime state is served from memory: the page is live all along.
        await expect
          .poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 })
          .toBe('live');
        await expect
          .poll(() => page.locator('#history').textContent(), { timeout: 15_000 })
          .toBe('History could not be read (The database is unavailable; retry shortly.); trying again…');
        await expect
          .poll(() => page.locator('#payments tbody').textContent(), { timeout: 15_000 })
          .toContain('Payment states could not be read');
        proxy.restore();
        await expect.poll(() => page.locator('[data-history-id]').count(), { timeout: 20_000 }).toBeGreaterThan(0);
        await expect.poll(() => page.locator('[data-payment-id]').count(), { timeout: 20_000 }).toBeGreaterThan(0);
      } finally {
        await page.close();
      }
    }, 90_000);
  },
);
