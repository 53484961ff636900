import { isRecord } from '../../platform/json.js';
import { CONNECT_TIMEOUT, type OutboundOutcome, retryAfterMs, upstreamExcerpt } from '../../platform/outbound-http.js';
import type { AppServiceErrorKind, NotTaken } from './port.js';

/** How the app service's answers read: their envelope, and what an HTTP error status means. */

/** The app service's response body: `{ code, message, data }`, where code 200 means success. */
export interface Envelope {
  /** The HTTP status it came with. */
  status: number;
  code: number;
  message: string;
  data: unknown;
}

/** Long enough for any real explanation, short enough that a stack trace does not end up on a task. */
const MAX_UPSTREAM_MESSAGE = 500;

/** The envelope of an answer, its message already without secrets (redacted before it is cut to length). */
export function asEnvelope(status: number, body: unknown, secrets: string[]): Envelope | null {
  if (!isRecord(body) || typeof body.code !== 'number') return null;
  const message =
    typeof body.message === 'string' ? upstreamExcerpt(body.message.trim(), MAX_UPSTREAM_MESSAGE, secrets) : '';
  return { status, code: body.code, message, data: body.data ?? null };
}

/** An HTTP error status, in words: what kind of failure it is and the message that says so. */
export function describeHttpFailure(
  status: number,
  action: string,
  explanation: string,
): [AppServiceErrorKind, string] {
  if (status >= 500) return ['unavailable', `app service failed on ${action}${explanation} (HTTP ${status})`];
  // Its load, not the request: not "rejected", which tells the user the request itself was wrong.
  if (status === 429) return ['unavailable', `app service is too busy for ${action}${explanation} (HTTP 429)`];
  if (status === 404) return ['not_found', `app service found nothing for ${action}${explanation} (HTTP 404)`];
  if (status === 401 || status === 403) {
    return ['unauthorized', `app service refused our credentials for ${action}${explanation} (HTTP ${status})`];
  }
  if (status >= 400) return ['rejected', `app service rejected ${action}${explanation} (HTTP ${status})`];
  return ['invalid_response', `app service answered ${action} with an unexpected HTTP ${status}`];
}

/**
 * SAFE TO SEND AGAIN: the one place that tells a failed call the app service certainly did not take
 * from one it may have. Only the first may be sent again (a task's start, src/engine/start-retry.ts):
 * an install the app service started once and is asked for twice is worse than a failed task.
 * - HTTP 429 and 503: the app service (or what stands before it) answered that it does not take
 *   the request now; its `Retry-After`, when it gives one, says when to ask again.
 * - No connection was ever made (refused, a name that did not resolve, a connect that timed out,
 *   ours or undici's): the request never left this process.
 * Not a timeout (the request may have been sent and started before the answer was late), not a
 * connection that broke (ECONNRESET, a socket closed: possibly after the request went out), not
 * 500, 502 or 504 (the app service, or a proxy after forwarding it, may have started it first).
 */
export function notTakenBy(outcome: OutboundOutcome, now = Date.now()): NotTaken | undefined {
  if (outcome.kind === 'unreachable') return NEVER_CONNECTED.has(outcome.problem) ? { retryAfterMs: null } : undefined;
  if (outcome.kind !== 'answered' || (outcome.status !== 429 && outcome.status !== 503)) return undefined;
  return { retryAfterMs: retryAfterMs(outcome.retryAfter, now) };
}

/**
 * How undici names a connection that was never made (networkProblem): refused, a DNS failure (the
 * name does not exist, or cannot be resolved now), and a connect timeout: its own (10 s), or the
 * call's APP_SERVICE_TIMEOUT_MS ending before the request was written (CONNECT_TIMEOUT in
 * outbound-http.ts; a request written once is a timeout, which may have been taken).
 */
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', CONNECT_TIMEOUT]);
