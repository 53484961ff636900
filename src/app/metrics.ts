import { type ExecutionResult, getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { MemberCounts } from '../fanout/member.js';
import { maskedCodeOf } from '../http/graphql-errors.js';
import { createMetricsRegistry, OperationMetrics, type OperationTypeLabel } from '../platform/metrics.js';
import type { ComponentState, StateStore } from '../runtime/state-store.js';
import { PIPELINE_REQUEST } from '../transports/graphql-operation.js';
import type { FlowMetrics } from '../transports/subscribe-flow.js';
import { followRuntimeEvents } from './runtime-event-metrics.js';

/**
 * The app's Prometheus metrics, one registry per app (see platform/metrics.ts). Cheap on the hot
 * paths: a request costs a few map lookups (about 0.4 µs); a delivery one integer increment
 * (MemberCounts); everything that is a state (connections, queue depth, tasks by status,
 * components) is read at scrape time from figures the app keeps anyway (the runtime store's
 * tally, the engine, the transports), never by scanning apps or asking the database.
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

/** What the scrape-time gauges read (the collector's runs exist once the app has started). */
export interface WatchedParts {
  store: Pick<StateStore, 'summary' | 'lastSequence' | 'allComponents'>;
  engine: { readonly running: number };
  workers: number;
  /** WebSocket connections and SSE streams now open, cohorts and subscriptions. */
  live(): { connections: number; streams: number; cohorts: number };
  /** The collector's last run of each poll source; null before it started. */
  sourceRuns(): ReadonlyMap<string, { seconds: number; ok: boolean }> | null;
  /** This process's `database` component (`database@<instance>` in cluster mode). */
  databaseComponent: string;
  /** Cluster mode: whether the change log's connections to Redis are up and answering; null otherwise. */
  redisConnected: (() => boolean) | null;
}

const isAsyncIterable = (value: unknown): value is AsyncIterable<unknown> =>
  typeof value === 'object' && value !== null && Symbol.asyncIterator in value;

/** Every state a component can be in (runtime/state-store.ts), each a series of market_component_state. */
const COMPONENT_STATES: readonly ComponentState[] = ['RUNNING', 'DEGRADED', 'STOPPED', 'ERROR', 'DISABLED'];

const REDIS_BUCKETS = [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export class AppMetrics {
  readonly registry: Registry = createMetricsRegistry();
  readonly operations: OperationMetrics;
  readonly members: Record<Transport, MemberCounts> = { ws: new MemberCounts(), sse: new MemberCounts() };
  private readonly subscriptionsStarted: Counter<'transport'>;
  private readonly redisAppends: Histogram;

  constructor(options: { knownOperations?: Iterable<string> } = {}) {
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
    this.redisAppends = new Histogram({
      name: 'market_redis_append_duration_seconds',
      help: 'Redis round trip of each change-log append pipeline (cluster mode)',
      buckets: REDIS_BUCKETS,
      registers,
    });
    this.memberFigures();
  }

  /** The Redis change log's hook (RedisChangeLogOptions.onAppend). */
  readonly redisAppend = (seconds: number): void => this.redisAppends.observe(seconds);

  /** What one transport's SubscribeFlow reports. */
  flow(transport: Transport): FlowMetrics {
    const { operations, subscriptionsStarted } = this;
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
    watchLive(this.registry, parts);
    watchTasks(this.registry, parts);
    watchRuntime(this.registry, parts);
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

function watchLive(registry: Registry, { live }: WatchedParts): void {
  const registers = [registry];
  new Gauge({
    name: 'market_connections',
    help: 'Open WebSocket connections (ws) and SSE streams (sse)',
    labelNames: ['transport'],
    registers,
    collect() {
      const { connections, streams } = live();
      this.set({ transport: 'ws' }, connections);
      this.set({ transport: 'sse' }, streams);
    },
  });
  new Gauge({
    name: 'market_cohorts',
    help: 'Subscription cohorts (one shared execution each) over both transports',
    registers,
    collect() {
      this.set(live().cohorts);
    },
  });
}

function watchTasks(registry: Registry, { store, engine, workers }: WatchedParts): void {
  const registers = [registry];
  new Gauge({
    name: 'market_tasks',
    help: 'Tasks in the runtime view, by status (finished ones: the most recent kept)',
    labelNames: ['status'],
    registers,
    collect() {
      const summary = store.summary();
      this.set({ status: 'PENDING' }, summary.pendingTasks);
      this.set({ status: 'RUNNING' }, summary.runningTasks);
      this.set({ status: 'COMPLETED' }, summary.completedTasks);
      this.set({ status: 'FAILED' }, summary.failedTasks);
      this.set({ status: 'CANCELED' }, summary.canceledTasks);
    },
  });
  new Gauge({
    name: 'market_task_queue_depth',
    help: 'Tasks waiting for a worker (PENDING)',
    registers,
    collect() {
      this.set(store.summary().pendingTasks);
    },
  });
  new Gauge({
    name: 'market_engine_workers_busy',
    help: 'Task engine workers running a task on this instance',
    registers,
    collect() {
      this.set(engine.running);
    },
  });
  new Gauge({ name: 'market_engine_workers', help: 'Task engine workers (TASK_CONCURRENCY)', registers }).set(workers);
  new Gauge({
    name: 'market_apps',
    help: 'Apps in the runtime view, by stage',
    labelNames: ['stage'],
    registers,
    collect() {
      this.reset();
      for (const { stage, count } of store.summary().appsByStage) this.set({ stage }, count);
    },
  });
}

function watchRuntime(registry: Registry, parts: WatchedParts): void {
  const { store, sourceRuns, databaseComponent, redisConnected } = parts;
  const registers = [registry];
  new Gauge({
    name: 'market_runtime_event_sequence',
    help: 'Sequence number of the last runtime event',
    registers,
    collect() {
      this.set(store.lastSequence);
    },
  });
  // As the API's `healthy`: RUNNING and DISABLED (not configured, on purpose) are healthy. A STOPPED
  // component is not running, which is no fault (an instance that stopped cleanly keeps its
  // components in the runtime, STOPPED, for STOPPED_COMPONENT_RETENTION_MS): it has no sample here,
  // so `== 0` alerts only on DEGRADED and ERROR; market_component_state shows it.
  new Gauge({
    name: 'market_component_healthy',
    help: 'Runtime components healthy (1: RUNNING or DISABLED) or not (0: DEGRADED, ERROR); STOPPED ones are left out',
    labelNames: ['component'],
    registers,
    collect() {
      this.reset();
      for (const c of store.allComponents())
        if (c.state !== 'STOPPED') this.set({ component: c.name }, c.healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: 'market_component_state',
    help: 'Runtime components by state: 1 for the state each is in, 0 for the others',
    labelNames: ['component', 'state'],
    registers,
    collect() {
      this.reset();
      for (const c of store.allComponents()) {
        for (const state of COMPONENT_STATES) this.set({ component: c.name, state }, c.state === state ? 1 : 0);
      }
    },
  });
  if (redisConnected) {
    // Read from the log itself: a process's components reach its runtime store through the log,
    // so during an outage its `pubsub` component still shows what it last published.
    new Gauge({
      name: 'market_redis_connected',
      help: "1 while the cluster change log's connections to Redis are up and answering (cluster mode)",
      registers,
      collect() {
        this.set(redisConnected() ? 1 : 0);
      },
    });
  }
  new Gauge({
    name: 'market_database_ping_seconds',
    help: "The collector's last `SELECT 1` round trip to the database; no sample while it fails",
    registers,
    collect() {
      const latencyMs = store.allComponents().find((c) => c.name === databaseComponent)?.metrics.latencyMs;
      // No sample when the last ping failed (the component then has no latency): the last good
      // round trip, kept, showed a database answering in 68 ms while it answered nothing.
      if (typeof latencyMs === 'number') this.set(latencyMs / 1000);
      else this.remove();
    },
  });
  new Gauge({
    name: 'market_collector_source_duration_seconds',
    help: "Duration of each collector poll source's last run",
    labelNames: ['source'],
    registers,
    collect() {
      this.reset();
      for (const [source, run] of sourceRuns() ?? []) this.set({ source }, run.seconds);
    },
  });
  new Gauge({
    name: 'market_collector_source_up',
    help: "Whether each collector poll source's last run answered in time (1) or failed (0)",
    labelNames: ['source'],
    registers,
    collect() {
      this.reset();
      for (const [source, run] of sourceRuns() ?? []) this.set({ source }, run.ok ? 1 : 0);
    },
  });
}
