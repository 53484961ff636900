import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, test } from 'vitest';
import { sqliteFilePath } from '../src/db/client.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { killLeftovers, listeningUrl, SERVER_COMMAND, serverEnv, startProcess } from './support/process.js';

/** What `npm run db:migrate` runs (tsx, as node's loader). */
const MIGRATE_COMMAND = [process.execPath, '--import', 'tsx', 'src/db/migrate-cli.ts'];

/** A port nobody listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * What the server process says at start about its settings and its database: a mistake is one line
 * naming the setting and exit code 1; a database in an unexpected state is a warning, and it starts.
 */

const databases: TestDatabase[] = [];
const directories: string[] = [];
afterEach(async () => {
  await killLeftovers();
  for (const database of databases.splice(0)) await database.drop();
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
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

describe('npm run db:migrate', () => {
  test('needs only DATABASE_URL: server settings it does not use (HOST=0.0.0.0 with no authentication) do not stop it', async () => {
    const database = await sqliteDatabase();
    const migrate = startProcess(MIGRATE_COMMAND, serverEnv(database.url, { HOST: '0.0.0.0', PORT: 'any' }));
    expect(await migrate.exited, migrate.output.join('\n')).toEqual({ code: 0, signal: null });
    expect(migrate.logs.map((line) => line.msg)).toEqual(['database schema is up to date']);
  }, 60_000);

  test('a database it cannot reach is the one line npm start prints (no stack trace, no password), exit code 1', async () => {
    const port = await closedPort();
    const url = `postgresql://market:db-pass-7731@127.0.0.1:${port}/market`;
    const migrate = startProcess(MIGRATE_COMMAND, serverEnv(url));
    expect(await migrate.exited).toEqual({ code: 1, signal: null });
    expect(migrate.output).toEqual([
      `Could not migrate the database (PostgreSQL at 127.0.0.1:${port}/market): could not connect: connect ECONNREFUSED 127.0.0.1:${port}`,
    ]);
  }, 60_000);

  test.each([
    ['the server', SERVER_COMMAND],
    ['npm run db:migrate', MIGRATE_COMMAND],
  ])(
    'a library warning (pg on sslmode=require) is one JSON log line from %s, not text on stderr',
    async (_, command) => {
      const port = await closedPort();
      const run = startProcess(command, serverEnv(`postgresql://market@127.0.0.1:${port}/market?sslmode=require`));
      expect(await run.exited).toEqual({ code: 1, signal: null });
      const [failure, ...logLines] = [...run.output].reverse();
      expect(failure).toMatch(/^Could not migrate the database \(PostgreSQL at 127\.0\.0\.1:\d+\/market\)/);
      expect(
        logLines.filter((line) => !line.startsWith('{')),
        'lines that are not JSON',
      ).toEqual([]);
      const warning = run.logs.find((line) => line.level === 40 && String(line.msg).includes('sslmode'));
      expect(warning?.msg).toMatch(/^SECURITY WARNING: The SSL modes 'prefer', 'require'/);
    },
    60_000,
  );

  test('with NODE_NO_WARNINGS=1, as with Node itself, a library warning is neither a log line nor text on stderr', async () => {
    const port = await closedPort();
    const url = `postgresql://market@127.0.0.1:${port}/market?sslmode=require`;
    const run = startProcess(SERVER_COMMAND, serverEnv(url, { NODE_NO_WARNINGS: '1' }));
    expect(await run.exited).toEqual({ code: 1, signal: null });
    expect(run.output.filter((line) => line.includes('sslmode') || line.includes('SSL modes'))).toEqual([]);
    expect(run.output.at(-1)).toMatch(/^Could not migrate the database/);
  }, 60_000);
});

describe('a mistake in a setting found only when it is used', () => {
  test('a BUNDLED_CATALOGUE_FILE that names nothing is one line naming it, exit code 1, nothing migrated', async () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'market-start-'));
    directories.push(directory);
    const file = path.join(directory, 'market.db');
    const missing = path.join(directory, 'catalogue.json');
    const server = startProcess(SERVER_COMMAND, serverEnv(`file:${file}`, { BUNDLED_CATALOGUE_FILE: missing }));
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(server.output).toEqual([
      'Invalid configuration:',
      `  BUNDLED_CATALOGUE_FILE: ${missing} cannot be read (ENOENT): name a catalogue file, or off for none`,
    ]);
    expect(existsSync(file)).toBe(false);
  }, 60_000);

  test('a HOST that does not resolve is one line naming HOST, exit code 1, nothing migrated', async () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'market-start-'));
    directories.push(directory);
    const file = path.join(directory, 'market.db');
    const env = serverEnv(`file:${file}`, { HOST: 'no-such-host.invalid', AUTH_TOKENS: 'ops:admin:ops-secret-22' });
    const server = startProcess(SERVER_COMMAND, env);
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(server.output).toEqual(['Port 0 on no-such-host.invalid: no such host name (ENOTFOUND); check HOST.']);
    expect(existsSync(file)).toBe(false);
  }, 60_000);
});

