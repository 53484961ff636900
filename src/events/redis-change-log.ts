import { randomUUID } from 'node:crypto';
import { deserialize, serialize } from 'node:v8';
import type { Redis } from 'ioredis';
import { timed } from '../platform/metrics.js';
import type { Announcement } from './change-feed.js';
import { RedisEventHistory } from './redis-event-history.js';
import { logConnections, READ_BLOCK_MS, RETRY_MS, startFailure } from './redis-log-connections.js';
import { APPEND_SCRIPT, type AppendPipeline, lastOf, type Pending } from './redis-log-entry.js';
import { LogHealth } from './redis-log-health.js';
import {
  APPEND_BATCH,
  type ChangeLogStatus,
  type LogHandlers,
  MAX_WAITING,
  READ_COUNT,
  type RedisChangeLogOptions,
} from './redis-log-types.js';
import { checkRedisServer } from './redis-server-checks.js';

/**
 * The cluster's change log: every instance appends the changes it commits to one Redis Stream,
 * and every instance reads the stream, so a change committed on any instance reaches the
 * subscribers and the runtime state of all of them, in the stream's order.
 *
 * Why a stream (XADD / XREAD), not Redis pub/sub: a stream keeps the last entries
 * (CHANGE_LOG_RETENTION, trimmed with `MAXLEN ~`), so an instance that lost its connection for a
 * while reads on from the last entry it saw instead of silently missing what was published
 * meanwhile, which pub/sub would drop.
 *
 * Two kinds of entries:
 * - runtime changes (the rows an instance read back after its commits, component statuses, the
 *   chart repo), which every instance applies, its own included, in the stream's order;
 * - announcements of payments and history records (ids only, like the in-process bus), which an
 *   instance has already delivered to its own subscribers, and skips when they come back.
 *
 * Sequences: each entry reserves a range of runtime sequence numbers (as many as the events its
 * change can cause) from one counter in Redis, in the same script that appends it, and carries the
 * range's end as its stream id (`0-<last>`). The same change so has the same sequences on every
 * instance, and `runtimeEvents(since:)` can resume on any of them. The counter never falls behind
 * Redis's clock in µs (APPEND_SCRIPT), so a counter lost with Redis restarts above every sequence
 * handed out before (clients holding one get RESYNC, never a wrong position).
 *
 * When an instance may have missed entries (Redis lost them, or it was cut off for longer than
 * the retention, or its own appends had to be dropped while Redis was away), it delivers a
 * `resync` instead: the collector then re-reads the whole runtime state from the database.
 */

export class RedisChangeLog {
  /** This process in the log: its own announcements are skipped when read. */
  readonly origin = randomUUID();
  private readonly stream: string;
  private readonly counter: string;
  /** This origin's last append number in Redis (see APPEND_SCRIPT). */
  private readonly lastAppended: string;
  /** The runtime events every instance emitted, by sequence. */
  private readonly history: RedisEventHistory;
  /** Appends (and the start-up read of the stream's end). */
  private readonly writer: Redis;
  /** Blocking reads occupy their connection, hence a second one. */
  private readonly reader: Redis;
  private readonly connect: () => Promise<void>;
  /**
   * This instance's runtime changes by its own number for them, until they come back from the
   * log: applying its own entry then needs no decoding (a tenth of the origin's CPU per change in
   * `npm run bench -- --only cluster` went into encoding and decoding the log's entries).
   */
  private readonly ownChanges = new Map<number, unknown>();
  private localCount = 0;
  /** Entries numbered in the order they are appended, so that none is appended twice. */
  private appendCount = 0;
  /** This turn's announcements, appended together as one entry. */
  private announcements: Announcement[] = [];
  private pending: Pending[] = [];
  private flushing: Promise<void> | null = null;
  /** Set when entries were dropped while Redis was away: a resync entry goes out first on return. */
  private droppedEntries = false;
  private lastId = '0-0';
  private running = false;
  private reading: Promise<void> | null = null;
  /** Set when the reader's connection came back: entries may have been lost meanwhile. */
  private reconnected = false;
  private readonly counts = { appended: 0, received: 0, resyncs: 0 };
  private lastError: string | null = null;
  /**
   * Whether the last append, and the last read, failed (each until one succeeds again). A Redis
   * that stops answering (a frozen process, a network that drops packets) leaves ioredis's status
   * `ready`: only the commands' timeouts tell.
   */
  private readonly health: LogHealth;

