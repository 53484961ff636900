import { createServer, type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { continueWhenRead } from '../http/body.js';

/** Where a started server listens. */
export interface RunningApp {
  url: string;
  port: number;
}

/** What draining the HTTP server did, for the shutdown log. */
export interface HttpDrainSummary {
  /** Requests in flight (responses not yet ended) when the drain began. */
  requestsWaitedFor: number;
  /** Requests still unfinished at the deadline. */
  requestsCut: number;
}

/** The node:http server, tracking its sockets and requests so that closing it really ends them. */
export interface HttpServer {
  server: Server;
  /**
   * Registers the application's request handler; it never sees a request the server turned away
   * (beyond `MAX_PIPELINED_REQUESTS`).
   */
  onRequest(handler: (req: IncomingMessage, res: ServerResponse) => void): void;
  /** Binds the port; a port in use or not permitted rejects with a ListenError. */
  listen(port: number, host: string): Promise<RunningApp>;
  /**
   * Stops accepting connections and closes the idle keep-alive ones, returning how many; each
   * request in flight is answered with `Connection: close` when its response has not started yet.
   */
  stopAccepting(): number;
  /** Waits for the requests in flight until `deadline` (epoch ms). */
  drain(deadline: number): Promise<HttpDrainSummary>;
  /** Stops accepting and destroys every connection left (streams, upgraded sockets included). */
  close(): Promise<void>;
}

/** The port could not be bound: a one-line message for whoever started the server. */
export class ListenError extends Error {
  override name = 'ListenError';
}

export interface HttpServerOptions {
  /**
   * How long an idle keep-alive connection waits for its next request (HTTP_KEEP_ALIVE_TIMEOUT_MS).
   * Longer than the idle timeout of the proxy in front, so that the proxy, never the server, closes
   * an idle connection: otherwise a request the proxy sends as the server closes is lost (nginx
   * answers 502 and does not retry a POST). Node's default is 5 s. `headersTimeout` (≤ 20 s) need
   * not be above it: Node 20 times the headers of a request from its first byte, not through the
   * idle gap before it.
   */
  keepAliveTimeoutMs: number;
  /**
   * How long one request, headers and body, may take to arrive (HTTP_REQUEST_TIMEOUT_MS): Node's
   * 300 s (and 60 s for the headers) let a client trickling bytes hold a connection for minutes.
   */
  requestTimeoutMs: number;
  /** Told of each request node:http refused before the application saw it (see ClientError). @default none */
  onClientError?: (refused: ClientError) => void;
}

/**
 * A request node:http refused before any handler saw it ('clientError'): one it could not parse,
 * or whose headers or body did not come in time. Answered as Node answers it without a listener.
 * A connection's own failure (a reset: ECONNRESET) is no request's, and is not reported.
 */
export interface ClientError {
  /** llhttp's code (HPE_…: a fixed set), ERR_HTTP_REQUEST_TIMEOUT, or `other`: a bounded label. */
  reason: string;
  /** The status written, as Node writes it: 400, 431 (HPE_HEADER_OVERFLOW), 413, 408; 0: none could be. */
  status: number;
  error: Error;
  remoteAddress: string | undefined;
}

/** The most a request's headers may take to arrive, whatever HTTP_REQUEST_TIMEOUT_MS allows its body. */
const HEADERS_TIMEOUT_MS = 20_000;

/** How often Node checks requests against those deadlines: its default, 30 s, made them late by as much. */
const TIMEOUT_CHECK_INTERVAL_MS = 1000;

/**
 * Most requests one connection may have unanswered (the one in progress and those pipelined
 * behind it); one more closes the connection, unrun. Browsers, curl, undici, nginx and the load
 * balancers do not pipeline: they send the next request after the answer, so they never have more
 * than one. A client pipelining on purpose gets 16 in flight, plenty to hide a round trip. Without
 * a bound, Node runs every request of a 64 KiB read before it pauses the socket (about 250 of them)
 * and buffers each answer for a client that may never read: 10.7 MB per connection.
 */
export const MAX_PIPELINED_REQUESTS = 16;

/** Requests beyond MAX_PIPELINED_REQUESTS: not handed to the application. */
const turnedAway = new WeakSet<IncomingMessage>();

/** Responses still in flight when the stop cut their connections (close()), for the request log. */
const cutAtStop = new WeakSet<ServerResponse>();

/** Whether the server cut this response at its stop, rather than its client going away. */
export function wasCutAtStop(res: ServerResponse): boolean {
  return cutAtStop.has(res);
}

/** How a response ended: its own 'close', or its connection closed while it waited behind another. */
export type ResponseEnd = 'closed' | 'connection-gone';

/** Each response's end, settled by whichever of the two comes first (see `settleWithConnection`). */
const responseEnds = new WeakMap<ServerResponse, Promise<ResponseEnd>>();

/**
 * Resolves when `res` is done with: its 'close', or for a pipelined response queued behind the one
 * in progress, the close of its connection, on which Node never emits its 'close'. The in-flight set
 * and the request log both wait on this, so neither keeps such a response forever.
 */
export function responseEnded(res: ServerResponse): Promise<ResponseEnd> {
  return responseEnds.get(res) ?? new Promise((resolve) => res.once('close', () => resolve('closed')));
}

/**
 * Settles `res` on its 'close' or, failing that, on its connection's: `waiting` holds the responses
 * of one connection not yet closed, and is settled once when the connection closes.
 */
function settleWithConnection(res: ServerResponse, waiting: Map<ServerResponse, (end: ResponseEnd) => void>) {
  const ended = new Promise<ResponseEnd>((resolve) => {
    waiting.set(res, resolve);
    res.once('close', () => resolve('closed'));
  });
  void ended.then(() => waiting.delete(res));
  responseEnds.set(res, ended);
  return ended;
}

/** The responses of each connection not yet ended, for `settleWithConnection`. */
function waitingOn(socket: Socket): Map<ServerResponse, (end: ResponseEnd) => void> {
  let waiting = waitingBySocket.get(socket);
  if (!waiting) {
    const responses = new Map<ServerResponse, (end: ResponseEnd) => void>();
    // After the 'close' Node emits on the response in progress (from a socket 'close' listener of its
    // own, registered before or after this one), so only the queued ones are settled as `connection-gone`.
    socket.once('close', () =>
      setImmediate(() => {
        for (const settle of responses.values()) settle('connection-gone');
      }),
    );
    waitingBySocket.set(socket, responses);
    waiting = responses;
  }
  return waiting;
}

const waitingBySocket = new WeakMap<Socket, Map<ServerResponse, (end: ResponseEnd) => void>>();

export function createHttpServer({
  keepAliveTimeoutMs,
  requestTimeoutMs,
  onClientError,
}: HttpServerOptions): HttpServer {
  const server = createServer({
    requestTimeout: requestTimeoutMs,
    headersTimeout: Math.min(HEADERS_TIMEOUT_MS, requestTimeoutMs),
    connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
  });
  server.keepAliveTimeout = keepAliveTimeoutMs;
  const sockets = new Set<Socket>();
  const inFlight = new Set<ServerResponse>();
  let accepting = true;
  /** Settles once the listening socket and every connection are closed. */
  let closed: Promise<void> | null = null;

  // A request expecting `100 Continue` gets it only once a route reads its body (http/body.ts).
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    continueWhenRead(req, res);
    server.emit('request', req, res);
  });
  // With a listener, answering is ours: Node then writes nothing itself.
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    const { remoteAddress } = socket as Socket; // read before the socket is destroyed, which forgets it
    const status = answerClientError(error, socket);
    const reason = clientErrorReason(error);
    if (reason !== null) onClientError?.({ reason, status, error, remoteAddress });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // Registered before the router, so every request is counted before anything answers it.
  server.on('request', (req, res: ServerResponse) => {
    const waiting = waitingOn(req.socket);
    if (req.socket.destroyed || waiting.size >= MAX_PIPELINED_REQUESTS) {
      turnedAway.add(req);
      req.socket.destroy();
      return;
    }
    inFlight.add(res);
    if (!accepting) res.setHeader('connection', 'close');
    closeIfAnsweredBeforeBody(req, res);
    void settleWithConnection(res, waiting).then(() => {
      inFlight.delete(res);
      // A response that had started before the stop kept its connection alive: close it now it is idle.
      if (!accepting) server.closeIdleConnections();
    });
  });

  const stopAccepting = () => {
    if (!accepting) return 0;
    accepting = false;
    for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
    const open = [...sockets];
    // node:http's close() also closes the connections with no request in progress.
    closed = server.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    return open.filter((socket) => socket.destroyed).length;
  };

  return {
    server,
    stopAccepting,
    onRequest(handler) {
      server.on('request', (req, res) => {
        if (!turnedAway.has(req)) handler(req, res);
      });
    },
    async listen(port, host) {
      await new Promise<void>((resolve, reject) => {
        const failed = (error: NodeJS.ErrnoException) => reject(listenError(error, port, host));
        server.once('error', failed);
        server.listen(port, host, () => {
          server.off('error', failed);
          resolve();
        });
      });
      const address = server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      return { port: actualPort, url: `http://${shownHost(host)}:${actualPort}` };
    },
    async drain(deadline) {
      const requestsWaitedFor = [...inFlight].filter((res) => !res.writableEnded).length;
      const requestsCut = (await settledBy(allFinished(inFlight), deadline)) ? 0 : inFlight.size;
      return { requestsWaitedFor, requestsCut };
    },
    async close() {
      stopAccepting();
      // Marked before the sockets go: their responses end after.
      for (const res of inFlight) if (!res.writableFinished) cutAtStop.add(res);
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/**
 * Closes the connection once `res` is sent when the body of `req` is still coming (a route that
 * answers without reading it: /health, a refusal, Yoga's GET): kept alive, Node would read and drop
 * a body of any declared length first, for as long as its sender trickles it.
 */
function closeIfAnsweredBeforeBody(req: IncomingMessage, res: ServerResponse): void {
  if (!req.headers['transfer-encoding'] && !(Number(req.headers['content-length']) > 0)) return;
  res.once('finish', () => {
    if (!req.complete) req.socket.destroySoon();
  });
}

/** Node's answers to a client error (lib/_http_server.js socketOnError); 400 for any other. */
const CLIENT_ERROR_STATUS: Readonly<Record<string, number>> = {
  HPE_HEADER_OVERFLOW: 431,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

/** llhttp's error codes: an enum of about 30 names, so a bounded set of labels. */
const PARSE_ERROR = /^HPE_[A-Z_]{1,40}$/;

/**
 * What Node does without a 'clientError' listener: the status line and `Connection: close`, unless
 * the socket cannot take it or a response to an earlier request has begun on it; then the socket
 * is destroyed. Returns the status written (0: none).
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): number {
  const response = (socket as { _httpMessage?: { _headerSent?: boolean } | null })._httpMessage;
  let status = 0;
  if (socket.writable && !response?._headerSent) {
    status = CLIENT_ERROR_STATUS[error.code ?? ''] ?? 400;
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
  }
  socket.destroy(error);
  return status;
}

/** The request's fault as a label, or null for the connection's own (a system call's error: a reset). */
function clientErrorReason(error: NodeJS.ErrnoException): string | null {
  const code = error.code ?? '';
  if (PARSE_ERROR.test(code) || code === 'ERR_HTTP_REQUEST_TIMEOUT') return code;
  return error.syscall ? null : 'other';
}

function shownHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function listenError(error: NodeJS.ErrnoException, port: number, host: string): Error {
  const where = `Port ${port} on ${host}`;
  if (error.code === 'EADDRINUSE') {
    return new ListenError(
      `${where} is already in use (EADDRINUSE); set PORT to another port or stop the other process.`,
    );
  }
  if (error.code === 'EACCES') {
    return new ListenError(`${where} may not be bound by this user (EACCES); set PORT to 1024 or above.`);
  }
  if (error.code === 'EADDRNOTAVAIL') {
    return new ListenError(`${where}: no such address on this machine (EADDRNOTAVAIL); check HOST.`);
  }
  // A host name is looked up before the bind (getaddrinfo): ENOTFOUND names no setting.
  if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') {
    const why = error.code === 'ENOTFOUND' ? 'no such host name' : 'the name lookup failed for now';
    return new ListenError(`${where}: ${why} (${error.code}); check HOST.`);
  }
  return error;
}

/** Resolves when every response of `responses` (a live set) has ended. */
async function allFinished(responses: Set<ServerResponse>): Promise<void> {
  for (const res of [...responses]) {
    // Still in the set: it has not ended yet.
    if (responses.has(res)) await responseEnded(res);
  }
  if (responses.size) await allFinished(responses);
}

/** Whether `work` settled before `deadline` (epoch ms). */
export async function settledBy(work: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([work.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
