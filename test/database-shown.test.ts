import { existsSync } from 'node:fs';
import { afterEach, describe, expect, test } from 'vitest';
import { databaseShown } from '../src/db/client.js';
import { availableDatabases, createTestDatabase } from './support/databases.js';
import { killLeftovers, listeningUrl, SERVER_COMMAND, serverEnv, startProcess } from './support/process.js';

/**
 * How the start banner names a PostgreSQL database reached over a Unix socket: `new URL` read
 * `postgresql://u@/db?host=/dir` as no URL (the banner said just "PostgreSQL") and showed the
 * `%2F…` host form percent-encoded. Both now show the socket's directory and the database.
 */

const SOCKET_DIRECTORY = '/var/run/postgresql';
const databases = await availableDatabases();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killLeftovers();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.runIf(databases.includes('postgresql') && existsSync(`${SOCKET_DIRECTORY}/.s.PGSQL.5432`))(
  'PostgreSQL over a Unix socket',
  () => {
    test.each([
      ['?host=', (user: string, name: string) => `postgresql://${user}@/${name}?host=${SOCKET_DIRECTORY}&port=5432`],
      [
        'an encoded host',
        (user: string, name: string) => `postgresql://${user}@${encodeURIComponent(SOCKET_DIRECTORY)}/${name}`,
      ],
    ])('the banner names the socket directory and the database (%s)', async (form, socketUrl) => {
      const database = await createTestDatabase('postgresql');
      cleanups.push(() => database.drop());
      const tcp = new URL(database.url);
      const name = tcp.pathname.slice(1);
      const server = startProcess(SERVER_COMMAND, serverEnv(socketUrl(tcp.username, name), { LOG_FORMAT: 'json' }));
      await listeningUrl(server);
      const banner = server.logs.find((line) => line.database !== undefined);
      const port = form === '?host=' ? ' (port 5432)' : '';
      expect(banner?.database).toBe(`PostgreSQL on the Unix socket in ${SOCKET_DIRECTORY}${port}, database ${name}`);
    });
  },
);

test('a socket URL without a database names the socket alone, not an undefined database', () => {
  expect(databaseShown('postgresql://u@%2Frun%2Fpostgresql')).toBe('PostgreSQL on the Unix socket in /run/postgresql');
  expect(databaseShown('postgresql://u@%2Frun%2Fpostgresql/market')).toBe(
    'PostgreSQL on the Unix socket in /run/postgresql, database market',
  );
});
