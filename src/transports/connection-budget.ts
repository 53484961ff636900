import { GraphQLError } from 'graphql';

/**
 * Open WebSocket connections and SSE streams, in all and per user, against their limits
 * (MAX_CONNECTIONS, MAX_CONNECTIONS_PER_USER). A place in all is taken before anything is read
 * from a connection, a user's place once it has authenticated; both are given back when it closes.
 */
export class ConnectionBudget {
  private open = 0;
  private readonly perUser = new Map<string, number>();

  constructor(private readonly limits: { total: number; perUser: number }) {}

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
}

/** The error of a client over one of the limits, with the code clients match on. */
export function limitExceeded(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'LIMIT_EXCEEDED' } });
}
