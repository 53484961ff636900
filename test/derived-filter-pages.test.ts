import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LOCAL_ADMIN } from '../src/auth/viewer.js';
import { createPrismaClient, type Db } from '../src/db/client.js';
import type { PaymentRow } from '../src/db/models.js';
import { APP_STAGES, HEALTHS } from '../src/domain/app-stage.js';
import {
  derivePaymentStatus,
  PAYMENT_STATUSES,
  type PaymentStatus,
  statusesOfAxes,
} from '../src/domain/payment-status.js';
import { PAYMENT_NEEDS, PAYMENT_PROGRESS, SIGNATURE_STATUSES, SYNC_STATES } from '../src/domain/payments.js';
import { createEventBus } from '../src/events/change-feed.js';
import { CatalogService } from '../src/services/catalog-service.js';
import { DERIVED_FILTER_BATCH } from '../src/services/derived-pages.js';
import { InstalledAppService } from '../src/services/installed-app-service.js';
import type { Connection, PageArgs } from '../src/services/pagination.js';
import { MAX_NAMED_AXES, PaymentService } from '../src/services/payment-service.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { metricValue } from './support/metrics.js';
import { seededTest } from './support/seed.js';
import { AUTH_ENV, startTestServer, TOKENS, waitFor } from './support/server.js';
import { proxyDatabase } from './support/tcp-proxy.js';
import { rawRequest } from './support/untyped.js';

/**
 * `apps` and `payments` filtered by a derived field (stage, health; payment status) read the rows
 * a batch at a time instead of the whole table (services/derived-pages.ts): at 100,000 apps one
 * request of `apps(filter: {stage: [FAILED]})` took 4–11 s and ran a 512 MB heap out of memory.
 * Pages and totalCount are checked against the same rule applied to every row.
 */

const databases = await availableDatabases();
const axesKey = (row: PaymentRow) =>
  [row.paymentNeed, row.developerSync, row.signatureStatus, row.paymentStatus, row.signingForRestore].join();
const ROWS = 3_000;
const SOURCE = 'market.olares';
const TASK_TYPES = ['INSTALL', 'CLONE', 'UPGRADE', 'UNINSTALL', 'STOP', 'RESUME', 'CANCEL'];
/** States (and progress) giving every stage and health, in the cases deriveStage tells apart. */
const MIXED_STATES: [string, string | null][] = [
  ['', null],
  ['running', 'Downloading 40%'],
  ['Running', 'SYNCING'],
  ['running', 'ready'],
  ['downloading', null],
  ['initializing', null],
  ['installing', null],
  ['upgrading', null],
  ['uninstalling', null],
  ['stopping', null],
  ['stopped', 'downloading'],
  ['resuming', null],
  ['upgradeFailed', null],
  ['installingCancelFailed', null],
  ['stopCanceled', null],
  ['resumingCancelled', null],
  ['upgradingCanceled', null],
  ['pending', null],
  ['crashLoopBackOff', 'fetching'],
];

/**
 * Payments of every third combination of the axes the status is derived from (values outside each
 * axis too, as a hand-edited row), productId, jws and vc set or not by turns: a status some of them
 * can have is asked for by naming its combinations, one most can have by each axis's values
 * (MAX_NAMED_AXES). None that derives to PAYMENT_RETRY_REQUIRED: rows that could have it are held.
 */
const MIXED_PAYMENTS = (() => {
  const outside = (values: readonly string[]) => [...values, 'hand_edited'];
  const rows = [];
  let n = 0;
  for (const paymentNeed of outside(PAYMENT_NEEDS))
    for (const developerSync of outside(SYNC_STATES))
      for (const signatureStatus of outside(SIGNATURE_STATUSES))
        for (const paymentStatus of outside(PAYMENT_PROGRESS))
          for (const signingForRestore of [false, true]) {
            n += 1;
            if (n % 3 !== 0) continue;
            rows.push({
              ...{ paymentNeed, developerSync, signatureStatus, paymentStatus, signingForRestore },
              ...{
                userId: 'mixed',
                sourceId: SOURCE,
                appId: `mixed${n}`,
                appName: `mixed${n}`,
                larePassSync: 'completed',
              },
              ...{ productId: n % 2 ? 'product' : '', jws: n % 4 < 2 ? 'jws' : null, vc: n % 8 < 4 ? 'vc' : null },
            });
          }
  return rows.filter((row) => derivePaymentStatus(row) !== 'PAYMENT_RETRY_REQUIRED');
})();

