import { describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import { startTestServer } from './support/server.js';

/**
 * A stop asked for twice (a second SIGTERM, a test's afterAll after the test stopped the server
 * itself) is one stop: the second call waits for the first instead of closing the database, and
 * on PostgreSQL the readiness probe's pool, a second time (pg refuses that: "Called end on pool
 * more than once").
 */

const databases = await availableDatabases();

describe.each(databases)('stopping a server twice, on %s', (kind) => {
  test('a second stop after the first has ended resolves', async () => {
    const server = await startTestServer(kind);
    await server.app.stop('SIGTERM');
    await expect(server.app.stop('SIGTERM')).resolves.toBeUndefined();
    await server.database.drop();
  });

  test('two stops at once both resolve once the server has stopped', async () => {
    const server = await startTestServer(kind);
    const stops = [server.app.stop('SIGTERM'), server.app.stop('SIGINT')];
    await expect(Promise.all(stops)).resolves.toEqual([undefined, undefined]);
    expect(server.app.server.listening).toBe(false);
    await server.database.drop();
  });
});
