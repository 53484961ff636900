/**
 * The catalogue sync of issue 13 ("Benchmark"): a full sync of a 2,000-app catalogue from a
 * local fake source ÷ raw driver inserts of the same rows (target ≥ 0.5), and the server CPU of
 * a sync whose hash did not move (target ≤ 2 ms).
 *
 * Processes: the fake market source (bench/catalogue-source.ts: test/support/fake-market-source.ts
 * over bench/lib/catalogue-entries.ts, speaking the real protocol over HTTP) in a child process
 * pinned to core 1, so that serving the catalogue is not the Syncer's CPU; the Syncer in this
 * process, pinned to core 0. The database server (PostgreSQL) is not pinned.
 *
 *  1. Full sync (subject): per repetition a fresh migrated database with the default sources
 *     (`market.olares` pointed at the fake source, as MARKET_SOURCE_URL does), the services built
 *     by createServices (not started: the Syncer is services.catalogueSync, with its
 *     catalogue-change announcement and history record, as in the server); timed: one
 *     `syncNow('market.olares')` from an empty catalogue to every app (hash, index, details in
 *     batches, one write transaction, the announcement). Setting up the database and the client
 *     is not timed.
 *  2. Raw inserts (baseline): the rows the Syncer wrote (every CatalogApp column, read back from
 *     the first synced database, so the values are the same), inserted into a fresh migrated
 *     database in one transaction with the raw driver, apps then their categories, plus the
 *     source's status update the sync also writes. SQLite: better-sqlite3, one prepared INSERT
 *     per row (the fastest way with that driver). PostgreSQL: pg, multi-row INSERTs of 500 apps
 *     `RETURNING id`, then one multi-row INSERT of the categories (one round trip per row would
 *     flatter the Syncer, whose createMany sends multi-row statements too).
 *     Repetitions alternate subject and baseline, after one warm-up of each (not counted).
 *     Ratio = raw apps/s ÷ sync apps/s, i.e. raw time ÷ sync time.
 *  3. Unchanged hash: after the last full sync, `unchanged` further syncNow calls (after 20
 *     warm-up calls), each reading only the hash and writing the source's status; the CPU of this
 *     process (process.cpuUsage: the Syncer, Prisma and, for SQLite, the database engine itself;
 *     not the fake source, in its own process; not the PostgreSQL server) ÷ calls, against the
 *     2 ms budget (an absolute target: baseline = the budget, ratio = CPU ÷ 2 ms ≤ 1).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createServices } from '../src/app/create-services.js';
import { createPrismaClient, databaseProvider, prepareDatabase, sqliteFilePath } from '../src/db/client.js';
import { ensureDefaultSources, REMOTE_SOURCE } from '../src/db/default-sources.js';
import { migrateDatabase } from '../src/db/migrate.js';
import { readCatalogueEntry } from '../src/domain/catalogue-entry.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logger.js';
import { fingerprint } from '../src/services/catalogue-plan.js';
import type { CatalogueSourceRequest } from './catalogue-source.js';
import { benchEntries } from './lib/catalogue-entries.js';
import { Child, canPin } from './lib/fanout-parent.js';
import type { CpuSample } from './lib/fanout-protocol.js';
import { pinThisProcess } from './lib/http-load.js';
import { type BenchResult, meetsTarget } from './lib/report.js';
import { median, percentile, round } from './lib/stats.js';

export interface CatalogueOptions {
  apps: number;
  /** Measured repetitions per side (after one warm-up each). */
  reps: number;
  /** Unchanged-hash syncs measured after the last full sync. */
  unchanged: number;
  /** Also on PostgreSQL, with this many repetitions per side (0: SQLite only). */
  postgresReps: number;
  log?: (line: string) => void;
}

export const TARGETS = {
  /** Raw inserts time ÷ full sync time. */
  fullSync: 0.5,
  /** Server CPU per unchanged-hash sync, ms. */
  unchangedCpuMs: 2,
};

const SOURCE_ENTRY = new URL('./catalogue-source.ts', import.meta.url).href;
const SYNCER_CORE = 0;
const SOURCE_CORE = 1;
const UNCHANGED_WARMUP = 20;
const PG_BATCH = 500;