  constructor(private readonly options: RedisChangeLogOptions) {
    this.stream = `${options.prefix}changes`;
    this.counter = `${options.prefix}sequence`;
    this.lastAppended = `${options.prefix}appended:${this.origin}`;
    ({ writer: this.writer, reader: this.reader, connect: this.connect } = logConnections(options.url));
    this.writer.defineCommand('appendChange', { numberOfKeys: 3, lua: APPEND_SCRIPT });
    this.health = new LogHealth(options.url, options.logger);
    this.history = new RedisEventHistory(this.writer, `${options.prefix}events`, options.eventRetention, this.health);
    // Whatever the way back (a failed read, or a connection replaced between two reads), the
    // first read after a reconnection checks for a gap.
    this.reader.on('ready', () => {
      if (this.running) this.reconnected = true;
    });
    for (const client of [this.writer, this.reader]) {
      client.on('error', (error: Error) => {
        this.lastError = error.message;
      });
    }
  }

  /**
   * Connects and starts reading after the stream's current end: what was appended before belongs
   * to the state the instance loads from the database. Returns the sequence the end stands for
   * (the runtime store continues from it). Fails when Redis cannot be reached, or is a Redis
   * Cluster node (redis-server-checks.ts).
   */
  async start(handlers: LogHandlers): Promise<number> {
    let last: [string, string[]] | undefined;
    let time: (string | number)[];
    await this.connect().catch((error) => {
      throw startFailure(this.options.url, error, this.lastError);
    });
    // Before any command on a key: a Cluster of several nodes may answer it MOVED, read as "could not reach".
    await checkRedisServer(this.writer, this.options.url, this.options.logger);
    try {
      [last] = (await this.writer.xrevrange(this.stream, '+', '-', 'COUNT', 1)) as [string, string[]][];
      time = await this.writer.time();
    } catch (error) {
      throw startFailure(this.options.url, error, this.lastError);
    }
    this.lastId = last?.[0] ?? '0-0';
    this.running = true;
    this.reading = this.readLoop(handlers);
    // An empty log: start where the next entry's range will (the counter keeps up with Redis's clock, in µs).
    return last ? lastOf(this.lastId) : Number(time[0]) * 1_000_000 + Number(time[1]);
  }

