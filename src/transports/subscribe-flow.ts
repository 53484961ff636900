import type { ExecutionResult, GraphQLError, OperationTypeNode } from 'graphql';
import type { Viewer } from '../auth/viewer.js';
import { clientErrors, clientResult, refusalStatusOf } from '../fanout/client-errors.js';
import {
  type CohortSource,
  cohortKey,
  type FanOutMode,
  type SubscriptionCohorts,
  sharedKey,
} from '../fanout/cohorts.js';
import type { MemberCounts, MemberPolicy, QueuedMember } from '../fanout/member.js';
import type { Logger } from '../platform/logger.js';
import { type ConnectionBudget, limitExceeded } from './connection-budget.js';
import {
  cohortSource,
  executionArgs,
  type GraphQLRequest,
  type OperationPipeline,
  prepareOperation,
  scopeOf,
} from './graphql-operation.js';

/**
 * One operation as a transport carries it. The flow decides what happens to the operation; the
 * call only puts the answers on the wire, so both transports behave alike.
 */
export interface OperationCall {
  /** Yoga's pipeline for the operation; asked for only when no open cohort can take it as it is. */
  pipeline(): OperationPipeline;
  /** The operation was refused before it ran: it did not parse, validate or name an operation. */
  refuse(errors: readonly GraphQLError[]): void;
  /**
   * Whether this call may run an operation of `type`; when it may not, it has answered the client.
   * @default every type is accepted
   */
  accepts?(type: OperationTypeNode): boolean;
  /** The client took the operation back while it was being prepared: nothing more runs or is sent. */
  readonly withdrawn: boolean;
  /** The one result of a query or mutation. */
  result(result: ExecutionResult): void;
  /**
   * A query or mutation refused before it ran (the query cost, the rate limit), with the HTTP
   * status its errors ask for: a transport answering over HTTP may answer with it, as plain HTTP does.
   * @default `result` takes it, without the status
   */
  refusedBeforeRunning?(status: number, headers: Record<string, string>, errors: readonly GraphQLError[]): void;
  /** The subscriber to add to a cohort, or null when the client may not hold another (it was told). */
  member(policy: MemberPolicy): QueuedMember | null;
}

/**
 * Why the server closed a client's stream or connection: `stalled`, bytes waited for it and it read
 * none of them (read-progress.ts); `no_pong`, a silent WebSocket did not answer the keep-alive ping.
 */
export type ClientCutReason = 'stalled' | 'no_pong';

/**
 * What a transport and its flow report to the metrics. Queries and mutations are counted by the
 * pipeline's execution (app/metrics.ts); here only what never reaches it on a stream.
 */
export interface FlowMetrics {
  /** The transport's members, counted as they come, receive and go. */
  readonly members: MemberCounts;
  /** A subscription started a cohort or joined one, for this user. */
  subscribed(operationName: string | null | undefined, userId: string): void;
  /** An operation refused before it ran: it did not parse, validate or name an operation. */
  refused(operationName: string | null | undefined, errors: readonly GraphQLError[]): void;
  /** A stream or connection was closed because its client stopped reading or answering. */
  clientCut(reason: ClientCutReason): void;
}

export interface SubscribeFlowOptions {
  cohorts: SubscriptionCohorts;
  /** Each user's places for distinct subscriptions (MAX_DISTINCT_SUBSCRIPTIONS_PER_USER). */
  budget: ConnectionBudget;
  /** @default not measured */
  metrics?: FlowMetrics;
  /** Results one subscription may have queued before it overflows. */
  subscriberBuffer: number;
  logger: Logger;
}

/**
 * The way from a client's request to a running operation, shared by the WebSocket and SSE
 * transports. A subscription that an open cohort already serves joins it without anything being
 * parsed, which is what lets thousands of identical subscriptions cost one parse and one execution.
 * Anything else is parsed and validated once; a query or mutation runs once and answers the call,
 * and a subscription starts the cohort that later ones join.
 */
