import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import type { Viewer } from '../auth/viewer.js';
import type { Outlet, QueuedMember } from '../fanout/member.js';
import { TICKS_PER_PERIOD } from './keep-alive.js';
import { ReadProgress } from './read-progress.js';
import type { ConnectionLog } from './ws-connection-log.js';

/**
 * A WebSocket connection of the graphql-transport-ws transport (ws-transport.ts): who it is, its
 * operations, its keep-alive state, and the writes and back-pressure of its socket.
 */

/** Frames are JSON text, even when handed to ws as bytes. */
const TEXT = { binary: false } as const;

export interface Operation {
  /** Leaves the cohort or abandons the query. */
  stop(): void;
}

/** One WebSocket connection speaking graphql-transport-ws: its state, and how frames are written to it. */
export class Connection implements Outlet {
  viewer: Viewer | null = null;
  initReceived = false;
  /** Until `connection_init`: closes the connection when it does not come in time. */
  initTimer: NodeJS.Timeout | null = null;
  /** Cancels what closes the connection when its credential expires. */
  stopExpiry: (() => void) | undefined;
  /**
   * Keep-alive: the server wrote to it since the last tick. What the client sends does not count:
   * a proxy's idle timeout (nginx's proxy_read_timeout) is about bytes from the server.
   */
  private written = true;
  /** Keep-alive: ticks since a ping that nothing has come back for; 0 while none is unanswered. */
  private pingTicks = 0;
  readonly operations = new Map<string, Operation>();
  /** What the client sent before it was acknowledged (MAX_BYTES_BEFORE_ACK). */
  private bytesBeforeAck = 0;
  /** Subscriptions with frames waiting for the socket to drain; null while none wait. */
  private waiting: Set<QueuedMember> | null = null;

  constructor(
    readonly socket: WebSocket,
    /** The HTTP upgrade request: its headers are the gateway's, not the client's payload. */
    readonly upgrade: IncomingMessage,
    readonly log: ConnectionLog,
    /** Unsent bytes past which the socket counts as congested (SUBSCRIPTION_MAX_BUFFERED_BYTES). */
    private readonly maxBufferedBytes: number,
    readonly progress = new ReadProgress(upgrade.socket), // keep-alive: does the client still read?
  ) {}

  /** An answer (a query's result, a pong, an error): when the socket is congested after it, reads stop. */
  send(message: string): void {
    this.written = true;
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.socket.send(message);
    if (this.congested) this.stopReading();
  }

  /**
   * A client that sends requests without reading the answers: nothing more is read from it until
   * what it was sent has left the process, so its requests wait in the kernel's buffers and its
   * own, not as answers in this process (such a client sending queries took the server from 319 MB
   * to 1.9 GB in 37 s). Its pongs are not read meanwhile either: the keep-alive closes it if it
   * stays so. Subscription frames never get here (they queue per subscription instead).
   */
  private stopReading(): void {
    if (this.socket.isPaused) return;
    this.socket.pause();
    this.socket.ping(undefined, undefined, () => {
      if (this.socket.readyState === this.socket.OPEN) this.socket.resume();
    });
  }

  write(frame: Buffer): void {
    this.written = true;
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(frame, TEXT);
  }

  /** Counts a message that came before `connection_ack`; false once they add up to more than `limit`. */
  mayReadBeforeAck(bytes: number, limit: number): boolean {
    this.bytesBeforeAck += bytes;
    return this.bytesBeforeAck <= limit;
  }

  /** Something came from the client: it is alive (a ping is answered). */
  heard(): void {
    this.pingTicks = 0;
  }

  /**
   * A keep-alive tick (keep-alive.ts) while bytes wait for the client: ReadProgress judges it
   * then, a pong may wait behind them, and what leaves reaches the proxy.
   */
  bytesWaiting(): void {
    this.written = false;
    this.pingTicks = 0;
  }

  /**
   * A keep-alive tick with no bytes waiting: pings the connection unless the server wrote to it
   * since the last tick. False when a ping went unanswered for a whole period (it is to be cut).
   */
  keepAlive(): boolean {
    if (this.pingTicks > 0) {
      if (this.pingTicks >= TICKS_PER_PERIOD) return false;
      this.pingTicks += 1;
    }
    if (this.written) {
      this.written = false;
      return true;
    }
    if (this.pingTicks === 0) this.pingTicks = 1;
    this.written = true;
    this.socket.ping();
    return true;
  }

  /** The server ends a connection: cut if its client does not answer the close (ConnectionLog.close). */
  close(code: number, reason: string): void {
    this.log.close(this.socket, code, reason);
  }

  /** The server stops: the closing handshake may take as long as the stop waits. */
  closeForRestart(code: number, reason: string): void {
    this.log.closeAndWait(this.socket, code, reason);
  }

  get congested(): boolean {
    return this.socket.bufferedAmount > this.maxBufferedBytes;
  }

  /**
   * Calls the waiting subscriptions back once everything written so far has left the process: the
   * write callback of a ping queued behind it is that signal (ws has no drain event of its own).
   */
  waitForDrain(member: QueuedMember): void {
    if (this.waiting) {
      this.waiting.add(member);
      return;
    }
    if (this.socket.readyState !== this.socket.OPEN) return;
    const waiting = new Set([member]);
    this.waiting = waiting;
    this.socket.ping(undefined, undefined, () => {
      this.waiting = null;
      for (const each of waiting) each.flush();
    });
  }

  dispose(): void {
    if (this.initTimer) clearTimeout(this.initTimer);
    this.stopExpiry?.();
    this.waiting = null;
    for (const operation of this.operations.values()) operation.stop();
    this.operations.clear();
  }
}
