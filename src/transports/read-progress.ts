import type { Socket } from 'node:net';

/**
 * Keep-alive periods in a row with bytes waiting in the process and none of them taken by the
 * kernel, after which a client counts as stalled: its stream or connection is closed between
 * STALL_PERIODS and STALL_PERIODS + 1 periods after it stopped reading (24 to 36 s at the default
 * SUBSCRIPTION_KEEPALIVE_MS). One period alone would cut a client whose window closed for a moment
 * (a phone between two cells); two leave a reader that is merely slow room to show progress.
 */
export const STALL_PERIODS = 2;

/**
 * Seconds a client refused for a connection limit is told to wait (`Retry-After`): the longest a
 * stalled client keeps its place, so a client whose previous stream stalled unseen (a laptop woken
 * from sleep, a proxy that kept the old connection) finds it free when it comes back.
 */
export function retryAfterSeconds(keepAliveMs: number): number {
  return Math.ceil(((STALL_PERIODS + 1) * keepAliveMs) / 1000);
}

/** The private fields of libuv's stream handle read by `takenBytes`; absent on a closed socket. */
interface StreamHandle {
  /** Bytes handed to libuv. */
  bytesWritten?: unknown;
  /** Bytes libuv still holds of them: it goes down as the kernel takes a write piece by piece. */
  writeQueueSize?: unknown;
}

/**
 * Bytes of the socket the kernel has taken so far. Node's public figures move only when a whole
 * write completes, and Node hands everything buffered behind a pending write to libuv as one
 * write: a socket with 5 MB buffered showed the same writableLength for over 4 s while its client
 * read about 1 MB/s. libuv's own count goes down with every piece the kernel takes; where the handle
 * does not have it, the public figures are used.
 */
function takenBytes(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
  if (typeof handle?.bytesWritten === 'number' && typeof handle.writeQueueSize === 'number') {
    return handle.bytesWritten - handle.writeQueueSize;
  }
  return socket.bytesWritten - socket.writableLength;
}

/** What a keep-alive tick found: nothing waiting, bytes waiting for a client still reading, or a stalled client. */
export type ReadState = 'clear' | 'waiting' | 'stalled';

/**
 * Whether the client of a socket still reads what it is sent, as the process can see it: the
 * kernel takes bytes only as fast as the client reads (once its buffers are full), so bytes that
 * wait in the process while none leave for whole keep-alive periods mean a client that reads
 * nothing. A client that reads slowly shows progress and is never stalled, however far behind it
 * is (its subscriptions' queues bound what it costs, see QueuedMember); an idle stream, with
 * nothing waiting, is not stalled either. Checked at the transports' keep-alive ticks, so it costs
 * nothing between them.
 */
export class ReadProgress {
  /** What the kernel had taken at the last tick. */
  private taken = -1;
  /** Ticks in a row that found bytes waiting and nothing taken since the tick before. */
  private stillTicks = 0;

  constructor(private readonly socket: Socket) {}

  /** Called once per keep-alive period: 'stalled' once the client read nothing for STALL_PERIODS periods. */
  check(): ReadState {
    const taken = takenBytes(this.socket);
    const waiting = this.socket.writableLength > 0;
    this.stillTicks = waiting && taken === this.taken ? this.stillTicks + 1 : 0;
    this.taken = taken;
    if (this.stillTicks >= STALL_PERIODS) return 'stalled';
    return waiting ? 'waiting' : 'clear';
  }

  /**
   * At a keep-alive tick in the middle of a period: whether bytes wait, without counting toward a
   * stall (that is judged once a period, by `check`).
   */
  peek(): Exclude<ReadState, 'stalled'> {
    return this.socket.writableLength > 0 ? 'waiting' : 'clear';
  }

  /** Why the client was cut, for its log line. */
  reason(keepAliveMs: number): string {
    const waiting = this.socket.writableLength;
    return `Client read nothing for ${(STALL_PERIODS * keepAliveMs) / 1000} s while ${waiting} bytes waited for it`;
  }
}
