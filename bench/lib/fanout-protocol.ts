/**
 * What the fan-out benchmark (bench/fanout.ts) and its child processes share: the subscription,
 * the frame, and the IPC messages of the two servers (subject and raw ws baseline) and the load
 * client. Every process stamps times with `epochMs()`: the wall clock at process start plus the
 * monotonic clock since, with sub-millisecond resolution; two processes on one machine agree to
 * well under 0.1 ms (checked when the benchmark was written: a child's stamp always fell between
 * the parent's stamps before and after the round trip).
 */

/** The subscription every client holds (one per connection). */
export const FANOUT_QUERY =
  'subscription BenchFanout { runtimeEvents { sequence kind task { taskId status progress } } }';

/** graphql-transport-ws subscription id every client uses: one subscription per connection. */
export const SUBSCRIPTION_ID = '1';

/** The task whose changes are fanned out; its `progress` carries the event's index. */
export const BENCH_TASK_ID = 'bench-fanout-task';
export const BENCH_TASK_APP = 'bench-fanout-app';

export const epochMs = () => performance.timeOrigin + performance.now();

/** The frame the subject sends for event `index` (same shape and key order as graphql-ws's `next`). */
export function nextFrame(sequence: number, index: number): string {
  return JSON.stringify({
    id: SUBSCRIPTION_ID,
    type: 'next',
    payload: {
      data: {
        runtimeEvents: {
          sequence,
          kind: 'TASK_CHANGED',
          task: { taskId: BENCH_TASK_ID, status: 'RUNNING', progress: index },
        },
      },
    },
  });
}

// ---- servers (fanout-server.ts, fanout-raw-server.ts) ----

export type ServerRequest =
  | { id: number; type: 'cpu' }
  | { id: number; type: 'heap' }
  | { id: number; type: 'connections' }
  /** Makes `count` changes, `intervalMs` apart, with event indices first, first + 1, …. */
  | { id: number; type: 'burst'; first: number; count: number; intervalMs: number }
  | { id: number; type: 'profile'; action: 'start' }
  | { id: number; type: 'profile'; action: 'stop'; file: string }
  | { id: number; type: 'stop' };

// ---- load client (fanout-client.ts) ----

export type Transport = 'ws' | 'sse';

export type ClientRequest =
  /** Opens `count` subscriptions, each on its own connection: graphql-ws, or SSE (POST /graphql/stream). */
  | { id: number; type: 'connect'; url: string; count: number; concurrency: number; transport?: Transport }
  /** Opens a measurement window for events first … first + count - 1. */
  | { id: number; type: 'arm'; first: number; count: number }
  /** Closes the window; `published[k]` is the epoch ms of event first + k. */
  | { id: number; type: 'collect'; published: number[] }
  | { id: number; type: 'close' }
  | { id: number; type: 'stop' };

/** A request before the parent numbers it (Omit distributed over the union). */
export type Unnumbered<R> = R extends { id: number } ? Omit<R, 'id'> : never;

export type ChildMessage =
  | { type: 'ready'; url?: string; fdLimit: number | null; pid: number; detail?: Record<string, unknown> }
  | { type: 'failed'; error: string }
  | { type: 'reply'; id: number; value: unknown; error?: string }
  /** Load client: every frame of the armed window has arrived. */
  | { type: 'complete' };

export interface CpuSample {
  /** Microseconds of CPU (user + system) the process has used so far. */
  cpuMicros: number;
  wallMs: number;
}

/** process.memoryUsage() after full garbage collections (children run with --expose-gc). */
export interface HeapSample {
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  rss: number;
}

export interface BurstResult {
  /** Epoch ms at which each change was made (just before the store call / the send loop). */
  published: number[];
  /** How late the change timers fired, at most: > 0 when the event loop was still busy. */
  maxTimerLagMs: number;
}

export interface ConnectResult {
  /** Connections acknowledged by the server with their subscription sent. */
  subscribed: number;
  failed: number;
  ms: number;
  errorSamples: string[];
}

export interface WindowResult {
  expected: number;
  /** Frames of the armed events received (each client, each event, once). */
  received: number;
  /** Frames of other events (anything the server sent besides the bench task's changes). */
  other: number;
  /** Frames of earlier windows that arrived late. */
  stale: number;
  /** Error frames, unexpected completes, duplicates, out-of-order frames, closed sockets. */
  errors: number;
  errorSamples: string[];
  /** Receipt − publish, ms, for every received frame of the window. */
  latenciesMs: number[];
  /** Per event: its last and first receipt − publish (NaN when no client got it). */
  lastMs: number[];
  firstMs: number[];
  /** Per event: how many clients got it. */
  counts: number[];
  /** Load client CPU from arming to the last frame (or to collect, when incomplete). */
  cpuMicros: number;
  wallMs: number;
}
