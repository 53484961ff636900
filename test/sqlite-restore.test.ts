import { copyFileSync, existsSync, renameSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, test } from 'vitest';
import { closeDatabase } from '../src/app/database.js';
import { createPrismaClient, databaseProbe, sqliteFilePath } from '../src/db/client.js';
import { SqliteFile } from '../src/db/sqlite-file.js';
import { createLogger } from '../src/platform/logger.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { TaskDetailQuery } from './support/operations.js';
import { killLeftovers, listeningUrl, SERVER_COMMAND, serverEnv, startProcess } from './support/process.js';
import { UNINSTALLED_APPS } from './support/rows.js';
import { dataOf, execute, installThroughApi } from './support/server.js';

/**
 * A restore on SQLite: an operator replaces the database file with a backup while the server runs
 * (`cp backup.db restore.tmp && mv restore.tmp market.db`), then does what the server says. SQLite
 * applies a `-wal` it finds by name to whatever file is at the path, and keeps the WAL of a file
 * moved since it was opened: left by the stop, the old database's WAL corrupted the restored file.
 */

let database: TestDatabase | undefined;

afterEach(async () => {
  await killLeftovers();
  await database?.drop();
  database = undefined;
});

/** `VACUUM INTO`, one of the two ways to back up a live SQLite database (README, "Backup and restore"). */
function backUp(file: string, into: string): void {
  const connection = new Database(file);
  connection.exec(`VACUUM INTO '${into}'`);
  connection.close();
}

function integrityOf(file: string): string {
  const connection = new Database(file);
  try {
    return connection.pragma('integrity_check', { simple: true }) as string;
  } catch (error) {
    return (error as Error).message;
  } finally {
    connection.close();
  }
}

async function taskOf(server: { graphqlUrl: string }, taskId: string) {
  return dataOf(await execute(server, TaskDetailQuery, { taskId })).task;
}

describe('restoring a SQLite file under a running server', () => {
  test('its stop leaves no -wal or -shm of the replaced file: the restored file stays intact and the next server serves its data', async () => {
    database = await createTestDatabase('sqlite');
    const file = sqliteFilePath(database.url);
    const env = serverEnv(database.url, { DEMO_DATA: '1', SIMULATED_STEP_MS: '20' });
    const first = startProcess(SERVER_COMMAND, env);
    const server = { graphqlUrl: (await listeningUrl(first)).toString() };

    const [kept, lost] = [UNINSTALLED_APPS[0]!, UNINSTALLED_APPS[1]!];
    const keptTask = await installThroughApi(server, kept);
    const backup = path.join(path.dirname(file), 'backup.db');
    backUp(file, backup);
    // Written after the backup: in the old file (and its WAL) only.
    const lostTask = await installThroughApi(server, lost);

    const staging = `${file}.restore`;
    copyFileSync(backup, staging);
    renameSync(staging, file);
    const readiness = await fetch(new URL('/readiness', server.graphqlUrl));
    expect(readiness.status).toBe(503);

    first.child.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect([existsSync(`${file}-wal`), existsSync(`${file}-shm`)]).toEqual([false, false]);
    const cleanUp = first.logs.find((line) => line.msg?.includes('-wal and -shm it had open are removed'));
    expect(cleanUp?.removed).toEqual([`${file}-wal`, `${file}-shm`]);
    expect(integrityOf(file)).toBe('ok');

    const second = startProcess(SERVER_COMMAND, env);
    const restored = { graphqlUrl: (await listeningUrl(second)).toString() };
    expect((await taskOf(restored, keptTask))?.app?.appName).toBe(kept.appName);
    expect(await taskOf(restored, lostTask)).toBeNull();
  });

  test('a -wal and -shm that came with the restored file are left alone: the restored file opens with its own WAL', async () => {
    database = await createTestDatabase('sqlite');
    const file = sqliteFilePath(database.url);
    const db = createPrismaClient(database.url);
    await db.$queryRawUnsafe('SELECT 1');
    const watched = new SqliteFile(file);
    await watched.remember();

    // A restored copy whose last write is still in its WAL: copied with it, as `cp db db-wal db-shm` would.
    const restoredCopy = `${file}.copy`;
    backUp(file, restoredCopy);
    const writer = new Database(restoredCopy);
    writer.pragma('journal_mode = WAL');
    writer.pragma('wal_autocheckpoint = 0');
    writer.exec(`CREATE TABLE "Restored" ("id" TEXT); INSERT INTO "Restored" VALUES ('in its WAL')`);
    for (const suffix of ['', '-wal', '-shm']) copyFileSync(`${restoredCopy}${suffix}`, `${file}.staged${suffix}`);
    writer.close();
    for (const suffix of ['-wal', '-shm', '']) renameSync(`${file}.staged${suffix}`, `${file}${suffix}`);

    await closeDatabase(db, createLogger('silent'), { file: watched, probe: databaseProbe(db, database.url) });
    expect([existsSync(`${file}-wal`), existsSync(`${file}-shm`)]).toEqual([true, true]);
    expect(integrityOf(file)).toBe('ok');
    const reader = new Database(file);
    expect(reader.prepare(`SELECT "id" FROM "Restored"`).pluck().get()).toBe('in its WAL');
    reader.close();
  });

  test('the database component says how to restart safely after the file was replaced', async () => {
    database = await createTestDatabase('sqlite');
    const file = sqliteFilePath(database.url);
    const watched = new SqliteFile(file);
    await watched.remember();
    backUp(file, `${file}.backup`);
    renameSync(`${file}.backup`, file);
    const problem = await watched.problem();
    expect(problem).toContain('stop the server');
    // Every signed-in user sees the component: the file is not named (admins read it in its `file` figure).
    expect(problem).toContain("the replaced file's -wal and -shm files");
    expect(problem).not.toContain(path.basename(file));
  });
});