  /**
   * Sends what is still waiting, then disconnects. With Redis away (a stop while cut off) it tries
   * until `deadline`; what is left then never reaches the other instances, whose stores would stay
   * behind for good: the caller records that a resync is owed (see requestResync). Returns how
   * many entries were left unsent.
   */
  async stop(deadline = Date.now()): Promise<number> {
    this.running = false;
    await Promise.all([this.flushing, this.history.written()]);
    this.takeAnnouncements();
    for (let delay = RETRY_MS.first; this.pending.length > 0 || this.droppedEntries; delay *= 2) {
      const sent = this.writer.status === 'ready' && (await this.flush().then(() => true, this.failedAppend));
      if (sent) continue;
      const wait = Math.min(delay, RETRY_MS.max, deadline - Date.now());
      if (wait <= 0) break;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const unsent = this.pending.length + (this.droppedEntries ? 1 : 0);
    const message = 'cluster changes not appended before the stop (Redis unreachable): the next start has all re-read';
    if (unsent > 0) this.options.logger.error({ unsent, error: this.lastError }, message);
    this.reader.disconnect();
    await this.reading;
    await this.writer.quit().catch(() => this.writer.disconnect());
    return unsent;
  }

  private readonly failedAppend = (error: unknown): false => {
    this.commandFailed('append', error);
    return false;
  };

  /**
   * Has every instance re-read its runtime state from the database: a resync entry goes out first
   * (at once, or once Redis is back). For changes that never reached the log (a stop while cut off).
   */
  requestResync(): void {
    this.droppedEntries = true;
    this.schedule();
  }

  /** Whether both connections are up and Redis took the last append and read (readiness). */
  get connected(): boolean {
    return this.problem === null;
  }

  /** Why not (`connected`), in a few words for /readiness: Redis unreachable, or refusing. */
  get problem(): string | null {
    if (this.writer.status !== 'ready' || this.reader.status !== 'ready') return 'Redis unreachable';
    return this.health.problem;
  }

  /**
   * An append or a read failed (Redis unreachable, or refusing: see LogHealth). A timeout means a
   * connection that still looks open but carries nothing: it is dropped and made again (ioredis
   * reconnects with its retry strategy), as a reset would have done; the reader's `ready` then
   * triggers the check for a gap.
   */
  private commandFailed(command: 'append' | 'read', error: unknown): void {
    const client = command === 'append' ? this.writer : this.reader;
    this.lastError = (error as Error | null)?.message ?? String(error);
    this.health.failed(command, this.lastError);
    if (/timed out/i.test(this.lastError) && client.status === 'ready') client.disconnect(true);
  }

  status(): ChangeLogStatus {
    return {
      connected: this.connected,
      ...this.counts,
      waiting: this.pending.length + (this.announcements.length ? 1 : 0),
      lastError: this.connected ? null : this.lastError,
    };
  }

  /** A runtime event this instance's store emitted, kept for instances that start later. */
  recordEvent(event: { sequence: number }): void {
    this.history.record(event);
  }

  /** The runtime events kept, oldest first, up to `sequence`: at most `count` of the latest. */
  eventsUpTo<Event>(sequence: number, count: number): Promise<Event[]> {
    return this.history.upTo<Event>(sequence, count);
  }

  /** An announcement of this instance; all of one event-loop turn go out as one entry. */
  append(announcement: Announcement): void {
    this.announcements.push(announcement);
    this.schedule();
  }

  /** A runtime change (any structured-cloneable value) that can cause up to `events` runtime events. */
  appendRuntime(change: unknown, events: number): void {
    this.localCount += 1;
    this.ownChanges.set(this.localCount, change);
    const value = serialize(change);
    const reserve = Math.max(1, events);
    this.enqueue({ field: 'runtime', value, reserve, local: this.localCount, appendNumber: ++this.appendCount });
  }

  private enqueue(entry: Pending): void {
    if (this.pending.length >= MAX_WAITING) {
      this.ownChanges.delete((this.pending.shift() as Pending).local);
      this.droppedEntries = true;
    }
    this.pending.push(entry);
    this.schedule();
  }

  private schedule(): void {
    this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.flushWithRetry())
      .finally(() => {
        this.flushing = null;
        const waiting = this.pending.length > 0 || this.announcements.length > 0 || this.droppedEntries;
        if (this.running && waiting) this.schedule();
      });
  }

  /** This turn's announcements, as one entry waiting to be appended. */
  private takeAnnouncements(): void {
    if (this.announcements.length === 0) return;
    const value = JSON.stringify(this.announcements);
    this.enqueue({ field: 'changes', value, reserve: 1, local: 0, appendNumber: ++this.appendCount });
    this.announcements = [];
  }

