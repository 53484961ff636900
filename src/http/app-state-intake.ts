import { isUtf8 } from 'node:buffer';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppStateEvent } from '../adapters/app-service/port.js';
import { parseAppStateEvent } from '../adapters/app-service/state-event.js';
import { DomainError } from '../domain/errors.js';
import { BodyTooLarge, readBody } from './body.js';
import { noteRefusal, type RequestNotes } from './request-notes.js';
import { refuseContentEncoding } from './text-encoding.js';

export interface AppStateIntakeOptions {
  /** The Bearer secret the app service sends (APP_SERVICE_EVENT_SECRET). */
  secret: string;
  maxBodyBytes: number;
  /** Applies one event: false when the database could not take it (TaskEngine.onAppState). Never throws. */
  apply: (event: AppStateEvent) => Promise<boolean>;
}

/** What the app service reads on a 503: no stack, no SQL, only what to do. */
const NOT_APPLIED = { error: 'database unavailable: the event was not applied; send it again' };

/**
 * State-event intake of the real app service (HTTP mode): `POST /events/app-state` with
 * `Authorization: Bearer <APP_SERVICE_EVENT_SECRET>` and one state event as JSON (its fields:
 * src/adapters/app-service/state-event.ts). 202 once the event is applied (one older than the
 * app's current state is accepted and ignored); 400 when it is malformed; 415 when it comes with a
 * Content-Encoding (as the GraphQL endpoints answer: text-encoding.ts); 503 when the database
 * could not take it, so that the app service sends it again.
 */
export async function receiveAppStateEvent(
  req: IncomingMessage,
  res: ServerResponse,
  options: AppStateIntakeOptions,
): Promise<void> {
  if (req.method !== 'POST') return json(res, 405, { error: 'use POST' });
  const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
  const digest = (value: string) => createHash('sha256').update(value).digest();
  if (!timingSafeEqual(digest(given), digest(options.secret))) return json(res, 401, { error: 'invalid event secret' });
  // A gzipped event was read as its compressed bytes: 400 as not UTF-8, with nothing saying why.
  const encoded = refuseContentEncoding(req);
  if (encoded) {
    res.setHeader('connection', 'close'); // its body is not read
    return json(res, encoded.status, { error: encoded.message });
  }
  let body: Buffer;
  try {
    body = await readBody(req, options.maxBodyBytes);
  } catch (error) {
    if (!(error instanceof BodyTooLarge)) throw error;
    res.setHeader('connection', 'close'); // the rest of the body is not read
    return json(res, 413, { error: error.message });
  }
  // Decoded leniently, a byte that is not UTF-8 would become U+FFFD in a stored message.
  if (!isUtf8(body)) return json(res, 400, { error: 'body is not valid UTF-8 (JSON must be UTF-8, RFC 8259 §8.1)' });
  let event: AppStateEvent;
  try {
    event = parseAppStateEvent(JSON.parse(body.toString('utf8')));
  } catch (error) {
    return json(res, 400, {
      error: error instanceof DomainError ? error.message : 'body must be a JSON app-state event',
    });
  }
  if (!(await options.apply(event))) return json(res, 503, NOT_APPLIED);
  return json(res, 202, { accepted: true });
}

/** Request-log codes of the intake's refusals, by status (the app service reads only `error`). */
const REFUSAL_CODES: Record<number, string> = {
  400: 'VALIDATION',
  401: 'UNAUTHENTICATED',
  405: 'BAD_REQUEST',
  413: 'VALIDATION',
  415: 'VALIDATION',
  503: 'UNAVAILABLE',
};

/**
 * The answer; a refusal's code and reason go into the request's log line too: an app service
 * upgraded to send events this server cannot read (apps stop moving) shows why there, not only
 * as `status 400` (the README's request-log promise for every refusal).
 */
function json(res: ServerResponse, status: number, body: { error?: string; accepted?: boolean }) {
  if (status >= 400 && body.error) {
    noteRefusal(res.req as RequestNotes, [{ message: body.error, extensions: { code: REFUSAL_CODES[status] } }]);
  }
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}
