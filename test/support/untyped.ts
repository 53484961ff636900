import { createHash } from 'node:crypto';
import type { Db } from '../../src/db/client.js';
import { type TestServer, waitFor } from './server.js';

/**
 * Untyped requests, for inputs a typed document cannot express (wrong types, NUL bytes, 40,000
 * items), and what tests of refused input check afterwards: the database did not change and
 * nothing was logged as an error.
 */

export interface RawError {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; issues?: { path: string; message: string }[]; [key: string]: unknown };
}

export interface RawResponse {
  status: number;
  /** The parsed JSON body (`errors`, `data`); null when the body is not JSON. */
  body: { data?: Record<string, unknown> | null; errors?: RawError[] } | null;
  text: string;
}

export async function rawRequest(
  server: Pick<TestServer, 'graphqlUrl'>,
  request: { query: string; variables?: unknown; operationName?: string },
  options: { token?: string; method?: 'GET' | 'POST'; search?: string } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = {
    accept: 'application/graphql-response+json',
    ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
  };
  let response: Response;
  if (options.method === 'GET') {
    const search =
      options.search ??
      new URLSearchParams({
        query: request.query,
        ...(request.variables !== undefined ? { variables: JSON.stringify(request.variables) } : {}),
      }).toString();
    response = await fetch(`${server.graphqlUrl}?${search}`, { headers });
  } else {
    response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify(request),
    });
  }
  const text = await response.text();
  let body: RawResponse['body'] = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: the test shows `text`
  }
  return { status: response.status, body, text };
}

/** A component of the runtime state, as `components` shows it (to the local admin without a token, else to its owner). */
export async function componentOf(server: Pick<TestServer, 'graphqlUrl'>, name: string, token?: string) {
  const response = await rawRequest(
    server,
    { query: '{ components { name state healthy message metrics } }' },
    token ? { token } : {},
  );
  const components = (response.body?.data?.components ?? []) as {
    name: string;
    state: string;
    healthy: boolean;
    message: string | null;
    metrics: Record<string, unknown>;
  }[];
  return components.find((component) => component.name === name);
}

/** The codes of a response's errors (fails when it has none). */
export function codesOf(response: RawResponse): (string | undefined)[] {
  const errors = response.body?.errors;
  if (!errors?.length) throw new Error(`expected errors, got HTTP ${response.status}: ${response.text.slice(0, 500)}`);
  return errors.map((error) => error.extensions?.code);
}

/** Log lines at level error (50) or above, from `since` (an index into `server.logs`) on. */
export function errorLogs(server: Pick<TestServer, 'logs'>, since = 0): string[] {
  return server.logs.slice(since).filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
}

/** Columns the background moves on its own: a running task's heartbeat, a polling round's count. */
const VOLATILE: Record<string, string[]> = {
  Task: ['heartbeatAt', 'workerId', 'updatedAt'],
  Payment: ['pollAttempts', 'updatedAt'],
};

/**
 * A digest of everything a mutation may change: tasks, app states, payments and their pushes,
 * history (VOLATILE columns left out, so only a request's own writes change it). Raw reads: this
 * runs twice per fuzzed mutation, and Prisma's query API costs several times as much.
 */
export async function fingerprint(db: Db): Promise<string> {
  const tables = ['Task', 'AppState', 'Payment', 'PaymentNotification', 'HistoryRecord'];
  const rows = await Promise.all(
    tables.map((table) => db.$queryRawUnsafe<Record<string, unknown>[]>(`SELECT * FROM "${table}" ORDER BY "id"`)),
  );
  const hash = createHash('sha256');
  tables.forEach((table, index) => {
    const skip = VOLATILE[table] ?? [];
    for (const row of rows[index] ?? []) {
      for (const column of skip) delete row[column];
      hash.update(`${table}:${JSON.stringify(row)}\n`);
    }
  });
  return hash.digest('hex');
}

/**
 * Waits until the task engine has nothing left to write on its own: every RUNNING task was sent
 * to the (simulated) app service, its op id recorded, and that service's first state report
 * applied (the app's state is as of the dispatch or later). The next report comes
 * SIMULATED_STEP_MS later (10 minutes in tests), and status correction's first run is over, so
 * from here on only requests change the database.
 */
export async function engineAtRest(server: Pick<TestServer, 'app'>): Promise<void> {
  const { db } = server.app;
  await server.app.services.engine.settled();
  await waitFor(async () => {
    for (const task of await db.task.findMany({ where: { status: 'RUNNING' } })) {
      if (!task.opId || !task.dispatchedAt) return undefined;
      const app = await db.appState.findUnique({
        where: { userId_sourceId_appName: { userId: task.userId, sourceId: task.sourceId, appName: task.appName } },
      });
      if (app?.opId !== task.opId || app.eventTime < task.dispatchedAt) return undefined;
    }
    return true;
  }, 'the running tasks to be dispatched and their first state report applied');
  // Status correction's run at start (the next one is STATUS_CORRECTION_INTERVAL_MS away, an hour
  // in tests) compares and may correct too: it is over once it counted its check.
  const correction = server.app.services.statusCorrection;
  await waitFor(async () => (correction.status().checks > 0 ? true : undefined), 'the first status correction');
}
