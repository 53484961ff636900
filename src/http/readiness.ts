import type { Db } from '../db/client.js';

/**
 * How long `GET /readiness` waits for the database. A database behind a blackholed network
 * never answers; the probe must still answer (503) in time for the orchestrator asking.
 */
export const READINESS_TIMEOUT_MS = 2000;

/** Ready when the database answers `SELECT 1` within READINESS_TIMEOUT_MS. */
export async function checkReadiness(
  db: Pick<Db, '$queryRawUnsafe'>,
  timeoutMs = READINESS_TIMEOUT_MS,
): Promise<{ ok: boolean; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs);
  });
  try {
    // A query given up on may still fail later; the race has already handled its rejection.
    const answer = await Promise.race([db.$queryRawUnsafe('SELECT 1').then(() => 'answered' as const), late]);
    return answer === 'answered' ? { ok: true } : { ok: false, error: 'database did not answer in time' };
  } catch {
    return { ok: false, error: 'database unreachable' };
  } finally {
    clearTimeout(timer);
  }
}
