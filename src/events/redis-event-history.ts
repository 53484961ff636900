import { deserialize, serialize } from 'node:v8';
import type { Redis } from 'ioredis';
import type { LogHealth } from './redis-log-health.js';

/**
 * The runtime events the cluster's instances emitted, kept in Redis (`<prefix>events`) by their
 * sequences, for instances that start later: their buffer begins with the events kept up to their
 * start, so a client can resume there with a `since` from before (see StateStore.replay).
 *
 * The instance whose change caused an event records it (every instance emits the same event;
 * recording it N times cost two thirds of all Redis commands in `npm run bench -- --only
 * cluster`). Instances record in their own time, so a later sequence may arrive first: a sorted
 * set by sequence takes them in any order (a stream would refuse an id behind its newest). Best
 * effort: an event not recorded (Redis away or refusing, or its instance died first) cannot be
 * replayed, and a client asking from before it gets RESYNC from an instance that started later.
 * A failed write is told to `health` (one log line per streak of failures), not dropped unseen.
 */
export class RedisEventHistory {
  private waiting: (number | Buffer)[] = [];
  private writing: Promise<void> | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    /** RUNTIME_EVENT_BUFFER: the stream is trimmed (approximately) to this many events. */
    private readonly retention: number,
    private readonly health: LogHealth,
  ) {}

  /** Records an event; all of one event-loop turn go out in one pipeline. */
  record(event: { sequence: number }): void {
    this.waiting.push(event.sequence, serialize(event));
    this.writing ??= new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.write())
      .finally(() => {
        this.writing = null;
      });
  }

  /** Resolves once everything recorded so far has been sent (or has failed). */
  async written(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** The events kept, oldest first, up to `sequence`: at most `count` of the latest. */
  async upTo<Event>(sequence: number, count: number): Promise<Event[]> {
    const values = await this.redis.zrevrangebyscoreBuffer(this.key, sequence, '-inf', 'LIMIT', 0, count);
    return values.reverse().map((value) => deserialize(value) as Event);
  }

  private async write(): Promise<void> {
    const members = this.waiting;
    this.waiting = [];
    // One round trip: the events (score, member, …), then all but the latest `retention` dropped.
    try {
      const results = await this.redis
        .pipeline()
        .zadd(this.key, ...members)
        .zremrangebyrank(this.key, 0, -this.retention - 1)
        .exec();
      const failed = results?.find(([error]) => error)?.[0];
      if (failed) throw failed;
      this.health.succeeded('history');
    } catch (error) {
      this.health.failed('history', (error as Error).message);
    }
  }
}
