import { isRecord } from '../../platform/json.js';
import { upstreamExcerpt } from '../../platform/outbound-http.js';
import type { AppServiceErrorKind } from './port.js';

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
