import { deserialize, serialize } from 'node:v8';
import type { Redis } from 'ioredis';

/**
 * The runtime events the cluster's instances emitted, kept in a Redis Stream (`<prefix>events`)
 * under their sequences, for instances that start later: their buffer begins with the events kept
 * up to their start, so a client can resume there with a `since` from before (see
 * StateStore.replay).
 *
 * Every instance records every event it emits. Redis refuses all but the first of an id (and any
 * behind the newest), so the stream holds each event once, whichever instance was first. Best
 * effort: an event no instance could record (Redis away) cannot be replayed, and a client asking
 * from before it gets RESYNC from an instance that started later.
 */
export class RedisEventHistory {
  private waiting: { sequence: number; value: string }[] = [];
  private writing: Promise<void> | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    /** RUNTIME_EVENT_BUFFER: the stream is trimmed (approximately) to this many events. */
    private readonly retention: number,
  ) {}

  /** Records an event; all of one event-loop turn go out in one pipeline. */
  record(event: { sequence: number }): void {
    this.waiting.push({ sequence: event.sequence, value: serialize(event).toString('base64') });
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
    const entries = (await this.redis.xrevrange(this.key, `0-${sequence}`, '-', 'COUNT', count)) as [
      string,
      string[],
    ][];
    return entries.reverse().map(([, fields]) => deserialize(Buffer.from(fields[1] as string, 'base64')) as Event);
  }

  private async write(): Promise<void> {
    const batch = this.waiting;
    this.waiting = [];
    const pipeline = this.redis.pipeline();
    for (const { sequence, value } of batch) {
      pipeline.xadd(this.key, 'MAXLEN', '~', this.retention, `0-${sequence}`, 'event', value);
    }
    // Refusals of ids already recorded come back as per-command errors, which is the point.
    await pipeline.exec().catch(() => {});
  }
}
