import { copyFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { availableDatabases, createTestDatabase } from './support/databases.js';
import { startFakeAppService } from './support/fake-app-service.js';
import { startTestServer, type TestServer, waitFor } from './support/server.js';
import { proxyDatabase } from './support/tcp-proxy.js';
import { canMountTmpfs, fillDisk, mountTmpfs } from './support/tmpfs.js';
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

/**
 * A server on a PostgreSQL database of its own, reached through a TCP proxy the test cuts; the
 * proxy is restored before the server stops (a stop during a cut would wait for its database in vain).
 */
async function serverBehindProxy(env: Record<string, string>) {
  const database = await createTestDatabase('postgresql');
  disposers.push(() => database.drop());
  const { proxy, url } = await proxyDatabase(database.url);
  disposers.push(() => proxy.close());
  const server = await startTestServer('postgresql', { database: { ...database, url }, env });
  disposers.push(async () => {
    proxy.restore();
    await server.stop();
  });
  return { proxy, server };
}

describe.runIf(databases.includes('postgresql'))('a PostgreSQL outage on the components', () => {
  test('status_correction and database show it; app_service, whose list read succeeded, stays RUNNING', async () => {
    const fake = await startFakeAppService();
    disposers.push(() => fake.stop());
    const { proxy, server } = await serverBehindProxy({
      DEMO_DATA: '0', // stored apps the fake does not list would make status correction withhold removals
      APP_SERVICE_URL: fake.url,
      APP_SERVICE_EVENT_SECRET: 'app-service-event-secret-0001',
      STATUS_CORRECTION_INTERVAL_MS: '300',
      COLLECT_INTERVAL_MS: '200',
    });
    for (const name of ['app_service', 'status_correction']) {
      await waitFor(async () => ((await componentOf(server, name))?.state === 'RUNNING' ? true : undefined), name);
    }

    // The database goes while a run waits for the list, which it asks for after the stored states:
    // the list is read, and the run fails on the database after it.
    const lists = () => fake.requests.filter((request) => request.path === '/app-service/v1/all/apps').length;
    const asked = lists();
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    fake.setBehaviour('listApps', { respond: 'accept-when', released });
    await waitFor(async () => (lists() > asked ? true : undefined), 'a run to ask for the list');
    proxy.cut('refuse');
    fake.setBehaviour('listApps', { respond: 'accept' });
    release();
    const correction = await waitFor(async () => {
      const seen = await componentOf(server, 'status_correction');
      return seen?.state === 'ERROR' ? seen : undefined;
    }, 'status_correction to show the outage');
    expect(correction.message).toBe('database unavailable');
    // On a loaded machine a check can outlast the 200 ms cycle once ("still waiting for the previous check"): the next one says why.
    const database = await waitFor(async () => {
      const seen = await componentOf(server, 'database');
      return seen?.message === 'database unavailable' ? seen : undefined;
    }, 'the database component to say the database is unavailable');
    expect(database).toMatchObject({ state: 'ERROR', message: 'database unavailable' });
    // Runs keep failing on the database (the next ones before they ask for the list): the app
    // service, which answered all along, is not blamed.
    const checks = async () => Number((await componentOf(server, 'status_correction'))?.metrics.checks);
    const checksBefore = await checks();
    await waitFor(
      async () => ((await checks()) > checksBefore + 1 ? true : undefined),
      'two more runs during the outage',
    );
    expect(await componentOf(server, 'status_correction')).toMatchObject({ state: 'ERROR' });
    expect(await componentOf(server, 'app_service')).toMatchObject({ state: 'RUNNING', healthy: true, message: null });
  }, 60_000);
});

describe.runIf(canMountTmpfs('the SQLite full-disk component test'))('SQLite on a disk with no byte free', () => {
  test('the database component says the disk is full and still shows freeBytes', async () => {
    const disk = mountTmpfs(16 << 20)!;
    disposers.push(async () => disk.unmount());
    const migrated = await createTestDatabase('sqlite');
    disposers.push(() => migrated.drop());
    const file = path.join(disk.dir, 'test.db');
    copyFileSync(migrated.url.replace(/^file:/, ''), file);
    const server: TestServer = await startTestServer('sqlite', {
      database: { kind: 'sqlite', url: `file:${file}`, drop: async () => {} },
      env: { DEMO_DATA: '0', COLLECT_INTERVAL_MS: '200' },
    });
    disposers.push(() => server.stop());
    await waitFor(
      async () => ((await componentOf(server, 'database'))?.metrics.otherProcesses === 0 ? true : undefined),
      'a first check',
    );

    const filler = fillDisk(disk.dir);
    disposers.push(async () => rmSync(filler)); // before the stop, which checkpoints the WAL
    const full = await waitFor(async () => {
      const seen = await componentOf(server, 'database');
      return seen?.state === 'ERROR' && seen.message?.includes('disk is full') ? seen : undefined;
    }, 'the database component to show the full disk');
    expect(full.message).toBe(
      "the database's disk is full: writes fail until space is freed (0 bytes free on its filesystem)",
    );
    expect(full.metrics).toMatchObject({ provider: 'sqlite', freeBytes: 0, file });
    // A client's write is told why, not to retry shortly.
    const refused = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query:
          'mutation { addMarketSource(input: { sourceId: "full", title: "Full", baseUrl: "http://127.0.0.1:9" }) { __typename } }',
      }),
    });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { errors: { message: string; extensions: { code: string } }[] }).errors).toEqual([
      expect.objectContaining({
        message: "The database's disk is full: changes are refused until an operator frees space.",
        extensions: expect.objectContaining({ code: 'UNAVAILABLE' }),
      }),
    ]);
  }, 60_000);
});

