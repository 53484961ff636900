import {
  type DocumentNode,
  type ExecutionResult,
  execute,
  GraphQLError,
  type GraphQLSchema,
  getArgumentValues,
  getOperationAST,
  getVariableValues,
  Kind,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { clientResult } from './client-errors.js';

/**
 * Subscription fan-out. Subscribers of the same document, operation, variables and authorization
 * scope form a *cohort*: the cohort runs one execution, and every event's result is serialized
 * once and handed to all its members. Ten thousand dashboards watching the same thing cost one
 * execution per change, not ten thousand.
 *
 * Members receive results synchronously (`deliver`) and buffer them themselves: how much a slow
 * member may hold and what it gets when it overflows is QueuedMember's policy (member.ts),
 * so a stalled consumer never delays the cohort or its other members.
 */

/**
 * How a subscription field may be shared, declared in its `extensions.fanOut` (a function of the
 * field's arguments; fields without one are `events`):
 * - `events`: a stream of events; a member that joins late gets the events from then on.
 * - `latest`: a stream of states (each result replaces the one before); a member that joins late
 *   gets the latest result at once, and a member that falls behind only needs the latest one.
 * - `alone`: what the stream sends depends on when it starts (replay from `since`): never shared.
 */
export type FanOutMode = 'events' | 'latest' | 'alone';
export type FanOutPolicy = (args: Record<string, unknown>) => FanOutMode;

/** A subscription field's fan-out policy, as its `extensions`. */
export function fanOut(policy: FanOutPolicy): { fanOut: FanOutPolicy } {
  return { fanOut: policy };
}

/**
 * The root value a cohort executes its document against for a member that missed events because it
 * read too slowly (see `Cohort.catchUp`). Subscription fields turn it into what such a member
 * should get instead of the backlog: `runtimeEvents` a RESYNC event, others an error saying what
 * to refetch.
 */
export const MISSED_EVENTS = Object.freeze({ missedEvents: true as const });

export function isMissedEvents(root: unknown): root is typeof MISSED_EVENTS {
  return root === MISSED_EVENTS;
}

/**
 * Yoga's executor turns the execution of a subscription document into a new subscription; the
 * catch-up for MISSED_EVENTS must run the root field's resolver once instead, as graphql-js's
 * `execute` does. As a plugin, the rest of the pipeline (error masking) still applies.
 */
export const useMissedEventsExecution: Plugin = {
  onExecute({ args, setExecuteFn }) {
    if (isMissedEvents(args.rootValue)) setExecuteFn(execute);
  },
};

/**
 * One result of a cohort's execution, serialized at most once for all members. Once serialized
 * only the JSON is kept: a result waiting in slow members' queues then costs its bytes (which
 * QueuedMember counts), not its object tree, which for a snapshot of many apps is several times
 * the size of its JSON.
 */
export class Delivery {
  private result: ExecutionResult | undefined;
  private serialized: string | undefined;
  private utf8Bytes: number | undefined;
  private lastFrame: { prefix: string; bytes: Buffer } | undefined;

  constructor(result: ExecutionResult) {
    this.result = clientResult(result);
  }

  /** The result as JSON (GraphQL errors serialize through their own `toJSON`). */
  get json(): string {
    if (this.serialized === undefined) {
      this.serialized = JSON.stringify(this.result);
      this.result = undefined;
    }
    return this.serialized;
  }

  /** The JSON's length in UTF-8, as members write it: counted once, without building a frame. */
  get bytes(): number {
    this.utf8Bytes ??= Buffer.byteLength(this.json);
    return this.utf8Bytes;
  }

  /**
   * `prefix` + JSON + `suffix`, as UTF-8, kept for the next member with the same prefix: members
   * often share it (clients number their subscriptions alike), and then they share the bytes too.
   */
  framed(prefix: string, suffix: string): Buffer {
    if (this.lastFrame?.prefix !== prefix) {
      this.lastFrame = { prefix, bytes: Buffer.from(`${prefix}${this.json}${suffix}`) };
    }
    return this.lastFrame.bytes;
  }
}

export interface CohortMember {
  /** A result of the shared execution; called synchronously, so it must not block. */
  deliver(delivery: Delivery): void;
  /** The stream is over (with the errors that ended it, if any); no more deliveries follow. */
  end(errors?: readonly GraphQLError[]): void;
}

/** The one execution behind a cohort, started by its first member. */
export interface CohortSource {
  /** Runs the subscription: a stream of results, or one result when it could not start. */
  subscribe(): Promise<AsyncIterable<ExecutionResult> | ExecutionResult>;
  /** Executes the document once against `rootValue` (used with MISSED_EVENTS). */
  execute(rootValue: unknown): Promise<ExecutionResult>;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<ExecutionResult> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/** Members sharing one execution. */
export class Cohort {
  private readonly members = new Set<CohortMember>();
  private latest: Delivery | null = null;
  private missed: Promise<Delivery> | null = null;
  private iterator: AsyncIterator<ExecutionResult> | null = null;
  private closed = false;
  /** The operation's name, which members that join without parsing are counted under (metrics). */
  operationName: string | undefined;

  constructor(
    readonly key: string | null,
    readonly mode: FanOutMode,
    private readonly source: CohortSource,
    private readonly onClose: (cohort: Cohort) => void,
  ) {}

  get size(): number {
    return this.members.size;
  }

  add(member: CohortMember): void {
    this.members.add(member);
    if (this.latest) member.deliver(this.latest);
  }

  remove(member: CohortMember): void {
    if (!this.members.delete(member) || this.members.size > 0) return;
    this.close();
    void this.iterator?.return?.();
  }

  /**
   * What a member that fell too far behind gets instead of what it missed: for a state stream
   * the latest result; otherwise the document executed against MISSED_EVENTS, once per cohort
   * until the next event.
   */
  catchUp(): Promise<Delivery> {
    if (this.mode === 'latest' && this.latest) return Promise.resolve(this.latest);
    this.missed ??= this.source.execute(MISSED_EVENTS).then((result) => new Delivery(result));
    return this.missed;
  }

  /** Runs the shared execution until it ends or the last member leaves. */
  async run(): Promise<void> {
    let errors: readonly GraphQLError[] | undefined;
    try {
      const outcome = await this.source.subscribe();
      if (!isAsyncIterable(outcome)) {
        // Not a stream: the subscription could not start (bad arguments, forbidden …).
        this.close();
        const delivery = new Delivery(outcome);
        for (const member of this.members) member.deliver(delivery);
        return this.endMembers();
      }
      this.iterator = outcome[Symbol.asyncIterator]();
      if (this.closed) {
        await this.iterator.return?.();
        return;
      }
      for (;;) {
        const next = await this.iterator.next();
        if (next.done || this.closed) break;
        this.publish(new Delivery(next.value));
      }
    } catch (error) {
      errors = [error instanceof GraphQLError ? error : new GraphQLError((error as Error).message)];
    }
    this.close();
    this.endMembers(errors);
  }

  private publish(delivery: Delivery): void {
    this.missed = null;
    if (this.mode === 'latest') this.latest = delivery;
    for (const member of this.members) member.deliver(delivery);
  }

  private endMembers(errors?: readonly GraphQLError[]): void {
    const members = [...this.members];
    this.members.clear();
    for (const member of members) member.end(errors);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
  }
}

/** The key a subscription shares its cohort under: none (null) for one never shared. */
export function sharedKey(key: string, mode: FanOutMode): string | null {
  return mode === 'alone' ? null : key;
}

/** The cohorts of one transport, by key. */
export class SubscriptionCohorts {
  private readonly shared = new Map<string, Cohort>();
  private alone = 0;

  /** The open cohort for `key`, to join without parsing or executing anything. */
  find(key: string): Cohort | undefined {
    return this.shared.get(key);
  }

  /**
   * Adds `member` to the cohort for `key`, starting it with `source()` when there is none (or
   * when the mode says the subscription cannot be shared). Returns the cohort to leave later.
   */
  join(key: string, mode: FanOutMode, member: CohortMember, source: () => CohortSource): Cohort {
    const shared = sharedKey(key, mode);
    const existing = shared === null ? undefined : this.shared.get(shared);
    if (existing) {
      existing.add(member);
      return existing;
    }
    const cohort = new Cohort(shared, mode, source(), (closed) => {
      if (closed.key === null) this.alone -= 1;
      else if (this.shared.get(closed.key) === closed) this.shared.delete(closed.key);
    });
    if (cohort.key === null) this.alone += 1;
    else this.shared.set(key, cohort);
    cohort.add(member);
    void cohort.run();
    return cohort;
  }

  /** Figures for the `pubsub` component. */
  stats(): { cohorts: number; subscriptions: number } {
    let subscriptions = this.alone;
    for (const cohort of this.shared.values()) subscriptions += cohort.size;
    return { cohorts: this.shared.size + this.alone, subscriptions };
  }
}

/**
 * The cohort key: who may see what (the scope) and exactly what was asked. Two subscribers with
 * the same key would get byte-identical results, so they can share them.
 */
export function cohortKey(
  scope: string,
  query: string,
  operationName: string | null | undefined,
  variables: unknown,
): string {
  return `${scope}\n${operationName ?? ''}\n${JSON.stringify(variables ?? null)}\n${query}`;
}

/** The fan-out mode of a (valid) subscription document, from its root field's `fanOut` policy. */
export function fanOutMode(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  inputs: Record<string, unknown> | null | undefined,
): FanOutMode {
  const operation = getOperationAST(document, operationName);
  if (operation?.operation !== 'subscription') return 'alone';
  const [selection, ...more] = operation.selectionSet.selections;
  // A root field behind a fragment or directive: too clever to reason about, so not shared.
  if (more.length || selection?.kind !== Kind.FIELD || selection.directives?.length) return 'alone';
  const field = schema.getSubscriptionType()?.getFields()[selection.name.value];
  const policy = field?.extensions.fanOut as FanOutPolicy | undefined;
  if (!field || !policy) return 'events';
  const variables = getVariableValues(schema, operation.variableDefinitions ?? [], inputs ?? {});
  if (variables.errors) return 'alone';
  try {
    return policy(getArgumentValues(field, selection, variables.coerced));
  } catch {
    return 'alone'; // bad arguments: the execution reports them
  }
}

/**
 * The resolver side of MISSED_EVENTS for subscriptions of events: the event, or for a subscriber
 * that missed some, an error with code SLOW_CONSUMER saying what to refetch (the stream goes on).
 */
export function eventOrMissed<T>(root: T | typeof MISSED_EVENTS, refetch: string): T {
  if (isMissedEvents(root)) {
    throw new GraphQLError(`Events were dropped because this subscription read too slowly: ${refetch}.`, {
      extensions: { code: 'SLOW_CONSUMER' },
    });
  }
  return root;
}
