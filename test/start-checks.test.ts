import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, test } from 'vitest';
import { sqliteFilePath } from '../src/db/client.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { killLeftovers, listeningUrl, SERVER_COMMAND, serverEnv, startProcess } from './support/process.js';

/**
 * What the server process says at start about its settings and its database: a mistake is one line
 * naming the setting and exit code 1; a database in an unexpected state is a warning, and it starts.
 */

const databases: TestDatabase[] = [];
afterEach(async () => {
  await killLeftovers();
  for (const database of databases.splice(0)) await database.drop();
});

async function sqliteDatabase(): Promise<TestDatabase> {
  const database = await createTestDatabase('sqlite');
  databases.push(database);
  return database;
}

describe('a database migrated by a newer release (a rollback)', () => {
  test('starts, with one warning naming the migrations this release does not know', async () => {
    const database = await sqliteDatabase();
    const db = new Database(sqliteFilePath(database.url));
    db.prepare(
      'INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, started_at, applied_steps_count) VALUES (?, ?, ?, ?, ?, 1)',
    ).run(randomUUID(), 'f'.repeat(64), Date.now(), '9999_from_a_newer_release', Date.now());
    db.close();

    const server = startProcess(SERVER_COMMAND, serverEnv(database.url));
    await listeningUrl(server);
    const warnings = server.logs.filter((line) => line.level === 40 && /migration/.test(String(line.msg)));
    expect(warnings.map((line) => line.msg)).toEqual([
      'the database has migrations this release does not know (9999_from_a_newer_release): a newer release migrated it, and this one may fail on what they changed',
    ]);
    server.child.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});
