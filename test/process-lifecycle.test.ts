import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient as createSseClient, NetworkError } from 'graphql-sse';
import { type CloseCode, createClient as createWsClient } from 'graphql-ws';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterEach, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import {
  killLeftovers,
  LISTENING,
  listeningUrl,
  processTreeOf,
  SERVER_COMMAND,
  type SeenProcess,
  serverEnv,
  startProcess,
  stillRunning,
} from './support/process.js';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './support/redis.js';
import { waitFor } from './support/server.js';
import { startTcpProxy } from './support/tcp-proxy.js';

/** PostgreSQL answers (else its cases are skipped, loudly; REQUIRE_SERVICES=1 makes that a failure). */
const POSTGRES = (await availableDatabases()).includes('postgresql');
/** Redis answers: the cluster mode's cases need it (skipped, loudly, otherwise). */
const REDIS = await redisAvailable();

const SHUTTING_DOWN = 'shutting down: no longer accepting connections';
const STOPPED = 'stopped';
/** Sent at once on subscribing, so a first result proves the subscription is running. */
const SNAPSHOT = 'subscription { runtimeSnapshot { sequence } }';

/** Every process a test saw, and the temporary directories it made: nothing outlives the test. */
let seen: SeenProcess[] = [];
const directories: string[] = [];
const portHolders: Server[] = [];
const databases: TestDatabase[] = [];

afterEach(async () => {
  await killLeftovers(seen.splice(0));
  for (const database of databases.splice(0)) await database.drop();
  for (const holder of portHolders.splice(0)) holder.close();
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

/** A SQLite file in a fresh temporary directory (not created: the server does that). */
function temporaryDatabase(): { url: string; file: string } {
  const directory = mkdtempSync(path.join(tmpdir(), 'market-lifecycle-'));
  directories.push(directory);
  const file = path.join(directory, 'market.db');
  return { url: `file:${file}`, file };
}

/** Resolves once something can bind `port` again (and releases it). */
async function portIsFree(port: number): Promise<boolean> {
  const probe = createServer();
  try {
    probe.listen(port, '127.0.0.1');
    await once(probe, 'listening');
    return true;
  } catch {
    return false;
  } finally {
    probe.close();
  }
}

/** Whether a new TCP connection to `port` is refused. */
async function refusesConnections(port: number): Promise<boolean> {
  const socket = connect(port, '127.0.0.1');
  try {
    await once(socket, 'connect');
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ECONNREFUSED';
  } finally {
    socket.destroy();
  }
}

/**
 * A POST whose body is held back: its headers carry `Expect: 100-continue`, so the server's
 * "100 Continue" tells the test the request is in flight on the server; `send()` sends the body.
 */
function heldPost(url: URL, body: string) {
  const req = request(url, {
    method: 'POST',
    agent: false,
    headers: {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      expect: '100-continue',
    },
  });
  const inFlight = once(req, 'continue');
  const answer = new Promise<{ status: number; connection: string | undefined; body: unknown }>((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.once('end', () =>
        resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body: JSON.parse(text) }),
      );
      res.once('error', reject);
    });
  });
  // Awaited later; a failure before then must not count as unhandled.
  answer.catch(() => {});
  req.flushHeaders();
  return { inFlight, answer, send: () => req.end(body) };
}

