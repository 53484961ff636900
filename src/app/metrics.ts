import { type ExecutionResult, getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { MemberCounts } from '../fanout/member.js';
import { maskedCodeOf } from '../http/graphql-errors.js';
import { createMetricsRegistry, OperationMetrics, type OperationTypeLabel } from '../platform/metrics.js';
import type { StateStore } from '../runtime/state-store.js';
import { PIPELINE_REQUEST } from '../transports/graphql-operation.js';
import type { FlowMetrics } from '../transports/subscribe-flow.js';
import { followRuntimeEvents } from './runtime-event-metrics.js';
import { type WatchedParts, watchParts } from './scrape-gauges.js';

/**
 * The app's Prometheus metrics, one registry per app (see platform/metrics.ts). Cheap on the hot
 * paths: a request costs a few map lookups (about 0.4 µs); a delivery one integer increment
 * (MemberCounts); everything that is a state (connections, queue depth, tasks by status,
 * components) is read at scrape time (scrape-gauges.ts) from figures the app keeps anyway (the
 * runtime store's tally, the engine, the transports), never by scanning apps or asking the database.
 *
 * Where a GraphQL request is counted, exactly once whatever the path:
 * - every query and mutation that reaches execution, on every path (Yoga, the lean HTTP path,
 *   graphql-ws, SSE), by the `first` plugin's `onExecute` (plugins()): all run Yoga's pipeline;
 * - a request Yoga answers without executing (it did not parse or validate, authentication
 *   failed): by `onResultProcess`, which only Yoga's own HTTP handling reaches (the lean path
 *   hands such requests to Yoga before answering);
 * - subscriptions and refusals on the streams: by the transports' SubscribeFlow (FlowMetrics),
 *   since a subscription joining a cohort runs nothing; a cohort's executions per event are
 *   deliveries, not requests.
 */

export type Transport = 'ws' | 'sse';

const isAsyncIterable = (value: unknown): value is AsyncIterable<unknown> =>
  typeof value === 'object' && value !== null && Symbol.asyncIterator in value;

const REDIS_BUCKETS = [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export class AppMetrics {
  readonly registry: Registry = createMetricsRegistry();
  readonly operations: OperationMetrics;
  readonly members: Record<Transport, MemberCounts> = { ws: new MemberCounts(), sse: new MemberCounts() };
  private readonly subscriptionsStarted: Counter<'transport'>;
  private readonly clientsCut: Counter<'transport' | 'reason'>;
  private readonly clientErrors: Counter<'reason'>;
  /**
   * The Redis change log's hook (RedisChangeLogOptions.onAppend); null in single-process mode
   * (no REDIS_URL), where market_redis_append_duration_seconds is not registered: shown there, it
   * was an empty histogram of a Redis the process never talks to.
   */
  readonly redisAppend: ((seconds: number) => void) | null = null;

  constructor(options: { knownOperations?: Iterable<string>; clustered?: boolean } = {}) {
    // Errors are counted as the client gets them: a resolver's are counted before the mask gives
    // them their code (a refused argument counted as INTERNAL_SERVER_ERROR).
    this.operations = new OperationMetrics(this.registry, {
      codeOf: maskedCodeOf,
      ...(options.knownOperations ? { knownOperations: options.knownOperations } : {}),
    });
    const registers = [this.registry];
    this.subscriptionsStarted = new Counter({
      name: 'market_subscriptions_started_total',
      help: 'Subscriptions started or joined to an open cohort, by transport',
      labelNames: ['transport'],
      registers,
    });
    this.clientsCut = new Counter({
      name: 'market_subscription_clients_cut_total',
      help: 'WebSocket connections (ws) and SSE streams (sse) the server closed because their client stopped reading (stalled) or answering pings (no_pong, ws only)',
      labelNames: ['transport', 'reason'],
      registers,
    });
    // Each series from the start, at 0: an alert on its increase needs a sample before the first cut.
    this.clientsCut.inc({ transport: 'ws', reason: 'no_pong' }, 0);
    for (const transport of ['ws', 'sse'] as const) this.clientsCut.inc({ transport, reason: 'stalled' }, 0);
    this.clientErrors = new Counter({
      name: 'market_http_client_errors_total',
      help: 'Requests node:http refused before the app saw them, by reason (HPE_*, ERR_HTTP_REQUEST_TIMEOUT)',
      labelNames: ['reason'],
      registers,
    });
    if (options.clustered) {
      const appends = new Histogram({
        name: 'market_redis_append_duration_seconds',
        help: 'Redis round trip of each change-log append pipeline (cluster mode)',
        buckets: REDIS_BUCKETS,
        registers,
      });
      this.redisAppend = (seconds) => appends.observe(seconds);
    }
    this.memberFigures();
  }

  /** A request node:http refused before the app saw it (http-server.ts ClientError), by its bounded reason. */
  readonly clientError = (reason: string): void => this.clientErrors.inc({ reason });

  /**
   * A POST to /graphql the router refused before Yoga saw it (its credentials, its body's size, its
   * origin or Host): counted as Yoga's own refusals are (no operation known, `type="unknown"`), so
   * that a token rollout locking every client out shows in the metrics, not only in the logs.
   */
  refusedBeforeYoga(errors: readonly { extensions?: Record<string, unknown> }[]): void {
    this.operations.operation(undefined, 'unknown', null);
    this.operations.errors(errors);
  }

  /** What one transport's SubscribeFlow reports. */
  flow(transport: Transport): FlowMetrics {
    const { operations, subscriptionsStarted, clientsCut } = this;
    const started = subscriptionsStarted.labels(transport);
    return {
      members: this.members[transport],
      subscribed(operationName, userId) {
        started.inc();
        operations.operation(operationName, 'subscription', null, userId);
      },
      refused(operationName, errors) {
        operations.operation(operationName, 'unknown', null);
        operations.errors(errors);
      },
      clientCut(reason) {
        clientsCut.inc({ transport, reason });
      },
    };
  }

  /**
   * The envelop/Yoga plugins that count GraphQL requests (see the module comment for which hook
   * counts what). `first` goes before every plugin that may answer instead of executing (rate
   * limit, input bounds), so every execution reaches it; `last` after every plugin that rewrites a
   * result (input bounds give variable errors their code), so the errors it counts are the ones
   * the client gets. An execution that never reached `last` was answered by a plugin in between,
   * whose answer is final: `first` counts its errors then.
   */
  plugins(): { first: Plugin; last: Plugin } {
    const { operations } = this;
    /** Yoga requests (Fetch Requests) that reached execution: onResultProcess leaves them alone. */
    const executed = new WeakSet<object>();
    const requestOf = (context: unknown): object | null => {
      const request = (context as { request?: object } | undefined)?.request;
      return request && request !== PIPELINE_REQUEST ? request : null;
    };
    /**
     * The execution between `first` and `last`: the onExecute hooks of one execution run one
     * after the other without a pause (all of them are synchronous), so one slot is enough.
     */
    let entering: { reachedLast: boolean } | null = null;
    const first: Plugin = {
      onExecute({ args }) {
        const operation = getOperationAST(args.document, args.operationName);
        const type: OperationTypeLabel = operation?.operation ?? 'unknown';
        // A subscription document executed here is a cohort's result for one event (or a catch-up).
        if (type === 'subscription') return;
        const began = performance.now();
        const request = requestOf(args.contextValue);
        if (request) executed.add(request);
        const name = operation?.name?.value ?? args.operationName;
        const userId = (args.contextValue as { viewer?: { userId?: string } } | undefined)?.viewer?.userId;
        const call = { reachedLast: false };
        entering = call;
        return {
          onExecuteDone({ result }) {
            operations.operation(name, type, (performance.now() - began) / 1000, userId);
            if (!call.reachedLast && !isAsyncIterable(result)) operations.errors(result.errors);
          },
        };
      },
      onSubscribe({ args }) {
        // The streaming transports count their subscriptions themselves (SubscribeFlow).
        const request = requestOf(args.contextValue);
        if (!request) return;
        executed.add(request);
        const name = getOperationAST(args.document, args.operationName)?.name?.value;
        const userId = (args.contextValue as { viewer?: { userId?: string } } | undefined)?.viewer?.userId;
        operations.operation(name, 'subscription', null, userId);
      },
      onResultProcess({ request, result, serverContext }) {
        if (executed.has(request)) return;
        // The name the request log has for it (graphql.ts, useRequestNotes): its document's when it
        // parsed, else the one it gave. It takes no label of its own (OperationMetrics.operation).
        const name = (serverContext as { req?: { operationName?: string } } | undefined)?.req?.operationName;
        for (const one of Array.isArray(result) ? result : [result]) {
          if (isAsyncIterable(one)) continue;
          operations.operation(name, 'unknown', null);
          operations.errors((one as ExecutionResult).errors);
        }
      },
    };
    const last: Plugin = {
      onExecute() {
        const call = entering;
        entering = null;
        if (!call) return;
        call.reachedLast = true;
        return {
          onExecuteDone({ result }) {
            if (!isAsyncIterable(result)) operations.errors(result.errors);
          },
        };
      },
    };
    return { first, last };
  }

  /** Subscriptions, deliveries and slow consumers per transport, from the members' running counts. */
  private memberFigures(): void {
    const registers = [this.registry];
    const members = this.members;
    const perTransport = (read: (counts: MemberCounts) => number) =>
      function (this: Gauge<'transport'> | Counter<'transport'>) {
        this.reset();
        for (const transport of ['ws', 'sse'] as const) {
          const value = read(members[transport]);
          if (this instanceof Gauge) this.set({ transport }, value);
          else this.inc({ transport }, value);
        }
      };
    new Gauge({
      name: 'market_subscriptions',
      help: 'Subscriptions now open, by transport',
      labelNames: ['transport'],
      registers,
      collect: perTransport((counts) => counts.active),
    });
    new Counter({
      name: 'market_deliveries_total',
      help: 'Results written to subscribers, by transport',
      labelNames: ['transport'],
      registers,
      collect: perTransport((counts) => counts.delivered),
    });
    new Counter({
      name: 'market_slow_consumer_overflows_total',
      help: 'Subscribers whose queue overflowed because they read too slowly, by transport',
      labelNames: ['transport'],
      registers,
      collect: perTransport((counts) => counts.overflows),
    });
    new Counter({
      name: 'market_slow_consumer_catchups_total',
      help: 'Catch-ups (latest state, RESYNC or SLOW_CONSUMER error) sent to overflowed subscribers, by transport',
      labelNames: ['transport'],
      registers,
      collect: perTransport((counts) => counts.catchUps),
    });
  }

  /** The scrape-time gauges over the app's parts, and the runtime events' counters. */
  watch(parts: WatchedParts): void {
    watchParts(this.registry, parts);
  }

  /**
   * Counts runtime events as the store emits them: called once the app has started, since in
   * cluster mode the store takes no listener before it continues from the change log's position.
   */
  followRuntime(store: Pick<StateStore, 'onEvent'>): void {
    followRuntimeEvents(this.registry, store);
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
