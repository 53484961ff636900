import { type ExecutionArgs, GraphQLError, getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Context } from '../schema/builder.js';
import { CLIENT_GONE } from './graphql-errors.js';
import { perOperation } from './per-operation.js';

/**
 * Operations of one user that may wait for a place; the one after them is refused. A page's
 * parallel queries are a dozen, but a service reading 200 tasks at once (Promise.all) is a client
 * too: at 32, such a burst got 168 refusals it had no reason to expect (test/cluster.test.ts).
 * What a waiting operation holds, its request, is bounded in bytes (MAX_WAITING_BYTES): at 1,000
 * and no byte bound, one user's burst of 0.9 MB bodies ended a 512 MiB heap.
 */
export const WAITING_PER_USER = 256;
/** The longest an operation waits for a place before it is refused (its client may retry). */
export const MAX_WAIT_MS = 30_000;

/** What became of an operation that waited for a place. */
export type Turn = 'given' | 'late' | 'gone';

/** Why an operation may not wait: its user's queue is full, or the instance's waiting bytes are. */
export type Full = 'user' | 'instance';

/**
 * Places for one user's executing operations: `max` at once, the next ones wait in order of
 * arrival (at most WAITING_PER_USER, each at most MAX_WAIT_MS), and a place that frees goes to
 * the first of them whose client is still there (`gone`, asked of what each waits with): one whose
 * client left is passed over and told so ('gone'), and never runs. Asked then, not watched: a
 * listener per waiting operation on its socket would cost each a closure and a registration for
 * what the hand-over learns with one property read; the one left behind keeps its place in the
 * queue (one of WAITING_PER_USER, its own user's) until its turn or MAX_WAIT_MS.
 *
 * What waits is also bounded in bytes, over every user (`maxWaitingBytes`, MAX_WAITING_BYTES): each
 * waiting operation counts the request it came in (its HTTP body, its WebSocket message), which
 * it holds, parsed, until it runs; per user alone, many users' queues could still fill the heap.
 */
export class UserPlaces<Waiter = unknown> {
  private readonly users = new Map<string, { running: number; waiting: (() => boolean)[] }>();
  /** Operations waiting now, every user's (market_operations_waiting). */
  waitingCount = 0;
  /** The bytes of their requests. */
  waitingBytes = 0;

  constructor(
    readonly max: number,
    private readonly gone: (waiter: Waiter) => boolean = () => false,
    private readonly maxWaiting = WAITING_PER_USER,
    private readonly maxWaitMs = MAX_WAIT_MS,
    private readonly maxWaitingBytes = Number.POSITIVE_INFINITY,
  ) {}

  /**
   * True when the user has a place now; else a promise of what became of its wait (given a place,
   * late after maxWaitMs, or its client gone when the place came); at once, what is full when too
   * many of its user's wait already, or too many bytes of every user's (`bytes`: its request's).
   */
  take(userId: string, waiter?: Waiter, bytes = 0): true | Full | Promise<Turn> {
    let user = this.users.get(userId);
    if (!user) {
      user = { running: 0, waiting: [] };
      this.users.set(userId, user);
    }
    if (user.running < this.max) {
      user.running++;
      return true;
    }
    const { waiting } = user;
    if (waiting.length >= this.maxWaiting) return 'user';
    if (this.waitingBytes + bytes > this.maxWaitingBytes) return 'instance';
    this.waitingCount++;
    this.waitingBytes += bytes;
    return new Promise((resolve) => {
      /** Takes the place that came, or says its client is gone (false: the place goes on). */
      const give = (): boolean => {
        clearTimeout(timer);
        this.waitingCount--;
        this.waitingBytes -= bytes;
        const taken = waiter === undefined || !this.gone(waiter);
        resolve(taken ? 'given' : 'gone');
        return taken;
      };
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(give), 1);
        this.waitingCount--;
        this.waitingBytes -= bytes;
        resolve('late');
      }, this.maxWaitMs);
      timer.unref();
      waiting.push(give);
    });
  }

  /** Gives a place back: to the user's first waiting operation whose client is there, if any. */
  release(userId: string): void {
    const user = this.users.get(userId);
    if (!user) return;
    for (let next = user.waiting.shift(); next; next = user.waiting.shift()) {
      if (next()) return; // the place passes on: as many run as before
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
 * place of its user's (so a page's parallel queries are answered, later); past WAITING_PER_USER
 * waiting or the instance's MAX_WAITING_BYTES, or after MAX_WAIT_MS, it is refused:
 * `LIMIT_EXCEEDED`, HTTP 429 with `Retry-After`.
 * `places` are made with clientGone: an operation whose client left while it waited is passed
 * over when its place comes and never runs (a mutation that no one waits for any more changed
 * things all the same); one that finds a place at once asks nothing and allocates nothing more.
 *
 * The place is taken and given back by the execute function itself, which this wraps (the last
 * one set: the compiled one comes earlier): so only an execution that starts takes one, and it
 * comes back however that ends, an exception included; an operation answered without executing
 * (the snapshot result cache, before this plugin) takes none. The onExecute hook stays
 * synchronous, as the metrics' counting plugins around it expect (app/metrics.ts); the
 * operation's measured duration includes its wait. Subscriptions are not counted: their
 * executions are bounded per user by MAX_DISTINCT_SUBSCRIPTIONS_PER_USER.
 */
export function useOperationsInFlightLimit(places: UserPlaces): Plugin {
  // One wrapper per execute function (graphql-jit's compiled one, graphql-js's), made once: a
  // closure per operation, named as tsx's keepNames names it (`__name`, a defineProperty), took
  // ~8 % of the lean path's CPU in a profile of `{ viewer }` in-process, more than the path itself.
  const wrapped = new WeakMap<ExecuteFn, ExecuteFn>();
  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      if (isSubscription(args)) return;
      let limited = wrapped.get(executeFn);
      if (limited === undefined) {
        limited = limitedExecute(places, executeFn);
        wrapped.set(executeFn, limited);
      }
      setExecuteFn(limited);
    },
  };
}

