/**
 * `apps` filtered by stage or health at 100,000 apps over 2,000 users (a sixth failed, a sixth
 * stopped; 200,000 tasks, 200 of them running installs), on SQLite or PostgreSQL: one page
 * (first: 20) and its totalCount, three times each. Not a test: run by hand.
 *
 *   npx tsx bench/derived-filter-scale.ts sqlite|postgresql
 */
import { LOCAL_ADMIN } from '../src/auth/viewer.js';
import { createPrismaClient } from '../src/db/client.js';
import { createEventBus } from '../src/events/change-feed.js';
import { type AppFilter, InstalledAppService } from '../src/services/installed-app-service.js';
import { createTestDatabase, type DatabaseKind } from '../test/support/databases.js';
import { timeFilteredPages } from './lib/filtered-pages.js';

const kind = process.argv[2] as DatabaseKind;
const database = await createTestDatabase(kind);
const db = createPrismaClient(database.url);
const series = (n: number) => `WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < ${n - 1})`;
const now = kind === 'sqlite' ? `'2026-12-01T00:00:00.000+00:00'` : `'2026-12-01T00:00:00Z'::timestamp`;
const started = performance.now();
// 100,000 apps over 2,000 users: running, stopped and installFailed as in the review's fill.
await db.$executeRawUnsafe(`${series(100_000)}
  INSERT INTO "AppState" ("userId", "sourceId", "appName", "state", "eventTime", "updatedAt")
  SELECT 'u' || (n % 2000), 'upload', 'app' || n,
    CASE n % 6 WHEN 3 THEN 'stopped' WHEN 4 THEN 'installFailed' ELSE 'running' END, ${now}, ${now} FROM g`);
// 200,000 finished tasks and 200 running installs (apps whose state is running).
await db.$executeRawUnsafe(`${series(200_000)}
  INSERT INTO "Task" ("taskId", "type", "status", "userId", "sourceId", "appName", "metadata", "activeKey", "updatedAt")
  SELECT 't' || n, 'INSTALL', CASE WHEN n < 200 THEN 'RUNNING' ELSE 'COMPLETED' END, 'u' || ((n * 6) % 2000), 'upload',
    'app' || ((n * 6) % 100000), '{}', CASE WHEN n < 200 THEN 'u' || ((n * 6) % 2000) || '/upload/app' || ((n * 6) % 100000) END,
    ${now} FROM g`);
if (kind === 'postgresql') await db.$executeRawUnsafe('ANALYZE');
console.log(`${kind}: seeded in ${Math.round(performance.now() - started)} ms`);
const apps = new InstalledAppService(db, 100, createEventBus());
const filters: AppFilter[] = [
  { stage: ['FAILED'] },
  { stage: ['UPGRADING'] },
  { stage: ['INSTALLING'] },
  { health: 'UNKNOWN' },
  { stage: ['FAILED'], userId: 'u4' },
];
await timeFilteredPages(LOCAL_ADMIN, (viewer, filter, page) => apps.list(viewer, filter, page), filters);
await db.$disconnect();
await database.drop();
