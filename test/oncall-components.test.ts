import { afterEach, describe, expect, test } from 'vitest';
import { availableDatabases, createTestDatabase } from './support/databases.js';
import { startFakeAppService } from './support/fake-app-service.js';
import { startTestServer, waitFor } from './support/server.js';
import { proxyDatabase } from './support/tcp-proxy.js';
import { componentOf } from './support/untyped.js';

/**
 * What the components say during a database outage, against a real server whose PostgreSQL sits
 * behind a TCP proxy the test cuts: each failure on the component whose team it is.
 */

const databases = await availableDatabases();

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

describe.runIf(databases.includes('postgresql'))('a PostgreSQL outage on the components', () => {
  test('status_correction and database show it; app_service, whose list reads still succeed, stays RUNNING', async () => {
    const fake = await startFakeAppService();
    disposers.push(() => fake.stop());
    const database = await createTestDatabase('postgresql');
    disposers.push(() => database.drop());
    const { proxy, url } = await proxyDatabase(database.url);
    disposers.push(() => proxy.close());
    const server = await startTestServer('postgresql', {
      database: { ...database, url },
      env: {
        DEMO_DATA: '0', // stored apps the fake does not list would make status correction withhold removals
        APP_SERVICE_URL: fake.url,
        APP_SERVICE_EVENT_SECRET: 'app-service-event-secret-0001',
        STATUS_CORRECTION_INTERVAL_MS: '300',
        COLLECT_INTERVAL_MS: '200',
      },
    });
    disposers.push(async () => {
      proxy.restore(); // a server stopping during a cut would wait for its database in vain
      await server.stop();
    });
    for (const name of ['app_service', 'status_correction']) {
      await waitFor(async () => ((await componentOf(server, name))?.state === 'RUNNING' ? true : undefined), name);
    }

    proxy.cut('refuse');
    const correction = await waitFor(async () => {
      const seen = await componentOf(server, 'status_correction');
      return seen?.state === 'ERROR' ? seen : undefined;
    }, 'status_correction to show the outage');
    expect(correction.message).toBe('database unavailable');
    expect(await componentOf(server, 'database')).toMatchObject({ state: 'ERROR', message: 'database unavailable' });
    // Runs keep failing on the database after reading the list: the app service answers all along.
    const listsBefore = fake.requests.filter((request) => request.path === '/app-service/v1/all/apps').length;
    await waitFor(
      async () =>
        fake.requests.filter((request) => request.path === '/app-service/v1/all/apps').length > listsBefore + 1
          ? true
          : undefined,
      'two more reads of the app list during the outage',
    );
    expect(await componentOf(server, 'status_correction')).toMatchObject({ state: 'ERROR' });
    expect(await componentOf(server, 'app_service')).toMatchObject({ state: 'RUNNING', healthy: true, message: null });
  }, 60_000);
});
