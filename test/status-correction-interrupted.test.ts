import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import { type FakeAppService, startFakeAppService } from './support/fake-app-service.js';
import { SERVER_COMMAND, type ServerProcess, serverEnv, startProcess } from './support/process.js';
import { deleteKeys, REDIS_URL, redisAvailable } from './support/redis.js';
import { startTestServer, type TestServer, waitFor } from './support/server.js';

/**
 * A status correction run of thousands of corrections ends part-way when it must: on a graceful
 * stop (which then keeps to its budget and exits 0), and when its instance no longer leads (its
 * successor makes the same corrections). The rest is left to the next run.
 */

const databases = await availableDatabases();
const redisUp = await redisAvailable();
const SECRET = 'app-service-event-secret-0072';
const SOURCE = 'market.olares';

/** `count` apps of one user the app service lists and the server has no row for. */
function unknownApps(owner: string, count: number) {
  const time = new Date(Date.now() - 60_000).toISOString();
  return Array.from({ length: count }, (_, i) => ({
    metadata: { name: `extra-${i}-${owner}`, namespace: `extra-${i}-${owner}` },
    spec: { name: `extra-${i}`, owner, appid: `extra-${i}`, isSysApp: false, settings: { market_source: SOURCE } },
    status: { state: 'running', statusTime: time, updateTime: time },
  }));
}

const APPEARED = /^extra-\d+ appeared on the app service \(running\)$/;
const STOPPED_PART_WAY = (why: string) => `status correction stopped part-way (${why}): the next run makes the rest`;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('a graceful stop during a long status correction run', () => {
  test('SIGTERM while thousands of apps are being corrected stops the run within the drain budget, and the process exits 0', async () => {
    const fake: FakeAppService = await startFakeAppService({ apps: unknownApps('alice', 5000) });
    cleanups.push(() => fake.stop());
    const directory = mkdtempSync(path.join(tmpdir(), 'market-correction-stop-'));
    cleanups.push(async () => rmSync(directory, { recursive: true, force: true }));
    const server: ServerProcess = startProcess(
      SERVER_COMMAND,
      serverEnv(`file:${path.join(directory, 'market.db')}`, {
        APP_SERVICE_URL: fake.url,
        APP_SERVICE_EVENT_SECRET: SECRET,
        STATUS_CORRECTION_INTERVAL_MS: '3600000',
        // The whole stop may take 2 × 1 s + 10 s (build-app.ts); the run alone takes minutes.
        SHUTDOWN_TIMEOUT_MS: '1000',
      }),
    );
    cleanups.push(async () => {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
      await server.exited;
    });

    await server.waitForLog((line) => APPEARED.test(String(line.msg)), 'the first correction');
    server.child.kill('SIGTERM');
    const exit = await server.exited;

    expect(server.logs.filter((line) => /stop cut after|shutdown failed/.test(String(line.msg)))).toEqual([]);
    expect(exit).toEqual({ code: 0, signal: null });
    const stopped = server.logs.find((line) => line.msg === STOPPED_PART_WAY('the periodic jobs are stopping'));
    expect(stopped).toMatchObject({ done: expect.any(Number), left: expect.any(Number) });
    expect(Number(stopped?.left)).toBeGreaterThan(0);
  }, 120_000);
});

describe.runIf(redisUp && databases.includes('postgresql'))('a leader that loses its lease during a long run', () => {
  test('stops making corrections once another instance holds the lease, leaving the rest to the new leader', async () => {
    const total = 400;
    const fake = await startFakeAppService({ apps: unknownApps('bob', total) });
    cleanups.push(() => fake.stop());
    const prefix = `statusfix:${randomBytes(4).toString('hex')}:`;
    cleanups.push(() => deleteKeys(prefix));
    const server: TestServer = await startTestServer('postgresql', {
      env: {
        APP_SERVICE_URL: fake.url,
        APP_SERVICE_EVENT_SECRET: SECRET,
        DEMO_DATA: '0',
        REDIS_URL,
        REDIS_PREFIX: prefix,
        INSTANCE_NAME: 'old-leader',
        LEADER_LEASE_MS: '3000',
        STATUS_CORRECTION_INTERVAL_MS: '3600000',
      },
    });
    cleanups.push(() => server.stop());
    const { db } = server.app;
    const correction = server.app.services.statusCorrection;
    const appeared = () => db.appState.count({ where: { userId: 'bob' } });
    await waitFor(async () => ((await appeared()) > 0 ? true : undefined), 'the first app to appear');

    // Another instance holds the lease from now on (this one's paused past it, say): at its next
    // renewal this one learns it no longer leads.
    const redis = new Redis(REDIS_URL);
    cleanups.push(async () => void redis.disconnect());
    await redis.set(`${prefix}leader`, 'new-leader token', 'PX', 60_000);
    const logged = () => server.logs.map((line) => JSON.parse(line) as { msg?: string; [key: string]: unknown });
    await waitFor(
      async () => logged().some((line) => line.msg === 'no longer leading the cluster') || undefined,
      'lost',
    );
    await waitFor(async () => (correction.status().checks >= 1 ? true : undefined), 'the run to end', 90_000);

    const made = await appeared();
    expect(made).toBeLessThan(total);
    expect(correction.status().corrections.appeared).toBe(made);
    const stopped = logged().find((line) => line.msg?.startsWith('status correction stopped part-way'));
    // Whichever it saw first: the lease's clock, or the jobs stopped on the news.
    expect([
      STOPPED_PART_WAY('this instance no longer leads'),
      STOPPED_PART_WAY('the periodic jobs are stopping'),
    ]).toContain(stopped?.msg);
    expect(stopped).toMatchObject({ done: made, left: total - made });
  }, 180_000);
});
