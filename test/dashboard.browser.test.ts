import { mkdirSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromiumAvailable, launchChromium } from './support/browser.js';
import { startGateway } from './support/gateway.js';
import { InstallAppMutation } from './support/operations.js';
import { AUTH_ENV, dataOf, execute, startTestServer, type TestServer, TOKENS } from './support/server.js';

describe.skipIf(!chromiumAvailable())('the live dashboard in a real browser', () => {
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { SIMULATED_STEP_MS: '150' } });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.app.stop().catch(() => {}); // may already be stopped by the restart test
    await server?.database.drop();
  });

  test('an install triggered by a mutation appears and reaches 100% without a reload, over the WebSocket only', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const external: string[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (!['127.0.0.1', 'localhost'].includes(url.hostname)) external.push(request.url());
    });
    const polls: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/graphql') && request.resourceType() !== 'websocket') polls.push(request.url());
    });
    await page.goto(`${server.url}/dashboard`);
    await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
    await expect.poll(() => page.locator('[data-component]').count()).toBe(10); // the components of test/runtime.test.ts's list (status_correction the tenth)

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

    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard.png', fullPage: true });

    expect(polls).toEqual([]); // no polling: everything came over the WebSocket
    expect(external).toEqual([]);
  });

  test('when the server restarts, the page reconnects by itself and shows the new state', async () => {
    const page = await browser.newPage();
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
    } finally {
      await restarted.stop();
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
    } finally {
      await gateway.close();
      await gated.stop();
    }
  });
});