describe.each(databases)('%s: lists filtered by a derived field', (kind) => {
  let database: TestDatabase;
  let db: Db;
  const statements: string[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    db = createPrismaClient(database.url, { onQuery: (query) => statements.push(query) });
    const at = new Date(Date.now() - 60_000);
    // Every 13th app failed, every 7th has a running upgrade (UPGRADING): matches spread over the ids.
    await db.appState.createMany({
      data: Array.from({ length: ROWS }, (_, index) => ({
        userId: `user${index % 40}`,
        sourceId: SOURCE,
        appName: `app${index}`,
        state: index % 13 === 0 ? 'installFailed' : 'running',
        installedVersion: '1.0.0',
        eventTime: at,
      })),
    });
    const upgrading = Array.from({ length: ROWS }, (_, index) => index).filter((index) => index % 7 === 0);
    await db.task.createMany({
      data: upgrading.map((index) => ({
        userId: `user${index % 40}`,
        sourceId: SOURCE,
        appName: `app${index}`,
        taskId: `upgrade-${index}`,
        type: 'UPGRADE',
        status: 'RUNNING',
        version: '2.0.0',
        activeKey: `user${index % 40}/${SOURCE}/app${index}`,
        metadata: { cfgType: 'app', envs: [], appId: `app${index}` },
        createdAt: at,
      })),
    });
    // Every state the rule reads, each with no task and with an active task of every type and status.
    const mixed = MIXED_STATES.flatMap(([state, progress], index) =>
      [null, ...TASK_TYPES.flatMap((type) => ['PENDING', 'RUNNING'].map((status) => ({ type, status })))].map(
        (task, taskIndex) => ({ appName: `mixed${index}-${taskIndex}`, state, progress, task }),
      ),
    );
    await db.appState.createMany({
      data: mixed.map(({ appName, state, progress }) => ({
        userId: 'mixed',
        sourceId: SOURCE,
        appName,
        state,
        progress,
        eventTime: at,
      })),
    });
    await db.task.createMany({
      data: mixed.flatMap(({ appName, task }) =>
        task
          ? [
              {
                userId: 'mixed',
                sourceId: SOURCE,
                appName,
                taskId: `mixed-${appName}`,
                type: task.type,
                status: task.status,
                activeKey: `mixed/${SOURCE}/${appName}`,
                metadata: { cfgType: 'app', envs: [], appId: appName },
                createdAt: at,
              },
            ]
          : [],
      ),
    });
    await db.payment.createMany({
      data: Array.from({ length: ROWS }, (_, index) => ({
        userId: `user${index % 40}`,
        sourceId: SOURCE,
        appId: `app${index}`,
        appName: `app${index}`,
        productId: index % 5 === 0 ? '' : `product${index}`,
        paymentNeed: index % 11 === 0 ? 'not_required' : 'required',
        developerSync: 'not_started',
        larePassSync: 'not_started',
        signatureStatus: index % 17 === 0 ? 'required' : 'not_evaluated',
        paymentStatus: 'not_notified',
      })),
    });
    await db.payment.createMany({ data: MIXED_PAYMENTS });
  }, 120_000);
  afterAll(async () => {
    await db?.$disconnect();
    await database?.drop();
  });

  const apps = () => new InstalledAppService(db, 100, createEventBus());
  const payments = () => new PaymentService(db, 100, createEventBus(), new CatalogService(db, 100));

  test('a filtered apps page reads its rows in bounded batches, not the table', async () => {
    for (const filter of [{ stage: ['FAILED' as const] }, { health: 'UNHEALTHY' as const }]) {
      statements.length = 0;
      const page = await apps().list(LOCAL_ADMIN, filter, { first: 20 });
      expect(page.edges).toHaveLength(20);
      const reads = statements.filter((statement) => /FROM\s+(["`]\w+["`]\.)?["`]AppState["`]/i.test(statement));
      // The distinct states, then 20 matches among the newest ~260 rows: one batch at most.
      expect(reads.length, reads.join('\n')).toBe(2);
      expect(reads.slice(1).every((statement) => /\bLIMIT\b/i.test(statement))).toBe(true);
    }
  });

  test('a stage no app can have reads only its candidates, not every row a batch at a time', async () => {
    // Only the mixed apps can be RESUMING (a `resuming` state, a RESUME task): before, this read all
    // ~3,300 rows in 7 statements of DERIVED_FILTER_BATCH; now the distinct states and one statement
    // of the candidates.
    const service = apps();
    statements.length = 0;
    const page = await service.list(LOCAL_ADMIN, { stage: ['RESUMING'] }, { first: 20 });
    const reads = statements.filter((statement) => /FROM\s+(["`]\w+["`]\.)?["`]AppState["`]/i.test(statement));
    expect(reads.length, reads.join('\n')).toBe(2);
    const mixed = await db.appState.findMany({ where: { userId: 'mixed' } });
    const resuming = (await service.stagesOf(mixed)).filter(({ stage }) => stage === 'RESUMING');
    expect(await page.totalCount()).toBe(resuming.length);
    statements.length = 0;
    const none = await service.list(LOCAL_ADMIN, { stage: ['RESUMING'], userId: 'user1' }, { first: 20 });
    expect(none.edges).toEqual([]);
    expect(await none.totalCount()).toBe(0);
    expect(statements.filter((statement) => /["`]AppState["`]/i.test(statement))).toHaveLength(3);
    expect(DERIVED_FILTER_BATCH).toBeLessThan(ROWS);
  });

  test('apps pages and totalCount by stage and health equal the rule applied to every row', async () => {
    const service = apps();
    const rows = await db.appState.findMany({ orderBy: { id: 'desc' } });
    const stages = await service.stagesOf(rows);
    for (const filter of [
      { stage: ['FAILED' as const] },
      { stage: ['UPGRADING' as const, 'FAILED' as const] },
      { health: 'UNHEALTHY' as const },
      { stage: ['RUNNING' as const], userId: 'user3' },
      { stage: ['RESUMING' as const] },
      ...APP_STAGES.map((stage) => ({ stage: [stage] })),
      ...HEALTHS.map((health) => ({ health })),
      { stage: ['FETCHING' as const, 'STOPPED' as const], health: 'UNKNOWN' as const },
    ]) {
      const truth = rows
        .filter((row, index) => {
          const { stage, health } = stages[index] as { stage: string; health: string };
          return (
            (!('stage' in filter) || (filter.stage as string[]).includes(stage)) &&
            (!('health' in filter) || filter.health === health) &&
            (!('userId' in filter) || filter.userId === row.userId)
          );
        })
        .map((row) => row.id);
      await expectPages((page) => service.list(LOCAL_ADMIN, filter, page), truth, JSON.stringify(filter));
    }
  });

  test('payments pages and totalCount by status equal the rule applied to every payment', async () => {
    const service = payments();
    const rows = await db.payment.findMany({ orderBy: { id: 'desc' } });
    const filters: { status: PaymentStatus[]; userId?: string }[] = [
      ...PAYMENT_STATUSES.map((status) => ({ status: [status] })),
      { status: ['SIGNATURE_REQUIRED', 'NOT_EVALUATED'] },
      { status: ['FREE', 'PURCHASED', 'SYNCING'] },
      { status: ['NOT_BUY'], userId: 'mixed' },
      { status: ['FREE'], userId: 'user3' },
    ];
    // Both forms of the candidates are asked for: some statuses fit few combinations, others many.
    const fits = PAYMENT_STATUSES.map(
      (status) => new Set(rows.filter((row) => statusesOfAxes(row).has(status)).map(axesKey)).size,
    );
    expect(Math.min(...fits)).toBeLessThanOrEqual(MAX_NAMED_AXES);
    expect(Math.max(...fits)).toBeGreaterThan(MAX_NAMED_AXES);
    for (const filter of filters) {
      const truth = rows.filter(
        (row) =>
          filter.status.includes(derivePaymentStatus(row)) &&
          (filter.userId === undefined || filter.userId === row.userId),
      );
      statements.length = 0;
      await expectPages(
        (page) => service.list(LOCAL_ADMIN, filter, page),
        truth.map((row) => row.id),
        JSON.stringify(filter),
      );
      // The rows read, not the combinations of axes held (db/payment-status-sql.ts).
      const reads = statements.filter(
        (statement) => /FROM\s+(["`]\w+["`]\.)?["`]Payment["`]/i.test(statement) && !/DISTINCT|"axes"/.test(statement),
      );
      expect(reads.length).toBeGreaterThan(0);
      expect(
        reads.every((statement) => /\bLIMIT\b/i.test(statement)),
        reads.join('\n'),
      ).toBe(true);
    }
  }, 240_000);

  test('a status no payment has reads only its candidates, not every row a batch at a time', async () => {
    // Only mixed payments notified to pay whose signature has no record can be PAYMENT_RETRY_REQUIRED,
    // and none is (MIXED_PAYMENTS). Before, this read all ~3,900 rows: 8 statements of
    // DERIVED_FILTER_BATCH for the page and 2 for the count; now the combinations held, one statement
    // of the candidates for the page and one for the count.
    const service = payments();
    const rows = await db.payment.findMany();
    expect(rows.filter((row) => derivePaymentStatus(row) === 'PAYMENT_RETRY_REQUIRED')).toEqual([]);
    expect(rows.filter((row) => statusesOfAxes(row).has('PAYMENT_RETRY_REQUIRED')).length).toBeGreaterThan(0);
    statements.length = 0;
    const page = await service.list(LOCAL_ADMIN, { status: ['PAYMENT_RETRY_REQUIRED'] }, { first: 20 });
    expect(page.edges).toEqual([]);
    expect(await page.totalCount()).toBe(0);
    const reads = statements.filter((statement) => /FROM\s+(["`]\w+["`]\.)?["`]Payment["`]/i.test(statement));
    expect(reads.length, reads.join('\n')).toBe(3);
    expect(DERIVED_FILTER_BATCH).toBeLessThan(ROWS);
  });
});

describe.each(databases)('%s: a stage filter after a mutation', (kind) => {
  const test = seededTest(kind, { env: AUTH_ENV });

  test('a stop shows through the stage filter in the answer to the next query of the same client', async ({
    server,
    seed,
    expect,
  }) => {
    await seed.catalogApp({ name: 'hoarder', versions: ['0.19.0'] });
    await seed.user('alice').app({ appName: 'hoarder', state: 'running', version: '0.19.0' });
    const names = async (stages: string) => {
      const response = await rawRequest(
        server,
        { query: `{ apps(first: 20, filter: { stage: [${stages}] }) { totalCount edges { node { appName } } } }` },
        { token: TOKENS.alice },
      );
      const apps = response.body?.data?.apps as { totalCount: number; edges: { node: { appName: string } }[] };
      return { total: apps.totalCount, names: apps.edges.map((edge) => edge.node.appName) };
    };
    expect(await names('STOPPING, STOPPED')).toEqual({ total: 0, names: [] });
    expect(await names('RUNNING')).toEqual({ total: 1, names: ['hoarder'] });
    const stop = await rawRequest(
      server,
      {
        query: `mutation { stopApp(input: { sourceId: "${SOURCE}", appName: "hoarder" }) { __typename } }`,
      },
      { token: TOKENS.alice },
    );
    expect(stop.body?.data).toEqual({ stopApp: { __typename: 'StopAppSuccess' } });
    // Stopping or already stopped, whichever the app service got to: no longer running, in either list.
    expect(await names('STOPPING, STOPPED')).toEqual({ total: 1, names: ['hoarder'] });
    expect(await names('RUNNING')).toEqual({ total: 0, names: [] });
  });
});

/**
 * A client that leaves while its derived filter scans the table: the scan stops before its next
 * batch (it went on to the end, each batch a statement taking a pool connection from everyone
 * else). The proxy holds the database's answer to the first batch until the server has seen the
 * client go; then the statements the request sent are counted once its execution ended.
 */
describe.runIf(databases.includes('postgresql'))('a derived filter whose client left', () => {
  const APPS = 20_000;
  test.each([
    // Every app is running while downloading (FETCHING), so each is a candidate of a RUNNING filter
    // (its state can give it) that its progress then rules out: the page reads every row, 500 at a
    // time, and totalCount counts every row, 2,000 at a time.
    ['page', '{ apps(first: 1, filter: { stage: [RUNNING] }) { edges { node { appName } } } }'],
    ['totalCount', '{ apps(first: 1, filter: { stage: [RUNNING] }) { totalCount } }'],
  ])(
    'its %s stops reading once the client went away',
    async (_, selection) => {
      const database = await createTestDatabase('postgresql');
      const { proxy, url } = await proxyDatabase(database.url);
      const server = await startTestServer('postgresql', {
        database: { ...database, url },
        env: { ...AUTH_ENV, DEMO_DATA: '0' },
        recordQueries: true,
      });
      try {
        const direct = new pg.Client({ connectionString: database.url });
        await direct.connect();
        await direct.query(
          `INSERT INTO "AppState" ("userId", "sourceId", "appName", "state", "progress", "installedVersion", "eventTime", "updatedAt")
         SELECT 'user' || (n % 40), $1, 'app' || n, 'running', 'downloading', '1.0.0', now(), now() FROM generate_series(1, ${APPS}) AS n`,
          [SOURCE],
        );
        await direct.end();
        const scans = () => server.queries.filter((sql) => /FROM "AppState".*ORDER BY "id"/s.test(sql)).length;
        const reads = () => server.queries.filter((sql) => /FROM "AppState"/.test(sql)).length;
        const before = scans();
        const readsBefore = reads();
        proxy.holdAnswers();
        const leaving = new AbortController();
        const answer = fetch(server.graphqlUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.ops}` },
          body: JSON.stringify({ query: `query AbandonedScan ${selection}` }),
          signal: leaving.signal,
        }).catch(() => 'aborted');
        // Its first statement (the distinct states its candidates come from), held with its answer.
        await waitFor(async () => (reads() > readsBefore ? true : undefined), 'the first read');
        leaving.abort();
        expect(await answer).toBe('aborted');
        await waitFor(
          async () => (server.logs.some((line) => /"cutBy":"client"/.test(line)) ? true : undefined),
          'the request cut',
        );
        proxy.releaseAnswers();
        const ended = 'market_graphql_operation_duration_seconds_count{operation="AbandonedScan",type="query"}';
        await waitFor(async () => ((await metricValue(server, ended)) === 1 ? true : undefined), 'the execution ended');
        // The batch begun when the client left (it waited for the held candidates), and none after it
        // (without the check: 41 statements for the page, 52 for the page and its count).
        expect(scans() - before).toBe(1);
        expect(await metricValue(server, 'market_graphql_errors_total{code="CLIENT_GONE"}')).toBe(1);
        expect(server.logs.filter((line) => line.includes('unexpected error'))).toEqual([]);
      } finally {
        proxy.releaseAnswers();
        await server.stop();
        await proxy.close();
        await database.drop();
      }
    },
    60_000,
  );
});

/** Walks every page forwards and backwards (40 rows a page) and checks ids, pageInfo and totalCount. */
async function expectPages(
  list: (page: PageArgs) => Promise<Connection<{ id: number }>>,
  truth: number[],
  label: string,
): Promise<void> {
  const forwards: number[] = [];
  let after: string | null = null;
  for (let pages = 0; ; pages += 1) {
    const page: Connection<{ id: number }> = await list({ first: 40, ...(after ? { after } : {}) });
    forwards.push(...page.edges.map((edge) => edge.node.id));
    expect(page.pageInfo.hasPreviousPage, label).toBe(pages > 0);
    if (pages === 0) expect(await page.totalCount(), label).toBe(truth.length);
    if (!page.pageInfo.hasNextPage) break;
    after = page.pageInfo.endCursor;
  }
  expect(forwards, label).toEqual(truth);
  const backwards: number[] = [];
  let before: string | null = null;
  for (let pages = 0; ; pages += 1) {
    const page: Connection<{ id: number }> = await list({ last: 40, ...(before ? { before } : {}) });
    backwards.unshift(...page.edges.map((edge) => edge.node.id));
    expect(page.pageInfo.hasNextPage, label).toBe(pages > 0);
    if (!page.pageInfo.hasPreviousPage) break;
    before = page.pageInfo.startCursor;
  }
  expect(backwards, label).toEqual(truth);
}
