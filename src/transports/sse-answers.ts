import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { GraphQLError } from 'graphql';
import { errorContentType } from '../http/media-type.js';
import { noteRefusal, type RequestNotes } from '../http/request-notes.js';
import { limitExceeded } from './connection-budget.js';
import { prefersEventStream } from './sse-accept.js';
import { oneEvent } from './sse-frames.js';

/** The SSE transport's answers that are not streams (sse-transport.ts): refusals, as JSON or as one event. */

export class BadRequest extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** A 405's `Allow` header: the methods that would be served. */
    readonly allow?: string,
  ) {
    super(message);
  }

  /** Answered as the GraphQL route answers the same refusal: Yoga's BAD_REQUEST, a 415 as VALIDATION. */
  answer(res: ServerResponse): void {
    const code = this.status === 415 ? 'VALIDATION' : 'BAD_REQUEST';
    const headers = this.allow ? { allow: this.allow } : {};
    json(res, this.status, { errors: [{ message: this.message, extensions: { code } }] }, false, headers);
  }
}

export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BadRequest(400, `${what} is not valid JSON`);
  }
}

/**
 * An operation refused before it ran (it did not parse or validate, its variables did not coerce,
 * it costs too much: 400; a rate limit: 429), with the status its errors ask for. graphql-sse's
 * protocol wants the errors of the steps before execution in an accepted stream, as a `next` event,
 * when the client asked for one: its client takes a 400 for a lost connection, and retried it five
 * times over some 40 s before reporting a NetworkError. A client that asked for no event stream,
 * and a refusal that asks it to wait (429 with Retry-After), get the status.
 */
export function refuseOperation(
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  errors: readonly GraphQLError[],
): void {
  const body = { errors: errors.map((error) => error.toJSON()) };
  if (status === 400 && prefersEventStream(res.req)) {
    noteRefusal(res.req as RequestNotes, body.errors, true);
    oneEvent(res, body);
  } else {
    json(res, status, body, false, headers);
  }
}

/**
 * A JSON answer; `close` ends the connection too (a body left unread must not be read on). Its
 * first error is what the request's log line says of the refusal.
 */
export function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  close = false,
  headers: OutgoingHttpHeaders = {},
): void {
  noteRefusal(res.req as RequestNotes, (body as { errors?: readonly object[] }).errors);
  res.writeHead(status, {
    'content-type': errorContentType(res.req.headers.accept),
    'cache-control': 'no-store',
    ...(close ? { connection: 'close' } : {}),
    ...headers,
  });
  res.end(JSON.stringify(body));
}

/**
 * A stream refused for a connection limit. `Retry-After` (see retryAfterSeconds) keeps gateways
 * and graphql-sse clients that honour it from retrying at once, which cannot succeed before a
 * stream of the same user or instance closes.
 */
export function tooMany(res: ServerResponse, message: string, retryAfter: number): void {
  json(res, 429, { errors: [limitExceeded(message).toJSON()] }, false, { 'retry-after': String(retryAfter) });
}