type ExecuteFn = (args: ExecutionArgs) => unknown;

/** `executeFn` run in a place of its user's (the viewer of its context), given back however it ends. */
function limitedExecute(places: UserPlaces, executeFn: ExecuteFn): ExecuteFn {
  function holding(execArgs: ExecutionArgs, userId: string): unknown {
    let result: unknown;
    try {
      result = executeFn(execArgs);
    } catch (error) {
      places.release(userId);
      throw error;
    }
    if (typeof (result as PromiseLike<unknown>)?.then !== 'function') {
      places.release(userId);
      return result;
    }
    return Promise.resolve(result).finally(() => places.release(userId));
  }
  return function limited(execArgs: ExecutionArgs): unknown {
    const { contextValue } = execArgs;
    const { userId } = (contextValue as Pick<Context, 'viewer'>).viewer;
    const taken = places.take(userId, contextValue, requestBytes(contextValue as RequestContext));
    if (taken === true) return holding(execArgs, userId);
    if (taken === 'user') return { errors: [refused(ofUser(`${WAITING_PER_USER} wait already`))] };
    if (taken === 'instance') return { errors: [refused(WAITING_BYTES_FULL)] };
    const late = () => refused(ofUser(`none was free within ${MAX_WAIT_MS / 1000} s`));
    return taken.then((turn) =>
      turn === 'given' ? holding(execArgs, userId) : { errors: [turn === 'late' ? late() : clientWentAway()] },
    );
  };
}

/**
 * The answer of an operation whose client went away while it waited: never run (a mutation
 * changes nothing), and read by no one, but counted (market_graphql_errors_total{code="CLIENT_GONE"}).
 */
function clientWentAway(): GraphQLError {
  return new GraphQLError('The client went away while the operation waited for a place: it was not run.', {
    extensions: { code: CLIENT_GONE },
  });
}

/** What an operation's context knows of the request it came in: an HTTP one's, a WebSocket message's. */
interface RequestContext {
  req?: { bodyBytes?: number };
  call?: { readonly bytes?: number };
}

/** The bytes an operation's request held when it was read, which it keeps while it waits (0: unknown). */
function requestBytes({ req, call }: RequestContext): number {
  return req?.bodyBytes ?? call?.bytes ?? 0;
}

const WAITING_BYTES_FULL =
  'Too many operations waiting on this instance (their requests reach MAX_WAITING_BYTES): retry shortly.';

function ofUser(why: string): string {
  return `Too many operations of this user at once on this instance (MAX_OPERATIONS_IN_FLIGHT_PER_USER run, the others wait for a place; ${why}): retry shortly.`;
}

function refused(message: string): GraphQLError {
  return new GraphQLError(message, {
    extensions: { code: 'LIMIT_EXCEEDED', http: { status: 429, headers: { 'Retry-After': '1' } } },
  });
}
