import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { LISTENING, startBanner } from '../src/app/banner.js';
import { buildApp } from '../src/app/build-app.js';
import { trackRequest } from '../src/app/request-log.js';
import { loadConfig } from '../src/platform/config.js';
import { envSchema } from '../src/platform/config-env.js';
import { createLogger, type LogFormat } from '../src/platform/logger.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import {
  killLeftovers,
  listeningUrl,
  ROOT,
  SERVER_COMMAND,
  type ServerProcess,
  serverEnv,
  startProcess,
} from './support/process.js';

/**
 * What a new operator meets on the first start: a readable log on a terminal and JSON lines for
 * collectors, a banner saying where to point a browser and how the server runs (with no secret
 * in it), no line per health probe, and a `.env.example` and README that list every setting.
 */

const databases = await availableDatabases();
const SETTINGS = Object.keys(envSchema.shape);
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

describe('every setting is listed where an operator looks for it', () => {
  test('.env.example names every environment variable of the schema, and nothing else', () => {
    const example = readFileSync(`${ROOT}.env.example`, 'utf8');
    const listed = [...example.matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]);
    expect(listed.filter((name) => !SETTINGS.includes(name as string))).toEqual([]);
    expect(SETTINGS.filter((name) => !listed.includes(name))).toEqual([]);
    expect(new Set(listed).size).toBe(listed.length);
  });

  test("the README's configuration table names every environment variable", () => {
    const readme = readFileSync(`${ROOT}README.md`, 'utf8');
    const section = readme.slice(
      readme.indexOf('## Configuration'),
      readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1),
    );
    const rows = section.split('\n').filter((line) => line.startsWith('| `'));
    const named = new Set(
      rows.flatMap((row) => [...(row.split(' | ')[0] ?? '').matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1])),
    );
    expect(SETTINGS.filter((name) => !named.has(name))).toEqual([]);
  });
});

/** A logger writing into an array of lines, as JSON or pretty-printed. */
function capturedLogger(format: LogFormat) {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: createLogger('info', { format, destination: sink }), lines };
}

describe('log formats', () => {
  test.each(['json', 'pretty'] as const)(
    '%s output redacts tokens, authorization headers and secrets in errors',
    (format) => {
      const { logger, lines } = capturedLogger(format);
      const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl';
      logger.info({ token: 'tok-1234567890', headers: { authorization: 'Bearer hdr-secret-42' } }, 'call');
      logger.error({ err: new Error(`upstream refused ${jwt}`) }, 'failed');
      const text = lines.join('\n');
      expect(text).toContain('[redacted]');
      expect(text).toContain('upstream refused');
      for (const secret of ['tok-1234567890', 'hdr-secret-42', jwt]) expect(text).not.toContain(secret);
      if (format === 'json') expect(() => lines.map((line) => JSON.parse(line))).not.toThrow();
      else expect(lines[0]).toMatch(/^\[[\d:.]+\] INFO: call$/);
    },
  );
});

