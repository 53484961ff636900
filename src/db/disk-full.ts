import type { Logger } from '../platform/logger.js';
import { isDiskFull } from './availability.js';

/**
 * How long after the last write refused for want of room `/readiness` still says so. Readiness
 * must not write at every probe, so it goes by the failures the server meets anyway: while the
 * disk stays full, the collector's beat (COLLECT_INTERVAL_MS, 5 s by default), the engine's
 * heartbeat and the clients' writes keep meeting them well within this; once space is freed, the
 * next write that goes through ends the episode at once (DiskFullWatch.wrote), and a server that
 * writes nothing at all is ready again after this long at most. A fixed bound, not a setting: it
 * only decides how soon a server that stopped failing is taken back.
 */
export const DISK_FULL_HOLD_MS = 30_000;

/** What `/readiness` says while writes fail for want of room (no path, no figure: it is unauthenticated). */
export const DISK_FULL_NOT_READY = "the database's disk is full: writes fail until space is freed";

interface Episode {
  since: number;
  lastAt: number;
  failures: number;
}

/**
 * The writes the database refused for want of room (db/availability.ts isDiskFull), as one
 * episode from the first to the write that goes through again: the log says it once when it
 * begins (a warning with the cause) and once when it ends, not once per request or per beat;
 * /metrics counts each refused write; `/readiness` answers 503 meanwhile. Fed by the places that
 * meet database errors: the GraphQL error mask, the collector's beat, a failed COMMIT of Prisma's
 * own transactions (whose cause Prisma loses, see client.ts onFailedCommit).
 */
export class DiskFullWatch {
  private episode: Episode | null = null;
  /** Writes refused for want of room since the start (market_database_disk_full_errors_total). */
  failures = 0;

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Notes `error` when it is a disk full; returns whether it was. */
  observe(error: unknown): boolean {
    if (!isDiskFull(error)) return false;
    const now = this.now();
    this.failures += 1;
    if (this.episode && now - this.episode.lastAt > DISK_FULL_HOLD_MS) this.end('no write refused since');
    if (this.episode) {
      this.episode.lastAt = now;
      this.episode.failures += 1;
      return true;
    }
    this.episode = { since: now, lastAt: now, failures: 1 };
    const { message, code } = error as { message?: unknown; code?: unknown };
    this.logger.warn(
      { cause: typeof message === 'string' ? message.trim().split('\n').pop() : String(error), code },
      "the database's disk is full: writes fail until space is freed (logged once until they succeed again)",
    );
    return true;
  }

  /** A write went through: the disk has room again. */
  wrote(): void {
    if (this.episode) this.end('a write went through');
  }

  /** Why `/readiness` answers 503, while a write was refused for want of room within DISK_FULL_HOLD_MS; else null. */
  problem(): string | null {
    return this.episode && this.now() - this.episode.lastAt <= DISK_FULL_HOLD_MS ? DISK_FULL_NOT_READY : null;
  }

  private end(reason: string): void {
    const episode = this.episode as Episode;
    this.episode = null;
    this.logger.info(
      { failures: episode.failures, failingForMs: episode.lastAt - episode.since, reason },
      "the database's disk has room again: writes succeed",
    );
  }
}
