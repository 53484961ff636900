import { hostname } from 'node:os';
import { type AuthConfig, authSettings } from './config-auth.js';
import { type Env, envSchema } from './config-env.js';
import { ConfigError, invalidSetting, proxyVariables, settingProblems } from './config-values.js';
import { parseSimulatedOutcomes } from './simulated-outcomes.js';

export type { AuthConfig, JwtConfig } from './config-auth.js';
export { ConfigError, invalidSetting } from './config-values.js';

/**
 * Every setting of the server, read from the environment once at start and validated here. A bad value stops the
 * server with a message naming the variable (see `loadConfig`); the README's "Configuration" table documents each.
 */
export type Config = {
  port: number;
  host: string;
  logLevel: Env['LOG_LEVEL'];
  /** LOG_FORMAT, resolved: `auto` has become pretty or json by whether stdout is a terminal. */
  logFormat: 'pretty' | 'json';
  /** LOG_PROBES: whether health probes and metrics scrapes are logged. */
  logProbes: boolean;
  /** METRICS_TOKEN: the bearer token /metrics asks for; undefined leaves it open. */
  metricsToken: string | undefined;
  /** How long a stop waits for in-flight requests and closing handshakes (SHUTDOWN_TIMEOUT_MS). */
  shutdownTimeoutMs: number;
  /** HTTP_KEEP_ALIVE_TIMEOUT_MS (an idle connection's wait), HTTP_REQUEST_TIMEOUT_MS (one request's arrival). */
  http: { keepAliveTimeoutMs: number; requestTimeoutMs: number };
  databaseUrl: string;
  databaseQueryTimeoutMs: number; // DATABASE_QUERY_TIMEOUT_MS: how long a PostgreSQL statement may go unanswered
  databasePoolSize: number; // DATABASE_POOL_SIZE: connections of the PostgreSQL pool
  /** Cluster mode (REDIS_URL): null runs the embedded single-process default. */
  redis: {
    url: string;
    prefix: string;
    changeLogRetention: number;
    instance: string;
    /** LEADER_LEASE_MS: the lease of the instance that does the once-per-cluster work. */
    leaderLeaseMs: number;
    /** INSTANCE_SILENCE_MS, at least three COLLECT_INTERVAL_MS; see runtime/instance-sweep.ts. */
    instanceSilenceMs: number;
    stoppedComponentRetentionMs: number; // STOPPED_COMPONENT_RETENTION_MS
  } | null;
  demoData: boolean;
  auth: AuthConfig;
  /** Origins allowed to call the API from a browser, besides the server's own. */
  corsOrigins: string[];
  inputLimits: { maxListLength: number; maxStringLength: number; maxJsonDepth: number };
  connectionLimits: { perConnectionSubscriptions: number; perUser: number; perUserDistinct: number; total: number };
  /** Per-user token bucket for mutations; null when off. */
  mutationRateLimit: { perSecond: number; burst: number } | null;
  operationsInFlightPerUser: number; // MAX_OPERATIONS_IN_FLIGHT_PER_USER
  maxWaitingBytes: number; // MAX_WAITING_BYTES: see http/operations-in-flight.ts
  graphiql: boolean;
  introspection: boolean;
  /** Plain JSON POSTs skip Yoga's Fetch-API layer (GRAPHQL_FAST_PATH). */
  graphqlFastPath: boolean;
  persistedDocuments: string | undefined;
  maxPageSize: number;
  maxBodyBytes: number;
  /** CHART_UPLOAD_MAX_BYTES: the largest chart package an upload may carry. */
  chartUploadMaxBytes: number;
  maxQueryDepth: number;
  maxQueryCost: number; // MAX_QUERY_COST: see http/query-cost.ts
  tasks: {
    concurrency: number;
    timeoutMs: number;
    pollIntervalMs: number;
    leaseMs: number;
    maxActivePerUser: number;
    /** TASK_START_ATTEMPTS and its waits (src/engine/start-retry.ts). */
    startRetry: { attempts: number; firstDelayMs: number; maxDelayMs: number };
  };
  appService:
    | { kind: 'simulated'; stepMs: number; failApps: string[] }
    | {
        kind: 'http';
        url: string;
        token: string | undefined;
        timeoutMs: number;
        eventSecret: string;
        repoUrl: string;
      };
  history: { retentionDays: number; cleanupIntervalMs: number };
  /** STATUS_CORRECTION_INTERVAL_MS: how often stored states are compared with the app service's list. */
  statusCorrectionIntervalMs: number;
  /** The outbox worker: deliveries of payment pushes and webhooks. */
  outbox: {
    concurrency: number;
    maxAttempts: number;
    backoffBaseMs: number;
    backoffMaxMs: number;
    attemptTimeoutMs: number;
    pollIntervalMs: number;
    /** OUTBOX_RETENTION_DAYS: delivered and dead messages older than this are removed. */
    retentionDays: number;
  };
  maxWebhooks: number;
  /** WEBHOOK_CATCH_UP_INTERVAL_MS: the period of the leader's webhook catch-up; 0 = off. */
  webhookCatchUpIntervalMs: number;
  /** PUBLIC_BASE_URL without a trailing slash, or http://HOST:PORT. */
  publicBaseUrl: string;
  catalogue: {
    /** MARKET_SOURCE_URL; null → the bundled catalogue file. */
    marketSourceUrl: string | null;
    /** BUNDLED_CATALOGUE_FILE: undefined → the project's own file, null → `off`. */
    bundledFile: string | null | undefined;
    sourceVersion: string;
    syncIntervalMs: number;
    backoffMaxMs: number;
    timeoutMs: number;
    maxResponseBytes: number;
    maxCatalogueBytes: number; // SYNC_MAX_CATALOGUE_BYTES
  };
  runtime: {
    collectIntervalMs: number;
    eventBuffer: number;
    subscriberBuffer: number;
    maxBufferedBytes: number;
    keepAliveMs: number;
    snapshotMaxHz: number;
    componentMetricsPushMs: number;
    chartRepoUrl: string | undefined;
    /** CHART_REPO_TIMEOUT_MS */
    chartRepoTimeoutMs: number;
  };
  payments: {
    pollAttempts: number;
    pollIntervalMs: number;
    developerService:
      | { kind: 'simulated'; outcomes: Record<string, string> }
      | { kind: 'http'; urlTemplate: string; timeoutMs: number }
      /** No template and no simulation asked for: purchases are refused (see developerServiceSettings). */
      | { kind: 'none' };
    /** Where pushes go (null: written and shown on the payment, not sent) and the key that signs them. */
    pushes: { walletUrl: string | null; frontendUrl: string | null; secret: string | null };
  };
};

