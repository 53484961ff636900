import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { lastingRequestIdFor, type RequestNotes } from '../http/request-notes.js';
import { loggedText } from '../platform/clip-text.js';
import type { Logger } from '../platform/logger.js';

/** A close reason is at most 123 bytes (RFC 6455); a client's is cut there too. */
const MAX_REASON = 123;
/**
 * How long a client the server closed has to answer the close frame before its socket is cut. ws
 * itself waits 30 s (not configurable), holding the socket, its buffers and its MAX_CONNECTIONS
 * slot: 250 anonymous sockets that never sent `connection_init` nor answered locked every user
 * out for 33 s. A client that cooperates answers within a round trip.
 */
const CLOSE_ANSWER_MS = 1000;
/** RFC 6455's "policy violation" (7.4.1). */
const POLICY_VIOLATION = 1008;
/**
 * The close codes ws sends for the errors of what it reads (its receiver's `WS_ERR_*` codes, as in
 * ws 8's receiver.js): 1009 "message too big", 1008 "policy violation", 1007 "invalid payload
 * data", 1002 "protocol error".
 */
const WS_ERROR_CLOSE_CODES: Record<string, number> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 1009,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: 1009,
  WS_ERR_TOO_MANY_BUFFERED_PARTS: 1008,
  WS_ERR_INVALID_UTF8: 1007,
  WS_ERR_INVALID_CLOSE_CODE: 1002,
  WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH: 1002,
  WS_ERR_INVALID_OPCODE: 1002,
  WS_ERR_EXPECTED_FIN: 1002,
  WS_ERR_EXPECTED_MASK: 1002,
  WS_ERR_UNEXPECTED_MASK: 1002,
  WS_ERR_UNEXPECTED_RSV_1: 1002,
  WS_ERR_UNEXPECTED_RSV_2_3: 1002,
};

/**
 * The log line of one WebSocket connection, gathered over its life and written once at its end (a
 * WebSocket never reaches the router, whose `request` line every HTTP request gets): the upgrade
 * request's id (echoed in the 101), its user once known, how many operations it sent, how long it
 * lasted and how it closed. Never its `connectionParams`, which carry the token. The server closes
 * a connection through it, so the line says why (the client's echo of a close may never come).
 */
export class ConnectionLog {
  readonly requestId: string;
  /** Set once its credentials were accepted (also when the user then held too many connections). */
  userId: string | undefined;
  /** `subscribe` messages (queries, mutations and subscriptions) it sent. */
  operations = 0;
  /** Whole milliseconds: an integer is stored in the object, a fraction in a number of its own (16 bytes more). */
  private readonly began = Math.trunc(performance.now());
  /** The server's own close, when it ended the connection (the first it decided on). */
  private closedByServer: { code: number; reason: string } | null = null;

  constructor(upgrade: IncomingMessage) {
    this.requestId = lastingRequestIdFor(upgrade as IncomingMessage & RequestNotes);
  }

  /**
   * The server refuses the connection as it opens (no Connection is made for it): closes it, and
   * writes the line when it has closed. An accepted connection's line is written by the close
   * listener the transport has anyway (ws-transport.ts): a listener of its own cost ~300 bytes
   * per connection, most of it ws's list of 'close' listeners growing past two.
   */
  refuse(socket: WebSocket, logger: Logger, code: number, reason: string): void {
    socket.once('close', (closeCode, closeReason) => this.write(logger, closeCode, closeReason));
    this.close(socket, code, reason);
  }

  /**
   * The server closes the connection for this reason: a close frame, and the socket cut if the
   * client has not answered it within CLOSE_ANSWER_MS (terminate() does nothing once it closed).
   */
  close(socket: WebSocket, code: number, reason: string): void {
    this.closeAndWait(socket, code, reason);
    setTimeout(() => socket.terminate(), CLOSE_ANSWER_MS).unref();
  }

  /**
   * The close frame, then the socket cut at once: its slot is wanted now (a connection evicted for
   * a newer one), and the frame, handed to the kernel, still reaches a client that reads.
   */
  closeAndCut(socket: WebSocket, code: number, reason: string): void {
    this.closeAndWait(socket, code, reason);
    socket.terminate();
  }

  /**
   * A stop's close (1012): its closing handshake may take until SHUTDOWN_TIMEOUT_MS, after which
   * the stop cuts what is left; a client reading slowly still gets the frames before it.
   */
  closeAndWait(socket: WebSocket, code: number, reason: string): void {
    this.closedByServer ??= { code, reason };
    socket.close(code, reason);
  }

  /** The server ends it without a closing handshake (1006, as the client sees it). */
  cut(socket: WebSocket, reason: string): void {
    this.closedByServer ??= { code: 1006, reason };
    socket.terminate();
  }

  /**
   * ws refused what the client sent (a frame over the size limit, invalid UTF-8, a protocol
   * error): it has already sent the close code its error names, which the line says (the socket's
   * own close event says 1006); any other socket error is a cut.
   *
   * After such an error ws ends the socket behind its close frame and reads on, discarding, what
   * the client still sends (the rest of a 10 MB frame). Cut at once instead, with those bytes
   * unread, the socket was reset, and a client in another process lost the close frame: 3 of 40
   * saw 1006 against a server of its own, 30 of 40 against the test's (test/websocket-log.test.ts).
   * The cut waits CLOSE_ANSWER_MS, as after any close of the server's.
   */
  failed(socket: WebSocket, error: Error & { code?: string }): void {
    const code = error.code === undefined ? undefined : WS_ERROR_CLOSE_CODES[error.code];
    this.closedByServer ??= { code: code ?? 1006, reason: `Socket error: ${error.message}` };
    if (code === undefined) socket.terminate();
    else setTimeout(() => socket.terminate(), CLOSE_ANSWER_MS).unref();
  }

  /**
   * The client stopped reading (see ReadProgress): cut without a closing handshake, since a close
   * frame would wait behind what it does not read, and ws would hold the socket 30 s more for the
   * answer. It sees 1006 once it reads again, on which graphql-ws clients reconnect (a tab that
   * slept comes back). The line says 1008, RFC 6455's "policy violation": the client broke the
   * server's terms and nothing failed in the server, which 1011 ("internal error") would claim.
   */
  cutStalled(socket: WebSocket, reason: string): void {
    this.closedByServer ??= { code: POLICY_VIOLATION, reason };
    socket.terminate();
  }

  /** The socket closed with `code` and `reason` (the client's, or the echo of the server's). */
  write(logger: Logger, code: number, reason: Buffer): void {
    const byServer = this.closedByServer;
    logger.info(
      {
        requestId: this.requestId,
        ...(this.userId ? { userId: this.userId } : {}),
        closedBy: byServer ? 'server' : 'client',
        code: byServer?.code ?? code,
        // The client's own words (a close reason is any UTF-8 it likes): no control character reaches the log.
        reason: loggedText(byServer?.reason ?? reason.toString('utf8'), MAX_REASON),
        operations: this.operations,
        ms: Math.round(performance.now() - this.began),
      },
      'websocket closed',
    );
  }
}
