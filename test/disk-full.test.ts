import { copyFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { GraphQLError } from 'graphql';
import { afterAll, describe, expect, test } from 'vitest';
import { DISK_FULL, failureMessage, isDatabaseUnavailable, isDiskFull } from '../src/db/availability.js';
import { createPrismaClient } from '../src/db/client.js';
import { driverSqlOf } from '../src/db/driver-sql.js';
import { createErrorMasker } from '../src/http/graphql-errors.js';
import { availableDatabases, createTestDatabase } from './support/databases.js';
import { startTestServer, type TestServer, waitFor } from './support/server.js';
import { canMountTmpfs, fillDisk, mountTmpfs } from './support/tmpfs.js';

/**
 * What a client and an operator see while the database's disk is full: a real server on SQLite on
 * a small tmpfs of its own, filled to the last byte, then freed again.
 */

const databases = await availableDatabases();
const disposers: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

const ADD_SOURCE = (id: string) =>
  `mutation { addMarketSource(input: { sourceId: "${id}", title: "Full", baseUrl: "http://127.0.0.1:9" }) { __typename } }`;

async function post(server: TestServer, query: string) {
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  return {
    response,
    body: (await response.json()) as { data?: unknown; errors?: { message: string; extensions: object }[] },
  };
}

async function readiness(server: TestServer) {
  const response = await fetch(`${server.url}/readiness`);
  return { status: response.status, body: (await response.json()) as { status: string; error?: string } };
}

const diskFullLines = (server: TestServer) =>
  server.logs
    .map((line) => JSON.parse(line) as { level: number; msg: string; cause?: string })
    .filter((line) => line.msg.startsWith("the database's disk"));

describe.runIf(canMountTmpfs('the SQLite disk-full test'))('SQLite on a full disk', () => {
  test('a write answers UNAVAILABLE with Retry-After, readiness says the disk is full, and both recover once space is freed', async () => {
    const disk = mountTmpfs(16 << 20);
    if (!disk) throw new Error('the tmpfs mounted a moment ago no longer mounts');
    disposers.push(() => disk.unmount());
    const migrated = await createTestDatabase('sqlite');
    disposers.push(() => migrated.drop());
    const file = path.join(disk.dir, 'test.db');
    copyFileSync(migrated.url.replace(/^file:/, ''), file);
    const server = await startTestServer('sqlite', {
      database: { kind: 'sqlite', url: `file:${file}`, drop: async () => {} },
      env: { DEMO_DATA: '0', COLLECT_INTERVAL_MS: '200' },
    });
    disposers.push(() => server.stop());
    expect(await readiness(server)).toEqual({ status: 200, body: { status: 'ready' } });

    const filler = fillDisk(disk.dir);
    disposers.push(() => rmSync(filler, { force: true })); // before the stop, which checkpoints the WAL
    const refusals = [];
    for (const id of ['full-1', 'full-2', 'full-3']) refusals.push(await post(server, ADD_SOURCE(id)));
    for (const { response, body } of refusals) {
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('30');
      expect(body.errors).toEqual([
        expect.objectContaining({
          message: "The database's disk is full: changes are refused until an operator frees space.",
          extensions: { code: 'UNAVAILABLE' },
        }),
      ]);
    }
    expect(await readiness(server)).toEqual({
      status: 503,
      body: { status: 'not ready', error: "the database's disk is full: writes fail until space is freed" },
    });
    // Reads go on.
    expect((await post(server, '{ tasks(first: 1) { totalCount } }')).response.status).toBe(200);
    // One warning for the episode, with the cause, not one per refused write; each refusal counted.
    expect(diskFullLines(server)).toEqual([expect.objectContaining({ level: 40, cause: 'database or disk is full' })]);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const counted = Number(/^market_database_disk_full_errors_total (\d+)$/m.exec(metrics)?.[1]);
    expect(counted).toBeGreaterThanOrEqual(3);

    rmSync(filler);
    // The collector's next write goes through: ready again without a restart.
    await waitFor(async () => ((await readiness(server)).status === 200 ? true : undefined), 'readiness to recover');
    const accepted = await post(server, ADD_SOURCE('after-full'));
    expect(accepted.response.status).toBe(200);
    expect(accepted.body.errors).toBeUndefined();
    expect(diskFullLines(server).map((line) => line.msg)).toEqual([
      "the database's disk is full: writes fail until space is freed (logged once until they succeed again)",
      "the database's disk has room again: writes succeed",
    ]);
  }, 60_000);
});

/**
 * PostgreSQL's disk_full (53100) cannot be brought about on the shared server; a function of the
 * test's own database raises it, so it reaches the server's code as the driver delivers it,
 * through Prisma's adapter and through the hand-written statements' pool alike.
 */
describe.runIf(databases.includes('postgresql'))('PostgreSQL disk_full (SQLSTATE 53100)', () => {
  test('is a full disk: UNAVAILABLE with the disk-full message and Retry-After', async () => {
    const database = await createTestDatabase('postgresql');
    disposers.push(() => database.drop());
    const db = createPrismaClient(database.url);
    disposers.push(() => db.$disconnect());
    await db.$executeRawUnsafe(
      "CREATE FUNCTION no_room() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full'; END $$",
    );
    const throughPrisma = await db.$queryRawUnsafe('SELECT no_room()').catch((error: unknown) => error);
    const throughDriver = await driverSqlOf(db).$queryRaw`SELECT no_room()`.catch((error: unknown) => error);
    const mask = createErrorMasker(() => {
      throw new Error('a full disk is not unexpected');
    });
    for (const error of [throughPrisma, throughDriver]) {
      expect(isDiskFull(error)).toBe(true);
      expect(isDatabaseUnavailable(error)).toBe(true);
      expect(failureMessage(error)).toBe(DISK_FULL);
      const answered = mask(error, 'Unexpected error.') as GraphQLError;
      expect({ message: answered.message, extensions: answered.extensions }).toEqual({
        message: "The database's disk is full: changes are refused until an operator frees space.",
        extensions: { code: 'UNAVAILABLE', http: { status: 503, headers: { 'Retry-After': '30' } } },
      });
    }
  }, 30_000);
});