describe('the server process', () => {
  test('`npm start` is npm running the server as its direct child, and SIGTERM to npm makes the server shut down, free the port and leave no process behind', async () => {
    const database = temporaryDatabase();
    const npm = startProcess(['npm', 'start'], serverEnv(database.url));
    const url = await listeningUrl(npm);
    const npmPid = npm.child.pid as number;
    seen = processTreeOf(npmPid);

    npm.child.kill('SIGTERM');
    const exit = await npm.exited;

    expect(exit, npm.output.join('\n')).toEqual({ code: 0, signal: null });
    expect(npm.logs.find((line) => line.msg === SHUTTING_DOWN)).toMatchObject({ signal: 'SIGTERM' });
    expect(npm.logs.find((line) => line.msg === STOPPED)).toBeDefined();
    expect(await portIsFree(Number(url.port))).toBe(true);
    // No shell between npm and the server (a shell would take the signal and leave the server running).
    const servers = seen.filter((each) => each.command.includes('src/index.ts'));
    expect(servers, JSON.stringify(seen)).toHaveLength(1);
    expect(servers[0]).toMatchObject({
      parent: npmPid,
      command: [expect.stringMatching(/node$/), '--import', 'tsx', 'src/index.ts'],
    });

    // esbuild (tsx's compiler) ends once its parent has gone, which may take a moment after npm's exit.
    await waitFor(
      async () => (seen.some(stillRunning) ? undefined : true),
      `the end of ${JSON.stringify(seen.filter(stillRunning))}`,
    );
  });

  test('a port in use is a one-line error and exit code 1, before anything else happens (no database file, no log line)', async () => {
    const holder = createServer();
    portHolders.push(holder);
    holder.listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const { port } = holder.address() as { port: number };
    const database = temporaryDatabase();

    const server = startProcess(SERVER_COMMAND, serverEnv(database.url, { PORT: String(port), DEMO_DATA: '1' }));
    const exit = await server.exited;

    expect(exit).toEqual({ code: 1, signal: null });
    expect(server.output).toEqual([
      `Port ${port} on 127.0.0.1 is already in use (EADDRINUSE); set PORT to another port or stop the other process.`,
    ]);
    // Migrating would have created the SQLite file: nothing ran before the port was bound.
    expect(existsSync(database.file)).toBe(false);
  });

  test('on SIGTERM, a graphql-ws subscriber is closed with 1012, SSE streams end without `complete`, a request in flight still gets its answer, and the process exits 0', async () => {
    // Migrated already: this test is about stopping, whichever step migrates.
    const database = await createTestDatabase('sqlite');
    databases.push(database);
    const server = startProcess(SERVER_COMMAND, serverEnv(database.url, { DEMO_DATA: '1' }));
    const graphqlUrl = await listeningUrl(server);
    const port = Number(graphqlUrl.port);

    // A graphql-ws subscriber.
    const wsClient = createWsClient({
      url: graphqlUrl.href.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
    });
    const wsClosed = new Promise<{ code: number; reason: string }>((resolve) => {
      wsClient.on('closed', (event) => {
        const { code, reason } = event as { code: CloseCode; reason: string };
        resolve({ code, reason });
      });
    });
    const wsFirst = new Promise<unknown>((resolve, reject) => {
      wsClient.subscribe({ query: SNAPSHOT }, { next: resolve, error: reject, complete: () => {} });
    });

    // A graphql-sse client (distinct connections, graphql-sse's default).
    const sseClient = createSseClient({ url: `${graphqlUrl.href}/stream`, retryAttempts: 0 });
    let sseFirst!: (value: unknown) => void;
    const sseStreaming = new Promise((resolve) => {
      sseFirst = resolve;
    });
    const sseOutcome = new Promise<unknown>((resolve) => {
      sseClient.subscribe({ query: SNAPSHOT }, { next: sseFirst, error: resolve, complete: () => resolve('complete') });
    });

    // An SSE stream read by hand (Yoga's plain SSE on /graphql), to see how it ends on the wire.
    const raw = await fetch(`${graphqlUrl.href}?query=${encodeURIComponent(SNAPSHOT)}`, {
      headers: { accept: 'text/event-stream' },
    });
    let rawText = '';
    let rawFirst!: () => void;
    const rawStreaming = new Promise<void>((resolve) => {
      rawFirst = resolve;
    });
    const rawEnded = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of raw.body as unknown as AsyncIterable<Uint8Array>) {
        rawText += decoder.decode(chunk, { stream: true });
        if (rawText.includes('event: next')) rawFirst();
      }
    })();

    const post = heldPost(graphqlUrl, JSON.stringify({ query: '{ __typename }' }));

    await Promise.all([wsFirst, sseStreaming, rawStreaming, post.inFlight]);
    server.child.kill('SIGTERM');
    await server.waitForLog((line) => line.msg?.startsWith('shutting down') === true, 'it began shutting down');
    expect(await refusesConnections(port)).toBe(true);
    // Only now does the request's body leave the client.
    post.send();

    expect(await post.answer).toEqual({ status: 200, connection: 'close', body: { data: { __typename: 'Query' } } });
    expect(await wsClosed).toEqual({ code: 1012, reason: 'Service restart' });
    // A stream ended before `complete` is a lost connection to graphql-sse, which it retries.
    expect(await sseOutcome).toBeInstanceOf(NetworkError);
    await rawEnded; // the body ended cleanly: no reset
    expect(rawText).not.toContain('event: complete');
    expect(rawText).toMatch(/: server restarting, reconnect\n\n$/);

    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.logs.find((line) => line.msg === STOPPED)).toMatchObject({
      requestsWaitedFor: 1,
      requestsCut: 0,
      streamsEnded: 2,
      webSocketsClosed: 1,
      webSocketsCut: 0,
    });
    await wsClient.dispose();
    sseClient.dispose();
  });
});

/** A fresh PostgreSQL database reached through a TCP proxy the test can cut: its URL names the proxy. */
async function postgresBehindProxy() {
  const database = await createTestDatabase('postgresql');
  databases.push(database);
  const url = new URL(database.url);
  const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
  url.port = String(proxy.port);
  return { url, proxy };
}

