import { type ExecutionArgs, GraphQLError, getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Context } from '../schema/builder.js';
import { perOperation } from './per-operation.js';

/** Operations of one user that may wait for a place; the one after them is refused. */
export const WAITING_PER_USER = 1000;

/**
 * Places for one user's executing operations: `max` at once, the next ones wait in order of
 * arrival (at most WAITING_PER_USER), and a place that frees goes to the first of them.
 */
export class UserPlaces {
  private readonly users = new Map<string, { running: number; waiting: (() => void)[] }>();

  constructor(
    readonly max: number,
    private readonly maxWaiting = WAITING_PER_USER,
  ) {}

  /** True when the user has a place now, a promise of it when it has to wait, false when too many wait. */
  take(userId: string): true | false | Promise<void> {
    let user = this.users.get(userId);
    if (!user) {
      user = { running: 0, waiting: [] };
      this.users.set(userId, user);
    }
    if (user.running < this.max) {
      user.running++;
      return true;
    }
    if (user.waiting.length >= this.maxWaiting) return false;
    const waiting = user.waiting;
    return new Promise((resolve) => waiting.push(resolve));
  }

  /** Gives a place back: to the user's first waiting operation, if any. */
  release(userId: string): void {
    const user = this.users.get(userId);
    if (!user) return;
    const next = user.waiting.shift();
    if (next) {
      next(); // the place passes on: as many run as before
      return;
    }
    user.running--;
    if (user.running === 0) this.users.delete(userId);
  }

  /** Users holding or waiting for places (for tests). */
  get size(): number {
    return this.users.size;
  }
}

const isSubscription = perOperation(
  ({ document, operationName }) => getOperationAST(document, operationName)?.operation === 'subscription',
);

/**
 * Per-user places for executing queries and mutations (MAX_OPERATIONS_IN_FLIGHT_PER_USER), on every
 * transport. Every limit before it is per operation; without it one user's allowed reads, a hundred
 * at once, held all ten connections of the PostgreSQL pool: other users' requests waited 4–9 s or
 * got 503 (their wait for a connection timed out), the task engine could not claim, and /readiness
 * answered 503 (fairness review, 10k apps on PostgreSQL). An operation over the limit waits for a
 * place of its user's (so a page's parallel queries are answered, later) and only past
 * WAITING_PER_USER waiting is refused: `LIMIT_EXCEEDED`, HTTP 429 with `Retry-After`. A thousand:
 * a script firing hundreds of requests at once as one user is slowed, not refused.
 *
 * Placed after every plugin that may answer without executing (the snapshot result cache): those
 * take no place. The place is held by wrapping the execute function (the last one set: the
 * compiled one comes earlier), so it is given back however the execution ends, an exception
 * included. Subscriptions are not counted: their executions are bounded per user by
 * MAX_DISTINCT_SUBSCRIPTIONS_PER_USER.
 */
export function useOperationsInFlightLimit(max: number): Plugin {
  const places = new UserPlaces(max);
  return {
    onExecute({ args, executeFn, setExecuteFn, setResultAndStopExecution }) {
      if (isSubscription(args)) return;
      const { viewer } = args.contextValue as unknown as Pick<Context, 'viewer'>;
      const release = () => places.release(viewer.userId);
      const holding = (execArgs: ExecutionArgs) => {
        try {
          const result = executeFn(execArgs);
          if (typeof (result as PromiseLike<unknown>)?.then !== 'function') {
            release();
            return result;
          }
          return Promise.resolve(result).finally(release);
        } catch (error) {
          release();
          throw error;
        }
      };
      const taken = places.take(viewer.userId);
      if (taken === false) {
        setResultAndStopExecution({ errors: [tooManyWaiting(max)] });
        return;
      }
      setExecuteFn(holding as typeof executeFn);
      if (taken !== true) return taken;
    },
  };
}

function tooManyWaiting(max: number): GraphQLError {
  const message = `Too many operations at once: ${max} run and ${WAITING_PER_USER} wait for this user (MAX_OPERATIONS_IN_FLIGHT_PER_USER); retry shortly.`;
  return new GraphQLError(message, {
    extensions: { code: 'LIMIT_EXCEEDED', http: { status: 429, headers: { 'Retry-After': '1' } } },
  });
}
