import type { ServerResponse } from 'node:http';

/** The wire format of the SSE transport's answers (sse-transport.ts). */

const STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store', // the viewer's own, as every GraphQL answer (graphql.ts)
  // The stream's end is the connection's end (see startStream): no chunked encoding.
  connection: 'close',
  'content-encoding': 'none',
  'x-accel-buffering': 'no', // nginx: do not buffer the stream
};

/**
 * An Accept naming event streams, in any case (media types are case-insensitive): Yoga serves
 * `Text/Event-Stream` as SSE too, outside this transport's connection budget.
 */
export const EVENT_STREAM = /text\/event-stream/i;
export const NEXT = 'event: next\ndata: ';
export const END_OF_EVENT = '\n\n';
export const COMPLETE = 'event: complete\ndata:\n\n';
export const KEEP_ALIVE = ':\n\n';
/** A comment, which clients ignore, for whoever reads the stream by hand. */
export const SERVER_RESTART = ': server restarting, reconnect\n\n';
/** The same, for a stream whose token expired (sse-transport.ts SseSubscription.expire). */
export const TOKEN_EXPIRED = ': Token expired (UNAUTHENTICATED): reconnect with a fresh token\n\n';

/**
 * Starts an event stream. Without Transfer-Encoding the body runs until the connection closes,
 * and each event is one socket write; chunked encoding would add three (size, CRLF, CRLF) to every
 * event, a large share of an event's cost at thousands of subscribers.
 */
export function startStream(res: ServerResponse): void {
  res.removeHeader('transfer-encoding');
  res.writeHead(200, STREAM_HEADERS);
}

/**
 * A whole stream of one `next` event, then `complete`: a query's result, or the errors of an
 * operation refused before it ran. It holds no slot of the connection budget: it is written at once.
 */
export function oneEvent(res: ServerResponse, result: unknown): void {
  startStream(res);
  res.end(`${NEXT}${JSON.stringify(result)}${END_OF_EVENT}${COMPLETE}`);
}
