import { type FragmentDefinitionNode, GraphQLError, getOperationAST, Kind, type SelectionSetNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Context } from '../schema/builder.js';
import { perOperation } from './per-operation.js';

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

  /**
   * Takes `count` tokens for `key`, all or none: 0 when there were enough, else the milliseconds
   * until there are (a bucket holds at most `burst`: the caller refuses a larger count first).
   */
  take(key: string, count = 1): number {
    const now = this.now();
    if (now - this.sweptAt >= this.refillMs) this.sweep(now);
    const bucket = this.buckets.get(key);
    const tokens = bucket ? this.tokensAt(bucket, now) : this.burst;
    if (tokens < count) {
      if (bucket) Object.assign(bucket, { tokens, at: now });
      return Math.ceil(((count - tokens) / this.perSecond) * 1000);
    }
    if (bucket) Object.assign(bucket, { tokens: tokens - count, at: now });
    else this.buckets.set(key, { tokens: tokens - count, at: now });
    return 0;
  }

  /** Gives back `count` tokens taken for `key` (never beyond `burst`). */
  giveBack(key: string, count: number): void {
    const bucket = this.buckets.get(key);
    if (bucket) bucket.tokens = Math.min(this.burst, bucket.tokens + count);
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
 * The mutations an operation runs: its root fields, each alias one, those of its fragments
 * included; 0 for a query or a subscription. A field that `@skip`/`@include` may leave out counts
 * too (its variables are not looked at): the count errs on the side of the limit.
 */
const mutationsOf = perOperation(({ document, operationName }) => {
  const operation = getOperationAST(document, operationName);
  if (operation?.operation !== 'mutation') return 0;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const count = (set: SelectionSetNode, seen: Set<string>): number =>
    set.selections.reduce((sum, selection) => {
      if (selection.kind === Kind.FIELD) return sum + 1;
      if (selection.kind === Kind.INLINE_FRAGMENT) return sum + count(selection.selectionSet, seen);
      const name = selection.name.value;
      const fragment = fragments.get(name);
      // Validation refuses unknown and cyclic fragments; `seen` only keeps this walk finite.
      return fragment && !seen.has(name) ? sum + count(fragment.selectionSet, new Set([...seen, name])) : sum;
    }, 0);
  return count(operation.selectionSet, new Set());
});

function rateLimited(message: string, waitMs: number): GraphQLError {
  return new GraphQLError(message, {
    extensions: {
      code: 'RATE_LIMITED',
      retryAfterMs: waitMs,
      http: { status: 429, headers: { 'Retry-After': String(Math.ceil(waitMs / 1000)) } },
    },
  });
}

/**
 * Per-user mutation rate limit (MUTATION_RATE_PER_S, MUTATION_BURST): an operation takes a token
 * per mutation it runs (its root fields: fifteen aliased `cancelTask`s are fifteen) from its
 * user's bucket, all or none; without enough it does not run and the result is one `RATE_LIMITED`
 * error with `extensions.retryAfterMs`, and on HTTP status 429 with `Retry-After` (seconds). An
 * operation of more mutations than MUTATION_BURST never fits: `LIMIT_EXCEEDED`, HTTP 400. It
 * hooks execution in Yoga's envelop pipeline, so it counts mutations over HTTP, graphql-ws and SSE
 * alike, after validation, the input bounds and the query cost; an operation whose variables then
 * fail coercion (a request error: no `data`) gets its tokens back. An invalid mutation costs
 * nothing: five refused for an oversized variable used to spend a burst of 5, and the valid one
 * after them got 429. Queries and subscriptions are not limited in rate (in number at once:
 * operations-in-flight.ts, MAX_DISTINCT_SUBSCRIPTIONS_PER_USER).
 */
export function useMutationRateLimit(limit: { perSecond: number; burst: number }): Plugin {
  const buckets = new TokenBuckets(limit.perSecond, limit.burst);
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const mutations = mutationsOf(args);
      if (mutations === 0) return;
      if (mutations > limit.burst) {
        // Never to run, however long the client waits: not a 429, which clients retry.
        const message = `Too many mutations in one operation: ${mutations}, at most ${limit.burst} (MUTATION_BURST).`;
        const extensions = { code: 'LIMIT_EXCEEDED', http: { status: 400 } };
        setResultAndStopExecution({ errors: [new GraphQLError(message, { extensions })] });
        return;
      }
      // Execution runs with the context Yoga built (src/app/graphql.ts), which always has the viewer.
      const { viewer } = args.contextValue as unknown as Pick<Context, 'viewer'>;
      const waitMs = buckets.take(viewer.userId, mutations);
      if (!waitMs) {
        return {
          onExecuteDone({ result }) {
            if (!(Symbol.asyncIterator in result) && !('data' in result)) buckets.giveBack(viewer.userId, mutations);
          },
        };
      }
      const message = `Too many mutations (at most ${limit.burst} at once, then ${limit.perSecond} per second, on this instance): retry in ${retryIn(waitMs)} s.`;
      setResultAndStopExecution({ errors: [rateLimited(message, waitMs)] });
    },
  };
}

/** Seconds to wait, rounded up to a tenth: 45 ms reads "0.1", never "0.0". */
function retryIn(waitMs: number): string {
  return (Math.ceil(waitMs / 100) / 10).toFixed(1);
}
