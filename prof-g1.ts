import { Pool } from 'undici';
import { buildApp } from './src/app/build-app.js';
import { loadConfig } from './src/platform/config.js';
import { createLogger } from './src/platform/logger.js';
import { G1_QUERIES } from './bench/g1-protocol.js';
import { g1ServerEnv } from './bench/lib/server-config.js';
import { rmSync } from 'node:fs';

rmSync('/tmp/prof/g1.db', { force: true });
import { migrateDatabase } from './src/db/migrate.js';
await migrateDatabase('file:/tmp/prof/g1.db');
const app = buildApp(loadConfig(g1ServerEnv('file:/tmp/prof/g1.db', true)), { logger: createLogger('silent') });
const { url } = await app.start(0);
await new Promise((r) => setTimeout(r, 2000));
const pool = new Pool(new URL(url).origin, { connections: 20 });
const which = (process.env.Q ?? 'viewer,app,tasks,catalog').split(',');
for (const q of G1_QUERIES.filter((q) => which.includes(q.key))) {
  const n = Number(process.env.N ?? 2000);
  const run = async (count: number) => {
    let left = count;
    await Promise.all(Array.from({ length: 20 }, async () => {
      while (left-- > 0) {
        const r = await pool.request({ path: '/graphql', method: 'POST', body: q.body, headers: { 'content-type': 'application/json' } });
        await r.body.text();
      }
    }));
  };
  await run(200);
  const cpu0 = process.cpuUsage(); const t0 = performance.now();
  await run(n);
  const t = performance.now() - t0; const cpu = process.cpuUsage(cpu0);
  console.log(q.key, (n / t * 1000).toFixed(0), 'req/s', ((cpu.user + cpu.system) / 1000 / n).toFixed(3), 'ms cpu/req (incl client)');
}
await pool.close();
await app.stop();
