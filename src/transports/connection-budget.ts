import { GraphQLError } from 'graphql';

/**
 * Open WebSocket connections and SSE streams, in all and per user, against their limits
 * (MAX_CONNECTIONS, MAX_CONNECTIONS_PER_USER). A place in all is taken before anything is read
 * from a connection, a user's place once it has authenticated; both are given back when it closes.
 */
export class ConnectionBudget {
  private open = 0;
  private readonly perUser = new Map<string, number>();
  /** Each user's subscriptions by cohort key (`alone`: those never shared, each its own execution). */
  private readonly subscriptions = new Map<string, { keys: Map<string, number>; alone: number }>();

  constructor(readonly limits: { total: number; perUser: number; perUserDistinct?: number }) {}

  /** Takes a place for a new connection; false when the instance holds the maximum already. */
  tryOpen(): boolean {
    if (this.open >= this.limits.total) return false;
    this.open++;
    return true;
  }

  close(): void {
    this.open--;
  }

  /** Takes one of the user's places; false when the user holds the maximum already. */
  tryClaim(userId: string): boolean {
    const held = this.perUser.get(userId) ?? 0;
    if (held >= this.limits.perUser) return false;
    this.perUser.set(userId, held + 1);
    return true;
  }

  release(userId: string): void {
    const held = (this.perUser.get(userId) ?? 1) - 1;
    if (held > 0) this.perUser.set(userId, held);
    else this.perUser.delete(userId);
  }

  /**
   * Takes a place for one of the user's subscriptions (MAX_DISTINCT_SUBSCRIPTIONS_PER_USER), on
   * whichever connection or stream (given back with `releaseSubscription`); false when the user
   * holds the maximum of distinct ones already. Every distinct subscription is one more execution on
   * every event, for all users: 100 distinct ones of one user on one connection took the
   * instance's live events from ~400/s to ~65/s and everyone's receipt p99 from 20–36 to
   * 130–480 ms; 500 over five connections to 10–26/s. Subscriptions of the same document,
   * variables and scope (`key`) share one execution and take one place; `key` null is one never
   * shared (a replay from `since`), its own place.
   */
  takeSubscription(userId: string, key: string | null): boolean {
    const held = this.subscriptions.get(userId) ?? { keys: new Map<string, number>(), alone: 0 };
    const shares = key !== null && held.keys.has(key);
    if (!shares && held.keys.size + held.alone >= (this.limits.perUserDistinct ?? Number.POSITIVE_INFINITY)) {
      return false;
    }
    this.subscriptions.set(userId, held);
    if (key === null) held.alone++;
    else held.keys.set(key, (held.keys.get(key) ?? 0) + 1);
    return true;
  }

  /** Gives back a place `takeSubscription` gave for the same user and key. */
  releaseSubscription(userId: string, key: string | null): void {
    const held = this.subscriptions.get(userId);
    if (!held) return;
    const count = key === null ? 0 : (held.keys.get(key) ?? 0);
    if (key === null) held.alone = Math.max(0, held.alone - 1);
    else if (count > 1) held.keys.set(key, count - 1);
    else held.keys.delete(key);
    if (held.keys.size + held.alone === 0) this.subscriptions.delete(userId);
  }
}

/** The error of a client over one of the limits, with the code clients match on. */
export function limitExceeded(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'LIMIT_EXCEEDED' } });
}
