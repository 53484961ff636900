import type { Logger } from '../platform/logger.js';
import { hostOf } from '../platform/redact.js';
import { UNREACHABLE } from './redis-log-connections.js';
import { MAX_WAITING } from './redis-log-types.js';

/** What the change log asks of Redis: its appends, its reads, and the history of runtime events it records. */
export type LogCommand = 'append' | 'read' | 'history';

/**
 * Whether the cluster log's commands go through, each kind on its own, with one log line when a
 * kind starts failing and one when it works again.
 *
 * A Redis that answers with an error fails the log as surely as one that cannot be reached: under
 * `maxmemory` with `noeviction` (OOM), as a read-only replica behind the URL (READONLY), as a
 * Redis Cluster node (CROSSSLOT), mutations went on while no change reached any instance, and
 * nothing said so (readiness, `market_redis_connected` and the log all showed a healthy cluster).
 * So a refusal counts as a failure too, and its line quotes Redis's error, which names the fix.
 */
export class LogHealth {
  /** How each kind fails now (false: it does not). */
  private readonly failing: Record<LogCommand, false | 'unreachable' | 'refused'> = {
    append: false,
    read: false,
    history: false,
  };

  constructor(
    private readonly url: string,
    private readonly logger: Logger,
  ) {}

  /**
   * Why the log does not work, for readiness (null: it does). The appends and the reads only: the
   * history is best effort (logged, not judged).
   */
  get problem(): string | null {
    const failing = [this.failing.append, this.failing.read];
    if (failing.includes('unreachable')) return 'Redis unreachable';
    return failing.includes('refused') ? "Redis refuses the change log's commands (see the log)" : null;
  }

  /** A command of this kind failed: a line when the kind starts failing, or fails another way (now refused, not unreachable). */
  failed(command: LogCommand, error: string): void {
    const unreachable = UNREACHABLE.test(error);
    const how = unreachable ? 'unreachable' : 'refused';
    if (this.failing[command] === how) return;
    this.failing[command] = how;
    const what = {
      append: `appended (up to ${MAX_WAITING} wait)`,
      read: 'read',
      history: 'kept as history for the instances that start later',
    }[command];
    const host = hostOf(this.url);
    const message = unreachable
      ? `Redis unreachable (${host}): cluster changes cannot be ${what} until it is back`
      : `Redis refuses the cluster log's commands (${host}): cluster changes cannot be ${what} until it takes them`;
    this.logger.warn({ command, error }, message);
  }

  /** A command of this kind went through: after failures, one line says so. */
  succeeded(command: LogCommand): void {
    const how = this.failing[command];
    if (!how) return;
    this.failing[command] = false;
    const what = { append: 'appended', read: 'read', history: 'kept' }[command];
    const again = how === 'unreachable' ? 'Redis reachable again' : "Redis takes the cluster log's commands again";
    this.logger.info({ command }, `${again}: cluster changes are ${what} again`);
  }
}