  private async flushWithRetry(): Promise<void> {
    let delay = RETRY_MS.first;
    for (;;) {
      this.takeAnnouncements();
      if (this.pending.length === 0 && !this.droppedEntries) return this.options.owing?.(false);
      try {
        await this.flush();
        this.health.succeeded('append');
        delay = RETRY_MS.first;
      } catch (error) {
        this.commandFailed('append', error);
        this.options.owing?.(true);
        if (!this.running) return;
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, RETRY_MS.max);
      }
    }
  }

  /**
   * One pipeline: a resync entry if entries were dropped, then up to APPEND_BATCH of those
   * waiting. A pipeline that fails half-way (or whose answer was lost) is sent again whole: the
   * entries Redis appended already are skipped by their append numbers (APPEND_SCRIPT).
   */
  private async flush(): Promise<void> {
    const batch = this.pending.slice(0, APPEND_BATCH);
    const resync = this.droppedEntries;
    const entries: Pending[] = resync
      ? [{ field: 'resync', value: 'entries were dropped', reserve: 1, local: 0, appendNumber: 0 }]
      : [];
    entries.push(...batch);
    const pipeline = this.writer.pipeline();
    for (const { field, value, reserve, local, appendNumber } of entries) {
      (pipeline as unknown as AppendPipeline).appendChange(
        this.stream,
        this.counter,
        this.lastAppended,
        this.options.retention,
        this.origin,
        reserve,
        field,
        value,
        local,
        appendNumber,
      );
    }
    const results = (await timed(() => pipeline.exec(), this.options.onAppend)) ?? [];
    const failed = results.find(([error]) => error)?.[0];
    if (failed) throw failed;
    if (resync) this.droppedEntries = false;
    this.pending.splice(0, batch.length);
    this.counts.appended += batch.length;
  }

  private async readLoop(handlers: LogHandlers): Promise<void> {
    let delay = RETRY_MS.first;
    while (this.running) {
      try {
        if (this.reconnected) {
          await this.checkForGap(handlers);
          this.reconnected = false;
        }
        // As buffers: a runtime change's value is binary (see appendRuntime).
        const answer = (await this.reader.xreadBuffer(
          'COUNT',
          READ_COUNT,
          'BLOCK',
          READ_BLOCK_MS,
          'STREAMS',
          this.stream,
          this.lastId,
        )) as [Buffer, [Buffer, Buffer[]][]][] | null;
        for (const [id, fields] of answer?.[0]?.[1] ?? []) {
          this.lastId = id.toString();
          this.deliver(this.lastId, fields, handlers);
        }
        this.health.succeeded('read');
        delay = RETRY_MS.first;
      } catch (error) {
        if (!this.running) return;
        this.commandFailed('read', error);
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, RETRY_MS.max);
      }
    }
  }

  private deliver(id: string, fields: Buffer[], handlers: LogHandlers): void {
    const entry = new Map<string, Buffer>();
    for (let i = 0; i + 1 < fields.length; i += 2) entry.set(String(fields[i]), fields[i + 1] as Buffer);
    const text = (field: string) => entry.get(field)?.toString();
    const runtime = entry.get('runtime');
    const own = text('origin') === this.origin;
    this.counts.received += 1;
    try {
      if (entry.has('resync')) {
        // Some instance's entries were lost: every instance re-reads, that one included.
        this.counts.resyncs += 1;
        handlers.resync(`${text('resync')} (instance ${text('origin')})`);
      } else if (runtime !== undefined) {
        const last = lastOf(id);
        const local = Number(text('local'));
        const change = own && this.ownChanges.has(local) ? this.ownChanges.get(local) : deserialize(runtime);
        if (own) this.ownChanges.delete(local);
        handlers.runtime(change, last - Number(text('count')) + 1, last, own);
      } else if (entry.has('changes') && !own) {
        for (const announcement of JSON.parse(text('changes') as string) as Announcement[])
          handlers.announcement(announcement);
      }
    } catch (error) {
      this.options.logger.error({ err: error, id }, 'could not apply an entry of the cluster log');
    }
  }

  /**
   * After a failed read: were entries after the last one seen trimmed away (or the stream lost
   * with Redis)? Then what they said is unknown, and the state is re-read instead.
   *
   * The reader reads on after the last entry it applied, even from an empty stream: the next
   * entries are appended above it (the counter follows Redis's clock, APPEND_SCRIPT). Reading from
   * the start instead (`0-0`, as it did) applied again every entry of an older copy that came back
   * (a replica syncing after a failover): 2,500 old changes reached subscribers as new ones, and the
   * runtime state no longer matched the database. What an older copy holds was applied already,
   * or is covered by the resync.
   */
  private async checkForGap(handlers: LogHandlers): Promise<void> {
    const [first] = (await this.reader.xrange(this.stream, '-', '+', 'COUNT', 1)) as [string, string[]][];
    const firstId = first?.[0];
    // The entry right after the last one seen cannot be told from a gap: a resync too many costs
    // a re-read, one too few a stale state.
    const lost = firstId === undefined ? this.lastId !== '0-0' : lastOf(firstId) > lastOf(this.lastId);
    if (!lost || this.lastId === '0-0') return;
    this.counts.resyncs += 1;
    this.options.logger.warn({ lastId: this.lastId, firstId }, 'cluster log: entries may have been missed');
    handlers.resync('this instance was cut off from the cluster log');
  }
}
