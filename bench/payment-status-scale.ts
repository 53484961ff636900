/**
 * `payments` filtered by status at 200,000 payments over 2,000 users (a fifth free, two fifths
 * purchased, the rest spread over four other statuses), on SQLite or PostgreSQL: one page
 * (first: 20) and its totalCount, three times each. Not a test: run by hand.
 *
 *   npx tsx bench/payment-status-scale.ts sqlite|postgresql
 */
import { LOCAL_ADMIN } from '../src/auth/viewer.js';
import { createPrismaClient } from '../src/db/client.js';
import { createEventBus } from '../src/events/change-feed.js';
import { CatalogService } from '../src/services/catalog-service.js';
import { type PaymentFilter, PaymentService } from '../src/services/payment-service.js';
import { createTestDatabase, type DatabaseKind } from '../test/support/databases.js';
import { timeFilteredPages } from './lib/filtered-pages.js';

const kind = process.argv[2] as DatabaseKind;
const database = await createTestDatabase(kind);
const db = createPrismaClient(database.url);
const series = (n: number) => `WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < ${n - 1})`;
const now = kind === 'sqlite' ? `'2026-12-01T00:00:00.000+00:00'` : `'2026-12-01T00:00:00Z'::timestamp`;
// n % 10: 0-1 FREE, 2-5 PURCHASED, 6 NOT_BUY, 7 PAYMENT_REQUIRED, 8 SIGNATURE_REQUIRED,
// 9 WAITING_DEVELOPER_CONFIRMATION.
const axis = (values: string[]) => `CASE n % 10 ${values.map((value, i) => `WHEN ${i} THEN '${value}'`).join(' ')} END`;
const started = performance.now();
await db.$executeRawUnsafe(`${series(200_000)}
  INSERT INTO "Payment" ("userId", "sourceId", "appId", "appName", "productId", "paymentNeed", "developerSync",
    "larePassSync", "signatureStatus", "paymentStatus", "jws", "vc", "updatedAt")
  SELECT 'u' || (n % 2000), 'market', 'app' || n, 'app' || n, 'product' || n,
    CASE WHEN n % 10 < 2 THEN 'not_required' ELSE 'required' END,
    ${axis(['not_started', 'not_started', 'completed', 'completed', 'completed', 'completed', 'not_started', 'completed', 'not_started', 'in_progress'])},
    'completed',
    ${axis(['not_evaluated', 'not_evaluated', 'required_and_signed', 'required_and_signed', 'required_and_signed', 'required_and_signed', 'not_evaluated', 'required_and_signed', 'required', 'required_and_signed'])},
    ${axis(['not_evaluated', 'not_evaluated', 'developer_confirmed', 'developer_confirmed', 'developer_confirmed', 'developer_confirmed', 'not_evaluated', 'notification_sent', 'not_notified', 'frontend_completed'])},
    CASE WHEN n % 10 BETWEEN 2 AND 7 OR n % 10 = 9 THEN 'jws' || n END,
    CASE WHEN n % 10 BETWEEN 2 AND 5 THEN 'vc' || n END, ${now} FROM g`);
if (kind === 'postgresql') await db.$executeRawUnsafe('ANALYZE');
console.log(`${kind}: seeded in ${Math.round(performance.now() - started)} ms`);
const payments = new PaymentService(db, 100, createEventBus(), new CatalogService(db, 100));
const filters: PaymentFilter[] = [
  { status: ['PAYMENT_RETRY_REQUIRED'] },
  { status: ['SYNCING', 'NOTIFICATION_SENT'] },
  { status: ['SIGNATURE_REQUIRED'] },
  { status: ['PURCHASED'] },
  { status: ['NOT_BUY'], userId: 'u6' },
];
await timeFilteredPages(LOCAL_ADMIN, (viewer, filter, page) => payments.list(viewer, filter, page), filters);
await db.$disconnect();
await database.drop();
