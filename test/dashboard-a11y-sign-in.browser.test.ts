import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromiumAvailable, launchChromium } from './support/browser.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS } from './support/server.js';

/** The id of the element that has the keyboard focus ('' for <body>). */
const focusedId = (page: Page) => page.evaluate(() => document.activeElement?.id ?? '');

describe.skipIf(!chromiumAvailable())('signing in to the dashboard from the keyboard', () => {
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: AUTH_ENV });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('a refused token and a sign-out put the focus back in the token field', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${server.url}/dashboard`);
      await page.locator('#login').waitFor({ timeout: 15_000 });
      await page.locator('#token').fill('not-a-token-of-this-server');
      await page.locator('#token').press('Enter');
      await expect
        .poll(() => page.locator('#auth-problem').innerText(), { timeout: 15_000 })
        .toBe('The token was refused.');
      expect(await focusedId(page)).toBe('token');

      await page.locator('#token').fill(TOKENS.alice);
      await page.locator('#token').press('Enter');
      await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
      await page.locator('#sign-out').focus();
      await page.keyboard.press('Enter');
      await page.locator('#login').waitFor({ timeout: 15_000 });
      await expect.poll(() => focusedId(page)).toBe('token');
    } finally {
      await page.close();
    }
  });

  test('behind a gateway, a user id the server refuses is shown with the server reason', async () => {
    const gated = await startTestServer('sqlite', { env: { AUTH_USER_HEADER: 'X-Bfl-User' } });
    let context: BrowserContext | undefined;
    try {
      context = await browser.newContext({ extraHTTPHeaders: { 'X-Bfl-User': 'a b' } });
      const page = await context.newPage();
      await page.goto(`${gated.url}/dashboard`);
      await expect
        .poll(() => page.locator('#auth-problem').innerText(), { timeout: 15_000 })
        .toBe('Refused: X-Bfl-User is not a valid user id.');
      expect(await page.locator('#connection').getAttribute('data-state')).toBe('failed');
    } finally {
      await context?.close();
      await gated.stop();
    }
  });
});
