import { readFileSync } from 'node:fs';

/**
 * The open-file limit against MAX_CONNECTIONS. Each WebSocket or SSE stream is an open file, and a
 * process that runs out of them goes silent rather than refusing: libuv accepts and at once drops a
 * connection it has no file for (the client sees a reset, 1006), /health and /readiness reset too,
 * and a query that needs a file waits. Docker 25 and later start a container at a soft limit of
 * 1024, far below the 20,000 connections MAX_CONNECTIONS allows: measured under `ulimit -n 256`,
 * 227 of 400 WebSockets got in and 173 were reset, none refused with the documented 1013.
 */

/** Files kept for everything but the connections: a quarter of the limit, at least this many… */
export const MIN_FILE_HEADROOM = 64;
/** …and at most this many: what else the process opens does not grow with the limit. */
export const MAX_FILE_HEADROOM = 1024;

/**
 * The soft limit on open files (RLIMIT_NOFILE) of this process, read from /proc/self/limits (Node
 * has no getrlimit); null where there is no such file (not Linux) or the limit is unlimited.
 */
export function softOpenFileLimit(limitsFile = '/proc/self/limits'): number | null {
  let text: string;
  try {
    text = readFileSync(limitsFile, 'utf8');
  } catch {
    return null;
  }
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  return soft && /^\d+$/.test(soft) ? Number(soft) : null;
}

/**
 * The files kept from the connections: the database pool's (DATABASE_POOL_SIZE), and a quarter of
 * the limit (between MIN_FILE_HEADROOM and MAX_FILE_HEADROOM) for the rest: Node's own (about 30 at rest), Redis, the
 * readiness probe's connection, outbound calls (app service, developer service, market sources,
 * webhooks), the SQLite files, plain HTTP requests and connections being refused.
 */
export function fileHeadroom(softLimit: number, poolSize: number): number {
  return poolSize + Math.min(MAX_FILE_HEADROOM, Math.max(MIN_FILE_HEADROOM, Math.ceil(softLimit / 4)));
}

export interface ConnectionCeiling {
  /** The connections the server takes: MAX_CONNECTIONS, or fewer if the open-file limit leaves fewer. */
  total: number;
  /** The soft open-file limit, when it lowered `total`. */
  softLimit?: number;
}

/** MAX_CONNECTIONS, lowered to the soft open-file limit minus the headroom (at least 1). */
export function connectionCeiling(
  maxConnections: number,
  poolSize: number,
  softLimit: number | null,
): ConnectionCeiling {
  if (softLimit === null) return { total: maxConnections };
  const room = Math.max(1, softLimit - fileHeadroom(softLimit, poolSize));
  return room < maxConnections ? { total: room, softLimit } : { total: maxConnections };
}
