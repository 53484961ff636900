/**
 * What the cluster benchmark (bench/cluster.ts) and its server processes (bench/cluster-server.ts)
 * share: the IPC requests and answers. The load clients are the fan-out benchmark's
 * (bench/fanout-client.ts, fanout-protocol.ts), unchanged: they follow the task BENCH_TASK_ID,
 * whose `progress` carries the change's index.
 */
import type { BurstResult, CpuSample } from './fanout-protocol.js';

export type ClusterServerRequest =
  | { id: number; type: 'cpu' }
  /** Creates `tasks` RUNNING bench tasks (task 0 is BENCH_TASK_ID) and announces them; origin only. */
  | { id: number; type: 'setup'; tasks: number }
  /** Paced changes of task 0, progress = index (see pacedBurst); origin only. */
  | { id: number; type: 'burst'; first: number; count: number; intervalMs: number }
  /** Starts counting the bench tasks' TASK_CHANGED events in this instance's runtime store. */
  | { id: number; type: 'track' }
  /**
   * Closed loop for `durationMs`: one worker per bench task, each committing its task's next
   * progress and announcing it, as fast as it can; origin only.
   */
  | { id: number; type: 'loop'; durationMs: number }
  /** Resolves once this instance's store holds every bench task at `targets[taskId]` or beyond. */
  | { id: number; type: 'caughtUp'; targets: Record<string, number>; timeoutMs: number }
  /** This process's Redis commands and socket writes so far (cluster mode; null without Redis). */
  | { id: number; type: 'redisTraffic' }
  /** A V8 CPU profile of the process between start and stop (written to `file`). */
  | { id: number; type: 'profile'; action: 'start' }
  | { id: number; type: 'profile'; action: 'stop'; file: string }
  | { id: number; type: 'stop' };

/** A server process's own Redis traffic so far, counted in the process (see cluster-server.ts). */
export interface RedisTraffic {
  /** Commands sent, by name (pipelined ones each). */
  commands: Record<string, number>;
  /** Writes to a socket connected to Redis: one per pipeline or lone command, ≈ round trips. */
  writes: number;
}

export interface LoopResult {
  /** Changes committed and announced. */
  made: number;
  /** Each bench task's last progress committed. */
  targets: Record<string, number>;
  /** Epoch ms of the first commit's start and of the loop's end. */
  startedAt: number;
  endedAt: number;
  cpu: { start: CpuSample; end: CpuSample };
}

export interface CaughtUpResult {
  reached: boolean;
  /** Epoch ms at which the store applied the change that completed the targets. */
  reachedAt: number;
  /** TASK_CHANGED events of the bench tasks the store emitted since `track`. */
  events: number;
  cpu: CpuSample;
}

export type { BurstResult };
