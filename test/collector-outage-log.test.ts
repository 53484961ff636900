import { afterEach, describe, expect, test } from 'vitest';
import { availableDatabases, createTestDatabase } from './support/databases.js';
import { startTestServer, waitFor } from './support/server.js';
import { proxyDatabase } from './support/tcp-proxy.js';
import { componentOf } from './support/untyped.js';

/**
 * The collector's log through a database blackhole: each failing check is logged once, then at
 * most once a minute, then its recovery, whatever its message does meanwhile. A timed-out check's
 * message goes back and forth between "no answer within" and "still waiting for the previous
 * check" as the hung query ends and the next one hangs: logged at each change, that was four lines
 * with stacks every ~6 s for the whole outage.
 */

const databases = await availableDatabases();

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

const OUTAGE_MS = 15_000;

interface LogLine {
  msg: string;
  time: number;
  source?: string;
  err?: string | { message: string; stack?: string };
}

describe.runIf(databases.includes('postgresql'))('collector checks during a database blackhole', () => {
  test('each source is logged once while it fails and once when it recovers, timeouts without a stack', async () => {
    const database = await createTestDatabase('postgresql');
    disposers.push(() => database.drop());
    const { proxy, url: proxiedUrl } = await proxyDatabase(database.url);
    disposers.push(() => proxy.close());
    const server = await startTestServer('postgresql', {
      database: { ...database, url: proxiedUrl },
      env: { DEMO_DATA: '0', COLLECT_INTERVAL_MS: '1000' },
    });
    disposers.push(async () => {
      proxy.restore(); // a server stopping during a cut would wait for its database in vain
      await server.stop();
    });
    await waitFor(
      async () => ((await componentOf(server, 'collector'))?.state === 'RUNNING' ? true : undefined),
      'a first healthy cycle',
    );

    const from = server.logs.length;
    proxy.cut('hold');
    const cutAt = Date.now();
    // Cycles go on through the outage: long enough for hung checks to end and hang again.
    await waitFor(
      async () => {
        const collector = await componentOf(server, 'collector');
        const errors = (collector?.metrics.errors ?? {}) as Record<string, string>;
        const at = Date.parse(String(collector?.metrics.lastCycleAt));
        return 'database' in errors && at - cutAt >= OUTAGE_MS ? true : undefined;
      },
      'the outage to last its time, the database check failing',
      OUTAGE_MS + 20_000,
    );
    proxy.restore();
    await waitFor(
      async () => ((await componentOf(server, 'collector'))?.state === 'RUNNING' ? true : undefined),
      'the collector to recover',
      30_000,
    );

    // From the start on: a failure within a minute of the last line is only counted (RepeatedFailure).
    const lines = server.logs.map((line) => JSON.parse(line) as LogLine);
    const failing = lines.filter((line) => line.msg === 'check failed' || line.msg === 'check still failing');
    const bySource = new Map<string, number[]>();
    for (const line of failing)
      bySource.set(String(line.source), [...(bySource.get(String(line.source)) ?? []), line.time]);
    expect(failing.filter((line) => line.time >= cutAt).map((line) => line.source)).toContain('database');
    for (const [source, times] of bySource) {
      const gaps = times.slice(1).map((time, index) => time - (times[index] as number));
      expect({ source, gaps: gaps.filter((gap) => gap < 60_000) }).toEqual({ source, gaps: [] });
    }
    const timeouts = failing.filter((line) => /no answer within|still waiting/.test(JSON.stringify(line.err)));
    for (const line of timeouts) expect(line.err).toEqual(expect.any(String));
    const recovered = lines.slice(from).filter((line) => line.msg === 'check recovered');
    expect(recovered.map((line) => line.source)).toContain('database');
  }, 120_000);
});
