import { GraphQLError, getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Context } from '../schema/builder.js';

/**
 * Token buckets, one per key: each holds up to `burst` tokens and gains `perSecond` a second.
 * In memory, so the limit is per instance (N instances allow N times the rate). A bucket that
 * has refilled is the same as no bucket: such buckets are dropped, at most once per refill
 * period, so the map only holds keys active within the last two periods.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  /** How long an empty bucket takes to fill. */
  private readonly refillMs: number;
  private sweptAt: number;

  constructor(
    readonly perSecond: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.refillMs = (burst / perSecond) * 1000;
    this.sweptAt = now();
  }

  /** Takes a token for `key`: 0 when there was one, else the milliseconds until there is. */
  take(key: string): number {
    const now = this.now();
    if (now - this.sweptAt >= this.refillMs) this.sweep(now);
    const bucket = this.buckets.get(key);
    const tokens = bucket ? this.tokensAt(bucket, now) : this.burst;
    if (tokens < 1) {
      if (bucket) Object.assign(bucket, { tokens, at: now });
      return Math.ceil(((1 - tokens) / this.perSecond) * 1000);
    }
    if (bucket) Object.assign(bucket, { tokens: tokens - 1, at: now });
    else this.buckets.set(key, { tokens: tokens - 1, at: now });
    return 0;
  }

  /** Keys with a bucket that is not full (for tests and stats). */
  get size(): number {
    return this.buckets.size;
  }

  private tokensAt(bucket: { tokens: number; at: number }, now: number): number {
    return Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
  }

  private sweep(now: number): void {
    this.sweptAt = now;
    for (const [key, bucket] of this.buckets) {
      if (this.tokensAt(bucket, now) >= this.burst) this.buckets.delete(key);
    }
  }
}

/**
 * Per-user mutation rate limit (MUTATION_RATE_PER_S, MUTATION_BURST): each mutation operation
 * takes a token from its user's bucket; with none left it does not run and the result is one
 * `RATE_LIMITED` error with `extensions.retryAfterMs`, and on HTTP status 429 with
 * `Retry-After` (seconds). It hooks execution in Yoga's envelop pipeline, so it counts mutations
 * over HTTP, graphql-ws and SSE alike, after validation (an invalid mutation costs nothing).
 * Queries and subscriptions are not limited.
 */
export function useMutationRateLimit(limit: { perSecond: number; burst: number }): Plugin {
  const buckets = new TokenBuckets(limit.perSecond, limit.burst);
  return {
    onExecute({ args, setResultAndStopExecution }) {
      if (getOperationAST(args.document, args.operationName)?.operation !== 'mutation') return;
      // Execution runs with the context Yoga built (src/app/graphql.ts), which always has the viewer.
      const { viewer } = args.contextValue as unknown as Pick<Context, 'viewer'>;
      const waitMs = buckets.take(viewer.userId);
      if (!waitMs) return;
      const seconds = Math.ceil(waitMs / 1000);
      setResultAndStopExecution({
        errors: [
          new GraphQLError(
            `Too many mutations (at most ${limit.burst} at once, then ${limit.perSecond} per second): retry in ${(waitMs / 1000).toFixed(1)} s.`,
            {
              extensions: {
                code: 'RATE_LIMITED',
                retryAfterMs: waitMs,
                http: { status: 429, headers: { 'Retry-After': String(seconds) } },
              },
            },
          ),
        ],
      });
    },
  };
}
