import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Viewer } from '../auth/viewer.js';
import type { Logger } from '../platform/logger.js';

const REQUEST_ID = /^[\w.-]{1,64}$/;
/** A GraphQL name as the spec defines it, bounded: anything else is not copied into the log. */
const OPERATION_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,99}$/;

/** What the HTTP layer learns about a request on its way through, for the request log line. */
export type TrackedRequest = IncomingMessage & {
  requestId?: string;
  userId?: string;
  operationName?: string;
  /** The body, read (and bounded) before Yoga sees the request; Yoga uses it as is. */
  body?: Buffer;
  /** Who sent it, known from its headers before its body is read (routes.ts). */
  viewer?: Viewer;
};

/** The operation name as the request log shows it: client-controlled, so only a valid, short name. */
export function loggedOperationName(name: unknown): string | undefined {
  if (typeof name !== 'string' || !name) return undefined;
  return OPERATION_NAME.test(name) ? name : '[invalid name]';
}

/**
 * Paths that orchestrators and Prometheus call every few seconds: their requests are logged only
 * with LOG_PROBES, or when they fail: a 503 from /readiness or a scraper refused by /metrics is news.
 */
const PROBE_PATHS = new Set(['/health', '/readiness', '/metrics']);

/** Whether the request line of a finished request is written. */
function logged(path: string | undefined, status: number, logProbes: boolean): boolean {
  return logProbes || !path || !PROBE_PATHS.has(path) || status >= 400;
}

/** Per-request id: the caller's `x-request-id` when sane, else a new one. */
function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/**
 * Gives the request its id (echoed in the response) and writes one `request` log line when the
 * response is finished, with whatever the layers further in learnt (user, operation); probes
 * that succeeded are left out unless `logProbes` (LOG_PROBES). Returns the request's path.
 */
export function trackRequest(
  req: TrackedRequest,
  res: ServerResponse,
  logger: Logger,
  logProbes: boolean,
): string | undefined {
  const started = performance.now();
  const requestId = requestIdOf(req);
  req.requestId = requestId;
  const path = req.url?.split('?')[0];
  res.setHeader('x-request-id', requestId);
  res.on('finish', () => {
    if (!logged(path, res.statusCode, logProbes)) return;
    logger.info(
      {
        requestId,
        method: req.method?.slice(0, 16),
        path: path?.slice(0, 200),
        status: res.statusCode,
        ms: Math.round(performance.now() - started),
        ...(req.userId ? { userId: req.userId } : {}),
        ...(req.operationName ? { operation: req.operationName } : {}),
      },
      'request',
    );
  });
  return path;
}
