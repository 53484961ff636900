import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from '../platform/logger.js';

/**
 * Who does the once-per-cluster work (the periodic jobs, the chart-repo polling). In one process
 * that is always the process itself (`soleLeader`); in cluster mode, the instance holding the
 * lease (`LeaderLease`).
 */
export interface Leadership {
  /** Whether this instance leads now. Read it right before acting on it, never keep it. */
  readonly isLeader: boolean;
  /** Calls `listener` each time this instance starts or stops leading; returns its removal. */
  onChange(listener: (leading: boolean) => void): () => void;
  status(): LeadershipStatus;
  start(): Promise<void>;
  /** Stops leading (in cluster mode: releases the lease, so another instance takes over at once). */
  stop(): Promise<void>;
}

/** What the `cluster` component shows. */
export interface LeadershipStatus {
  leader: boolean;
  /** The instance that leads, as last read (null: none, or Redis unreachable). */
  holder: string | null;
  /** When this instance began to lead; null while it does not. */
  since: Date | null;
  /** LEADER_LEASE_MS; null in one process. */
  leaseMs: number | null;
  lastError: string | null;
}

/** One process: it leads, always. */
export function soleLeader(): Leadership {
  const since = new Date();
  return {
    isLeader: true,
    onChange: () => () => {},
    status: () => ({ leader: true, holder: null, since, leaseMs: null, lastError: null }),
    start: async () => {},
    stop: async () => {},
  };
}

export interface LeaderLeaseOptions {
  url: string;
  /** REDIS_PREFIX: the lease is the key `<prefix>leader`. */
  prefix: string;
  /** INSTANCE_NAME: stored with the lease, so every instance can tell who leads. */
  instance: string;
  /** LEADER_LEASE_MS: the key's time to live; renewed every third of it. */
  leaseMs: number;
  logger: Logger;
}

/**
 * Claims or renews the lease: KEYS = the lease; ARGV = this holder, the time to live. Returns
 * `{ 1, holder }` when this holder has it (now or still), else `{ 0, holder }`. A holder whose
 * renewal failed (and who stopped leading) gets back its own lease if it is still there, rather
 * than leaving the cluster leaderless until the key expires, as a plain `SET NX PX` would.
 */
