import { isUtf8 } from 'node:buffer';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator, Viewer } from '../auth/viewer.js';
import type { DatabaseProbe } from '../db/client.js';
import type { DiskFullWatch } from '../db/disk-full.js';
import type { SqliteFile } from '../db/sqlite-file.js';
import { DomainError } from '../domain/errors.js';
import type { TaskEngine } from '../engine/task-engine.js';
import { receiveAppStateEvent } from '../http/app-state-intake.js';
import { BodyTooLarge, bodyForYoga, graphqlBodyLimit, readBody } from '../http/body.js';
import {
  allowCrossOriginRead,
  type OriginPolicy,
  type Refusal,
  refuseCrossSite,
  refuseForeignHost,
} from '../http/cross-site.js';
import { domainErrorBody } from '../http/graphql-errors.js';
import { HeldUploads, UPLOADS_BUSY } from '../http/held-uploads.js';
import { errorContentType, mediaTypeOf, withLowerCaseMediaType } from '../http/media-type.js';
import { checkReadiness, type Lifecycle } from '../http/readiness.js';
import { noteRefusal } from '../http/request-notes.js';
import {
  isUtf8Query,
  NOT_UTF8_BODY,
  NOT_UTF8_QUERY,
  refuseContentEncoding,
  refuseNonUtf8Charset,
} from '../http/text-encoding.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import type { HttpFastPath } from '../transports/http-fast-path.js';
import { asksForSubscription, type SseTake } from '../transports/sse-accept.js';
import type { SseTransport } from '../transports/sse-transport.js';
import { dashboardRoutes } from './dashboard-assets.js';
import type { GraphQLServer } from './graphql.js';
import type { AppMetrics } from './metrics.js';
import { type TrackedRequest, trackRequest } from './request-log.js';

export interface RouteDeps {
  config: Config;
  logger: Logger;
  /** What /readiness asks the database (on PostgreSQL a connection apart from the pool's). */
  probe: DatabaseProbe;
  /** SQLite: the file the server opened, watched (null on PostgreSQL). */
  databaseFile: SqliteFile | null;
  /** Writes refused for want of room lately: not ready meanwhile. */
  diskFull?: Pick<DiskFullWatch, 'problem'>;
  /** Receives the app service's state events (the intake endpoint). */
  engine: Pick<TaskEngine, 'onAppState'>;
  yoga: GraphQLServer;
  /**
   * Authenticates a POST to /graphql from its headers alone, before its body is read: the viewer
   * decides the body's limit (graphqlBodyLimit) and is handed to Yoga.
   */
  authenticator: Pick<Authenticator, 'fromHeaders'>;
  /** Plain JSON POSTs to /graphql, when GRAPHQL_FAST_PATH is on; what it declines goes to Yoga. */
  fastPath: HttpFastPath | null;
  origins: OriginPolicy;
  sse: SseTransport;
  /** Cluster mode: the Redis change log, without which the instance is not ready. */
  clusterLog?: { readonly problem: string | null } | null;
  /** Starting or stopping, the instance is not ready, whatever its database says. */
  lifecycle: Pick<Lifecycle, 'notReady'>;
  /** Served on GET /metrics; null: no such route. */
  metrics?: AppMetrics | null;
}

/** graphql-sse's distinct-connections endpoint, beside Yoga's own SSE on /graphql. */
const STREAM_PATH = '/graphql/stream';

/**
 * Answers a request refused before its body is read, and closes the connection when it has one:
 * kept alive, Node would read and drop the whole body first, however large.
 */
function refuse(req: IncomingMessage, res: ServerResponse, status: number, error: Record<string, unknown>): void {
  if (req.headers['transfer-encoding'] || Number(req.headers['content-length'] ?? 0) > 0) {
    res.setHeader('connection', 'close');
  }
  json(res, status, { errors: [error] });
}

/**
 * `refuse` with what a policy of cross-site.ts decided, readable by an allowed origin's page (a
 * 415 for a form POST, say): without CORS headers its frontend sees only an opaque network error.
 */
function refuseReadably(
  { origins }: RouteDeps,
  req: IncomingMessage,
  res: ServerResponse,
  { status, message, code }: Refusal,
): void {
  allowCrossOriginRead(req, res, origins);
  refuse(req, res, status, { message, extensions: { code } });
}

/**
 * A JSON answer; a refusal's first error (readiness: its `error`) is what the request's log line
 * says of it. GraphQL errors are in the JSON type the client's Accept asks for, as Yoga's.
 */
