import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Viewer } from '../auth/viewer.js';
import { type RequestNotes, requestIdFor } from '../http/request-notes.js';
import type { Logger } from '../platform/logger.js';
import { responseEnded, wasCutAtStop } from './http-server.js';

/** A GraphQL name as the spec defines it, bounded: anything else is not copied into the log. */
const OPERATION_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,99}$/;

/** What the HTTP layer learns about a request on its way through, for the request log line. */
export type TrackedRequest = IncomingMessage &
  RequestNotes & {
    /** The body, read (and bounded) before Yoga sees the request; Yoga uses it as is. */
    body?: Buffer;
    /** Its size, which an operation waiting for a place holds (http/operations-in-flight.ts). */
    bodyBytes?: number;
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

/** Whether the request line of a finished (or abandoned) request is written. */
function logged(path: string | undefined, status: number, logProbes: boolean): boolean {
  return logProbes || !path || !PROBE_PATHS.has(path) || status >= 400 || status === 0;
}

/**
 * Gives the request its id (echoed in the response) and writes one `request` log line when the
 * response is finished or the client went away from it (`aborted`), with whatever the layers
 * further in learnt (user, operation, and for a status of 400 or above, or a refusal answered in a
 * stream, the code and reason of the refusal); probes that succeeded are left out unless `logProbes` (LOG_PROBES). A request that got
 * no response has status 0 and `cutBy`: `client` (it went away) or `server` (cut at the stop).
 * Returns the request's path.
 */
export function trackRequest(
  req: TrackedRequest,
  res: ServerResponse,
  logger: Logger,
  logProbes: boolean,
): string | undefined {
  const started = performance.now();
  const requestId = requestIdFor(req);
  const path = req.url?.split('?')[0];
  res.setHeader('x-request-id', requestId);
  // Its end, not 'finish': a response the client went away from never finishes, and an SSE stream
  // ends so (the client unsubscribes): such a request had no line at all.
  void responseEnded(res).then((end) => {
    // No response was sent (or it waited behind another on a connection that closed, so none left):
    // res.statusCode is then Node's default 200 or an answer no client saw.
    const sent = end === 'closed';
    const status = sent && res.headersSent ? res.statusCode : 0;
    if (!logged(path, status, logProbes)) return;
    const finished = sent && res.writableFinished;
    const aborted = finished ? {} : { aborted: true, cutBy: wasCutAtStop(res) ? 'server' : 'client' };
    logger.info(
      {
        requestId,
        method: req.method?.slice(0, 16),
        path: path?.slice(0, 200),
        status,
        ms: Math.round(performance.now() - started),
        ...(req.userId ? { userId: req.userId } : {}),
        ...(req.operationName ? { operation: req.operationName } : {}),
        ...(req.refusal && (status >= 400 || req.refusedWith200) ? req.refusal : {}),
        ...aborted,
      },
      'request',
    );
  });
  return path;
}
