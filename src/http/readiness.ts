import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DatabaseProbe } from '../db/client.js';
import { DatabaseReadOnlyError } from '../db/postgres-session.js';

/**
 * How long `GET /readiness` waits for the database. A database behind a blackholed network
 * never answers; the probe must still answer (503) in time for the orchestrator asking.
 */
export const READINESS_TIMEOUT_MS = 2000;

/**
 * Ready when the database answers within READINESS_TIMEOUT_MS, on PostgreSQL taking writes (not a
 * read-only standby a failover left the URL on: db/postgres-session.ts answerWritable), there on a
 * connection of its own (db/postgres-pool.ts readinessPool), so that a pool busy with queries,
 * which answers some of them "database busy", leaves the instance ready: the load balancer would
 * otherwise take a healthy instance out for its load, and move that load onto the others.
 */
export async function checkReadiness(
  probe: Pick<DatabaseProbe, 'answer'>,
  timeoutMs = READINESS_TIMEOUT_MS,
): Promise<{ ok: boolean; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs);
  });
  try {
    // A query given up on may still fail later; the race has already handled its rejection.
    const answer = await Promise.race([probe.answer().then(() => 'answered' as const), late]);
    return answer === 'answered' ? { ok: true } : { ok: false, error: 'database did not answer in time' };
  } catch (error) {
    return { ok: false, error: error instanceof DatabaseReadOnlyError ? error.message : 'database unreachable' };
  } finally {
    clearTimeout(timer);
  }
}

/** Where the app is in its life; only a serving app can be ready. */
export type Phase = 'starting' | 'serving' | 'stopping';

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/**
 * The app's phase, as requests see it. The port is bound before anything else starts, so that a
 * busy port fails first; requests that arrive while the rest starts wait for it, except the
 * probes: `/health` answers (the process is alive) and `/readiness` says not ready, as it does
 * again once the app is stopping.
 */
export class Lifecycle {
  phase: Phase = 'starting';
  /** Resolves once start-up has finished; never when it failed (the process exits then). */
  readonly serving: Promise<void>;
  private markServing!: () => void;
  /** Resolves when a stop begins. */
  private readonly stopped: Promise<void>;
  private markStopping!: () => void;

  constructor() {
    this.serving = new Promise((resolve) => {
      this.markServing = resolve;
    });
    this.stopped = new Promise((resolve) => {
      this.markStopping = resolve;
    });
  }

  started(): void {
    if (this.phase !== 'starting') return;
    this.phase = 'serving';
    this.markServing();
  }

  stopping(): void {
    this.phase = 'stopping';
    this.markStopping();
  }

  /**
   * `handler` behind the phase: the probes reach it at once (`/readiness` answers 503 with the
   * phase, through the router so that its request log has it: see `notReady`), everything else
   * waits for start-up.
   */
  gate(handler: Handler): Handler {
    return (req, res) => {
      if (this.phase === 'serving') return handler(req, res);
      const path = (req.url ?? '').split('?')[0];
      if (path === '/readiness' || path === '/health' || this.phase === 'stopping') return handler(req, res);
      // A stop that begins first answers it: held on, it was cut without an answer once the stop's drain ended.
      return Promise.race([this.serving.then(() => true), this.stopped.then(() => false)]).then((served) =>
        served ? handler(req, res) : unavailable(res),
      );
    };
  }

  /** Why `/readiness` answers 503 whatever the database says: starting or stopping, if so. */
  notReady(): { ok: false; error: Phase } | null {
    return this.phase === 'serving' ? null : { ok: false, error: this.phase };
  }
}

/** A request that waited for a start-up that a stop ended: 503, try another instance or later. */
function unavailable(res: ServerResponse): void {
  res.writeHead(503, { 'content-type': 'application/json', 'cache-control': 'no-store', connection: 'close' });
  res.end(
    JSON.stringify({
      errors: [{ message: 'The server stopped before it had started', extensions: { code: 'UNAVAILABLE' } }],
    }),
  );
}