describe('a stop that begins while the server is still starting', () => {
  test.runIf(POSTGRES)(
    'SIGTERM during the start-up: nothing more starts (no task sent, no "listening"), and the process exits 0',
    async () => {
      const { url, proxy } = await postgresBehindProxy();
      try {
        // A slow database (every answer 30 ms late) stretches the start-up to seconds (the test
        // database comes migrated): the signal, sent once the migrations are checked, lands long
        // before the task engine would start.
        const env = serverEnv(url.toString(), { DEMO_DATA: '1' });
        delete env.REDIS_URL;
        proxy.slow(30);
        const server = startProcess(SERVER_COMMAND, env);
        await server.waitForLog((line) => line.msg === 'database schema is up to date', 'the migrations');
        server.child.kill('SIGTERM');
        expect(await server.exited, server.output.join('\n')).toEqual({ code: 0, signal: null });
        expect(server.logs.find((line) => line.msg === STOPPED)).toBeDefined();
        // Before: the start carried on, said it was listening after the stop began, seeded the demo
        // data and sent its installs to the (in-memory) app service, then handed them over: the
        // next start failed them ("lost").
        expect(server.logs.map((line) => line.msg)).not.toContain(LISTENING);
        expect(server.logs.find((line) => line.msg?.startsWith('handed the running tasks over'))).toBeUndefined();
        proxy.slow(0);
        const client = new pg.Client({ connectionString: url.toString() });
        await client.connect();
        try {
          const { rows } = await client.query<{ status: string }>(`SELECT DISTINCT status FROM "Task"`);
          expect(rows.filter((row) => row.status !== 'PENDING')).toEqual([]); // nothing ran
        } finally {
          await client.end();
        }
      } finally {
        await proxy.close();
      }
    },
    60_000,
  );

  test.runIf(POSTGRES && REDIS)(
    'SIGTERM during the last start-up steps, after the task engine started: no "listening", and the process exits 0',
    async () => {
      const { url, proxy } = await postgresBehindProxy();
      const prefix = uniquePrefix();
      try {
        const server = startProcess(SERVER_COMMAND, serverEnv(url.toString(), { REDIS_URL, REDIS_PREFIX: prefix }));
        // Logged once the engine and the outbox have started, as the periodic jobs start. The next
        // step, the collector, first reads the database: its answers are held from here (the line
        // reaches the test before that read can have been answered), so the start-up stands still
        // until the stop has begun.
        await server.waitForLog((line) => line.msg === 'leading the cluster', 'it led the cluster');
        proxy.holdAnswers();
        server.child.kill('SIGTERM');
        await server.waitForLog((line) => line.msg === SHUTTING_DOWN, 'it began shutting down');
        proxy.releaseAnswers();
        expect(await server.exited, server.output.join('\n')).toEqual({ code: 0, signal: null });
        const messages = server.logs.map((line) => line.msg);
        // Before: "shutting down", then "Market Runtime GraphQL API listening", then "stopped".
        expect(messages, server.output.join('\n')).not.toContain(LISTENING);
        expect(messages.indexOf(STOPPED)).toBeGreaterThan(messages.indexOf(SHUTTING_DOWN));
      } finally {
        await proxy.close();
        await deleteKeys(prefix);
      }
    },
    60_000,
  );
});

describe('a database that stops answering while the server runs', () => {
  test.runIf(POSTGRES)(
    'SIGTERM with a task running: the stop is cut at its bound, says what it waited for, and exits 1',
    async () => {
      const { url, proxy } = await postgresBehindProxy();
      try {
        const env = serverEnv(url.toString(), { SHUTDOWN_TIMEOUT_MS: '1000', SIMULATED_STEP_MS: '60000' });
        delete env.REDIS_URL;
        const server = startProcess(SERVER_COMMAND, env);
        const graphqlUrl = await listeningUrl(server);
        const post = async (query: string) => {
          const body = JSON.stringify({ query });
          const headers = { 'content-type': 'application/json' };
          return (await (await fetch(graphqlUrl, { method: 'POST', headers, body })).json()) as {
            data: Record<string, { task?: { taskId: string }; status?: string; opId?: string | null } | null>;
          };
        };
        const install = await post(
          'mutation { installApp(input: { sourceId: "market.olares", appName: "n8n", version: "1.70.1" }) { ... on InstallAppSuccess { task { taskId } } } }',
        );
        const taskId = install.data.installApp?.task?.taskId as string;
        // Sent to the app service, which takes a minute per step: it runs through the stop.
        await waitFor(async () => {
          const { data } = await post(`{ task(taskId: "${taskId}") { status opId } }`);
          return data.task?.status === 'RUNNING' && data.task.opId ? true : undefined;
        }, 'the install to run on the app service');

        proxy.freeze();
        const signalled = Date.now();
        server.child.kill('SIGTERM');
        expect(await server.exited).toEqual({ code: 1, signal: null });
        // The drain (1 s), then twice SHUTDOWN_TIMEOUT_MS and 10 s at most (13 s seen on a loaded
        // machine with 5 s, with the process's own exit); unbounded, a query alone waited a minute.
        expect(Date.now() - signalled).toBeLessThan(30_000);
        const failure = server.logs.find((line) => line.msg === 'shutdown failed');
        expect((failure?.err as { message?: string } | undefined)?.message).toMatch(
          // The part named, and what of it was still running when known (a job run held by the database).
          /^stop cut after \d+ ms: the [a-z ]+ did not stop in time \((is the database or Redis not answering\?|still running: [^)]+)\); running tasks are taken over once their lease expires$/,
        );
      } finally {
        await proxy.close();
      }
    },
    90_000,
  );
});

