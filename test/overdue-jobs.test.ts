import { afterEach, describe, expect, test } from 'vitest';
import { startTestServer, waitFor } from './support/server.js';
import { startTcpProxy } from './support/tcp-proxy.js';
import { componentOf } from './support/untyped.js';

/**
 * A periodic job whose run hangs is not reported healthy: with an app service that accepts
 * connections and never answers, status correction's first read of its list waits for the whole
 * APP_SERVICE_TIMEOUT_MS (120 s), and `app_service` and `status_correction` showed RUNNING and
 * healthy all along, with no run ever finished.
 */

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

describe('a job whose first run hangs', () => {
  test('shows app_service and status_correction DEGRADED once the run outlasts its bound, saying since when', async () => {
    // Accepts every connection and never answers (the target is never reached).
    const silent = await startTcpProxy({ host: '127.0.0.1', port: 9 });
    silent.cut('hold');
    disposers.push(() => silent.close());
    const server = await startTestServer('sqlite', {
      env: {
        APP_SERVICE_URL: `http://127.0.0.1:${silent.port}`,
        APP_SERVICE_EVENT_SECRET: 'app-service-event-secret-0001',
        APP_SERVICE_TIMEOUT_MS: '120000',
        STATUS_CORRECTION_INTERVAL_MS: '1000',
        COLLECT_INTERVAL_MS: '200',
      },
    });
    disposers.push(async () => {
      silent.restore(); // drops the held call: a stop waits for the run in progress
      await server.stop();
    });

    const appService = await waitFor(async () => {
      const seen = await componentOf(server, 'app_service');
      return seen?.state === 'RUNNING' ? undefined : seen;
    }, 'app_service to stop saying RUNNING');
    const since = String(appService?.metrics.lastRunAt);
    expect(appService).toEqual({
      name: 'app_service',
      state: 'DEGRADED',
      healthy: false,
      message: `first read of the app list (status correction) still in progress after more than 5 s (since ${since})`,
      metrics: { kind: 'http', runs: 0, intervalMs: 1000, lastRunAt: since, lastDurationMs: null },
    });
    expect(silent.accepted).toBeGreaterThan(0);
    const correction = await waitFor(async () => {
      const seen = await componentOf(server, 'status_correction');
      return seen?.state === 'RUNNING' ? undefined : seen;
    }, 'status_correction to stop saying RUNNING');
    expect(correction).toMatchObject({
      state: 'DEGRADED',
      healthy: false,
      message: `first comparison still in progress after more than 5 s (since ${since})`,
      metrics: { checks: 0, lastDurationMs: null },
    });
  }, 60_000);
});
