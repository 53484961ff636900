import { SignJWT } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromiumAvailable, launchChromium } from './support/browser.js';
import { startGateway } from './support/gateway.js';
import { openRawSocket } from './support/raw-ws.js';
import { AUTH_ENV, startTestServer, TOKENS } from './support/server.js';

/**
 * What the dashboard says when the server will not have its viewer, in real Chromium: a refused or
 * expired token, a connection limit, a gateway that did not identify the user or signed them out.
 */

const JWT_SECRET = 'dashboard-sign-in-test-jwt-secret-0123456789';
/** alice's JWT that expires `seconds` from now: the server then closes the page's socket with 4403. */
const expiringJwt = (seconds: number) =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('alice')
    .setExpirationTime(Math.floor(Date.now() / 1000) + seconds)
    .sign(new TextEncoder().encode(JWT_SECRET));

/** Any row or record of the viewer's data. */
const ANY_DATA = 'tr[data-app], tr[data-task-id], tr[data-repo-app], [data-history-id], tr[data-payment-id]';

const stateOf = (page: Page) => page.locator('#connection').getAttribute('data-state');

describe.skipIf(!chromiumAvailable())('the dashboard when the server will not have its viewer', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  test('a refused and an expired token bring the form back saying why, without Sign out and without the token', async () => {
    const locked = await startTestServer('sqlite', {
      env: { ...AUTH_ENV, AUTH_JWT_SECRET: JWT_SECRET, AUTH_JWT_CLOCK_SKEW_S: '0' },
    });
    const page = await browser.newPage();
    try {
      await page.goto(`${locked.url}/dashboard`);
      await page.locator('#login').waitFor({ timeout: 15_000 });
      // A first visit: the form, and nothing to explain yet.
      expect(await page.locator('#auth-problem').isHidden()).toBe(true);

      await page.locator('#token').fill('not-a-token-of-this-server');
      await page.locator('#login button[type=submit]').click();
      await expect
        .poll(() => page.locator('#auth-problem').innerText(), { timeout: 15_000 })
        .toBe('The token was refused.');
      expect(await page.locator('#login').isVisible()).toBe(true);
      expect(await page.locator('#sign-out').isHidden()).toBe(true);
      expect(await page.evaluate(() => JSON.stringify(sessionStorage))).not.toContain('not-a-token');
      expect(await page.locator('#history').innerText()).toBe('Not signed in.');

      await page.locator('#token').fill(await expiringJwt(3));
      await page.locator('#login button[type=submit]').click();
      await expect.poll(() => stateOf(page), { timeout: 15_000 }).toBe('live');
      expect(await page.locator('#auth-problem').isHidden()).toBe(true);
      expect(await page.locator('#sign-out').isVisible()).toBe(true);
      await expect.poll(() => page.locator(ANY_DATA).count()).toBeGreaterThan(0);

      await expect
        .poll(() => page.locator('#auth-problem').innerText(), { timeout: 15_000 })
        .toBe('The token was refused: Token expired.');
      expect(await page.locator('#login').isVisible()).toBe(true);
      expect(await page.locator('#sign-out').isHidden()).toBe(true);
      expect(await stateOf(page)).toBe('failed');
      expect(await page.locator(ANY_DATA).count()).toBe(0);
      expect(await page.locator('#history').innerText()).toBe('Not signed in.');

      // The next token works as before, and the page no longer says why the last one did not.
      await page.locator('#token').fill(TOKENS.bob);
      await page.locator('#login button[type=submit]').click();
      await expect.poll(() => stateOf(page), { timeout: 15_000 }).toBe('live');
      expect(await page.locator('#auth-problem').isHidden()).toBe(true);
    } finally {
      await page.close();
      await locked.stop();
    }
  }, 60_000);

  test('over the per-user connection limit the page says so and waits three keep-alive periods before it tries again', async () => {
    // Keep-alive 1 s: the documented wait (three periods) is 3 s.
    const busy = await startTestServer('sqlite', {
      env: { MAX_CONNECTIONS_PER_USER: '1', SUBSCRIPTION_KEEPALIVE_MS: '1000' },
    });
    const held = await openRawSocket(busy.url);
    const page = await browser.newPage();
    const attempts: number[] = [];
    page.on('websocket', () => attempts.push(Date.now()));
    try {
      held.send({ type: 'connection_init', payload: {} });
      await held.nextOfType('connection_ack');
      await page.goto(`${busy.url}/dashboard`);
      await expect
        .poll(() => page.locator('#connection').innerText(), { timeout: 15_000 })
        .toBe('Too many connections for this user on this instance (MAX_CONNECTIONS_PER_USER): trying again in 3 s');
      expect(await stateOf(page)).toBe('reconnecting');

      held.socket.close();
      await expect.poll(() => stateOf(page), { timeout: 15_000 }).toBe('live');
      const gaps = attempts.slice(1).map((at, index) => at - (attempts[index] as number));
      expect(gaps.length).toBeGreaterThan(0);
      // Timer resolution aside, never sooner than the wait it announced.
      for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(2_900);
    } finally {
      held.socket.close();
      await page.close();
      await busy.stop();
    }
  }, 60_000);

  test('identified by a gateway only, a request the gateway did not identify shows why and no token form', async () => {
    const gated = await startTestServer('sqlite', { env: { AUTH_USER_HEADER: 'X-Bfl-User' } });
    const page = await browser.newPage();
    try {
      for (const path of ['/dashboard', '/dashboard/app?user=alice&source=market.olares&app=immich']) {
        await page.goto(`${gated.url}${path}`);
        await expect
          .poll(() => page.locator('#auth-problem').innerText(), { timeout: 15_000 })
          .toBe('The gateway did not say who you are: sign in through it, then reload this page.');
        expect(await stateOf(page)).toBe('failed');
        expect(await page.locator('#login').isHidden()).toBe(true);
        expect(await page.locator('#token').isVisible()).toBe(false);
        expect(await page.locator('#sign-out').isHidden()).toBe(true);
      }
    } finally {
      await page.close();
      await gated.stop();
    }
  });

  test('after the viewer signs out at the gateway, which then refuses the upgrades, the page forgets their data', async () => {
    const gated = await startTestServer('sqlite', { env: { AUTH_USER_HEADER: 'X-Bfl-User' } });
    const gateway = await startGateway(gated.url, 'X-Bfl-User', 'alice', { pathPrefix: '/market' });
    const page = await browser.newPage();
    try {
      await page.goto(`${gateway.url}/market/dashboard`);
      await expect.poll(() => stateOf(page), { timeout: 15_000 }).toBe('live');
      await expect.poll(() => page.locator('tr[data-app^="alice/"]').count()).toBeGreaterThan(0);

      // Signed out there, every connection the page makes again is refused before it opens (1006).
      gateway.signOut();
      gateway.cut();
      await expect.poll(() => page.locator(ANY_DATA).count(), { timeout: 20_000 }).toBe(0);
      expect(await page.locator('#auth-problem').innerText()).toBe(
        'The gateway did not say who you are: sign in through it, then reload this page.',
      );
      expect(await stateOf(page)).toBe('failed');
      expect(await page.locator('#login').isHidden()).toBe(true);
    } finally {
      await page.close();
      await gateway.close();
      await gated.stop();
    }
  }, 60_000);

  test('a component disabled on purpose counts as up, as /metrics counts it', async () => {
    // No CHART_REPO_URL: the chart_repo component is DISABLED.
    const server = await startTestServer('sqlite');
    const page = await browser.newPage();
    try {
      await page.goto(`${server.url}/dashboard`);
      await expect.poll(() => stateOf(page), { timeout: 15_000 }).toBe('live');
      await expect.poll(() => page.locator('li[data-component="chart_repo"]').innerText()).toContain('DISABLED');
      const shown = await page.locator('#components > li').count();
      const card = page.locator('.card', { hasText: 'Components up' }).locator('b');
      await expect.poll(() => card.innerText()).toBe(`${shown}/${shown}`);
    } finally {
      await page.close();
      await server.stop();
    }
  });
});