describe('probe requests in the log', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  /** A server that answers every path with `status`, logging as the app's router does. */
  async function probeServer(status: number, logProbes: boolean) {
    const { logger, lines } = capturedLogger('json');
    server = createServer((req, res) => {
      trackRequest(req, res, logger, logProbes);
      res.statusCode = status;
      res.end();
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const logged = () => lines.map((line) => JSON.parse(line) as { path: string; status: number });
    return { base, logged };
  }

  test('successful probes and scrapes leave no line; other paths do', async () => {
    const { base, logged } = await probeServer(200, false);
    for (const path of ['/health', '/health', '/readiness', '/metrics', '/graphql']) await fetch(`${base}${path}`);
    expect(logged().map((line) => line.path)).toEqual(['/graphql']);
  });

  test('a failing probe is logged: a 503 from /readiness is news to an operator', async () => {
    const { base, logged } = await probeServer(503, false);
    await fetch(`${base}/readiness`);
    expect(logged()).toEqual([expect.objectContaining({ path: '/readiness', status: 503 })]);
  });

  test("the server's own 503 while it starts is logged too (it was answered before the request log)", async () => {
    const { logger, lines } = capturedLogger('json');
    const directory = mkdtempSync(path.join(tmpdir(), 'market-probe-'));
    const app = buildApp(loadConfig({ DATABASE_URL: `file:${path.join(directory, 'market.db')}`, PORT: '0' }), {
      logger,
    });
    try {
      const { url } = await app.listen(); // bound, not started: requests wait, probes answer
      const readiness = await fetch(`${new URL(url).origin}/readiness`);
      expect(readiness.status).toBe(503);
      expect(await readiness.json()).toEqual({ status: 'not ready', error: 'starting' });
      const logged = lines.map((line) => JSON.parse(line) as { path?: string; status?: number });
      expect(logged).toContainEqual(expect.objectContaining({ path: '/readiness', status: 503 }));
    } finally {
      await app.stop();
      rmSync(directory, { recursive: true, force: true });
    }
  });

  test('a request waiting for a start-up that a stop ends is answered 503, not cut without an answer', async () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'market-waiting-'));
    const app = buildApp(loadConfig({ DATABASE_URL: `file:${path.join(directory, 'market.db')}`, PORT: '0' }), {
      logger: createLogger('silent'),
    });
    try {
      const { url } = await app.listen(); // bound, never started
      const arrived = new Promise((resolve) => app.server.once('request', resolve));
      const waiting = fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ viewer { userId } }' }),
      });
      await arrived;
      await app.stop();
      const answer = await waiting;
      expect(answer.status).toBe(503);
      expect(await answer.json()).toMatchObject({ errors: [{ extensions: { code: 'UNAVAILABLE' } }] });
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  test('with LOG_PROBES every probe is logged', async () => {
    const { base, logged } = await probeServer(200, true);
    for (const path of ['/health', '/readiness', '/metrics']) await fetch(`${base}${path}`);
    expect(logged().map((line) => line.path)).toEqual(['/health', '/readiness', '/metrics']);
  });
});

describe('the start-up banner', () => {
  test('names where the database, Redis and the app service are, never their credentials', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgresql://market:db-pass-7731@db.internal:5432/market?sslmode=require&password=q-pass-1',
      REDIS_URL: 'redis://default:redis-pass-5512@cache.internal:6380/2',
      INSTANCE_NAME: 'api-1',
      AUTH_TOKENS: 'ops:admin:token-pass-9981',
      HOST: '0.0.0.0',
      APP_SERVICE_URL: 'https://apps.internal/base', // credentials and a query string are refused (config.test.ts)
      APP_SERVICE_EVENT_SECRET: 'event-pass-20202020',
      GRAPHIQL: 'off',
    });
    const banner = startBanner(config, { url: 'http://0.0.0.0:4321', port: 4321 });
    expect(banner).toEqual({
      url: 'http://0.0.0.0:4321/graphql',
      graphiql: null,
      dashboard: 'http://0.0.0.0:4321/dashboard',
      mode: 'API tokens (1)',
      database: 'PostgreSQL at db.internal:5432/market',
      cluster: 'Redis at cache.internal:6380, database 2, instance api-1',
      appService: 'https://apps.internal/base',
      developerService: 'none: purchases are refused (DEVELOPER_SERVICE_URL_TEMPLATE)',
      demoData: true,
    });
    expect(JSON.stringify(banner)).not.toMatch(/pass/);
  });

  test('says when Redis is reached over TLS, and leaves database 0 unsaid', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgresql://market@db.internal:5432/market',
      REDIS_URL: 'rediss://default:redis-pass-5512@cache.internal:6380',
      INSTANCE_NAME: 'api-1',
    });
    const banner = startBanner(config, { url: 'http://127.0.0.1:4321', port: 4321 });
    expect(banner.cluster).toBe('Redis at cache.internal:6380 over TLS, instance api-1');
  });

  test('names the gateway header and the JWT issuer', () => {
    const config = loadConfig({
      AUTH_USER_HEADER: 'X-Bfl-User',
      AUTH_ADMIN_USERS: 'ops',
      AUTH_JWT_SECRET: 'a-jwt-secret-of-at-least-32-characters',
      AUTH_JWT_ISSUER: 'https://id.example.com',
    });
    expect(startBanner(config, { url: 'http://127.0.0.1:4000', port: 4000 }).mode).toBe(
      'gateway header X-Bfl-User (1 admin users) + JWT from issuer https://id.example.com',
    );
  });
});