const ADMIN_POSTGRES_URL =
  process.env.BENCH_POSTGRES_URL ?? process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

type Source = Child<CatalogueSourceRequest>;
type Provider = 'sqlite' | 'postgresql';

/** A CatalogApp row as stored (every column but the id), and its categories. */
interface StoredRows {
  apps: Record<string, unknown>[];
  categories: Map<string, string[]>;
  categoryCount: number;
}

interface SyncRep {
  ms: number;
  cpuMs: number;
  sourceCpuMs: number;
  requests: Record<string, number>;
}

interface UnchangedRun {
  calls: number;
  cpuMsPerSync: number;
  wallMsPerSync: number;
  p50Ms: number;
  p99Ms: number;
  sourceCpuMsPerSync: number;
  requests: Record<string, number>;
}

interface ScratchDatabase {
  url: string;
  drop(): Promise<void>;
}

const ms = (value: number, digits = 1) => `${Number.isFinite(value) ? value.toFixed(digits) : 'n/a'} ms`;
const cpuMs = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

/** Fresh migrated databases of one provider, in a temporary directory or on the admin connection. */
function scratchDatabases(provider: Provider) {
  let dir: string | null = null;
  let counter = 0;
  return {
    async create(): Promise<ScratchDatabase> {
      counter += 1;
      if (provider === 'sqlite') {
        dir ??= mkdtempSync(path.join(tmpdir(), 'market-bench-catalogue-'));
        const file = path.join(dir, `catalogue-${counter}.db`);
        const url = `file:${file}`;
        await migrateDatabase(url);
        return {
          url,
          drop: async () => {
            for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
          },
        };
      }
      const name = `bench_catalogue_${process.pid}_${Date.now().toString(36)}_${counter}`;
      const admin = async (sql: string) => {
        const client = new pg.Client({ connectionString: ADMIN_POSTGRES_URL, connectionTimeoutMillis: 5000 });
        await client.connect();
        try {
          await client.query(sql);
        } finally {
          await client.end().catch(() => {});
        }
      };
      await admin(`CREATE DATABASE ${name}`);
      const url = new URL(ADMIN_POSTGRES_URL);
      url.pathname = `/${name}`;
      const drop = () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      try {
        await migrateDatabase(url.toString());
      } catch (error) {
        await drop().catch(() => {});
        throw error;
      }
      return { url: url.toString(), drop };
    },
    cleanup() {
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The Syncer as the server builds it (createServices → createCatalogue), over `url`, with market.olares on `sourceUrl`. */
async function syncerOver(url: string, sourceUrl: string) {
  const config = loadConfig({
    DATABASE_URL: url,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    MARKET_SOURCE_URL: sourceUrl,
    SIMULATED_STEP_MS: '0',
  });
  const db = createPrismaClient(url);
  await prepareDatabase(db, url);
  await ensureDefaultSources(db, sourceUrl);
  const services = createServices({ db, config, logger: createLogger('silent') });
  return { db, syncer: services.catalogueSync };
}

/** One full sync from an empty catalogue; optionally the unchanged-hash syncs after it, and the rows it wrote. */
async function fullSync(
  database: ScratchDatabase,
  source: Source,
  apps: number,
  after: { unchanged?: number; readRows?: boolean },
): Promise<{ rep: SyncRep; unchanged?: UnchangedRun; rows?: StoredRows }> {
  const { db, syncer } = await syncerOver(database.url, source.ready.url as string);
  try {
    await source.request({ type: 'requests' });
    const sourceCpu0 = await source.request<CpuSample>({ type: 'cpu' });
    const cpu0 = cpuMs();
    const t0 = performance.now();
    const outcome = await syncer.syncNow(REMOTE_SOURCE);
    const wall = performance.now() - t0;
    const cpu = cpuMs() - cpu0;
    const sourceCpu1 = await source.request<CpuSample>({ type: 'cpu' });
    const requests = await source.request<Record<string, number>>({ type: 'requests' });
    if (outcome.error) throw new Error(`full sync failed: ${outcome.error}`);
    if (outcome.rejected.length)
      throw new Error(`full sync rejected entries: ${outcome.rejected.slice(0, 3).join('; ')}`);
    const stored = await db.catalogApp.count({ where: { sourceId: REMOTE_SOURCE } });
    if (outcome.added.length !== apps || stored !== apps) {
      throw new Error(`full sync added ${outcome.added.length}, stored ${stored}, of ${apps} apps`);
    }
    const rep: SyncRep = {
      ms: wall,
      cpuMs: cpu,
      sourceCpuMs: (sourceCpu1.cpuMicros - sourceCpu0.cpuMicros) / 1000,
      requests,
    };
    const result: { rep: SyncRep; unchanged?: UnchangedRun; rows?: StoredRows } = { rep };
    if (after.unchanged) result.unchanged = await unchangedSyncs(syncer, source, after.unchanged);
    if (after.readRows) result.rows = await readRows(database.url);
    return result;
  } finally {
    await db.$disconnect();
  }
}

async function unchangedSyncs(
  syncer: Awaited<ReturnType<typeof syncerOver>>['syncer'],
  source: Source,
  calls: number,
): Promise<UnchangedRun> {
  const once = async () => {
    const outcome = await syncer.syncNow(REMOTE_SOURCE);
    if (outcome.error || outcome.read) throw new Error(`unchanged sync read or failed: ${outcome.error ?? 'read'}`);
  };
  for (let i = 0; i < UNCHANGED_WARMUP; i++) await once();
  await source.request({ type: 'requests' });
  const sourceCpu0 = await source.request<CpuSample>({ type: 'cpu' });
  const samples: number[] = [];
  const cpu0 = cpuMs();
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) {
    const start = performance.now();
    await once();
    samples.push(performance.now() - start);
  }
  const wall = performance.now() - t0;
  const cpu = cpuMs() - cpu0;
  const sourceCpu1 = await source.request<CpuSample>({ type: 'cpu' });
  const requests = await source.request<Record<string, number>>({ type: 'requests' });
  return {
    calls,
    cpuMsPerSync: cpu / calls,
    wallMsPerSync: wall / calls,
    p50Ms: percentile(samples, 50),
    p99Ms: percentile(samples, 99),
    sourceCpuMsPerSync: (sourceCpu1.cpuMicros - sourceCpu0.cpuMicros) / 1000 / calls,
    requests,
  };
}

/**
 * The rows the Syncer writes for the bench catalogue, built the way it builds them
 * (readCatalogueEntry of each entry, the columns of catalogue-writes.ts, JSON as text), for when
 * no synced database is there to read them back from (a sync that failed).
 */
function builtRows(apps: number, provider: Provider): StoredRows {
  const now = new Date();
  const categories = new Map<string, string[]>();
  let categoryCount = 0;
  const rows = benchEntries(apps).map((served) => {
    const appId = served.id as string;
    const reading = readCatalogueEntry(appId, served);
    if (!reading.ok) throw new Error(reading.reason);
    const row = reading.row;
    categories.set(appId, row.categories);
    categoryCount += row.categories.length;
    return {
      sourceId: REMOTE_SOURCE,
      appId,
      name: row.name,
      version: row.version,
      versions: JSON.stringify(row.versions),
      cfgType: row.cfgType,
      title: row.title,
      description: row.description,
      searchText: row.searchText,
      paid: provider === 'sqlite' ? Number(row.paid) : row.paid,
      price: row.price === null ? null : JSON.stringify(row.price),
      entry: JSON.stringify(row.entry),
      summaryHash: fingerprint(served),
      createdAt: provider === 'sqlite' ? now.toISOString() : now,
      updatedAt: provider === 'sqlite' ? now.toISOString() : now,
    } as Record<string, unknown>;
  });
  return { apps: rows, categories, categoryCount };
}

/** Every CatalogApp column as stored (JSON columns as their text), and the categories by appId. */
async function readRows(url: string): Promise<StoredRows> {
  const categories = new Map<string, string[]>();
  const add = (appId: string, category: string) => {
    const list = categories.get(appId) ?? [];
    list.push(category);
    categories.set(appId, list);
  };
  if (databaseProvider(url) === 'sqlite') {
    const db = new Database(sqliteFilePath(url), { readonly: true });
    try {
      const apps = (db.prepare('SELECT * FROM "CatalogApp" ORDER BY id').all() as Record<string, unknown>[]).map(
        ({ id: _id, ...row }) => row,
      );
      const cats = db
        .prepare(
          'SELECT a."appId" AS "appId", c.category AS category FROM "CatalogAppCategory" c JOIN "CatalogApp" a ON a.id = c."catalogAppId" ORDER BY c."catalogAppId", c.category',
        )
        .all() as { appId: string; category: string }[];
      for (const { appId, category } of cats) add(appId, category);
      return { apps, categories, categoryCount: cats.length };
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const apps = (
      await client.query(
        `SELECT "sourceId", "appId", name, version, versions::text AS versions, "cfgType", title, description,
                "searchText", paid, price::text AS price, entry::text AS entry, "summaryHash", "createdAt", "updatedAt"
           FROM "CatalogApp" ORDER BY id`,
      )
    ).rows as Record<string, unknown>[];
    const cats = (
      await client.query(
        'SELECT a."appId", c.category FROM "CatalogAppCategory" c JOIN "CatalogApp" a ON a.id = c."catalogAppId" ORDER BY c."catalogAppId", c.category',
      )
    ).rows as { appId: string; category: string }[];
    for (const { appId, category } of cats) add(appId, category);
    return { apps, categories, categoryCount: cats.length };
  } finally {
    await client.end();
  }
}

const APP_COLUMNS = [
  'sourceId',
  'appId',
  'name',
  'version',
  'versions',
  'cfgType',
  'title',
  'description',
  'searchText',
  'paid',
  'price',
  'entry',
  'summaryHash',
  'createdAt',
  'updatedAt',
] as const;
const JSON_COLUMNS = new Set(['versions', 'price', 'entry']);

/** The market.olares row as the Syncer leaves it (status columns). */
function sourceStatus(durationMs: number) {
  const now = new Date();
  return {
    catalogHash: 'bench-hash',
    syncedAt: now,
    syncAttemptAt: now,
    syncDurationMs: Math.round(durationMs),
    nextSyncAt: new Date(now.getTime() + 3_600_000),
  };
}

/** The same rows with the raw driver, in one transaction; returns the time of the transaction. */
async function rawInsert(database: ScratchDatabase, sourceUrl: string, rows: StoredRows): Promise<number> {
  // The same starting point as the subject's: the default sources, market.olares on the fake source.
  const prisma = createPrismaClient(database.url);
  await ensureDefaultSources(prisma, sourceUrl);
  await prisma.$disconnect();
  if (databaseProvider(database.url) === 'sqlite') return rawInsertSqlite(database.url, rows);
  return rawInsertPostgres(database.url, rows);
}

function rawInsertSqlite(url: string, rows: StoredRows): number {
  const db = new Database(sqliteFilePath(url));
  try {
    // The server's settings (prepareDatabase; WAL is set by the migration).
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    const insertApp = db.prepare(
      `INSERT INTO "CatalogApp" (${APP_COLUMNS.map((c) => `"${c}"`).join(', ')}) VALUES (${APP_COLUMNS.map((c) => `@${c}`).join(', ')})`,
    );
    const insertCategory = db.prepare('INSERT INTO "CatalogAppCategory" ("catalogAppId", category) VALUES (?, ?)');
    const updateSource = db.prepare(
      'UPDATE "MarketSource" SET "catalogHash" = ?, "syncedAt" = ?, "syncAttemptAt" = ?, "syncError" = NULL, "syncFailures" = 0, "syncDurationMs" = ?, "nextSyncAt" = ?, "updatedAt" = ? WHERE "sourceId" = ?',
    );
    const write = db.transaction(() => {
      for (const app of rows.apps) {
        const id = insertApp.run(app).lastInsertRowid;
        for (const category of rows.categories.get(app.appId as string) ?? []) insertCategory.run(id, category);
      }
      const status = sourceStatus(0);
      const at = (date: Date) => date.getTime();
      updateSource.run(
        status.catalogHash,
        at(status.syncedAt),
        at(status.syncAttemptAt),
        status.syncDurationMs,
        at(status.nextSyncAt),
        at(status.syncedAt),
        REMOTE_SOURCE,
      );
    });
    const t0 = performance.now();
    write();
    const elapsed = performance.now() - t0;
    const stored = (db.prepare('SELECT count(*) AS n FROM "CatalogApp"').get() as { n: number }).n;
    if (stored !== rows.apps.length) throw new Error(`raw SQLite insert stored ${stored} of ${rows.apps.length}`);
    return elapsed;
  } finally {
    db.close();
  }
}

async function rawInsertPostgres(url: string, rows: StoredRows): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('SELECT 1');
    const columns = APP_COLUMNS.map((c) => `"${c}"`).join(', ');
    const t0 = performance.now();
    await client.query('BEGIN');
    const ids = new Map<string, number>();
    for (let start = 0; start < rows.apps.length; start += PG_BATCH) {
      const batch = rows.apps.slice(start, start + PG_BATCH);
      const values: unknown[] = [];
      const tuples = batch.map((app) => {
        const placeholders = APP_COLUMNS.map((column) => {
          values.push(app[column]);
          return JSON_COLUMNS.has(column) ? `$${values.length}::jsonb` : `$${values.length}`;
        });
        return `(${placeholders.join(', ')})`;
      });
      const inserted = await client.query<{ id: number; appId: string }>(
        `INSERT INTO "CatalogApp" (${columns}) VALUES ${tuples.join(', ')} RETURNING id, "appId"`,
        values,
      );
      for (const row of inserted.rows) ids.set(row.appId, row.id);
    }
    const catIds: number[] = [];
    const catNames: string[] = [];
    for (const [appId, categories] of rows.categories) {
      for (const category of categories) {
        catIds.push(ids.get(appId) as number);
        catNames.push(category);
      }
    }
    await client.query(
      'INSERT INTO "CatalogAppCategory" ("catalogAppId", category) SELECT * FROM unnest($1::int[], $2::text[])',
      [catIds, catNames],
    );
    const status = sourceStatus(0);
    await client.query(
      'UPDATE "MarketSource" SET "catalogHash" = $1, "syncedAt" = $2, "syncAttemptAt" = $3, "syncError" = NULL, "syncFailures" = 0, "syncDurationMs" = $4, "nextSyncAt" = $5, "updatedAt" = $2 WHERE "sourceId" = $6',
      [
        status.catalogHash,
        status.syncedAt,
        status.syncAttemptAt,
        status.syncDurationMs,
        status.nextSyncAt,
        REMOTE_SOURCE,
      ],
    );
    await client.query('COMMIT');
    const elapsed = performance.now() - t0;
    const stored = Number((await client.query('SELECT count(*) AS n FROM "CatalogApp"')).rows[0].n);
    if (stored !== rows.apps.length) throw new Error(`raw PostgreSQL insert stored ${stored} of ${rows.apps.length}`);
    return elapsed;
  } finally {
    await client.end();
  }
}

interface ProviderRun {
  provider: Provider;
  syncs: SyncRep[];
  rawMs: number[];
  unchanged: UnchangedRun | undefined;
  /** Failed full syncs (each an error of the benchmark). */
  failures: string[];
  rowsFrom: string;
  /** Where the unchanged-hash syncs ran. */
  unchangedOn: string;
  appRows: number;
  categoryRows: number;
  entryBytes: number;
}

async function runProvider(
  provider: Provider,
  source: Source,
  options: CatalogueOptions,
  reps: number,
  log: (line: string) => void,
): Promise<ProviderRun> {
  const databases = scratchDatabases(provider);
  const sourceUrl = source.ready.url as string;
  const syncs: SyncRep[] = [];
  const rawMs: number[] = [];
  let unchanged: UnchangedRun | undefined;
  let rows: StoredRows | undefined;
  let rowsFrom: string | undefined;
  let unchangedOn = 'the database of the last full sync';
  const failures: string[] = [];
  try {
    for (let rep = 0; rep <= reps; rep++) {
      const warmup = rep === 0;
      const last = rep === reps;
      const subjectDb = await databases.create();
      let synced: Awaited<ReturnType<typeof fullSync>> | null = null;
      try {
        synced = await fullSync(subjectDb, source, options.apps, {
          ...(warmup ? { readRows: true } : {}),
          ...(last ? { unchanged: options.unchanged } : {}),
        });
      } catch (error) {
        const message = String((error as Error).message ?? error)
          .replace(/\s+/g, ' ')
          .slice(0, 400);
        failures.push(`${warmup ? 'warm-up' : `rep ${rep}`}: ${message}`);
        log(`  ${provider} ${warmup ? 'warm-up' : `rep ${rep}/${reps}`}: FULL SYNC FAILED: ${message}`);
      } finally {
        await subjectDb.drop();
      }
      rows ??= synced?.rows ?? builtRows(options.apps, provider);
      rowsFrom ??= synced?.rows
        ? 'read back from the synced database'
        : 'built with readCatalogueEntry (the sync failed)';
      if (synced?.unchanged) unchanged = synced.unchanged;
      if (last && !synced) {
        // The full sync failed: the unchanged-hash syncs still run, on a source row holding the hash
        // (they read no catalogue row, so the empty catalogue does not change what they do).
        const hashDb = await databases.create();
        try {
          const { db, syncer } = await syncerOver(hashDb.url, sourceUrl);
          try {
            await db.marketSource.update({
              where: { sourceId: REMOTE_SOURCE },
              data: { catalogHash: source.ready.detail?.hash as string },
            });
            unchanged = await unchangedSyncs(syncer, source, options.unchanged);
            unchangedOn = 'a database whose source row was given the hash directly (the full sync failed)';
          } finally {
            await db.$disconnect();
          }
        } finally {
          await hashDb.drop();
        }
      }
      const baselineDb = await databases.create();
      let raw: number;
      try {
        raw = await rawInsert(baselineDb, sourceUrl, rows as StoredRows);
      } finally {
        await baselineDb.drop();
      }
      if (!warmup) {
        if (synced) syncs.push(synced.rep);
        rawMs.push(raw);
      }
      log(
        `  ${provider} ${warmup ? 'warm-up' : `rep ${rep}/${reps}`}: full sync ${synced ? `${ms(synced.rep.ms)} (syncer CPU ${ms(synced.rep.cpuMs)}, source CPU ${ms(synced.rep.sourceCpuMs)}, requests ${JSON.stringify(synced.rep.requests)})` : 'failed'}; raw inserts ${ms(raw)}; raw ÷ sync ${synced ? (raw / synced.rep.ms).toFixed(3) : 'n/a'}`,
      );
    }
  } finally {
    databases.cleanup();
  }
  if (!rows) throw new Error('no rows');
  if (unchanged)
    log(
      `  ${provider} unchanged hash, ${unchanged.calls} syncs: syncer CPU ${ms(unchanged.cpuMsPerSync, 3)}/sync, wall ${ms(unchanged.wallMsPerSync, 3)}/sync (p50 ${ms(unchanged.p50Ms, 3)}, p99 ${ms(unchanged.p99Ms, 3)}); source CPU ${ms(unchanged.sourceCpuMsPerSync, 3)}/sync; requests ${JSON.stringify(unchanged.requests)}`,
    );
  return {
    provider,
    syncs,
    rawMs,
    unchanged,
    failures,
    rowsFrom: rowsFrom ?? '',
    unchangedOn,
    appRows: rows.apps.length,
    categoryRows: rows.categoryCount,
    entryBytes: rows.apps.reduce((sum, app) => sum + String(app.entry).length, 0),
  };
}

function results(run: ProviderRun, options: CatalogueOptions, pinned: boolean, load: string): BenchResult[] {
  const suffix = run.provider === 'sqlite' ? '' : '-pg';
  const label = run.provider === 'sqlite' ? 'SQLite' : 'PostgreSQL';
  const apps = options.apps;
  const size = apps.toLocaleString('en-US');
  const syncMs = median(run.syncs.map((s) => s.ms));
  const rawMs = median(run.rawMs);
  const ratio = rawMs / syncMs;
  const fullTarget = { op: '>=' as const, value: TARGETS.fullSync };
  const errors = run.failures.length;
  const failureNotes = errors ? [`ERRORS: failed full syncs: ${run.failures.join(' | ')}`] : [];
  const common = [
    `Load average (1, 5, 15 min) at the end of the run: ${load} on ${os.cpus().length} cores; other work on the machine shares them.`,
    `Fake market source (test/support/fake-market-source.ts, the real protocol over HTTP on loopback) in its own process${pinned ? ' pinned to core 1; the Syncer in this process pinned to core 0' : ' (not pinned: taskset unavailable)'}; its CPU is not counted as the Syncer's.`,
    ...failureNotes,
    `Catalogue: ${size} apps (bench/lib/catalogue-entries.ts: fakeEntry with 4-locale titles, descriptions and i18n metadata, 1–3 categories, 1–3 entrances, 3–7 versions of history, a price on every 5th app); ${run.appRows} CatalogApp rows, ${run.categoryRows} CatalogAppCategory rows, ${(run.entryBytes / 2 ** 20).toFixed(1)} MiB of entry JSON.`,
  ];
  const full: BenchResult = {
    name: `catalogue${suffix}`,
    title: `Full sync of a ${size}-app catalogue (${label}) ÷ raw driver inserts of the same rows`,
    description: `Issue 13: full sync of a 2,000-app catalogue from a local fake source ÷ raw driver inserts of the same rows ≥ ${TARGETS.fullSync} (raw time ÷ sync time).`,
    subject: {
      label: `CatalogueSyncer.syncNow, empty → ${size} apps (median of ${run.syncs.length}; ${ms(syncMs)})`,
      value: apps / (syncMs / 1000),
      unit: 'apps/s',
    },
    baseline: {
      label: `${run.provider === 'sqlite' ? 'better-sqlite3 prepared INSERTs' : 'pg multi-row INSERTs'} of the same rows in one transaction (median of ${run.rawMs.length}; ${ms(rawMs)})`,
      value: apps / (rawMs / 1000),
      unit: 'apps/s',
    },
    ratio,
    target: fullTarget,
    pass: errors === 0 && meetsTarget(ratio, fullTarget),
    errors,
    metrics: {
      'full sync wall time (median; per rep)': `${ms(syncMs)}; ${run.syncs.map((s) => s.ms.toFixed(0)).join(', ')} ms`,
      'raw inserts time (median; per rep)': `${ms(rawMs)}; ${run.rawMs.map((v) => v.toFixed(0)).join(', ')} ms`,
      'ratio raw ÷ sync per rep': run.syncs.map((s, i) => ((run.rawMs[i] as number) / s.ms).toFixed(3)).join(', '),
      'Syncer process CPU per full sync (median)': ms(median(run.syncs.map((s) => s.cpuMs))),
      'fake source CPU per full sync (median, other process)': ms(median(run.syncs.map((s) => s.sourceCpuMs))),
      'requests per full sync': JSON.stringify(run.syncs[0]?.requests ?? {}),
    },
    notes: [
      ...common,
      'Subject: per rep a fresh migrated database, the services built by createServices (not started), market.olares pointed at the fake source by ensureDefaultSources (as MARKET_SOURCE_URL does); timed: one syncNow(market.olares) from empty to every app (hash, index, details in batches of 100, 4 in flight, one write transaction, the history record and the announcement). Database creation, migration and client connection are not timed.',
      `Baseline: the rows the Syncer writes (every CatalogApp column, ${run.rowsFrom}, JSON as text) inserted into a fresh migrated database, apps then categories and the source's status update, in one transaction; ${run.provider === 'sqlite' ? 'better-sqlite3, one prepared INSERT per row, synchronous = NORMAL as the server sets it' : `pg, multi-row INSERTs of ${PG_BATCH} apps RETURNING id, the categories in one INSERT … SELECT unnest(…)`}. The baseline does not fetch or parse anything: it is the floor of writing these rows.`,
      `Repetitions alternate subject and baseline, after one warm-up of each (not counted); ratio = median raw time ÷ median sync time (= sync apps/s ÷ raw apps/s).`,
    ],
    details: { syncs: run.syncs, rawMs: run.rawMs, failures: run.failures, rowsFrom: run.rowsFrom, options },
  };
  const u: UnchangedRun = run.unchanged ?? {
    calls: 0,
    cpuMsPerSync: Number.NaN,
    wallMsPerSync: Number.NaN,
    p50Ms: Number.NaN,
    p99Ms: Number.NaN,
    sourceCpuMsPerSync: Number.NaN,
    requests: {},
  };
  // The full syncs' failures are this figure's errors only when they left it unmeasured.
  const unchangedErrors = run.unchanged ? 0 : errors;
  const unchangedRatio = u.cpuMsPerSync / TARGETS.unchangedCpuMs;
  const unchangedTarget = { op: '<=' as const, value: 1 };
  const unchanged: BenchResult = {
    name: `catalogue${suffix}-unchanged`,
    title: `Server CPU of a sync with an unchanged hash (${label}) ÷ the 2 ms budget`,
    description: 'Issue 13: an unchanged-hash sync ≤ 2 ms of server CPU.',
    subject: {
      label: `Syncer process CPU per unchanged-hash syncNow (${u.calls} calls after ${UNCHANGED_WARMUP})`,
      value: u.cpuMsPerSync,
      unit: 'ms',
    },
    baseline: {
      label: 'budget of issue 13 (an absolute target, not a measurement)',
      value: TARGETS.unchangedCpuMs,
      unit: 'ms',
    },
    ratio: unchangedRatio,
    target: unchangedTarget,
    pass: unchangedErrors === 0 && meetsTarget(unchangedRatio, unchangedTarget),
    errors: unchangedErrors,
    metrics: {
      'Syncer process CPU per sync': ms(u.cpuMsPerSync, 3),
      'wall time per sync (mean; p50 / p99)': `${ms(u.wallMsPerSync, 3)}; ${ms(u.p50Ms, 3)} / ${ms(u.p99Ms, 3)}`,
      'fake source CPU per sync (other process, not counted)': ms(u.sourceCpuMsPerSync, 3),
      'requests in the measured syncs': JSON.stringify(u.requests),
    },
    notes: [
      ...common,
      `On ${run.unchangedOn}: ${UNCHANGED_WARMUP} warm-up then ${u.calls} sequential syncNow(market.olares) with the hash unchanged (each: the source row, GET hash, the status update); CPU = process.cpuUsage delta of this process (Syncer, Prisma${run.provider === 'sqlite' ? ', and SQLite itself, in-process' : '; the PostgreSQL server process is not counted'}), nothing subtracted; the fake source is in another process and not counted.`,
    ],
    details: { unchanged: run.unchanged ?? null, failures: run.failures },
  };
  return [full, unchanged];
}

export async function catalogueBench(options: CatalogueOptions): Promise<BenchResult[]> {
  const log = options.log ?? (() => {});
  const pinned = canPin();
  const restore = pinned ? (pinThisProcess(SYNCER_CORE) ?? (() => {})) : () => {};
  let source: Source | undefined;
  try {
    const started = performance.now();
    source = await Child.launch<CatalogueSourceRequest>(SOURCE_ENTRY, {
      name: 'fake market source',
      core: SOURCE_CORE,
      env: { BENCH_CATALOGUE_APPS: String(options.apps) },
    });
    log(
      `  fake source with ${options.apps} apps at ${source.ready.url} (pid ${source.ready.pid}) ready in ${(performance.now() - started).toFixed(0)} ms; ${pinned ? 'syncer on core 0, source on core 1' : 'not pinned'}`,
    );
    const runs = [await runProvider('sqlite', source, options, options.reps, log)];
    if (options.postgresReps > 0) {
      try {
        runs.push(await runProvider('postgresql', source, options, options.postgresReps, log));
      } catch (error) {
        log(`  PostgreSQL skipped: ${String((error as Error).message ?? error).split('\n')[0]}`);
      }
    }
    const load = os
      .loadavg()
      .map((v) => round(v, 2))
      .join(' ');
    return runs.flatMap((run) => results(run, options, pinned, load));
  } finally {
    await source?.stop();
    restore();
  }
}