export class SubscribeFlow {
  private readonly cohorts: SubscriptionCohorts;
  private readonly budget: ConnectionBudget;
  /** One for every member of the transport: members hold a reference, not a copy. */
  private readonly policy: MemberPolicy;
  private readonly metrics: FlowMetrics | undefined;

  constructor(options: SubscribeFlowOptions) {
    this.cohorts = options.cohorts;
    this.budget = options.budget;
    this.metrics = options.metrics;
    this.policy = {
      limit: options.subscriberBuffer,
      logger: options.logger,
      ...(options.metrics ? { counts: options.metrics.members } : {}),
      // Its cohort's key is the key its place was taken for (both sharedKey's: null for one never shared).
      left: (member) => this.budget.releaseSubscription(member.placeOf as string, member.cohort?.key ?? null),
    };
  }

  async run(request: GraphQLRequest, viewer: Viewer, call: OperationCall): Promise<void> {
    const key = cohortKey(scopeOf(viewer), request.query, request.operationName, request.variables);
    const existing = this.cohorts.find(key);
    if (existing) {
      if (!this.takePlace(call, viewer, key, existing.mode, existing.operationName)) return;
      this.metrics?.subscribed(existing.operationName, viewer.userId);
      return this.join(call, viewer, key, existing.mode, null);
    }

    const pipeline = call.pipeline();
    const prepared = prepareOperation(pipeline, request);
    if ('errors' in prepared) {
      const errors = clientErrors(prepared.errors);
      this.metrics?.refused(request.operationName, errors);
      return call.refuse(errors);
    }
    if (call.accepts && !call.accepts(prepared.type)) return;
    const args = await executionArgs(pipeline, prepared.document, request);
    if (call.withdrawn) return;

    if (prepared.type !== 'subscription') {
      const result = await pipeline.execute(args);
      if (call.withdrawn) return;
      const refusal = call.refusedBeforeRunning && refusalStatusOf(result);
      if (refusal && result.errors) {
        return call.refusedBeforeRunning?.(refusal.status, refusal.headers, clientErrors(result.errors));
      }
      return call.result(clientResult(result));
    }
    if (!this.takePlace(call, viewer, key, prepared.mode, prepared.name)) return;
    this.metrics?.subscribed(prepared.name, viewer.userId);
    this.join(call, viewer, key, prepared.mode, cohortSource(pipeline, args), prepared.name);
  }

  /** Takes the subscription's place among its user's (ConnectionBudget); false when refused (the client was told). */
  private takePlace(
    call: OperationCall,
    viewer: Viewer,
    key: string,
    mode: FanOutMode,
    name: string | null | undefined,
  ): boolean {
    if (this.budget.takeSubscription(viewer.userId, sharedKey(key, mode))) return true;
    const { perUserDistinct } = this.budget.limits;
    const errors = [
      limitExceeded(
        `A user may hold at most ${perUserDistinct} distinct subscriptions at once on this instance (MAX_DISTINCT_SUBSCRIPTIONS_PER_USER); equal ones (same document and variables) count once`,
      ),
    ];
    this.metrics?.refused(name, errors);
    // Over HTTP (SSE) as the per-user connection cap answers: 429; over a socket an `error` message.
    if (call.refusedBeforeRunning) call.refusedBeforeRunning(429, {}, errors);
    else call.refuse(errors);
    return false;
  }

  /** `source` is null when joining an open cohort, which needs none. The viewer's place is taken already. */
  private join(
    call: OperationCall,
    viewer: Viewer,
    key: string,
    mode: FanOutMode,
    source: CohortSource | null,
    name?: string,
  ): void {
    const member = call.member(this.policy);
    if (!member) {
      this.budget.releaseSubscription(viewer.userId, sharedKey(key, mode));
      return;
    }
    member.placeOf = viewer.userId;
    member.cohort = this.cohorts.join(key, mode, member, () => {
      if (!source) throw new Error('a cohort to join was expected');
      return source;
    });
    member.cohort.operationName ??= name;
  }
}
