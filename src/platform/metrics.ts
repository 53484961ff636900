import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type DocumentNode, Kind, parse } from 'graphql';
import { Counter, Registry } from 'prom-client';

/**
 * Prometheus metrics: one registry per app instance (tests start several servers in one process,
 * so nothing goes into prom-client's global registry), and the small pieces every layer may use.
 * Names carry the `market_` prefix; Node's default process metrics keep their own names.
 */

/**
 * prom-client's default metrics, taken one module at a time (the list of its
 * lib/defaultMetrics.js; prom-client is pinned, so these paths are fixed) because
 * `collectDefaultMetrics` has no way to leave one out, and some cost too much:
 * - `nodejs_gc_duration_seconds` observes every garbage collection (a PerformanceObserver on `gc`,
 *   which makes Node build an entry per collection). Measured: an allocation-heavy loop took
 *   543–620 ms of CPU without it and 998–1022 ms with it; on the G1 bench the `viewer` query cost
 *   57–61 µs of server CPU without metrics and 62–64 µs with them (+6–10 %), all of it this
 *   observer. `process_cpu_*` and the heap figures show what GC costs.
 * - `process_open_fds` (a readdir of /proc/self/fd), `nodejs_active_handles`,
 *   `nodejs_active_resources` and `nodejs_active_requests` build something per open socket at
 *   every scrape: with 10,000 sockets `process_open_fds` alone took 25 ms a scrape and
 *   `nodejs_active_resources` 6 ms. `market_connections` counts the connections instead.
 */
const DEFAULT_METRICS = [
  'processCpuTotal',
  'processStartTime',
  'osMemoryHeap',
  'processMaxFileDescriptors',
  'eventLoopLag',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
] as const;

type DefaultMetric = (registry: Registry, config: { eventLoopMonitoringPrecision: number }) => void;
const requireFromHere = createRequire(import.meta.url);

/** A fresh registry with Node's default process metrics (those above, once per registry). */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  for (const name of DEFAULT_METRICS) {
    const register = requireFromHere(`prom-client/lib/metrics/${name}`) as DefaultMetric;
    register(registry, { eventLoopMonitoringPrecision: 10 });
  }
  return registry;
}

/** What an operation name may be as a label: a GraphQL name, at most 100 characters. */
const LABEL_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,99}$/;

/** The label value of every name beyond the bound (or not a valid name). */
export const OTHER_LABEL = 'other';

/**
 * Why a name was counted as `other`: every label was taken (`full`), its claimant had taken its
 * share (`per_user`), it is no name a label may be (`invalid`), or it was asked for with
 * `existing` and has no label (`refused`: a request refused before it ran takes none).
 */
export type FoldReason = 'full' | 'per_user' | 'invalid' | 'refused';

/**
 * Folds client-chosen names into a bounded label set: the names known up front (a persisted
 * documents manifest) and the first `extra` distinct valid names seen keep their own label, every
 * other name becomes `other`, so a client cannot grow the series without bound. A name given with
 * its claimant (the user who sent it) takes a new label only while that claimant has taken fewer
 * than `perClaimant`: one client sending made-up names took all 200 labels, and every operation
 * that came after was `other` until a restart.
 */
export class LabelFold {
  private readonly seen: Set<string>;
  private readonly limit: number;
  /** Labels each claimant took; bounded, as each has taken at least one of `extra`. */
  private readonly claims = new Map<string, number>();
  /**
   * Names counted as `other`, by why (market_metric_label_values_folded_total): without it nothing
   * told an operator that the bound was reached and operations were counted under `other` since.
   */
  readonly folded: Record<FoldReason, number> = { full: 0, per_user: 0, invalid: 0, refused: 0 };

  constructor(
    known: Iterable<string>,
    extra: number,
    private readonly perClaimant = Number.POSITIVE_INFINITY,
  ) {
    this.seen = new Set([...known].filter((name) => LABEL_NAME.test(name)));
    this.limit = this.seen.size + extra;
  }

  label(name: string | null | undefined, fallback = 'anonymous', claimant?: string): string {
    if (!name) return fallback;
    if (this.seen.has(name)) return name;
    if (!LABEL_NAME.test(name)) return this.fold('invalid');
    if (this.seen.size >= this.limit) return this.fold('full');
    if (claimant !== undefined) {
      const claimed = this.claims.get(claimant) ?? 0;
      if (claimed >= this.perClaimant) return this.fold('per_user');
      this.claims.set(claimant, claimed + 1);
    }
    this.seen.add(name);
    return name;
  }

