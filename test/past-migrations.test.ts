import { cpSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import { MigrationError, migrateDatabase } from '../src/db/migrate.js';
import { availableDatabases, createTestDatabase, type DatabaseKind, type TestDatabase } from './support/databases.js';
import { killLeftovers, serverEnv, startProcess } from './support/process.js';

// Databases left by builds of main whose migrations were later renamed, merged or edited
// (src/db/retired-migrations.ts) upgrade with the release's migrateDatabase to a fresh database's
// schema, their rows kept. Each is built from the release's migrations up to `through` plus copies
// of that build's own files (test/fixtures/past-migrations/<build>/), so no git history is needed.

const databases = await availableDatabases();
const MIGRATIONS = fileURLToPath(new URL('../prisma/migrations', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./fixtures/past-migrations', import.meta.url));

const PAST_BUILDS = [
  { build: '04d55e6', through: '0004', recorded: ['0005_webhook_catch_up'] },
  { build: 'a31b008', through: '0004', recorded: ['0005_webhook_catch_up', '0006_outbox_claim_by_kind'] },
  { build: '1c92add', through: '0007', recorded: ['0008_catalogue_entry_revision'] },
];

/** The migrations folder that build shipped. */
function pastMigrations(build: string, through: string): string {
  const root = mkdtempSync(path.join(tmpdir(), `migrations-${build}-`));
  for (const provider of ['sqlite', 'postgresql']) {
    for (const name of readdirSync(path.join(MIGRATIONS, provider))) {
      if (name.slice(0, 4) > through) continue;
      cpSync(path.join(MIGRATIONS, provider, name), path.join(root, provider, name), { recursive: true });
    }
    cpSync(path.join(FIXTURES, build, provider), path.join(root, provider), { recursive: true });
  }
  return root;
}

/** Tables, columns, indexes, triggers, functions and storage options, in a comparable form. */
async function schemaOf(kind: DatabaseKind, url: string): Promise<unknown[]> {
  const queries =
    kind === 'sqlite'
      ? [`SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`]
      : [
          `SELECT table_name, column_name, ordinal_position::int, data_type, is_nullable, column_default
             FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`,
          `SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`,
          `SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
             WHERE connamespace = 'public'::regnamespace ORDER BY conname`,
          `SELECT tgrelid::regclass::text AS tbl, tgname, pg_get_triggerdef(oid) AS def FROM pg_trigger
             WHERE NOT tgisinternal ORDER BY tgname`,
          `SELECT proname, pg_get_functiondef(oid) AS def FROM pg_proc
             WHERE pronamespace = 'public'::regnamespace ORDER BY proname`,
          `SELECT relname, relkind::text, reloptions::text FROM pg_class
             WHERE relnamespace = 'public'::regnamespace ORDER BY relname`,
        ];
  const db = createPrismaClient(url);
  try {
    const results: unknown[] = [];
    for (const query of queries) {
      if (kind === 'sqlite') results.push(await db.$queryRawUnsafe(query));
      else {
        // As JSON: catalog columns have types ("name", domains) a raw query does not read.
        const [row] = await db.$queryRawUnsafe<{ rows: string }[]>(
          `SELECT coalesce(json_agg(q), '[]')::text AS rows FROM (${query}) q`,
        );
        results.push(JSON.parse(row?.rows ?? 'null'));
      }
    }
    const migrations = await db.$queryRawUnsafe(
      'SELECT migration_name, checksum FROM "_prisma_migrations" ORDER BY migration_name',
    );
    return [...results, migrations];
  } finally {
    await db.$disconnect();
  }
}

/** A webhook, an outbox message and a catch-up cursor, written as those builds' servers wrote them. */
async function writeRows(kind: DatabaseKind, url: string): Promise<void> {
  const at = kind === 'sqlite' ? String(Date.UTC(2026, 10, 1, 10)) : `'2026-11-01 10:00:00'`;
  const db = createPrismaClient(url);
  try {
    await db.$executeRawUnsafe(
      `INSERT INTO "Webhook" ("webhookId", "url", "secret", "events", "createdBy", "updatedAt")
       VALUES ('wh-1', 'https://hooks.example/a', 'secret-1', '["app.installed"]', 'admin', ${at})`,
    );
    await db.$executeRawUnsafe(
      `INSERT INTO "OutboxMessage" ("kind", "idempotencyKey", "url", "topic", "body", "webhookId", "nextAttemptAt", "updatedAt")
       VALUES ('WEBHOOK', 'wh-1:app:1', 'https://hooks.example/a', 'app.installed', '{}', 'wh-1', ${at}, ${at})`,
    );
    await db.$executeRawUnsafe(
      `INSERT INTO "JobCursor" ("name", "position", "updatedAt") VALUES ('webhook-catch-up:tasks', ${at}, ${at})`,
    );
  } finally {
    await db.$disconnect();
  }
}

describe.each(databases)('databases of earlier builds of main on %s', (kind) => {
  const created: TestDatabase[] = [];
  afterEach(async () => {
    for (const database of created.splice(0)) await database.drop();
  });

  test.each(PAST_BUILDS)('one migrated by $build upgrades to the fresh schema and keeps its rows', async (past) => {
    const old = await createTestDatabase(kind, pastMigrations(past.build, past.through));
    created.push(old);
    await writeRows(kind, old.url);

    const result = await migrateDatabase(old.url);
    expect(result.repaired).toEqual([expect.stringContaining(past.recorded.join(' + '))]);
    expect(result.unknown).toEqual([]);

    const fresh = await createTestDatabase(kind);
    created.push(fresh);
    expect(await schemaOf(kind, old.url)).toEqual(await schemaOf(kind, fresh.url));

    const db = createPrismaClient(old.url);
    try {
      const position = new Date(Date.UTC(2026, 10, 1, 10));
      expect(await db.jobCursor.findMany()).toEqual([
        { name: 'webhook-catch-up:tasks', position, afterId: null, updatedAt: position },
      ]);
      expect(await db.webhook.findMany({ select: { webhookId: true, url: true } })).toEqual([
        { webhookId: 'wh-1', url: 'https://hooks.example/a' },
      ]);
      expect(await db.outboxMessage.findMany({ select: { idempotencyKey: true, status: true } })).toEqual([
        { idempotencyKey: 'wh-1:app:1', status: 'PENDING' },
      ]);
    } finally {
      await db.$disconnect();
    }
    expect((await migrateDatabase(old.url)).applied).toEqual([]);
  });

  test('a history no build of main left is refused, saying what to do, and nothing is changed', async () => {
    const root = pastMigrations('a31b008', '0004');
    writeFileSync(path.join(root, kind, '0006_outbox_claim_by_kind', 'migration.sql'), 'SELECT 1;\n');
    const foreign = await createTestDatabase(kind, root);
    created.push(foreign);
    const upgrade = migrateDatabase(foreign.url);
    await expect(upgrade).rejects.toThrow(MigrationError);
    await expect(upgrade).rejects.toThrow(
      /records migration 0006_outbox_claim_by_kind \(applied at \d{4}-.*\) with contents no build of this service released.*restore a backup taken before then/,
    );
    const db = createPrismaClient(foreign.url);
    try {
      const rows = await db.$queryRawUnsafe<{ migration_name: string }[]>(
        'SELECT migration_name FROM "_prisma_migrations" ORDER BY migration_name',
      );
      expect(rows.map((row) => row.migration_name).slice(-2)).toEqual([
        '0005_webhook_catch_up',
        '0006_outbox_claim_by_kind',
      ]);
    } finally {
      await db.$disconnect();
    }
  });
});

describe('npm run db:migrate on a database of an earlier build', () => {
  /** What `npm run db:migrate` runs (tsx, as node's loader). */
  const MIGRATE_COMMAND = [process.execPath, '--import', 'tsx', 'src/db/migrate-cli.ts'];
  const created: TestDatabase[] = [];
  afterEach(async () => {
    await killLeftovers();
    for (const database of created.splice(0)) await database.drop();
  });

  test('exits 0 and says what it brought forward; a foreign history is one line saying what to do, exit 1', async () => {
    const old = await createTestDatabase('sqlite', pastMigrations('a31b008', '0004'));
    created.push(old);
    const migrate = startProcess(MIGRATE_COMMAND, serverEnv(old.url));
    expect(await migrate.exited, migrate.output.join('\n')).toEqual({ code: 0, signal: null });
    expect(migrate.logs.map((line) => line.msg)).toContain(
      "migrations an earlier build applied, renamed, merged or edited since, brought to this release's schema: 0005_webhook_catch_up + 0006_outbox_claim_by_kind (build a31b008) → 0005_webhook_catch_up_outbox_claim",
    );

    const root = pastMigrations('1c92add', '0007');
    writeFileSync(path.join(root, 'sqlite', '0008_catalogue_entry_revision', 'migration.sql'), 'SELECT 1;\n');
    const foreign = await createTestDatabase('sqlite', root);
    created.push(foreign);
    const refused = startProcess(MIGRATE_COMMAND, serverEnv(foreign.url));
    expect(await refused.exited).toEqual({ code: 1, signal: null });
    expect(refused.output.at(-1)).toMatch(
      /^Could not migrate the database \(SQLite .*\): the database records migration 0008_catalogue_entry_revision \(applied at .*\) .*restore a backup taken before then, or go on running the build whose migrations were applied to it/,
    );
  }, 60_000);
});
