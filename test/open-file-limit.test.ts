import { afterEach, expect, test } from 'vitest';
import WebSocket from 'ws';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { killLeftovers, listeningUrl, SERVER_COMMAND, serverEnv, startProcess } from './support/process.js';

/**
 * A server started under a soft open-file limit far below MAX_CONNECTIONS (Docker 25+ starts a
 * container at 1024; here 160, so that a test reaches it quickly): past the connections the limit
 * leaves room for, a WebSocket is refused with the documented 1013, not reset for want of a file,
 * and /health still answers.
 */

const SOFT_LIMIT = 160;
const SOCKETS = 200;
/** Fewer than a tenth of the 86 at once, the most that may wait for their acknowledgement. */
const BATCH = 8;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killLeftovers();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Outcome {
  acknowledged: boolean;
  /** The close code and reason, or the error, once settled ('' while it stays open). */
  ended: string;
}

/** Opens a graphql-ws connection and settles once it is acknowledged or ended. */
function connect(url: string, sockets: WebSocket[]): Promise<Outcome> {
  const socket = new WebSocket(url, 'graphql-transport-ws');
  sockets.push(socket);
  return new Promise((resolve) => {
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: {} })));
    socket.on('message', (data) => {
      if ((JSON.parse(String(data)) as { type: string }).type === 'connection_ack')
        resolve({ acknowledged: true, ended: '' });
    });
    socket.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ acknowledged: false, ended: error.code ?? error.message }),
    );
    socket.on('close', (code, reason) => resolve({ acknowledged: false, ended: `${code} ${reason}` }));
  });
}

test('under a low soft open-file limit connections past the room it leaves are refused with 1013', async () => {
  const database: TestDatabase = await createTestDatabase('sqlite');
  cleanups.push(() => database.drop());
  const command = ['bash', '-c', `ulimit -n ${SOFT_LIMIT} && exec "$0" "$@"`, ...SERVER_COMMAND];
  const server = startProcess(
    command,
    serverEnv(database.url, { LOG_FORMAT: 'json', MAX_CONNECTIONS_PER_USER: '5000' }),
  );
  const url = await listeningUrl(server);
  const sockets: WebSocket[] = [];
  cleanups.push(async () => {
    for (const socket of sockets) socket.terminate();
  });
  const wsUrl = `ws://${url.host}/graphql`;
  const outcomes: Outcome[] = [];
  for (let i = 0; i < SOCKETS; i += BATCH) {
    outcomes.push(...(await Promise.all(Array.from({ length: BATCH }, () => connect(wsUrl, sockets)))));
  }
  const ended = new Map<string, number>();
  for (const outcome of outcomes.filter((each) => !each.acknowledged)) {
    ended.set(outcome.ended, (ended.get(outcome.ended) ?? 0) + 1);
  }
  expect({
    acknowledged: outcomes.filter((outcome) => outcome.acknowledged).length,
    ...Object.fromEntries(ended),
  }).toEqual({
    acknowledged: 86,
    '1013 Too many connections on this instance (MAX_CONNECTIONS)': 114,
  });
  // Logged before the listening line, once.
  const warnings = server.logs.filter((line) => line.softOpenFileLimit !== undefined);
  // 160 − (DATABASE_POOL_SIZE 10 + at least 64) = 86.
  expect(warnings).toMatchObject([{ softOpenFileLimit: SOFT_LIMIT, maxConnections: 20_000, connectionLimit: 86 }]);
  const health = await fetch(new URL('/health', url), { signal: AbortSignal.timeout(5_000) });
  expect(health.status).toBe(200);
  expect(server.logs.filter((line) => JSON.stringify(line).includes('EMFILE'))).toEqual([]);
});
