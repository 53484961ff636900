import { mkdirSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromiumAvailable, launchChromium } from './support/browser.js';
import { startTestServer, type TestServer } from './support/server.js';

describe.skipIf(!chromiumAvailable())('GraphiQL in a real browser', () => {
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('opens offline (no request leaves the machine), runs its example queries and shows their results', async () => {
    const page = await browser.newPage();
    const external: string[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (!['127.0.0.1', 'localhost'].includes(url.hostname) && url.protocol.startsWith('http'))
        external.push(request.url());
    });
    // Its Content-Security-Policy lets GraphiQL's own scripts and workers run, and nothing else.
    const refused: string[] = [];
    page.on('console', (message) => {
      if (message.text().includes('Content Security Policy')) refused.push(message.text());
    });
    const response = await page.goto(server.graphqlUrl);
    expect(response?.headers()['content-security-policy']).toMatch(/script-src 'sha256-[^']+'; worker-src blob:;/);
    await page
      .getByRole('button', { name: /execute query/i })
      .first()
      .waitFor({ timeout: 20_000 });
    // The editor opens with several example operations: run asks which one.
    const runExample = async (name: string) => {
      await page
        .getByRole('button', { name: /execute query/i })
        .first()
        .click();
      await page.getByRole('menuitem', { name }).click();
    };
    await runExample('Apps');
    const result = page.locator('.graphiql-response');
    await expect.poll(async () => result.innerText(), { timeout: 15_000 }).toContain('"viewer"');
    // CodeMirror renders spaces as non-breaking ones; compare on normalised whitespace.
    const text = (await result.innerText()).replace(/\s+/g, ' ');
    expect(text).toContain('"userId": "admin"');
    expect(text).toMatch(/"stage": "(RUNNING|INSTALLING|FAILED|STOPPED|FETCHING)"/);
    // The catalogue example shows what the install example needs: a source, a name, versions.
    await runExample('Catalog');
    await expect.poll(async () => result.innerText(), { timeout: 15_000 }).toContain('"versions"');
    expect((await result.innerText()).replace(/\s+/g, ' ')).toContain('"sourceId": "market.olares"');
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/graphiql.png' });
    expect(external).toEqual([]);
    expect(refused).toEqual([]);
  });

  test('runs no script its page did not bring', async () => {
    const page = await browser.newPage();
    const refused: string[] = [];
    page.on('console', (message) => {
      if (message.text().includes('Content Security Policy')) refused.push(message.text());
    });
    await page.goto(server.graphqlUrl);
    await page
      .getByRole('button', { name: /execute query/i })
      .first()
      .waitFor({ timeout: 20_000 });
    // What an injected inline script or handler would do: refused by the page's policy.
    const ran = await page.evaluate(() => {
      const script = document.createElement('script');
      script.textContent = 'window.injected = true';
      document.body.append(script);
      return (window as unknown as { injected?: boolean }).injected === true;
    });
    expect(ran).toBe(false);
    expect(refused.join('\n')).toContain(
      "Executing inline script violates the following Content Security Policy directive 'script-src 'sha256-",
    );
  });

  test('arrives compressed: about 2 of its 9 MB cross the network', async () => {
    const page = await browser.newPage();
    const response = await page.goto(server.graphqlUrl);
    expect(response?.headers()['content-encoding']).toBe('br');
    const pageBytes = (await response?.body())?.length ?? 0; // as the browser decoded it
    const sent = (await response?.request().sizes())?.responseBodySize; // as it crossed the network
    expect(pageBytes).toBeGreaterThan(8_000_000);
    expect(sent).toBeLessThan(pageBytes / 4);
    await page
      .getByRole('button', { name: /execute query/i })
      .first()
      .waitFor({ timeout: 20_000 });
  });
});