/** Reads and validates the environment; throws a ConfigError listing every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings count as unset, as in most deployment tools.
  // The proxy variables are checked as undici will read them (http_proxy before HTTP_PROXY …).
  const read = { ...env, ...proxyVariables(env) };
  const present = Object.fromEntries(Object.entries(read).filter(([, value]) => value !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(`Invalid configuration:\n${settingProblems(parsed.error.issues).join('\n')}`);
  }
  const e = parsed.data;
  const auth = authSettings(e);
  return {
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT === 'auto' ? (process.stdout.isTTY ? 'pretty' : 'json') : e.LOG_FORMAT,
    logProbes: e.LOG_PROBES,
    metricsToken: e.METRICS_TOKEN,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    http: { keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT_MS, requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS },
    databaseUrl: e.DATABASE_URL,
    databaseQueryTimeoutMs: e.DATABASE_QUERY_TIMEOUT_MS,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    redis: clusterSettings(e),
    demoData: e.DEMO_DATA,
    auth,
    corsOrigins: e.CORS_ORIGINS,
    inputLimits: {
      maxListLength: e.MAX_INPUT_LIST_LENGTH,
      maxStringLength: e.MAX_INPUT_STRING_LENGTH,
      maxJsonDepth: e.MAX_INPUT_JSON_DEPTH,
    },
    connectionLimits: {
      perConnectionSubscriptions: e.MAX_SUBSCRIPTIONS_PER_CONNECTION,
      perUser: e.MAX_CONNECTIONS_PER_USER,
      perUserDistinct: e.MAX_DISTINCT_SUBSCRIPTIONS_PER_USER,
      total: e.MAX_CONNECTIONS,
    },
    mutationRateLimit: e.MUTATION_RATE_PER_S > 0 ? { perSecond: e.MUTATION_RATE_PER_S, burst: e.MUTATION_BURST } : null,
    operationsInFlightPerUser: e.MAX_OPERATIONS_IN_FLIGHT_PER_USER,
    maxWaitingBytes: waitingBytes(e),
    graphiql: e.GRAPHIQL ?? auth.localDevelopment,
    introspection: e.INTROSPECTION ?? auth.localDevelopment,
    graphqlFastPath: e.GRAPHQL_FAST_PATH,
    persistedDocuments: e.PERSISTED_DOCUMENTS,
    maxPageSize: e.MAX_PAGE_SIZE,
    maxBodyBytes: e.MAX_BODY_BYTES,
    chartUploadMaxBytes: e.CHART_UPLOAD_MAX_BYTES,
    maxQueryDepth: e.MAX_QUERY_DEPTH,
    maxQueryCost: e.MAX_QUERY_COST,
    tasks: {
      concurrency: e.TASK_CONCURRENCY,
      timeoutMs: e.TASK_TIMEOUT_MS,
      pollIntervalMs: e.TASK_POLL_INTERVAL_MS,
      leaseMs: e.TASK_LEASE_MS,
      maxActivePerUser: e.MAX_ACTIVE_TASKS_PER_USER,
      startRetry: {
        attempts: e.TASK_START_ATTEMPTS,
        firstDelayMs: e.TASK_START_RETRY_FIRST_MS,
        maxDelayMs: e.TASK_START_RETRY_MAX_MS,
      },
    },
    appService: appServiceSettings(e),
    history: { retentionDays: e.HISTORY_RETENTION_DAYS, cleanupIntervalMs: e.HISTORY_CLEANUP_INTERVAL_MS },
    statusCorrectionIntervalMs: e.STATUS_CORRECTION_INTERVAL_MS ?? e.RECONCILE_INTERVAL_MS,
    outbox: outboxSettings(e),
    maxWebhooks: e.MAX_WEBHOOKS,
    webhookCatchUpIntervalMs: e.WEBHOOK_CATCH_UP_INTERVAL_MS,
    publicBaseUrl: publicBaseUrl(e),
    catalogue: catalogueSettings(e),
    runtime: {
      collectIntervalMs: e.COLLECT_INTERVAL_MS,
      eventBuffer: e.RUNTIME_EVENT_BUFFER,
      subscriberBuffer: e.RUNTIME_SUBSCRIBER_BUFFER,
      maxBufferedBytes: e.SUBSCRIPTION_MAX_BUFFERED_BYTES,
      keepAliveMs: e.SUBSCRIPTION_KEEPALIVE_MS,
      snapshotMaxHz: e.SNAPSHOT_MAX_HZ,
      componentMetricsPushMs: e.COMPONENT_METRICS_PUSH_MS,
      chartRepoUrl: e.CHART_REPO_URL,
      chartRepoTimeoutMs: e.CHART_REPO_TIMEOUT_MS,
    },
    payments: {
      pollAttempts: e.PAYMENT_POLL_ATTEMPTS,
      pollIntervalMs: e.PAYMENT_POLL_INTERVAL_MS,
      developerService: developerServiceSettings(e, auth.localDevelopment),
      pushes: paymentPushSettings(e),
    },
  };
}

function clusterSettings(e: Env): Config['redis'] {
  if (!e.REDIS_URL) return null;
  // Instances on several machines each open a file of their own: the once-per-cluster jobs ran
  // against the leader's rows only, and the change log carried rows of databases that disagree.
  if (e.DATABASE_URL.startsWith('file:')) {
    throw invalidSetting(
      'REDIS_URL',
      'cluster mode needs a PostgreSQL DATABASE_URL shared by every instance, not a SQLite file',
    );
  }
  return {
    url: e.REDIS_URL,
    prefix: e.REDIS_PREFIX,
    changeLogRetention: e.CHANGE_LOG_RETENTION,
    instance: e.INSTANCE_NAME ?? `${hostname()}-${process.pid}`,
    leaderLeaseMs: e.LEADER_LEASE_MS,
    instanceSilenceMs: Math.max(e.INSTANCE_SILENCE_MS, 3 * e.COLLECT_INTERVAL_MS),
    stoppedComponentRetentionMs: e.STOPPED_COMPONENT_RETENTION_MS,
  };
}

function catalogueSettings(e: Env): Config['catalogue'] {
  return {
    marketSourceUrl: e.MARKET_SOURCE_URL ?? null,
    bundledFile: e.BUNDLED_CATALOGUE_FILE === 'off' ? null : e.BUNDLED_CATALOGUE_FILE,
    sourceVersion: e.MARKET_SOURCE_VERSION,
    syncIntervalMs: e.SYNC_INTERVAL_MS,
    backoffMaxMs: Math.max(e.SYNC_BACKOFF_MAX_MS, e.SYNC_INTERVAL_MS),
    timeoutMs: e.SYNC_TIMEOUT_MS,
    maxResponseBytes: e.SYNC_MAX_RESPONSE_BYTES,
    maxCatalogueBytes: e.SYNC_MAX_CATALOGUE_BYTES,
  };
}

function appServiceSettings(e: Env): Config['appService'] {
  if (!e.APP_SERVICE_URL) return { kind: 'simulated', stepMs: e.SIMULATED_STEP_MS, failApps: e.SIMULATED_FAIL_APPS };
  if (!e.APP_SERVICE_EVENT_SECRET) {
    throw invalidSetting(
      'APP_SERVICE_EVENT_SECRET',
      "required with APP_SERVICE_URL (it authenticates the app service's state events)",
    );
  }
  return {
    kind: 'http',
    url: e.APP_SERVICE_URL,
    token: e.APP_SERVICE_TOKEN,
    timeoutMs: e.APP_SERVICE_TIMEOUT_MS,
    eventSecret: e.APP_SERVICE_EVENT_SECRET,
    repoUrl: e.APP_SERVICE_REPO_URL,
  };
}

function developerServiceSettings(e: Env, localDevelopment: boolean): Config['payments']['developerService'] {
  // Checked even when the HTTP service is configured: a typo should not wait for the day the
  // template is removed to stop the server.
  let outcomes: Record<string, string>;
  try {
    outcomes = parseSimulatedOutcomes(e.SIMULATED_DEVELOPER_OUTCOMES);
  } catch (error) {
    throw invalidSetting('SIMULATED_DEVELOPER_OUTCOMES', (error as Error).message);
  }
  if (e.DEVELOPER_SERVICE_URL_TEMPLATE) {
    return { kind: 'http', urlTemplate: e.DEVELOPER_SERVICE_URL_TEMPLATE, timeoutMs: e.DEVELOPER_SERVICE_TIMEOUT_MS };
  }
  // The simulation grants every purchase: a deployment that authenticates real users and forgot
  // the template gave its apps away. Only on the operator's word, or on a developer's own machine.
  if (localDevelopment || e.SIMULATED_DEVELOPER_SERVICE) return { kind: 'simulated', outcomes };
  return { kind: 'none' };
}

function paymentPushSettings(e: Env): Config['payments']['pushes'] {
  const walletUrl = e.PAYMENT_WALLET_PUSH_URL ?? null;
  const frontendUrl = e.PAYMENT_FRONTEND_PUSH_URL ?? null;
  if ((walletUrl || frontendUrl) && !e.PAYMENT_PUSH_SECRET) {
    throw invalidSetting(
      'PAYMENT_PUSH_SECRET',
      'required with PAYMENT_WALLET_PUSH_URL or PAYMENT_FRONTEND_PUSH_URL (it signs the pushes)',
    );
  }
  // The sign request sent to the wallet names where to answer: the address this server listens
  // on (loopback, or 0.0.0.0 behind a gateway) is not one a wallet can reach.
  if (walletUrl && !e.PUBLIC_BASE_URL) {
    throw invalidSetting(
      'PUBLIC_BASE_URL',
      "required with PAYMENT_WALLET_PUSH_URL (the sign request's callback URL is built from it)",
    );
  }
  return { walletUrl, frontendUrl, secret: e.PAYMENT_PUSH_SECRET ?? null };
}

/**
 * MAX_WAITING_BYTES, never below MAX_BODY_BYTES: a waiting operation holds its whole request, so
 * below it no operation of a full-size body could ever wait (each got 429 while its user was busy).
 */
