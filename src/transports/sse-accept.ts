import type { IncomingMessage } from 'node:http';
import { getOperationAST, parse } from 'graphql';
import Negotiator from 'negotiator';
import { mediaTypeOf } from '../http/media-type.js';
import { documentSource } from '../http/persisted-documents.js';
import { BoundedLru } from '../platform/bounded-lru.js';
import { EVENT_STREAM } from './sse-frames.js';

/**
 * Which requests to /graphql the SSE transport takes, by content negotiation as the GraphQL over
 * HTTP spec and Yoga do it: a query or mutation is answered in the type its client prefers. urql
 * sends `application/graphql-response+json, application/graphql+json, application/json,
 * text/event-stream, multipart/mixed` with every operation; taken as SSE whenever the Accept
 * named `text/event-stream`, each of its queries was a stream on a connection of its own, and its
 * multipart upload was refused (415). The preference is read as RFC 9110 says (q-values, then
 * order, by `negotiator`, as for GraphiQL's encodings); a JSON type the client names with the q
 * of `text/event-stream` wins, but one only a wildcard covers loses to it (`*\/*, text/event-stream`
 * streams: the type named is the more specific, RFC 9110 §12.5.1).
 *
 * - `all`: `text/event-stream` is preferred (graphql-sse's client and EventSource send it alone):
 *   every operation is answered as a stream, as before.
 * - `subscription`: a JSON type is preferred, `text/event-stream` acceptable: a subscription is
 *   still streamed here (urql's `fetchSubscriptions` sends the same Accept), anything else goes to
 *   Yoga (the lean path first), which answers JSON.
 * - null: not for this transport. `text/event-stream` not named (none, `*\/*`: Yoga refuses a
 *   subscription with 406, graphql.ts), refused (`q=0`), or a POST that is not JSON (an upload).
 *
 * `/graphql/stream` (graphql-sse's endpoint) takes everything but CORS preflights.
 */
export type SseTake = 'all' | 'subscription' | null;

/** JSON first: negotiator breaks a tie (one `*\/*` entry covering all) by this order. */
const OFFERED = ['application/graphql-response+json', 'application/json', 'text/event-stream'];

/** Accept headers whose answer is kept: clients send a few (bounded: the header is the client's). */
const choices = new BoundedLru<string, SseTake>({ maxEntries: 64 });

function streamChoice(accept: string): SseTake {
  let choice = choices.get(accept);
  if (choice !== undefined) return choice;
  const preferred = new Negotiator({ headers: { accept } }).mediaTypes(OFFERED);
  choice =
    preferred[0] === 'text/event-stream' ? 'all' : preferred.includes('text/event-stream') ? 'subscription' : null;
  choices.set(accept, choice);
  return choice;
}

/** What the SSE transport takes of `req` (see SseTake). */
export function sseTake(req: IncomingMessage, path: string | undefined): SseTake {
  if (path === '/graphql/stream') return req.method === 'OPTIONS' ? null : 'all';
  if (path !== '/graphql') return null;
  if (
    req.method !== 'GET' &&
    (req.method !== 'POST' || mediaTypeOf(req.headers['content-type']) !== 'application/json')
  ) {
    return null;
  }
  const { accept } = req.headers;
  return accept && EVENT_STREAM.test(accept) ? streamChoice(accept) : null;
}

/**
 * Whether an event stream was the client's choice: an operation refused before it runs is then
 * answered as one `next` event (sse-transport.ts refuseOperation), otherwise as JSON.
 */
export function prefersEventStream(req: IncomingMessage): boolean {
  const { accept } = req.headers;
  return accept !== undefined && EVENT_STREAM.test(accept) && streamChoice(accept) === 'all';
}

/** graphql-armor's token limit: a longer document is not read here, and Yoga refuses it. */
const MAX_TOKENS = 1000;

/**
 * Whether a request's operation is a subscription: its GET query string, or its POST body (JSON,
 * already read). A text that never says `subscription` is not parsed. Parsed here and again by
 * the pipeline that runs it (Yoga's cache then has it): only subscriptions, which last. A
 * persisted document named by id alone is not looked up: it goes to Yoga (406 for a subscription).
 */
export function asksForSubscription(req: IncomingMessage, body: Buffer | undefined): boolean {
  let params: Record<string, unknown>;
  if (body) {
    if (!body.includes('subscription')) return false;
    try {
      params = JSON.parse(body.toString('utf8'));
    } catch {
      return false;
    }
  } else {
    params = Object.fromEntries(new URL(req.url ?? '/', 'http://localhost').searchParams);
  }
  if (typeof params !== 'object' || params === null) return false;
  const source = documentSource(params);
  if (!source?.includes('subscription')) return false;
  const name = typeof params.operationName === 'string' ? params.operationName : undefined;
  try {
    return (
      getOperationAST(parse(source, { noLocation: true, maxTokens: MAX_TOKENS }), name)?.operation === 'subscription'
    );
  } catch {
    return false; // Yoga answers why
  }
}
