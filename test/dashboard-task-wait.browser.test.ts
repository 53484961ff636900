import { mkdirSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromiumAvailable, launchChromium } from './support/browser.js';
import { type FakeAppService, startFakeAppService } from './support/fake-app-service.js';
import { CancelTaskMutation, InstallAppMutation } from './support/operations.js';
import { seed } from './support/seed.js';
import { dataOf, execute, startTestServer, type TestServer } from './support/server.js';

/**
 * A task whose start the app service did not take waits PENDING until it is sent again
 * (src/engine/start-retry.ts). Operators watch the live pages: the dashboard's task row and the
 * app page's task say why it waits and until when (Task.message, from the runtime feed), instead
 * of a task that only looks stuck. Against a real app service over HTTP (the fake), answering
 * HTTP 429 with a Retry-After long enough that the task still waits while the pages are read.
 */

const SOURCE = 'market.olares';
const APP = 'queued-wiki';
const WAITING = new RegExp(
  `^app service is too busy for install of ${APP}: slow down \\(HTTP 429\\); attempt 2 of 8 at \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`,
);

describe.skipIf(!chromiumAvailable())('a task waiting to be sent again, on the live pages', () => {
  let fake: FakeAppService;
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    fake = await startFakeAppService();
    // Local development mode: the pages' viewer is the admin, who installs below.
    server = await startTestServer('sqlite', {
      env: {
        DEMO_DATA: '0',
        APP_SERVICE_URL: fake.url,
        APP_SERVICE_EVENT_SECRET: 'app-service-event-secret-0003',
        APP_SERVICE_TIMEOUT_MS: '2000',
        RECONCILE_INTERVAL_MS: '3600000',
        TASK_START_ATTEMPTS: '8',
      },
    });
    browser = await launchChromium();
    mkdirSync('test-results', { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await fake?.stop();
  });

  test('the dashboard row and the app page show why a PENDING task waits, and stop once it is canceled', async () => {
    const refusal = { code: 429, message: 'slow down', data: null };
    fake.setBehaviour('install', {
      respond: 'http-error',
      status: 429,
      body: refusal,
      headers: { 'Retry-After': '60' },
    });
    await seed(server.app.db).catalogApp({ name: APP, versions: ['1.0.0'] });
    const dashboard = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await dashboard.goto(`${server.url}/dashboard`);
    await expect
      .poll(() => dashboard.locator('#connection').getAttribute('data-state'), { timeout: 15_000 })
      .toBe('live');

    const installed = dataOf(
      await execute(server, InstallAppMutation, { input: { sourceId: SOURCE, appName: APP, version: '1.0.0' } }),
    ).installApp;
    if (installed.__typename !== 'InstallAppSuccess') throw new Error(`install refused: ${installed.__typename}`);
    const { taskId } = installed.task;

    const row = dashboard.locator(`tr[data-task-id="${taskId}"]`);
    await expect.poll(() => row.locator('.waiting').count(), { timeout: 15_000 }).toBe(1);
    expect(await row.locator('[data-label=Status] .badge').innerText()).toBe('PENDING');
    expect(await row.locator('.waiting').innerText()).toMatch(WAITING);
    await dashboard.screenshot({ path: 'test-results/dashboard-task-wait.png', fullPage: true });

    const flow = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await flow.goto(`${server.url}/dashboard/app?user=admin&source=${SOURCE}&app=${APP}`);
    const item = flow.locator(`li.step[data-step="database"] [data-task-id="${taskId}"]`);
    await expect.poll(() => item.locator('.waiting').count(), { timeout: 15_000 }).toBe(1);
    expect(await item.locator('.waiting').innerText()).toMatch(WAITING);

    // Canceled, it no longer waits: the line goes with the next event, on both pages.
    const { cancelTask } = dataOf(await execute(server, CancelTaskMutation, { input: { taskId } }));
    expect(cancelTask.__typename).toBe('CancelTaskSuccess');
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 15_000 }).toBe('CANCELED');
    expect(await row.locator('.waiting').count()).toBe(0);
    await expect.poll(() => item.locator('.waiting').count(), { timeout: 15_000 }).toBe(0);
    expect(fake.requests.filter((request) => request.path.includes(`/${APP}/install`))).toHaveLength(1);
    await flow.close();
    await dashboard.close();
  }, 60_000);
});
