/**
 * `apps` filtered by stage or health (derived fields) at 100,000 apps on SQLite: latency of one
 * page (first: 20) with and without totalCount, and the process's peak RSS. Not a test: run by
 * hand, once on the current source and once on the one before, and compare.
 *
 *   npx tsx bench/derived-filter.ts [sqlite file to reuse] [filter JSON]
 *
 * The fleet is bench/lib/seed-fleet.ts's (3 % FAILED, 2 % with an active task), written with the
 * raw driver into a freshly migrated file unless the file given exists already.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LOCAL_ADMIN } from '../src/auth/viewer.js';
import { createPrismaClient } from '../src/db/client.js';
import { migrateDatabase } from '../src/db/migrate.js';
import { createEventBus } from '../src/events/change-feed.js';
import { type AppFilter, InstalledAppService } from '../src/services/installed-app-service.js';
import { seedFleet } from './lib/seed-fleet.js';

const APPS = 100_000;
const file = process.argv[2] ?? path.join(mkdtempSync(path.join(tmpdir(), 'derived-filter-')), 'bench.db');
const filter = JSON.parse(process.argv[3] ?? '{"stage":["FAILED"]}') as AppFilter;
const url = `file:${file}`;

if (!existsSync(file)) {
  await migrateDatabase(url);
  const fleet = seedFleet(url, { apps: APPS });
  console.log(`seeded ${fleet.apps} apps in ${Math.round(fleet.ms)} ms: ${JSON.stringify(fleet.byState)}`);
}
const db = createPrismaClient(url);
const apps = new InstalledAppService(db, 100, createEventBus());
await db.appState.count(); // connect first: the connection is not what is measured

const mb = (kb: number) => `${Math.round(kb / 1024)} MB`;
console.log(`filter ${JSON.stringify(filter)}; RSS before ${mb(process.memoryUsage().rss / 1024)}`);
for (const withCount of [false, true, false, true]) {
  const started = performance.now();
  const page = await apps.list(LOCAL_ADMIN, filter, { first: 20 });
  const total = withCount ? await page.totalCount() : null;
  const ms = performance.now() - started;
  console.log(
    `page of ${page.edges.length}${withCount ? ` + totalCount ${total}` : ''}: ${ms.toFixed(1)} ms; peak RSS ${mb(process.resourceUsage().maxRSS)}`,
  );
}
await db.$disconnect();
