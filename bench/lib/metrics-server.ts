/**
 * Server process of the metrics benchmark (bench/metrics.ts): the real server (`buildApp`) over
 * DATABASE_URL, in one of three roles (METRICS_BENCH_ROLE):
 *
 *  - `fleet`: the database holds a seeded fleet (seed-fleet.ts), no demo data, the subscriber
 *    environment of the fan-out benchmarks (server-config.ts); the parent opens the subscriptions
 *    and scrapes /metrics over HTTP. `scrape` times `registry.metrics()` in-process as well.
 *  - `g1-on` / `g1-off`: as bench/g1-servers.ts's subject (demo data, silent logs, mutation rate
 *    limit off), with metrics (the default) or built without them (`buildApp`'s internal
 *    `metrics: false`, not a setting): the same server, minus every counter, hook and gauge.
 */
import { buildApp } from '../../src/app/build-app.js';
import { loadConfig } from '../../src/platform/config.js';
import { createLogger } from '../../src/platform/logger.js';
import { cpuSample, failed, fdLimit, send, serve } from './fanout-child.js';
import { g1ServerEnv, SUBSCRIBER_SERVER_ENV } from './server-config.js';

export type MetricsServerRole = 'fleet' | 'g1-on' | 'g1-off';

export type MetricsServerRequest =
  | { id: number; type: 'cpu' }
  | { id: number; type: 'stats' }
  /** Times `count` in-process renders of the exposition (ms each). */
  | { id: number; type: 'scrape'; count: number }
  | { id: number; type: 'stop' };

export interface ScrapeTimes {
  ms: number[];
  bytes: number;
  series: number;
}

const SETTLE_TIMEOUT_MS = 60_000;

function configFor(role: MetricsServerRole) {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl?.startsWith('file:')) throw new Error('DATABASE_URL must be a file: URL');
  // An explicit environment, never process.env: stray AUTH_* variables would leave local mode.
  if (role === 'fleet') return loadConfig({ ...SUBSCRIBER_SERVER_ENV, DATABASE_URL: databaseUrl, DEMO_DATA: '0' });
  return loadConfig(g1ServerEnv(databaseUrl, true));
}

async function main(): Promise<void> {
  const role = process.env.METRICS_BENCH_ROLE as MetricsServerRole | undefined;
  if (role !== 'fleet' && role !== 'g1-on' && role !== 'g1-off') {
    throw new Error(`METRICS_BENCH_ROLE must be fleet, g1-on or g1-off (got ${role})`);
  }
  const app = buildApp(configFor(role), { logger: createLogger('silent'), metrics: role !== 'g1-off' });
  const { url } = await app.start(0);
  // Until the engine has run the demo data's pending tasks: the answers no longer change.
  const started = performance.now();
  while ((await app.db.task.count({ where: { status: { in: ['PENDING', 'RUNNING'] } } })) > 0) {
    if (performance.now() - started > SETTLE_TIMEOUT_MS) throw new Error('demo tasks did not settle');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  serve<MetricsServerRequest>(async (request) => {
    if (request.type === 'cpu') return cpuSample();
    if (request.type === 'stats') return app.subscriptionStats();
    if (request.type === 'scrape') {
      if (!app.metrics) throw new Error('built without metrics');
      const ms: number[] = [];
      let body = '';
      for (let index = 0; index < request.count; index++) {
        const began = performance.now();
        body = (await app.metrics.scrape()).body;
        ms.push(performance.now() - began);
      }
      const series = body.split('\n').filter((line) => line && !line.startsWith('#')).length;
      return { ms, bytes: Buffer.byteLength(body), series } satisfies ScrapeTimes;
    }
    return null;
  }, app.stop);
  send({
    type: 'ready',
    url,
    fdLimit: fdLimit(),
    pid: process.pid,
    detail: { apps: app.services.store.summary().totalApps },
  });
}

main().catch(failed);
