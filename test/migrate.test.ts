import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import { isUniqueViolation } from '../src/db/hot-path-sql.js';
import { MigrationError, migrateDatabase, readMigrations } from '../src/db/migrate.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';

const databases = await availableDatabases();
const MIGRATIONS = fileURLToPath(new URL('../prisma/migrations', import.meta.url));

describe.each(databases)('migrations on %s', (kind) => {
  const created: TestDatabase[] = [];
  afterEach(async () => {
    for (const database of created.splice(0)) await database.drop();
  });

  test('a fresh database gets every migration once, recorded like Prisma records them', async () => {
    const database = await createTestDatabase(kind); // runs migrateDatabase
    created.push(database);
    const db = createPrismaClient(database.url);
    try {
      const rows = await db.$queryRawUnsafe<{ migration_name: string; checksum: string; finished_at: unknown }[]>(
        'SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" ORDER BY migration_name',
      );
      const expected = readMigrations(kind);
      expect(rows.map((row) => [row.migration_name, row.checksum])).toEqual(expected.map((m) => [m.name, m.checksum]));
      expect(rows.every((row) => row.finished_at !== null)).toBe(true);
      // the schema is usable
      expect(await db.task.count()).toBe(0);
    } finally {
      await db.$disconnect();
    }
    // running again applies nothing
    expect((await migrateDatabase(database.url)).applied).toEqual([]);
  });

  test('each migration is recorded with the time it started and the later time it finished', async () => {
    const database = await createTestDatabase(kind); // every migration, in one run
    created.push(database);
    const db = createPrismaClient(database.url);
    try {
      const rows = await db.$queryRawUnsafe<{ started_at: unknown; finished_at: unknown }[]>(
        'SELECT started_at, finished_at FROM "_prisma_migrations" ORDER BY migration_name',
      );
      // Dates on PostgreSQL, milliseconds since the epoch as SQLite stores them.
      const times = rows.flatMap((row) =>
        [row.started_at, row.finished_at].map((at) => new Date(at as Date).getTime()),
      );
      expect(rows.length).toBeGreaterThanOrEqual(2);
      expect(times.every(Number.isFinite)).toBe(true);
      // started ≤ finished ≤ the next one's start: one clock, read as each statement ran
      expect(times).toEqual([...times].sort((a, b) => a - b));
    } finally {
      await db.$disconnect();
    }
  });

  test('instances migrating at the same time apply each migration exactly once', async () => {
    const database = await createTestDatabase(kind);
    created.push(database);
    // a copy of the migrations with one more, so there is something left to apply concurrently
    const root = mkdtempSync(path.join(tmpdir(), 'migrations-'));
    cpSync(MIGRATIONS, root, { recursive: true });
    const extra = path.join(root, kind, '9999_test_extra');
    cpSync(path.join(root, kind, '0001_init'), extra, { recursive: true });
    writeFileSync(path.join(extra, 'migration.sql'), 'CREATE TABLE "ConcurrencyProbe" ("id" INTEGER PRIMARY KEY);');
    const results = await Promise.all([1, 2, 3].map(() => migrateDatabase(database.url, root)));
    expect(results.flatMap((result) => result.applied)).toEqual(['9999_test_extra']);
  });

  test('a database at the previous release is brought forward by the last migration alone', async () => {
    // The previous release: every migration but the last (today 0014_task_list_filter_indexes).
    const root = mkdtempSync(path.join(tmpdir(), 'migrations-'));
    cpSync(MIGRATIONS, root, { recursive: true });
    const last = readMigrations(kind).at(-1)?.name as string;
    rmSync(path.join(root, kind, last), { recursive: true });
    const database = await createTestDatabase(kind, root);
    created.push(database);
    expect((await migrateDatabase(database.url)).applied).toEqual([last]);
    expect((await migrateDatabase(database.url)).applied).toEqual([]);
  });

  test('0021 keeps market sources whose ids already differ only in case, marks all but the oldest, and refuses any new one', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'migrations-'));
    cpSync(MIGRATIONS, root, { recursive: true });
    rmSync(path.join(root, kind, '0021_market_source_caseless_id'), { recursive: true });
    const database = await createTestDatabase(kind, root);
    created.push(database);
    const db = createPrismaClient(database.url);
    const insert = (sourceId: string) =>
      db.$executeRawUnsafe(
        `INSERT INTO "MarketSource" ("sourceId", "title", "type", "updatedAt") VALUES ('${sourceId}', 't', 'remote', CURRENT_TIMESTAMP)`,
      );
    try {
      for (const sourceId of ['FX', 'fx', 'Fx', 'other']) await insert(sourceId);
      const applied = (await migrateDatabase(database.url)).applied;
      expect(applied.filter((name) => name.startsWith('0021'))).toEqual(['0021_market_source_caseless_id']);
      const rows = await db.$queryRawUnsafe<{ sourceId: string; caseDuplicate: boolean | number }[]>(
        'SELECT "sourceId", "caseDuplicate" FROM "MarketSource" WHERE "sourceId" IN (\'FX\', \'fx\', \'Fx\', \'other\') ORDER BY "id"',
      );
      expect(rows.map((row) => [row.sourceId, Boolean(row.caseDuplicate)])).toEqual([
        ['FX', false],
        ['fx', true],
        ['Fx', true],
        ['other', false],
      ]);
      const refused = await insert('fX').then(
        () => null,
        (error: unknown) => error,
      );
      expect(isUniqueViolation(refused), String(refused)).toBe(true);
      await insert('OTHER.x');
    } finally {
      await db.$disconnect();
    }
  });

  test('an applied migration that was edited afterwards is refused', async () => {
    const database = await createTestDatabase(kind);
    created.push(database);
    const root = mkdtempSync(path.join(tmpdir(), 'migrations-'));
    cpSync(MIGRATIONS, root, { recursive: true });
    writeFileSync(path.join(root, kind, '0001_init', 'migration.sql'), '-- edited\n');
    await expect(migrateDatabase(database.url, root)).rejects.toThrow(MigrationError);
    await expect(migrateDatabase(database.url, root)).rejects.toThrow(
      /records migration 0001_init \(applied at .*\) with contents no build of this service released.*restore a backup/,
    );
  });
});

test('every change to prisma/schema.prisma has a migration (run `npm run migrations:diff -- <name>`)', () => {
  const schema = readFileSync(new URL('../prisma/schema.prisma', import.meta.url), 'utf8');
  const snapshot = readFileSync(new URL('../prisma/migrations/schema.snapshot.prisma', import.meta.url), 'utf8');
  expect(snapshot).toBe(schema);
});

describe('released migrations', () => {
  test('every migration is as it was released (prisma/migrations/checksums.json): an edited one stops every database that applied it', () => {
    const locked = JSON.parse(readFileSync(new URL('../prisma/migrations/checksums.json', import.meta.url), 'utf8'));
    const current = Object.fromEntries(
      (['postgresql', 'sqlite'] as const).flatMap((provider) =>
        readMigrations(provider).map((migration) => [`${provider}/${migration.name}`, migration.checksum]),
      ),
    );
    const changed = Object.keys(current).filter((name) => name in locked && locked[name] !== current[name]);
    // A released migration is never edited: add a new one (npm run migrations:diff). A migration
    // not released yet, added or edited in this change: npm run migrations:lock.
    expect(changed, 'migrations changed after their release').toEqual([]);
    expect(
      Object.keys(current).filter((name) => !(name in locked)),
      'run npm run migrations:lock',
    ).toEqual([]);
    expect(
      Object.keys(locked).filter((name) => !(name in current)),
      'released migrations removed',
    ).toEqual([]);
  });
});
