import { readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the chart repo's status endpoint on a real
 * port, for HttpChartRepo and the runtime collector's tests.
 *
 * - `GET /chart-repo/api/v2/status?user=…&source=…` is answered per key `user/source` (`/` when
 *   the query names neither, `alice/` when only the user is given).
 * - `setStatus(key, data)` sets the `data` of the `{success: true, message, data}` envelope sent
 *   for that key; key `'alice/*'` sets it for every source of that user without one of its own, and
 *   `'*'` for every key without either. Until then it is DEFAULT_CHART_REPO_STATUS (no apps, images
 *   or tasks).
 * - `setBehaviour(key, behaviour)` makes that key (or, with `'alice/*'` or `'*'`, every key of that
 *   user or every key, without a behaviour of its own) fail in one of the ways a real chart repo
 *   can; `null` goes back to answering normally.
 * - `requests` records every request, in arrival order, including ones to unknown paths (404).
 * - `reset()` forgets the statuses, behaviours and requests; `stop()` also ends hanging requests.
 */

export type ChartRepoBehaviour =
  /** HTTP 200 with the envelope around the key's status: the normal answer. */
  | { respond: 'ok' }
  /** Any HTTP status, with this JSON body when given (e.g. an envelope with a message). */
  | { respond: 'http-error'; status: number; body?: unknown }
  /** HTTP 200 `{success: false, message, data: null}`. */
  | { respond: 'unsuccessful'; message: string }
  /** HTTP 200 with this JSON as it is, e.g. an envelope whose data is not an object. */
  | { respond: 'json'; body: unknown }
  /** HTTP 200 with a body that is not JSON. */
  | { respond: 'garbage' }
  /** Never answers (until `stop`), for timeouts. */
  | { respond: 'hang' }
  /** The normal answer, after `delayMs` (a slow but working chart repo). */
  | { respond: 'slow'; delayMs: number }
  /** Drops the connection without an answer. */
  | { respond: 'reset' };

export interface ChartRepoRequest {
  method: string;
  path: string;
  /** The raw query string, without `?`, to see how it was encoded. */
  search: string;
  query: Record<string, string>;
  /** `user/source` as used by setStatus and setBehaviour. */
  key: string;
  /** When it arrived (performance.now()). */
  at: number;
}

export interface FakeChartRepo {
  url: string;
  requests: ChartRepoRequest[];
  setStatus(key: string, data: unknown): void;
  setBehaviour(key: string, behaviour: ChartRepoBehaviour | null): void;
  reset(): void;
  stop(): Promise<void>;
}

export const DEFAULT_CHART_REPO_STATUS = { apps: [], images: [], last_update: '2026-05-15T08:00:00Z' };

const STATUS_PATH = '/chart-repo/api/v2/status';

/**
 * A fresh copy of test/fixtures/chart-repo-status.json: a complete status `data` as a real chart
 * repo serves it (snake_case, nanosecond durations, RFC 3339 times with nanoseconds), for users
 * `admin` (n8n mid-processing at step 3 of 5, ghost failed, excalidraw done) and `alice` (immich),
 * source `market.olares`. `setStatus('*', chartRepoStatusFixture())` answers every call with all of it.
 */
export function chartRepoStatusFixture(): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL('../fixtures/chart-repo-status.json', import.meta.url), 'utf8'));
}

type Json = Record<string, unknown>;

/**
 * A fresh copy of the fixture as a chart repo that honours `user=` answers that user's calls: app
 * states and hydrator tasks with that `user_id`, and the images and analyzer tasks of that user's
 * apps (by app id or app name); the system block and the counters are kept as they are, since the
 * real chart repo reports those for the whole node. Feed this, not the whole fixture, to one user's key.
 */
export function chartRepoStatusFor(userId: string): Record<string, unknown> {
  const status = chartRepoStatusFixture();
  const ofUser = (item: unknown) => (item as Json).user_id === userId;
  const apps = (status.apps as Json[]).filter(ofUser);
  const appIds = new Set(apps.map((app) => app.app_id));
  const appNames = new Set(apps.map((app) => app.app_name));
  const ofUsersApp = (item: unknown) => appIds.has((item as Json).app_id) || appNames.has((item as Json).app_name);
  status.apps = apps;
  status.images = (status.images as Json[]).filter(ofUsersApp);
  const tasks = status.tasks as { hydrator: Json; image_analyzer: Json };
  for (const list of ['tasks', 'recent_failed']) {
    tasks.hydrator[list] = (tasks.hydrator[list] as Json[]).filter(ofUser);
  }
  for (const list of ['queued_tasks', 'processing_tasks', 'recent_completed', 'recent_failed']) {
    tasks.image_analyzer[list] = (tasks.image_analyzer[list] as Json[]).filter(ofUsersApp);
  }
  return status;
}

export async function startFakeChartRepo(): Promise<FakeChartRepo> {
  const requests: ChartRepoRequest[] = [];
  const statuses = new Map<string, unknown>();
  const behaviours = new Map<string, ChartRepoBehaviour>();

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const key = `${url.searchParams.get('user') ?? ''}/${url.searchParams.get('source') ?? ''}`;
    requests.push({
      method: req.method ?? '',
      path: url.pathname,
      search: url.search.replace(/^\?/, ''),
      query: Object.fromEntries(url.searchParams),
      key,
      at: performance.now(),
    });
    if (req.method !== 'GET' || url.pathname !== STATUS_PATH) {
      return reply(res, 404, { success: false, message: `no route ${req.method} ${url.pathname}`, data: null });
    }

    const userKey = `${url.searchParams.get('user') ?? ''}/*`;
    const answer = (behaviour: ChartRepoBehaviour): void => {
      switch (behaviour.respond) {
        case 'ok': {
          const owner = [key, userKey, '*'].find((candidate) => statuses.has(candidate));
          const data = owner === undefined ? undefined : statuses.get(owner);
          reply(res, 200, { success: true, message: 'ok', data: data ?? DEFAULT_CHART_REPO_STATUS });
          return;
        }
        case 'http-error':
          reply(res, behaviour.status, behaviour.body);
          return;
        case 'unsuccessful':
          reply(res, 200, { success: false, message: behaviour.message, data: null });
          return;
        case 'json':
          reply(res, 200, behaviour.body);
          return;
        case 'garbage':
          res.writeHead(200, { 'content-type': 'text/html' }).end('<html>upstream restarting</html>');
          return;
        case 'hang':
          return;
        case 'slow':
          setTimeout(() => answer({ respond: 'ok' }), behaviour.delayMs);
          return;
        case 'reset':
          req.socket.destroy();
          return;
      }
    };
    answer(behaviours.get(key) ?? behaviours.get(userKey) ?? behaviours.get('*') ?? { respond: 'ok' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setStatus(key, data) {
      statuses.set(key, data);
    },
    setBehaviour(key, behaviour) {
      if (behaviour) behaviours.set(key, behaviour);
      else behaviours.delete(key);
    },
    reset() {
      statuses.clear();
      behaviours.clear();
      requests.length = 0;
    },
    async stop() {
      // Hanging requests keep their sockets open; close() alone would wait for them forever.
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