describe.runIf(databases.includes('postgresql'))('the task engine heartbeat through a database outage', () => {
  test('logs its first failure and its recovery, not a line with a stack per beat', async () => {
    // Demo data: its pending installs run on the simulated app service, which stands still, so the engine beats for them.
    const { proxy, server } = await serverBehindProxy({ TASK_LEASE_MS: '600' });
    await waitFor(
      async () => (server.app.services.engine.running > 0 ? true : undefined),
      'the engine to run the demo installs',
    );
    const heartbeatLines = () =>
      server.logs
        .map((line) => JSON.parse(line) as { msg: string; failures?: number })
        .filter((line) => /heartbeat/.test(line.msg));

    proxy.cut('refuse');
    const cutAt = Date.now();
    await waitFor(
      async () => (heartbeatLines().length > 0 ? true : undefined),
      'the first failed heartbeat to be logged',
    );
    // The outage lasts three seconds (the fault's length, not a wait for anything): beats every
    // 200 ms, so a dozen or more fail, and only the first is logged.
    await waitFor(async () => (Date.now() - cutAt > 3000 ? true : undefined), 'three seconds of outage');
    proxy.restore();
    const lines = await waitFor(async () => {
      const seen = heartbeatLines();
      return seen.some((line) => line.msg.endsWith('recovered')) ? seen : undefined;
    }, 'the heartbeat to recover');
    expect(lines.map((line) => line.msg)).toEqual([
      'task engine: heartbeat failed',
      'task engine: heartbeat recovered',
    ]);
    expect(lines[1]?.failures).toBeGreaterThan(5);
  }, 60_000);
});

describe.runIf(databases.includes('postgresql'))('a periodic job that failed on the database', () => {
  test('history_cleanup says when its next run tries again, and clears at that run once the database is back', async () => {
    const { proxy, server } = await serverBehindProxy({
      DEMO_DATA: '0',
      HISTORY_CLEANUP_INTERVAL_MS: '2000',
      COLLECT_INTERVAL_MS: '200',
    });

    proxy.cut('refuse');
    const failed = await waitFor(async () => {
      const seen = await componentOf(server, 'history_cleanup');
      // Between runs: during one (running) the last error is shown as it is.
      return seen?.state === 'ERROR' && seen.message !== 'database unavailable' ? seen : undefined;
    }, 'history_cleanup to fail');
    expect(failed.message).toBe('database unavailable; tried again at its next run (every 2 s)');

    proxy.restore();
    const back = await waitFor(async () => {
      const seen = await componentOf(server, 'history_cleanup');
      return seen?.state === 'RUNNING' ? seen : undefined;
    }, 'history_cleanup to run again');
    expect(back.message).toBeNull();
  }, 60_000);
});
