import { Writable } from 'node:stream';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { afterAll } from 'vitest';
import { type App, buildApp } from '../../src/app/build-app.js';
import { loadConfig } from '../../src/platform/config.js';
import { createLogger } from '../../src/platform/logger.js';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './databases.js';
import { InstallAppMutation } from './operations.js';

export const TOKENS = {
  alice: 'alice-token-0001',
  bob: 'bob-token-0002',
  ops: 'ops-admin-token-0003',
} as const;

/** alice and bob are users, ops is an admin. */
export const AUTH_ENV = {
  AUTH_TOKENS: `alice:user:${TOKENS.alice},bob:user:${TOKENS.bob},ops:admin:${TOKENS.ops}`,
};

export interface TestServer {
  app: App;
  url: string;
  graphqlUrl: string;
  database: TestDatabase;
  /** Every JSON log line the server wrote. */
  logs: string[];
  /** Every SQL statement Prisma sent, in order (only when `recordQueries` was set). */
  queries: string[];
  stop(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  recordQueries?: boolean;
  /** Share another server's database (a second instance); it is dropped by whoever created it. */
  database?: TestDatabase;
  /** Keep log lines down to this level (default info). */
  logLevel?: 'info' | 'debug' | 'trace';
}

/** A real server on port 0 over its own fresh database, with demo data unless DEMO_DATA=0. */
export async function startTestServer(kind: DatabaseKind, options: StartOptions = {}): Promise<TestServer> {
  const database = options.database ?? (await createTestDatabase(kind));
  // The simulated app service stands still unless a test sets its pace, so reads see a fixed state;
  // status correction runs at start only unless a test sets its pace (rows a test writes later are
  // not the app service's). Tests in token mode buy through the simulated developer service, which
  // outside local development only runs on request (SIMULATED_DEVELOPER_SERVICE; '' turns it off).
  const correctionPace = options.env?.RECONCILE_INTERVAL_MS ? {} : { STATUS_CORRECTION_INTERVAL_MS: '3600000' };
  const config = loadConfig({
    DATABASE_URL: database.url,
    PORT: '0',
    LOG_LEVEL: options.logLevel ?? 'info',
    SIMULATED_STEP_MS: '600000',
    SIMULATED_DEVELOPER_SERVICE: 'true',
    ...correctionPace,
    ...options.env,
  });
  const logs: string[] = [];
  const queries: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const app = buildApp(config, {
    logger: createLogger(options.logLevel ?? 'info', sink),
    ...(options.recordQueries ? { prisma: { onQuery: (sql: string) => queries.push(sql) } } : {}),
  });
  const { url } = await app.start(config.port);
  // Tests start from a known point: the engine has claimed what was pending (demo tasks).
  await app.services.engine.settled();
  return {
    app,
    url,
    graphqlUrl: `${url}/graphql`,
    database,
    logs,
    queries,
    async stop() {
      await app.stop();
      if (!options.database) await database.drop();
    },
  };
}

export interface GraphQLResponse<T> {
  status: number;
  headers: Headers;
  data?: T | null;
  errors?: { message: string; path?: string[]; extensions?: { code?: string; [key: string]: unknown } }[];
}

/**
 * Starts SQLite servers without demo data for one test file, each stopped after the file's tests:
 * call it at the top of the file and use what it returns as `serverWith(env)`.
 */
export function serversOfThisFile(): (env?: Record<string, string>) => Promise<TestServer> {
  const servers: TestServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
  });
  return async (env = {}) => {
    const server = await startTestServer('sqlite', { env: { DEMO_DATA: '0', ...env } });
    servers.push(server);
    return server;
  };
}

/**
 * Polls `probe` until it returns a value that is not undefined (or the deadline passes). For
 * state that changes in the background (task engine); the deadline only bounds a failing test.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The persisted-document id codegen gave a typed document (`__meta__.hash`, see codegen.yml). */
export function documentIdOf<T, V>(document: TypedDocumentNode<T, V>): string {
  const id = (document as { __meta__?: { hash?: string } }).__meta__?.hash;
  if (!id) throw new Error('This document has no persisted-document id: run `npm run codegen`.');
  return id;
}

/**
 * POSTs a typed document; `token` selects the Bearer token; `persisted` sends the document's id
 * (`documentId`) instead of its text, as a client of a PERSISTED_DOCUMENTS server does.
 */
export async function execute<T, V>(
  server: Pick<TestServer, 'graphqlUrl'>,
  document: TypedDocumentNode<T, V>,
  variables?: NoInfer<V>,
  options?: { token?: string; headers?: Record<string, string>; persisted?: boolean },
): Promise<GraphQLResponse<T>> {
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      ...(options?.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options?.headers,
    },
    body: JSON.stringify({
      ...(options?.persisted ? { documentId: documentIdOf(document) } : { query: print(document) }),
      variables,
    }),
  });
  const body = (await response.json()) as Omit<GraphQLResponse<T>, 'status' | 'headers'>;
  return { status: response.status, headers: response.headers, ...body };
}

/**
 * Installs an app through the API (as `token`'s user; without one, as the local admin) and returns
 * its task id; fails the test, showing the answer, when the install is refused.
 */
export async function installThroughApi(
  server: Pick<TestServer, 'graphqlUrl'>,
  input: { appName: string; version: string; sourceId?: string },
  token?: string,
): Promise<string> {
  const variables = { input: { sourceId: 'market.olares', ...input } };
  const { installApp } = dataOf(await execute(server, InstallAppMutation, variables, token ? { token } : {}));
  if (installApp.__typename !== 'InstallAppSuccess') throw new Error(`install refused: ${JSON.stringify(installApp)}`);
  return installApp.task.taskId;
}

/** The data of a response that must have no errors; otherwise fails showing the errors. */
export function dataOf<T>(response: GraphQLResponse<T>): T {
  if (response.errors?.length || !response.data) {
    throw new Error(
      `Expected no GraphQL errors, got (HTTP ${response.status}): ${JSON.stringify(response.errors, null, 2)}`,
    );
  }
  return response.data;
}

/** The error codes of a response that must have failed. */
export function errorCodes(response: GraphQLResponse<unknown>): (string | undefined)[] {
  if (!response.errors?.length) throw new Error(`Expected GraphQL errors, got data: ${JSON.stringify(response.data)}`);
  return response.errors.map((error) => error.extensions?.code);
}

/**
 * Announces one of `userId`'s history records again, as if it had just been added: a
 * `historyAdded` event to drive subscriptions without changing anything else. A user without a
 * record (a server without demo data) first gets one of their own, so callers need not know what
 * the database holds.
 */
export async function announceHistory(server: TestServer, userId = 'alice'): Promise<void> {
  const { db } = server.app;
  const record =
    (await db.historyRecord.findFirst({ where: { userId } })) ??
    (await db.historyRecord.create({
      data: {
        type: 'ACTION_INSTALL',
        message: 'install announced-app',
        app: 'announced-app',
        userId,
        time: new Date(),
      },
    }));
  server.app.services.bus.publish('history:added', { id: record.id, userId });
}