describe('dependencies that are not there at start: exit 1 with one line naming them', () => {
  test.runIf(POSTGRES)(
    'a PostgreSQL that accepts the connection and never answers (a blackholed network)',
    async () => {
      const { url, proxy } = await postgresBehindProxy();
      proxy.cut('hold');
      try {
        const env = serverEnv(url.toString());
        delete env.REDIS_URL;
        const server = startProcess(SERVER_COMMAND, env);
        // Before, it waited for the database forever, "starting", while /health said alive.
        expect(await server.exited).toEqual({ code: 1, signal: null });
        expect(server.output.at(-1)).toBe(
          `Could not migrate the database (PostgreSQL at 127.0.0.1:${proxy.port}${url.pathname}): could not connect: no answer within 5000 ms`,
        );
      } finally {
        await proxy.close();
      }
    },
    60_000,
  );

  test.runIf(POSTGRES)(
    'a Redis that refuses connections (cluster mode)',
    async () => {
      // Cluster mode is on PostgreSQL only (a SQLite DATABASE_URL is refused beside REDIS_URL).
      const database = await createTestDatabase('postgresql');
      databases.push(database);
      const closed = createServer();
      closed.listen(0, '127.0.0.1');
      await once(closed, 'listening');
      const { port } = closed.address() as { port: number };
      closed.close(); // nobody listens there any more
      const server = startProcess(
        SERVER_COMMAND,
        serverEnv(database.url, { REDIS_URL: `redis://user:secret@127.0.0.1:${port}` }),
      );
      expect(await server.exited).toEqual({ code: 1, signal: null });
      const last = server.output.at(-1) ?? '';
      expect(last).toMatch(new RegExp(`^Could not reach Redis at 127\\.0\\.0\\.1:${port} \\(REDIS_URL\\): `));
      expect(server.output.join('\n')).not.toContain('secret');
    },
    60_000,
  );

  test.runIf(POSTGRES)(
    'a database number Redis refuses stops the start in one line, before anything is written to database 0',
    async () => {
      const database = await createTestDatabase('postgresql');
      databases.push(database);
      const redis = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
      const prefix = `baddb-${process.pid}:`;
      const server = startProcess(
        SERVER_COMMAND,
        // The shared Redis has 16 databases (0–15): SELECT 99 is refused.
        serverEnv(database.url, { REDIS_URL: `redis://${redis.host}/99`, REDIS_PREFIX: prefix }),
      );
      expect(await server.exited).toEqual({ code: 1, signal: null });
      expect(server.output.at(-1) ?? '').toMatch(
        /^Redis at .* \(REDIS_URL\) has no such database: .*DB index is out of range.* \(use a database number/,
      );
      const keys = new Redis(redis.href);
      try {
        expect(await keys.keys(`${prefix}*`)).toEqual([]);
      } finally {
        keys.disconnect();
      }
    },
    60_000,
  );

  test.runIf(POSTGRES)(
    'a Redis that refuses the credentials says so, not only that the connection closed',
    async () => {
      const database = await createTestDatabase('postgresql');
      databases.push(database);
      // The shared Redis has no password: it refuses any user and password (WRONGPASS).
      const redis = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
      const server = startProcess(
        SERVER_COMMAND,
        serverEnv(database.url, { REDIS_URL: `redis://nobody:secret@${redis.host}`, REDIS_PREFIX: 'wrongpass:' }),
      );
      expect(await server.exited).toEqual({ code: 1, signal: null });
      const last = server.output.at(-1) ?? '';
      expect(last).toMatch(
        /^Redis at .* \(REDIS_URL\) refused the credentials: WRONGPASS.*\(check the user and password in REDIS_URL\)$/,
      );
      expect(server.output.join('\n')).not.toContain('secret');
    },
    60_000,
  );
});