  /** `name`'s label if it has one already, else `other`: takes no slot (for a name nothing vouches for). */
  existing(name: string | null | undefined, fallback = 'anonymous'): string {
    if (!name) return fallback;
    return this.seen.has(name) ? name : this.fold('refused');
  }

  private fold(reason: FoldReason): string {
    this.folded[reason] += 1;
    return OTHER_LABEL;
  }

  /** Distinct labels in use (the folded `other` and the fallback aside). */
  get size(): number {
    return this.seen.size;
  }
}

const REQUESTS = 'market_graphql_requests_total';
const ERRORS = 'market_graphql_errors_total';

/** The operation types as labels; `unknown` for a request refused before its operation was known. */
export type OperationTypeLabel = 'query' | 'mutation' | 'subscription' | 'unknown';

/** Request latency buckets (seconds): the lean path answers in a tenth of a millisecond. */
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface OperationMetricsOptions {
  /** Operation names that always keep their own label (a persisted documents manifest's). */
  knownOperations?: Iterable<string>;
  /**
   * The code an error is counted under, as the client will get it (null: INTERNAL_SERVER_ERROR).
   * @default its `extensions.code`
   */
  codeOf?: (error: ErrorLike) => string | null;
  /**
   * Further distinct operation names that get a label of their own, first come first served.
   * @default 200
   */
  maxOperations?: number;
  /**
   * Of those, how many one user's requests may introduce (a name another user's requests
   * introduced costs nothing): a frontend's operations get their labels from its users together,
   * and one client cannot take them all. The dashboard's pages use 13.
   * @default 20
   */
  maxOperationsPerUser?: number;
}

/** An error as it leaves the server: a GraphQL error with its code in `extensions`. */
type ErrorLike = { readonly extensions?: Readonly<Record<string, unknown>> | undefined };

function extensionsCode(error: ErrorLike): string | null {
  const code = error.extensions?.code;
  return typeof code === 'string' ? code : null;
}

/** One (operation, type) series: its requests and, of those with a latency, the latency histogram. */
interface OperationSeries {
  labels: { operation: string; type: OperationTypeLabel };
  requests: number;
  observed: number;
  sum: number;
  /** Per bucket (not cumulative), the last one +Inf. */
  buckets: Float64Array;
}

/** What a custom collector gives the registry (prom-client reads `get()` of any registered object). */
type CollectedValue = { metricName?: string; labels: Record<string, string | number>; value: number };

/**
 * GraphQL requests by operation name and type, their latency, and errors by code. Called once
 * per operation wherever it is answered (see app/metrics.ts for which hook counts what).
 *
 * The requests and the latency are plain numbers per series, turned into the exposition at
 * scrape time: on the lean path a request costs about 75 µs of CPU, and prom-client's own
 * `inc`/`observe` (label validation, a string key per call) would have been a percent of it.
 */
export class OperationMetrics {
  private readonly names: LabelFold;
  /** Codes are the server's own, but a resolver could put anything there: bounded too. */
  private readonly codes = new LabelFold([], 100);
  /** Series by type, then by operation label: found without building a key string. */
  private readonly series: Record<OperationTypeLabel, Map<string, OperationSeries>> = {
    query: new Map(),
    mutation: new Map(),
    subscription: new Map(),
    unknown: new Map(),
  };
  private readonly errorCount: Counter<'code'>;
  private readonly codeOf: (error: ErrorLike) => string | null;

  constructor(registry: Registry, options: OperationMetricsOptions = {}) {
    this.codeOf = options.codeOf ?? extensionsCode;
    this.names = new LabelFold(
      options.knownOperations ?? [],
      options.maxOperations ?? 200,
      options.maxOperationsPerUser ?? 20,
    );
    const registers = [registry];
    const all = () => Object.values(this.series).flatMap((byName) => [...byName.values()]);
    new Counter({
      name: REQUESTS,
      help: 'GraphQL operations answered, by operation name (unknown names folded into "other") and type',
      labelNames: ['operation', 'type'],
      registers,
      collect() {
        this.reset();
        for (const series of all()) this.inc(series.labels, series.requests);
      },
    });
    registry.registerMetric(latencyCollector(all) as never);
    this.errorCount = new Counter({
      name: ERRORS,
      help: 'GraphQL errors in answers, by extensions.code (INTERNAL_SERVER_ERROR when it has none)',
      labelNames: ['code'],
      registers,
    });
    foldCounter(registry, [
      [REQUESTS, this.names, ['full', 'per_user', 'invalid', 'refused']],
      // Codes come without a claimant and are never asked for with `existing`.
      [ERRORS, this.codes, ['full', 'invalid']],
    ]);
  }

