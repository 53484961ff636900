/** What install-rate.ts and its server child (install-server.ts) share: names and IPC messages. */

export const BENCH_SOURCE = 'market.olares';
export const BENCH_VERSION = '1.0.0';
export const BENCH_APP_PREFIX = 'bench-app-';
export const benchAppName = (index: number) => `${BENCH_APP_PREFIX}${index}`;

/** The mutation the install benchmarks send (install-rate, g4b); only InstallAppSuccess counts. */
export const INSTALL_MUTATION = `mutation BenchInstall($input: InstallAppInput!) {
  installApp(input: $input) {
    __typename
    ... on InstallAppSuccess { task { taskId appName status } }
    ... on Error { code message }
  }
}`;

export type ServerRequest =
  | { id: number; type: 'cpu' }
  | { id: number; type: 'drain'; timeoutMs: number }
  | { id: number; type: 'taskCounts' }
  | { id: number; type: 'stop' };

/** A request before the parent numbers it (Omit distributed over the union). */
export type NewServerRequest = ServerRequest extends infer R
  ? R extends ServerRequest
    ? Omit<R, 'id'>
    : never
  : never;

export type ServerMessage =
  | { type: 'ready'; url: string; appCount: number; seedMs: number; engineConcurrency: number; engine: boolean }
  | { type: 'failed'; error: string }
  | { type: 'reply'; id: number; value: unknown; error?: string };

export interface CpuSample {
  /** Microseconds of CPU (user + system) the process has used so far. */
  cpuMicros: number;
  wallMs: number;
}

export interface DrainResult {
  ms: number;
  /** Bench tasks still PENDING or RUNNING when the drain began: the engine's backlog. */
  backlog: number;
  /** CPU the server used while draining (the engine's work on the backlog). */
  cpuMicros: number;
}

export interface TaskCounts {
  /** Bench tasks by status. */
  byStatus: Record<string, number>;
  /** History records of bench apps (mutation + engine transitions). */
  historyRecords: number;
}
