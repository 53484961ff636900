import type { Logger } from '../platform/logger.js';
import type { Announcement } from './change-feed.js';

/**
 * The cluster change log's (redis-change-log.ts) options, what it hands the instance, the figures
 * it reports, and its bounds.
 */

/** What the log hands the instance, in the stream's order. */
export interface LogHandlers {
  /** A change another instance announced. */
  announcement(announcement: Announcement): void;
  /** A runtime change from any instance (`own`: this one), with its range of sequences. */
  runtime(change: unknown, first: number, last: number, own: boolean): void;
  /** Entries may have been missed: re-read everything. */
  resync(reason: string): void;
}
export interface RedisChangeLogOptions {
  url: string;
  /** REDIS_PREFIX: the stream is `<prefix>changes`, its sequence counter `<prefix>sequence`. */
  prefix: string;
  /** CHANGE_LOG_RETENTION: entries kept in the stream. */
  retention: number;
  /** RUNTIME_EVENT_BUFFER: runtime events kept in `<prefix>events` for instances that start later. */
  eventRetention: number;
  logger: Logger;
  onAppend?: (seconds: number) => void; // metrics: the Redis round trip of each append pipeline
  /** Told at each failed append that changes are owed to the others, and when none are any more. */
  owing?: (owing: boolean) => void;
}

/** The figures the `pubsub` component shows. */
export interface ChangeLogStatus {
  connected: boolean;
  appended: number;
  received: number;
  /** Entries waiting for Redis to come back. */
  waiting: number;
  resyncs: number;
  lastError: string | null;
}

/** Entries read per XREAD. */
export const READ_COUNT = 1000;
/** Entries held while Redis is away; beyond this the oldest are dropped and everyone resyncs. */
export const MAX_WAITING = 50_000;
/**
 * Entries per append pipeline: a backlog (after an outage) goes out in parts, each taken off the
 * queue once written, rather than as one pipeline whose tail could time out and be resent whole.
 */
export const APPEND_BATCH = 1000;