  /**
   * One operation answered (`seconds` null when there is no latency to report: a subscription), for
   * `userId` (undefined: not known, then its name is charged to no one).
   */
  operation(name: string | null | undefined, type: OperationTypeLabel, seconds: number | null, userId?: string): void {
    // A request refused before its operation was known names whatever it likes: it takes no label
    // of its own (300 refused requests of made-up names took 300 of the slots real operations get).
    const operation = type === 'unknown' ? this.names.existing(name) : this.names.label(name, undefined, userId);
    const byName = this.series[type];
    let series = byName.get(operation);
    if (!series) {
      series = {
        labels: { operation, type },
        requests: 0,
        observed: 0,
        sum: 0,
        buckets: new Float64Array(REQUEST_BUCKETS.length + 1),
      };
      byName.set(operation, series);
    }
    series.requests += 1;
    if (seconds === null) return;
    series.observed += 1;
    series.sum += seconds;
    let bucket = 0;
    while (bucket < REQUEST_BUCKETS.length && seconds > (REQUEST_BUCKETS[bucket] as number)) bucket += 1;
    series.buckets[bucket] = (series.buckets[bucket] as number) + 1;
  }

  errors(errors: readonly ErrorLike[] | undefined): void {
    if (!errors) return;
    for (const error of errors) {
      this.errorCount.inc({ code: this.codes.label(this.codeOf(error), 'INTERNAL_SERVER_ERROR') });
    }
  }
}

const LATENCY = 'market_graphql_operation_duration_seconds';

/**
 * market_metric_label_values_folded_total: the values each bounded label counted as `other`, by
 * the metric it bounds and why; every series from the start, at 0, so an alert on its increase
 * sees the first fold. Read at scrape time: a fold costs the request one integer increment.
 */
function foldCounter(registry: Registry, folds: [metric: string, fold: LabelFold, reasons: FoldReason[]][]): void {
  new Counter({
    name: 'market_metric_label_values_folded_total',
    help: 'Label values counted as "other" by a bounded label, by metric and why (full, per_user, invalid, refused)',
    labelNames: ['metric', 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [metric, fold, reasons] of folds) {
        for (const reason of reasons) this.inc({ metric, reason }, fold.folded[reason]);
      }
    },
  });
}

/** The latency histogram as prom-client's registry reads a metric: `_bucket` (cumulative), `_sum`, `_count`. */
function latencyCollector(all: () => OperationSeries[]) {
  // From execution to result: a timestamp kept from the parse would cost a write per request on the
  // context (measured: most of the metrics' CPU on the lean path), and parses are cached anyway.
  const help = 'Execution time of queries and mutations (start of execution to result), by operation name and type';
  const get = async () => {
    const values: CollectedValue[] = [];
    for (const series of all()) {
      if (series.observed === 0) continue;
      let cumulative = 0;
      for (let bucket = 0; bucket <= REQUEST_BUCKETS.length; bucket++) {
        cumulative += series.buckets[bucket] as number;
        const le = bucket < REQUEST_BUCKETS.length ? (REQUEST_BUCKETS[bucket] as number) : '+Inf';
        values.push({ metricName: `${LATENCY}_bucket`, labels: { le, ...series.labels }, value: cumulative });
      }
      values.push({ metricName: `${LATENCY}_sum`, labels: series.labels, value: series.sum });
      values.push({ metricName: `${LATENCY}_count`, labels: series.labels, value: series.observed });
    }
    return { name: LATENCY, help, type: 'histogram', aggregator: 'sum', values };
  };
  return { name: LATENCY, help, type: 'histogram', aggregator: 'sum', get, reset() {} };
}

/** Runs `work`, telling `observe` (when given) how many seconds it took, failed or not. */
export async function timed<T>(work: () => Promise<T>, observe?: (seconds: number) => void): Promise<T> {
  if (!observe) return work();
  const began = performance.now();
  try {
    return await work();
  } finally {
    observe((performance.now() - began) / 1000);
  }
}

/** Operation names of a persisted documents manifest: they always keep their own label. */
export function manifestOperationNames(path: string | undefined): string[] {
  if (!path) return [];
  try {
    const manifest = JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>;
    return Object.values(manifest).flatMap((text) => operationNames(parse(text)));
  } catch {
    return []; // the persisted-documents plugin reports an unusable manifest
  }
}

function operationNames(document: DocumentNode): string[] {
  return document.definitions.flatMap((definition) =>
    definition.kind === Kind.OPERATION_DEFINITION && definition.name ? [definition.name.value] : [],
  );
}
