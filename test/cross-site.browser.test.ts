import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromiumAvailable, launchChromium } from './support/browser.js';
import { startTestServer, type TestServer } from './support/server.js';

/**
 * What a page of another site can make a visitor's browser do to this server, in real Chromium:
 * the server runs in local development mode (every request is the admin), the page on a server
 * of its own, another origin.
 */

/** Pushes at once, so a stream that is served shows it with its first event. */
const SUBSCRIPTION = 'subscription { runtimeSnapshot { sequence } }';

describe.skipIf(!chromiumAvailable())("another site's page, in a real browser", () => {
  let server: TestServer;
  let browser: Browser;
  let attacker: Server;
  /** The attacker's pages by path. */
  const pages = new Map<string, string>();
  /** The Referer each request to the attacker's server came with, by path. */
  const referers = new Map<string, string | undefined>();
  let attackerUrl = '';

  beforeAll(async () => {
    server = await startTestServer('sqlite');
    browser = await launchChromium();
    attacker = createServer((req, res) => {
      referers.set(req.url ?? '', req.headers.referer);
      res.writeHead(200, { 'content-type': 'text/html' }).end(pages.get(req.url ?? '') ?? '');
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => attacker?.close(resolve));
    await server?.stop();
  });

  test('cannot frame GraphiQL with a mutation in its editor (clickjacking)', async () => {
    const mutation = 'mutation { removeMarketSource(input: { sourceId: "upload" }) { __typename } }';
    const graphiql = `${server.graphqlUrl}?query=${encodeURIComponent(mutation)}`;
    pages.set('/frame', `<iframe id="target" src="${graphiql}" width="1000" height="800"></iframe>`);
    const page = await browser.newPage();
    const answered = page.waitForResponse((response) => response.url() === graphiql);
    await page.goto(`${attackerUrl}/frame`);
    // Refused outright: a navigation in another site's frame (Fetch Metadata) is no client's request.
    expect((await answered).status()).toBe(403);
    // The frame shows the refusal, not GraphiQL.
    const frame = page.frames().find((each) => each !== page.mainFrame());
    await expect.poll(async () => frame?.locator('body').innerText()).toContain("another site's page");
    await page.close();
    // Browsers that send no Fetch Metadata get the page, which forbids being framed at all.
    const direct = await fetch(server.graphqlUrl, { headers: { accept: 'text/html' } });
    expect(direct.status).toBe(200);
    expect(direct.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(direct.headers.get('x-frame-options')).toBe('DENY');
  });

  test('cannot frame the dashboard; none of its files may be read as another type', async () => {
    pages.set('/dashboard-frame', `<iframe src="${server.url}/dashboard" width="1000" height="800"></iframe>`);
    const page = await browser.newPage();
    const answered = page.waitForResponse((response) => response.url() === `${server.url}/dashboard`);
    await page.goto(`${attackerUrl}/dashboard-frame`);
    expect((await answered).status()).toBe(200);
    // The browser refuses to show it: the frame stays empty.
    const frame = page.frames().find((each) => each !== page.mainFrame());
    expect(await frame?.locator('#connection').count()).toBe(0);
    await page.close();
    // Browsers that know only X-Frame-Options are told too; a script is never sniffed as markup.
    for (const path of ['/dashboard', '/dashboard/app', '/dashboard/dashboard.js', '/dashboard/dashboard.css']) {
      const response = await fetch(`${server.url}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(response.headers.get('x-frame-options'), path).toBe('DENY');
      expect(response.headers.get('x-content-type-options'), path).toBe('nosniff');
    }
  });

  test('is not told the address of GraphiQL or the dashboard a link to it was followed from', async () => {
    const page = await browser.newPage();
    // As a link followed in the page: its document starts the navigation.
    const follow = async (to: string) => {
      const arrived = page.waitForURL(to);
      await page.evaluate((url) => {
        location.href = url;
      }, to);
      await arrived;
    };
    const query = encodeURIComponent('mutation { removeMarketSource(input: { sourceId: "secret" }) { __typename } }');
    for (const [from, landing] of [
      [`${server.graphqlUrl}?query=${query}`, '/from-graphiql'],
      [`${server.url}/dashboard?source=market.olares&stage=FAILED`, '/from-dashboard'],
    ] as const) {
      await page.goto(from, { waitUntil: 'domcontentloaded' });
      await follow(`${attackerUrl}${landing}`);
      // Not even the origin, which Chromium's default (strict-origin-when-cross-origin) would send.
      expect(referers.has(landing), landing).toBe(true);
      expect(referers.get(landing), landing).toBeUndefined();
    }
    // Within the server the whole address still goes along: the app page finds the dashboard's filters in it.
    await page.goto(`${server.url}/dashboard?source=market.olares&stage=FAILED`, { waitUntil: 'domcontentloaded' });
    await follow(`${server.url}/dashboard/app?user=admin&source=market.olares&app=vaultwarden`);
    await expect
      .poll(() => page.locator('#back').getAttribute('href'))
      .toBe('/dashboard?source=market.olares&stage=FAILED');
    await page.close();
  });

  test("cannot hold the visitor's stream slots with framed streams; the server's own page still streams", async () => {
    const { port } = new URL(server.url);
    // Other loopback names, as the helper that found it did, past Chromium's 6 connections per host.
    const streams = Array.from(
      { length: 8 },
      (_, index) => `http://h${index}.localhost:${port}/graphql/stream?query=${encodeURIComponent(SUBSCRIPTION)}`,
    );
    pages.set('/streams', streams.map((src) => `<iframe src="${src}"></iframe>`).join('\n'));
    const page = await browser.newPage();
    const statuses: number[] = [];
    page.on('response', (response) => {
      if (response.url().includes('/graphql/stream')) statuses.push(response.status());
    });
    await page.goto(`${attackerUrl}/streams`, { waitUntil: 'commit' });
    await expect.poll(() => statuses.length, { timeout: 15_000 }).toBe(streams.length);
    expect(statuses).toEqual(streams.map(() => 403));

    // The server's own origin (Sec-Fetch-Site: same-origin) opens its EventSource as before.
    await page.goto(`${server.url}/health`);
    const firstEvent = await page.evaluate(
      (query) =>
        new Promise<string>((resolve, reject) => {
          const source = new EventSource(`/graphql/stream?query=${encodeURIComponent(query)}`);
          source.addEventListener('next', (event) => {
            source.close();
            resolve((event as MessageEvent).data);
          });
          source.onerror = () => reject(new Error('the stream failed'));
        }),
      SUBSCRIPTION,
    );
    expect(JSON.parse(firstEvent)).toMatchObject({ data: { runtimeSnapshot: { sequence: expect.any(Number) } } });
    await page.close();
  });
});

describe.skipIf(!chromiumAvailable())('a page of an allowed origin (CORS_ORIGINS), in a real browser', () => {
  let server: TestServer;
  let browser: Browser;
  let site: Server;
  let siteUrl = '';

  beforeAll(async () => {
    site = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<p>frontend</p>'));
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    server = await startTestServer('sqlite', { env: { CORS_ORIGINS: siteUrl } });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => site?.close(resolve));
    await server?.stop();
  });

  test('reads subscriptions over every SSE transport, as it reads queries', async () => {
    const page = await browser.newPage();
    await page.goto(siteUrl);
    const firstEvents = await page.evaluate(
      async ({ base, query }) => {
        /** The first `next` event's data of a stream read with fetch (as graphql-sse's client reads it). */
        const firstOf = async (url: string, init: RequestInit) => {
          const response = await fetch(url, init);
          const reader = (response.body as ReadableStream<Uint8Array>).getReader();
          let text = '';
          while (!text.includes('event: next')) text += new TextDecoder().decode((await reader.read()).value);
          await reader.cancel();
          return /event: next\ndata: (.*)\n/.exec(text)?.[1] ?? '';
        };
        const body = JSON.stringify({ query });
        const json = { 'content-type': 'application/json', accept: 'text/event-stream' };
        const eventSource = new Promise<string>((resolve, reject) => {
          const source = new EventSource(`${base}/graphql/stream?query=${encodeURIComponent(query)}`);
          source.addEventListener('next', (event) => {
            source.close();
            resolve((event as MessageEvent).data);
          });
          source.onerror = () => reject(new Error('the EventSource failed'));
        });
        return [
          await firstOf(`${base}/graphql/stream`, { method: 'POST', headers: json, body }),
          await firstOf(`${base}/graphql`, { method: 'POST', headers: json, body }),
          await eventSource,
        ];
      },
      { base: server.url, query: SUBSCRIPTION },
    );
    for (const data of firstEvents) {
      expect(JSON.parse(data)).toMatchObject({ data: { runtimeSnapshot: { sequence: expect.any(Number) } } });
    }
    await page.close();
  });

  test('reads the request id of a query answer and of a stream, what a frontend hands to support', async () => {
    const page = await browser.newPage();
    await page.goto(siteUrl);
    const requestIds = await page.evaluate(
      async ({ base, subscription }) => {
        const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json' };
        const query = await fetch(`${base}/graphql`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ query: '{ viewer { userId } }' }),
        });
        await query.text();
        const stream = await fetch(`${base}/graphql/stream`, {
          method: 'POST',
          headers: { ...headers, accept: 'text/event-stream' },
          body: JSON.stringify({ query: subscription }),
        });
        await stream.body?.cancel();
        return [query.headers.get('x-request-id'), stream.headers.get('x-request-id')];
      },
      { base: server.url, subscription: SUBSCRIPTION },
    );
    for (const requestId of requestIds) expect(requestId).toMatch(/^[\w-]{8,}$/);
    await page.close();
  });
});