describe('blanks around a setting', () => {
  test('a DATABASE_URL with a blank at its end (a YAML or .env line) is the file without it, for the migrations and the server', async () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'market-start-'));
    directories.push(directory);
    const file = path.join(directory, 'market.db');
    const server = startProcess(SERVER_COMMAND, serverEnv(`file:${file} \r`));
    const url = await listeningUrl(server);
    expect((await fetch(new URL('/readiness', url))).status).toBe(200);
    expect(readdirSync(directory).filter((name) => name.startsWith('market.db'))).toContain('market.db');
    expect(readdirSync(directory).filter((name) => /\s/.test(name))).toEqual([]);
    server.child.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});

/**
 * With LOG_FORMAT=json a log collector parses every line as JSON: a start that fails is then one
 * JSON entry at level fatal (60) with the message a terminal gets, not a plain-text line it could
 * not read.
 */
describe('with LOG_FORMAT=json, a start that fails', () => {
  /** The process's last line, parsed: it must be JSON. */
  function lastEntry(output: string[]): Record<string, unknown> {
    const last = output.at(-1) ?? '';
    expect(() => JSON.parse(last), `the last line is JSON: ${last}`).not.toThrow();
    return JSON.parse(last) as Record<string, unknown>;
  }

  test('a bad setting is the one line, a JSON entry at level fatal naming the setting, exit code 1', async () => {
    const server = startProcess(
      SERVER_COMMAND,
      serverEnv(`file:${path.join(tmpdir(), 'market-never-created.db')}`, { LOG_FORMAT: 'json', PORT: 'abc' }),
    );
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(server.output).toHaveLength(1);
    expect(lastEntry(server.output)).toMatchObject({
      level: 60,
      service: 'market-runtime-graphql',
      msg: 'Invalid configuration:\n  PORT: must be a number written in decimal digits',
    });
  }, 60_000);

  test('a HOST that does not resolve is a JSON entry at level fatal, even at LOG_LEVEL=silent', async () => {
    const env = serverEnv(`file:${path.join(tmpdir(), 'market-never-created.db')}`, {
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'silent',
      HOST: 'no-such-host.invalid',
      AUTH_TOKENS: 'ops:admin:ops-secret-22',
    });
    const server = startProcess(SERVER_COMMAND, env);
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(server.output).toHaveLength(1);
    expect(lastEntry(server.output)).toMatchObject({
      level: 60,
      msg: 'Port 0 on no-such-host.invalid: no such host name (ENOTFOUND); check HOST.',
    });
  }, 60_000);

  test.each([
    ['the server', SERVER_COMMAND],
    ['npm run db:migrate', MIGRATE_COMMAND],
  ])(
    'a database %s cannot reach: every line is JSON, the last the failure at level fatal',
    async (_, command) => {
      const port = await closedPort();
      const url = `postgresql://market:db-pass-7731@127.0.0.1:${port}/market`;
      const run = startProcess(command, serverEnv(url, { LOG_FORMAT: 'json' }));
      expect(await run.exited).toEqual({ code: 1, signal: null });
      expect(run.logs, run.output.join('\n')).toHaveLength(run.output.length);
      expect(lastEntry(run.output)).toMatchObject({
        level: 60,
        msg: `Could not migrate the database (PostgreSQL at 127.0.0.1:${port}/market): could not connect: connect ECONNREFUSED 127.0.0.1:${port}`,
      });
      expect(run.output.join('\n')).not.toContain('db-pass-7731');
    },
    60_000,
  );
});
