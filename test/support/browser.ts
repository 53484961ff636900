import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
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