function json(res: ServerResponse, status: number, body: unknown) {
  const { errors, error } = body as { errors?: []; error?: string };
  if (status >= 400) noteRefusal(res.req as TrackedRequest, errors ?? (error ? [{ message: error }] : undefined));
  const type = errors ? errorContentType(res.req.headers.accept) : 'application/json';
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/**
 * The node:http request handler. Every request is logged; then, in order: the operational routes
 * (health, readiness, dashboard, the app-state intake, `/`), a 404 for any path but the two GraphQL
 * ones, the cross-site refusal, SSE streams, the lean path for plain JSON POSTs, and Yoga, which
 * gets POST bodies already read within the size limit (also those the lean path declined).
 *
 * Whatever a handler throws is answered here (see `answerFailure`): a request must never become
 * an unhandled rejection, which ends the process.
 */
export function createRouter(deps: RouteDeps) {
  const route = routeRequest(deps);
  return (req: TrackedRequest, res: ServerResponse): Promise<void> =>
    route(req, res).catch((error: unknown) => answerFailure(deps, req, res, error));
}

function routeRequest(deps: RouteDeps) {
  const { logger, yoga, origins, sse } = deps;
  const dashboard = dashboardRoutes(deps.config);
  const uploads = new HeldUploads();
  return async (req: TrackedRequest, res: ServerResponse): Promise<void> => {
    const path = trackRequest(req, res, logger, deps.config.logProbes);
    const foreignHost = refuseForeignHost(req, origins);
    if (foreignHost) return refuseReadably(deps, req, res, foreignHost);
    const route = dashboard(path, req.method) ?? operationalRoute(deps, path, req.method);
    if (route) {
      await route(req, res);
      return;
    }
    // Only the exact paths reach Yoga: it would also answer `/graphql/`, `//graphql` or an
    // absolute-form target, past the cross-site refusal, the body limit and the SSE limits below.
    if (path !== yoga.graphqlEndpoint && path !== STREAM_PATH) {
      return refuse(req, res, 404, { message: `Not found: the GraphQL endpoint is ${yoga.graphqlEndpoint}` });
    }
    const refusal =
      refuseCrossSite(req, origins) ??
      refuseContentEncoding(req) ??
      refuseNonUtf8Charset(req) ??
      refuseNonUtf8Query(req);
    if (refusal) {
      deps.metrics?.refusedBeforeYoga([{ extensions: { code: refusal.code } }]);
      return refuseReadably(deps, req, res, refusal);
    }
    // A subscription, when the client prefers JSON to an event stream (sse-accept.ts): known once read.
    const take = sse.accepts(req, path);
    if (take === 'all' || (take === 'subscription' && req.method === 'GET' && asksForSubscription(req, undefined))) {
      allowCrossOriginRead(req, res, origins);
      return sse.handle(req, res);
    }
    if (req.method === 'POST' && path === yoga.graphqlEndpoint) {
      const viewer = await authenticatedBeforeBody(deps, req, res);
      if (!viewer) return;
      if (!HeldUploads.counts(req, viewer)) return postToGraphQL(deps, req, res, viewer, take);
      // Held from before its body is read until it is answered: its bytes, parsed and copied, live that long.
      if (!uploads.take()) return refuseUpload(deps, req, res);
      try {
        return await postToGraphQL(deps, req, res, viewer, take);
      } finally {
        uploads.release();
      }
    }
    return toYoga(deps, req, res);
  };
}

/** A POST to /graphql: its body read within its limit, then streamed, answered on the lean path or by Yoga. */
async function postToGraphQL(deps: RouteDeps, req: TrackedRequest, res: ServerResponse, viewer: Viewer, take: SseTake) {
  const read = await readGraphQLBody(deps, req, res, viewer);
  if (!read) return;
  if (take === 'subscription' && req.body && asksForSubscription(req, req.body)) {
    allowCrossOriginRead(req, res, deps.origins);
    return deps.sse.handle(req, res, { viewer, body: req.body });
  }
  if (deps.fastPath && (await deps.fastPath.handle(req, res))) return;
  if (req.body) (req as { body?: unknown }).body = bodyForYoga(req.body);
  return toYoga(deps, req, res);
}

/** A chart upload beyond UPLOADS_AT_ONCE: 429 with Retry-After, its body unread (the connection closes). */
function refuseUpload(deps: RouteDeps, req: TrackedRequest, res: ServerResponse): void {
  deps.metrics?.refusedBeforeYoga([{ extensions: { code: UPLOADS_BUSY.code } }]);
  res.setHeader('retry-after', String(UPLOADS_BUSY.retryAfterS));
  refuseReadably(deps, req, res, UPLOADS_BUSY);
}

/** Hands a request to Yoga, once its Host and content type are as Yoga can read them. */
async function toYoga(deps: RouteDeps, req: TrackedRequest, res: ServerResponse): Promise<void> {
  const { yoga, origins } = deps;
  // Yoga builds the request's URL from the Host header, and answers one that does not parse with
  // a 500 and its stack trace. (Checked here, not for all: a URL parse is ~2 µs of the lean path's ~70.)
  if (!URL.canParse(`http://${req.headers.host ?? 'localhost'}${req.url ?? ''}`)) {
    allowCrossOriginRead(req, res, origins);
    const error = {
      message: 'Bad request: the Host header is not a valid host',
      extensions: { code: 'BAD_REQUEST' },
    };
    deps.metrics?.refusedBeforeYoga([error]);
    return refuse(req, res, 400, error);
  }
  // Yoga's own parsers match `application/json` case-sensitively (http/media-type.ts).
  const contentType = req.headers['content-type'];
  if (contentType) req.headers['content-type'] = withLowerCaseMediaType(contentType);
  await yoga(req, res, { req, viewer: req.viewer });
}

/** How reading a request fails when its client went away (Node's "aborted" has the first code). */
const CLIENT_GONE = new Set(['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'EPIPE']);

/**
 * What a handler threw. A client that went away mid-request (an upload cut off, a timeout on its
 * side) is no fault of the server's: logged at debug, nothing to answer. Anything else is logged
 * as an error and answered 500 without details, as Yoga masks unexpected errors.
 */
function answerFailure({ logger, origins }: RouteDeps, req: TrackedRequest, res: ServerResponse, error: unknown): void {
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  const clientGone = CLIENT_GONE.has(code ?? '') || message === 'aborted';
  if (clientGone) logger.debug({ err: error, requestId: req.requestId }, 'client went away mid-request');
  else logger.error({ err: error, requestId: req.requestId }, 'request failed');
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  res.setHeader('connection', 'close'); // the rest of a body may not have been read
  allowCrossOriginRead(req, res, origins);
  json(res, 500, { errors: [{ message: 'Unexpected error.' }] });
}

type Route = (req: TrackedRequest, res: ServerResponse) => unknown;

/**
 * Health, readiness, metrics, the app-state intake and the redirect from `/` (the dashboard's are
 * dashboard-assets.ts's); none for any other path.
 */
function operationalRoute(
  { config, probe, engine, clusterLog, metrics, databaseFile, diskFull, lifecycle }: RouteDeps,
  path: string | undefined,
  method?: string,
): Route | undefined {
  if (path === '/health') return (_req, res) => json(res, 200, { status: 'ok' });
  if (path === '/metrics' && metrics && (method === 'GET' || method === 'HEAD')) {
    return metricsRoute(metrics, config.metricsToken);
  }
  if (path === '/readiness') {
    return async (_req, res) => {
      let ready = lifecycle.notReady() ?? (await checkReadiness(probe));
      // SQLite answers from the open file, whatever became of the file: a deleted one loses every
      // write. Said without the path here (unauthenticated); the database component names it.
      const fileProblem = ready.ok ? await databaseFile?.problem() : null;
      if (fileProblem)
        ready = { ok: false, error: 'the database file is not the one opened (see the database component)' };
      // The database answers reads, but refuses writes for want of room: not ready (without writing here).
      const full = ready.ok ? diskFull?.problem() : null;
      if (full) ready = { ok: false, error: full };
      // Without Redis (away, or refusing the log's writes: OOM, READONLY) this instance would
      // neither see other instances' changes nor share its own.
      const redisProblem = ready.ok ? clusterLog?.problem : null;
      if (redisProblem) ready = { ok: false, error: redisProblem };
      json(res, ready.ok ? 200 : 503, ready.ok ? { status: 'ready' } : { status: 'not ready', error: ready.error });
    };
  }
  if (path === '/events/app-state' && config.appService.kind === 'http') {
    const { eventSecret } = config.appService;
    return (req, res) =>
      receiveAppStateEvent(req, res, {
        secret: eventSecret,
        maxBodyBytes: config.maxBodyBytes,
        apply: (event) => engine.onAppState(event),
      });
  }
  if (path === '/') {
    return (_req, res) => {
      // Relative: behind a gateway that serves this server under a path prefix, it stays under it.
      res.writeHead(302, { location: 'graphql' });
      res.end();
    };
  }
  return undefined;
}

/** The Prometheus exposition; with METRICS_TOKEN set, only for `Authorization: Bearer <token>`. */
function metricsRoute(metrics: AppMetrics, token: string | undefined): Route {
  const expected = token ? digest(token) : null;
  return async (req, res) => {
    if (expected && !timingSafeEqual(digest(bearerOf(req)), expected)) {
      noteRefusal(req, [
        { message: 'METRICS_TOKEN: no or another bearer token', extensions: { code: 'UNAUTHENTICATED' } },
      ]);
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer', 'cache-control': 'no-store' });
      res.end('METRICS_TOKEN: send Authorization: Bearer <token>\n');
      return;
    }
    const { contentType, body } = await metrics.scrape();
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

/** Compared as digests: equal lengths for timingSafeEqual, and no timing from the token's length. */
const digest = (text: string) => createHash('sha256').update(text).digest();

/** The credential of `Authorization: Bearer …`, the scheme in any case (RFC 9110 §11.1), as on /graphql. */
function bearerOf(req: IncomingMessage): string {
  return /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
}

/**
 * Authenticates a POST from its headers before its body is read, and keeps the viewer for the lean
 * path and Yoga. Read first, a body of up to MAX_BODY_BYTES was held for anyone who could reach the
 * port, credentials or not, for as long as Node's request timeout (300 s): 800 connections sending
 * 960 KiB each took the server from 319 to 854 MB. A refusal closes the connection, its body unread.
 */
async function authenticatedBeforeBody(
  { authenticator, origins, metrics }: RouteDeps,
  req: TrackedRequest,
  res: ServerResponse,
): Promise<Viewer | null> {
  try {
    req.viewer = await authenticator.fromHeaders(req.headers);
    // Known now, for the log line of a request refused later (its body too large, its document).
    req.userId = req.viewer.userId;
    return req.viewer;
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    allowCrossOriginRead(req, res, origins); // a browser's page may read why
    res.setHeader('connection', 'close');
    const { status, headers, body } = domainErrorBody(error);
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    metrics?.refusedBeforeYoga(body.errors);
    json(res, status, body);
    return null;
  }
}

/** A GET whose query string is not UTF-8 (text-encoding.ts): 400, as Yoga answers a query string it cannot read. */
function refuseNonUtf8Query(req: IncomingMessage): Refusal | null {
  if (req.method !== 'GET' || isUtf8Query(req.url)) return null;
  return { status: 400, code: 'BAD_REQUEST', message: NOT_UTF8_QUERY };
}

/**
 * Reads a POST body for Yoga within its limit (graphqlBodyLimit, decided from the viewer the
 * headers authenticated before a byte is read); false when it was too large (413) or, in JSON, not
 * UTF-8 (400 BAD_REQUEST, as Yoga's answer to a body that is not JSON) and answered so.
 */
async function readGraphQLBody(
  { config, origins, metrics }: RouteDeps,
  req: TrackedRequest,
  res: ServerResponse,
  viewer: Viewer,
): Promise<boolean> {
  try {
    const limit = graphqlBodyLimit(req, config, viewer);
    req.body = await readBody(req, limit.bytes, limit.setting);
    req.bodyBytes = req.body.length;
  } catch (error) {
    if (!(error instanceof BodyTooLarge)) throw error;
    res.setHeader('connection', 'close'); // the rest of the body is not read
    allowCrossOriginRead(req, res, origins); // a browser's page may read why, as a 401's
    const errors = [{ message: error.message, extensions: { code: 'VALIDATION' } }];
    metrics?.refusedBeforeYoga(errors);
    json(res, 413, { errors });
    return false;
  }
  // Multipart bodies carry a binary file; their JSON parts are Yoga's parser's to read.
  if (mediaTypeOf(req.headers['content-type']) !== 'application/json' || isUtf8(req.body)) return true;
  allowCrossOriginRead(req, res, origins);
  const errors = [{ message: NOT_UTF8_BODY, extensions: { code: 'BAD_REQUEST' } }];
  metrics?.refusedBeforeYoga(errors);
  json(res, 400, { errors });
  return false;
}