const CLAIM_SCRIPT = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, holder}
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, ARGV[1]}
end
return {0, holder}
`;

/** Deletes the lease if this holder has it: KEYS = the lease; ARGV = this holder. */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

interface LeaseCommands {
  claimLease(key: string, holder: string, ttlMs: number): Promise<[number, string]>;
  releaseLease(key: string, holder: string): Promise<number>;
}

/**
 * The cluster's leader: the instance holding the Redis key `<prefix>leader`, which it renews
 * every third of LEADER_LEASE_MS; every other instance tries to take it as often.
 *
 * Never two leaders at once (beyond clock drift): a leader counts its lease from the moment it
 * *sent* the renewal (Redis set the expiry later than that), and stops leading as soon as a
 * renewal fails, or when a sixth of the lease is all that is left without one having succeeded
 * (`isLeader` checks the clock itself, so an event loop that stalled past the lease cannot act on
 * a stale answer). The others can only take the key once it has expired.
 *
 * Failover: a leader killed just after renewing holds the key for LEADER_LEASE_MS more; another
 * instance takes it at its next attempt, at most a third of the lease later. A graceful stop
 * deletes the key (if still its own), so the next attempt of another instance wins.
 */
export class LeaderLease implements Leadership {
  private readonly key: string;
  /** This process in the lease: the instance name, and a token in case two share the name. */
  private readonly holder: string;
  private readonly renewMs: number;
  /** Leadership ends this long before the lease would, unrenewed. */
  private readonly marginMs: number;
  private readonly redis: Redis & LeaseCommands;
  private readonly listeners = new Set<(leading: boolean) => void>();
  private leading = false;
  /** performance.now() until which the lease is certainly this instance's. */
  private validUntil = 0;
  private since: Date | null = null;
  private lastHolder: string | null = null;
  private lastError: string | null = null;
  /**
   * Whether the last claim failed: its own flag, not `lastError`, which the connection's 'error'
   * events set first when the connection drops, so the failure's one line was never written.
   */
  private claimsFailing = false;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private expiry: NodeJS.Timeout | undefined;
  private attempt: Promise<void> | null = null;

  constructor(private readonly options: LeaderLeaseOptions) {
    this.key = `${options.prefix}leader`;
    this.holder = `${options.instance} ${randomUUID()}`;
    this.renewMs = Math.floor(options.leaseMs / 3);
    this.marginMs = Math.floor(options.leaseMs / 6);
    this.redis = new Redis(options.url, {
      connectionName: 'market-leader-lease',
      lazyConnect: true,
      // A command fails at once while disconnected, and within a renewal interval when Redis does
      // not answer: either way the leader learns in time that it could not renew.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: this.renewMs,
      connectTimeout: Math.max(this.renewMs, 1000),
      retryStrategy: (attempt: number) => Math.min(100 * 2 ** attempt, this.renewMs),
    }) as Redis & LeaseCommands;
    this.redis.defineCommand('claimLease', { numberOfKeys: 1, lua: CLAIM_SCRIPT });
    this.redis.defineCommand('releaseLease', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
    this.redis.on('error', (error: Error) => {
      this.lastError = error.message;
    });
  }

  get isLeader(): boolean {
    return this.leading && performance.now() < this.validUntil;
  }

  onChange(listener: (leading: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): LeadershipStatus {
    return {
      leader: this.isLeader,
      holder: this.lastHolder,
      since: this.isLeader ? this.since : null,
      leaseMs: this.options.leaseMs,
      lastError: this.lastError,
    };
  }

  /** Connects (fails when Redis cannot be reached) and makes a first claim, then one every third of the lease. */
  async start(): Promise<void> {
    await this.redis.connect();
    this.running = true;
    await this.claim();
    this.schedule();
  }

  async stop(): Promise<void> {
    if (this.redis.status === 'wait') return; // never started
    this.running = false;
    clearTimeout(this.timer);
    await this.attempt;
    this.stepDown('stopping');
    try {
      await this.redis.releaseLease(this.key, this.holder);
    } catch (error) {
      this.options.logger.warn({ err: error }, 'could not release the leader lease; it expires by itself');
    }
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.attempt = this.claim().finally(() => {
        this.attempt = null;
        this.schedule();
      });
    }, this.renewMs);
    this.timer.unref();
  }

  private async claim(): Promise<void> {
    const sentAt = performance.now();
    const wasFailing = this.claimsFailing;
    try {
      const [won, holder] = await this.redis.claimLease(this.key, this.holder, this.options.leaseMs);
      this.lastError = null;
      this.claimsFailing = false;
      this.lastHolder = instanceOf(holder);
      if (wasFailing) this.options.logger.info({ instance: this.options.instance }, 'leader lease: claims work again');
      if (won === 1) this.renewed(sentAt);
      else this.stepDown(`${this.lastHolder} leads`);
    } catch (error) {
      this.lastError = error instanceof Error ? error.message : String(error);
      this.claimsFailing = true;
      this.lastHolder = null;
      if (!wasFailing) {
        this.options.logger.warn({ instance: this.options.instance, err: error }, 'leader lease: claim failed');
      }
      this.stepDown(`lease not renewed: ${this.lastError}`);
      // A command that timed out on an open connection may have been lost on the way (a network
      // that dropped it): Redis never answers it, and ioredis would match every later answer to
      // the command before it for as long as the connection lasts. A new connection starts in
      // step, as the change log's does (redis-change-log.ts). Seen: after 15 s of dropped packets
      // an instance held the lease in Redis without knowing it, and no instance led.
      if (/timed out/i.test(this.lastError) && this.redis.status === 'ready') this.redis.disconnect(true);
    }
  }

  private renewed(sentAt: number): void {
    const validUntil = sentAt + this.options.leaseMs - this.marginMs;
    const left = validUntil - performance.now();
    if (left <= 0) {
      this.stepDown('the renewal came back too late');
      return;
    }
    this.validUntil = validUntil;
    clearTimeout(this.expiry);
    this.expiry = setTimeout(() => this.stepDown('lease about to expire unrenewed'), left);
    this.expiry.unref();
    if (this.leading) return;
    this.leading = true;
    this.since = new Date();
    this.options.logger.info({ instance: this.options.instance, leaseMs: this.options.leaseMs }, 'leading the cluster');
    this.notify(true);
  }

  private stepDown(reason: string): void {
    clearTimeout(this.expiry);
    this.validUntil = 0;
    if (!this.leading) return;
    this.leading = false;
    this.since = null;
    const level = reason === 'stopping' ? 'info' : 'warn';
    this.options.logger[level]({ instance: this.options.instance, reason }, 'no longer leading the cluster');
    this.notify(false);
  }

  private notify(leading: boolean): void {
    for (const listener of this.listeners) {
      try {
        listener(leading);
      } catch (error) {
        this.options.logger.error({ err: error }, 'a leadership listener failed');
      }
    }
  }
}

/** The instance name of a holder (`<instance> <token>`). */
function instanceOf(holder: string): string {
  const space = holder.indexOf(' ');
  return space < 0 ? holder : holder.slice(0, space);
}
