/**
 * What an operation's context tells of its client: the HTTP request it came in (Yoga's path, the
 * lean path, an SSE stream: `req`), or the WebSocket operation it is (`call`, withdrawn by a
 * `complete` or by the socket's end).
 */
interface OperationClient {
  req?: { readonly socket: { readonly destroyed: boolean } | null } | undefined;
  call?: { readonly withdrawn: boolean } | undefined;
}

/** Whether the client of an operation (its context) went away: no one is there to read its answer. */
export function clientGone(context: unknown): boolean {
  const { req, call } = context as OperationClient;
  if (call) return call.withdrawn;
  return req ? (req.socket?.destroyed ?? true) : false;
}

/**
 * A read stopped because its client went away (a list scanned a batch at a time, asked between
 * batches): answered `CLIENT_GONE`, which no one reads, and not logged as unexpected.
 */
export class ClientGoneError extends Error {
  override name = 'ClientGoneError';

  constructor() {
    super('The client went away while the operation read its rows: it stopped reading.');
  }
}