function waitingBytes(e: Env): number {
  if (e.MAX_WAITING_BYTES < e.MAX_BODY_BYTES) {
    throw invalidSetting(
      'MAX_WAITING_BYTES',
      `${e.MAX_WAITING_BYTES} is below MAX_BODY_BYTES (${e.MAX_BODY_BYTES}): an operation whose request is that large could never wait for a place; raise MAX_WAITING_BYTES or lower MAX_BODY_BYTES`,
    );
  }
  return e.MAX_WAITING_BYTES;
}

function outboxSettings(e: Env): Config['outbox'] {
  return {
    concurrency: e.OUTBOX_CONCURRENCY,
    maxAttempts: e.OUTBOX_MAX_ATTEMPTS,
    backoffBaseMs: e.OUTBOX_BACKOFF_BASE_MS,
    backoffMaxMs: Math.max(e.OUTBOX_BACKOFF_MAX_MS, e.OUTBOX_BACKOFF_BASE_MS),
    attemptTimeoutMs: e.OUTBOX_ATTEMPT_TIMEOUT_MS,
    pollIntervalMs: e.OUTBOX_POLL_INTERVAL_MS,
    retentionDays: e.OUTBOX_RETENTION_DAYS,
  };
}

/** PUBLIC_BASE_URL without its trailing slashes; unset, the address the server listens on. */
function publicBaseUrl(e: Env): string {
  if (e.PUBLIC_BASE_URL) return e.PUBLIC_BASE_URL.replace(/\/+$/, '');
  return `http://${e.HOST.includes(':') ? `[${e.HOST}]` : e.HOST}:${e.PORT}`;
}
