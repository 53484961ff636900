import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { REQUIRE_SERVICES } from './databases.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Whether Debian's Chromium is installed; skips loudly, or fails under REQUIRE_SERVICES=1. */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  const message = `Chromium not found at ${CHROMIUM} (install it with: sudo scripts/install-browser.sh)`;
  if (REQUIRE_SERVICES) throw new Error(`${message}; REQUIRE_SERVICES=1 forbids skipping`);
  console.warn(`\n!!! SKIPPING browser tests: ${message}\n`);
  return false;
}

/**
 * Headless Debian Chromium through playwright-core (never a downloaded browser). Playwright
 * gives every launch a fresh profile; the flags keep Chromium from calling out to the network.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** What a page asked the network for, as the dashboard's tests check it. */
export interface PageTraffic {
  /** Requests to any host but this machine's. */
  external: string[];
  /** HTTP requests to /graphql (the pages must use the WebSocket only). */
  polls: string[];
  /** Responses with status ≥ 400 and requests that failed outright (`status url`). */
  failures: string[];
}

/** Starts recording a page's traffic; read the arrays after the page did its work. */
export function recordTraffic(page: Page): PageTraffic {
  const traffic: PageTraffic = { external: [], polls: [], failures: [] };
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.protocol !== 'data:' && !['127.0.0.1', 'localhost'].includes(url.hostname)) {
      traffic.external.push(request.url());
    }
    if (url.pathname === '/graphql' && request.resourceType() !== 'websocket') traffic.polls.push(request.url());
  });
  page.on('response', (response) => {
    if (response.status() >= 400) traffic.failures.push(`${response.status()} ${response.url()}`);
  });
  page.on('requestfailed', (request) => {
    traffic.failures.push(`${request.failure()?.errorText ?? 'failed'} ${request.url()}`);
  });
  return traffic;
}