describe('a server started as `npm start` starts it', () => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await killLeftovers();
    await database?.drop();
    database = undefined;
  });
  afterAll(() => killLeftovers());

  /** PostgreSQL when there is one, with a password in its URL (trust auth ignores it): it must not show. */
  async function databaseWithPassword(): Promise<string> {
    database = await createTestDatabase(databases.includes('postgresql') ? 'postgresql' : 'sqlite');
    if (database.kind === 'sqlite') return database.url;
    const url = new URL(database.url);
    url.password = 'db-pass-never-logged';
    return url.toString();
  }

  /** A logged request after the probes: once its line is there, theirs would have been too. */
  async function postAfterProbes(server: ServerProcess, url: URL) {
    await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'after-probes' },
      body: '{"query":"{ __typename }"}',
    });
    await server.waitForLog((line) => line.requestId === 'after-probes', 'the GraphQL request was logged');
  }

  async function stop(server: ServerProcess) {
    server.child.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
  }

  test('on a pipe: JSON lines, one banner entry with its fields, no line per successful probe', async () => {
    const server = startProcess(SERVER_COMMAND, serverEnv(await databaseWithPassword()));
    const url = await listeningUrl(server);
    const banner = server.logs.find((line) => line.msg === LISTENING);
    expect(banner).toMatchObject({
      level: 30,
      url: url.toString(),
      graphiql: url.toString(),
      dashboard: url.toString().replace(/graphql$/, 'dashboard'),
      mode: expect.stringMatching(/^local development/),
      database: expect.stringMatching(/^(PostgreSQL at 127\.0\.0\.1:5432\/market_test_|SQLite \/)/),
      cluster: 'single process (no REDIS_URL)',
      appService: expect.stringMatching(/^simulated/),
      developerService: 'simulated: grants every purchase',
      demoData: false,
    });
    expect(server.logs.filter((line) => line.level === 40 && /^Simulated: /.test(String(line.msg)))).toHaveLength(1);
    expect(server.logs.filter((line) => line.msg === LISTENING)).toHaveLength(1);
    for (const path of ['/health', '/health', '/health', '/readiness']) {
      expect((await fetch(new URL(path, url))).status).toBe(200);
    }
    // A logged request after the probes: once its line is there, theirs would have been too.
    await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'after-probes' },
      body: '{"query":"{ __typename }"}',
    });
    await server.waitForLog((line) => line.requestId === 'after-probes', 'the GraphQL request was logged');
    expect(server.logs.filter((line) => line.msg === 'request').map((line) => line.path)).toEqual(['/graphql']);
    await stop(server);
    expect(server.output.length).toBe(server.logs.length);
    expect(server.output.join('\n')).not.toContain('db-pass-never-logged');
  });

  test('with LOG_FORMAT=pretty: a readable banner with the GraphiQL and dashboard addresses and the mode, and the last line before exit', async () => {
    const env = serverEnv(await databaseWithPassword(), { LOG_FORMAT: 'pretty', DEMO_DATA: '1' });
    const server = startProcess(SERVER_COMMAND, env);
    const text = () => server.output.join('\n').replace(ANSI, '');
    await expect.poll(text, { timeout: 30_000 }).toContain('Demo data');
    const base = /^ {2}GraphQL +(http:\/\/127\.0\.0\.1:\d+)\/graphql$/m.exec(text())?.[1];
    expect(base).toBeDefined();
    expect(text()).toContain(
      [
        `INFO: ${LISTENING}`,
        `  GraphQL      ${base}/graphql`,
        `  GraphiQL     ${base}/graphql (open it in a browser)`,
        `  Dashboard    ${base}/dashboard`,
        '  Mode         local development: every request is the admin "admin", bound to loopback only',
      ].join('\n'),
    );
    expect(text()).toMatch(/^ {2}Demo data +on \(DEMO_DATA\)$/m);
    expect(server.logs).toEqual([]);
    await fetch(`${base}/health`);
    await stop(server);
    // Written synchronously: the line logged just before process.exit() is there.
    expect(text()).toMatch(/INFO: stopped$/m);
    expect(text()).not.toContain('/health');
    expect(text()).not.toContain('db-pass-never-logged');
  });

  test('with LOG_PROBES=true: every probe is logged', async () => {
    const server = startProcess(SERVER_COMMAND, serverEnv(await databaseWithPassword(), { LOG_PROBES: 'true' }));
    const url = await listeningUrl(server);
    for (let probe = 0; probe < 3; probe += 1) await fetch(new URL('/health', url));
    await postAfterProbes(server, url);
    expect(server.logs.filter((line) => line.msg === 'request').map((line) => line.path)).toEqual([
      '/health',
      '/health',
      '/health',
      '/graphql',
    ]);
    await stop(server);
  });
});
