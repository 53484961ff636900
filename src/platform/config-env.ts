import { z } from 'zod';
import {
  authTokens,
  catalogueFile,
  commaList,
  databaseUrl,
  decimal,
  developerUrlTemplate,
  flag,
  httpUrl,
  marketSourceUrl,
  nonNegativeInt,
  nonNegativeMs,
  originList,
  port,
  positiveInt,
  positiveMs,
  proxyUrl,
  publicUrl,
  pushUrl,
  secret,
  serviceUrl,
} from './config-values.js';
import { redisUrlProblem } from './connection-urls.js';

/**
 * The environment variables of the server: one entry per variable, with its check and default
 * (TSDoc `@default`). This is a data table; `loadConfig` (config.ts) turns the parsed values into
 * the typed `Config` the rest of the server reads.
 */

export type { ApiToken, Role } from './config-values.js';

/** DATABASE_QUERY_TIMEOUT_MS's default, also createPrismaClient's when it is given none. */
export const DEFAULT_QUERY_TIMEOUT_MS = 15_000;

/**
 * DATABASE_POOL_SIZE's default: pg's own (its Pool's `max`), the size every instance ran with
 * before it was a setting.
 */
export const DEFAULT_POOL_SIZE = 10;

/** MAX_PAGE_SIZE's default, also what the schema's `first`/`last` descriptions state. */
export const DEFAULT_MAX_PAGE_SIZE = 100;

/** Every environment variable the server reads, with its validation and default. */
export const envSchema = z.object({
  /** TCP port of the HTTP server. @default 4000 */
  PORT: decimal(port).default(4000),
  /** Interface to bind. Must be loopback when no authentication is configured. @default 127.0.0.1 */
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  /** pino level. @default info */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * `pretty`: one readable, coloured line per entry (pino-pretty); `json`: one JSON object per line,
   * for log collectors; `auto`: pretty when standard output is a terminal, JSON otherwise. Only
   * `json` makes a failed start a JSON entry too (platform/start-failure.ts). @default auto
   */
  LOG_FORMAT: z.enum(['auto', 'pretty', 'json']).default('auto'),
  /**
   * Also log the requests of health probes and metrics scrapes (/health, /readiness, /metrics),
   * which arrive every few seconds and say nothing new. @default false
   */
  LOG_PROBES: flag.default(false),
  /**
   * When set, GET /metrics answers only `Authorization: Bearer <METRICS_TOKEN>` (401 otherwise);
   * unset, the metrics are open, as Prometheus scrapes usually are inside a cluster network.
   */
  METRICS_TOKEN: secret(16).optional(),
  /**
   * How long a stop (SIGTERM) waits for in-flight requests and WebSocket closing handshakes
   * before it cuts the connections left; 0 cuts them at once. @default 10000
   */
  SHUTDOWN_TIMEOUT_MS: decimal(nonNegativeMs.max(600_000, 'must be at most 600000')).default(10_000),
  /**
   * How long an idle keep-alive connection stays open for its next request. Above the idle timeout
   * of any proxy or load balancer in front (nginx's upstream keepalive_timeout, 60 s by default; AWS
   * ALB 60 s): at Node's 5 s the server closed connections nginx was about to reuse, and nginx
   * answered 502 to the request it had sent on one (never retried: a POST). @default 65000
   */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: decimal(
    positiveMs.min(1000, 'must be at least 1000').max(1_200_000, 'must be at most 1200000'),
  ).default(65_000),
  /**
   * How long one request (its headers and body) may take to arrive: a client trickling it in
   * (slowloris) holds a connection no longer; its headers get at most 20 s of it. 60 s carries a
   * chart upload of the largest size (MAX_BODY_BYTES + CHART_UPLOAD_MAX_BYTES, 11 MiB) at about
   * 1.5 Mbit/s; raise it for admins uploading over slower links. @default 60000
   */
  HTTP_REQUEST_TIMEOUT_MS: decimal(
    positiveMs.min(1000, 'must be at least 1000').max(600_000, 'must be at most 600000'),
  ).default(60_000),
  /** `file:<path>` for SQLite, `postgresql://…` for PostgreSQL. @default file:./data/market.db */
  DATABASE_URL: databaseUrl,
  /**
   * PostgreSQL: how long one statement may go unanswered before it fails (the request then answers
   * 503) and its connection is dropped. A database that stops answering (packets dropped, no reset)
   * otherwise held requests for as long. Migrations have no such bound. @default 15000
   */
  DATABASE_QUERY_TIMEOUT_MS: decimal(
    positiveMs.min(1000, 'must be at least 1000').max(600_000, 'must be at most 600000'),
  ).default(DEFAULT_QUERY_TIMEOUT_MS),
  /**
   * PostgreSQL: connections of this instance's pool, the most it holds at once (readiness has one
   * more of its own). Size it so that every instance's, plus the migration job's one, fit under
   * the server's max_connections. A query that finds them all in use waits up to 5 s for
   * one, then answers 503 "database busy". @default 10
   */
  DATABASE_POOL_SIZE: decimal(positiveInt.max(1000, 'must be at most 1000')).default(DEFAULT_POOL_SIZE),
  /** Seed demo data into an empty database. @default true */
  DEMO_DATA: flag.default(true),
  /** `redis://…` or `rediss://…`: the cluster mode (changes shared by every instance), on PostgreSQL only. @default none */
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .superRefine((url, ctx) => {
      const problem = /^rediss?:\/\//.test(url) ? redisUrlProblem(url) : undefined;
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  /** Prefix of every Redis key and channel, so several deployments can share one Redis. @default market: */
  REDIS_PREFIX: z.string().trim().min(1).max(100).default('market:'),
  /** This instance's name in the cluster's runtime (its components are `<name>@<instance>`). @default <hostname>-<pid> */
  INSTANCE_NAME: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1 to 64 letters, digits, dots, dashes or underscores')
    .optional(),
  /** Changes kept in the Redis change log (a stream, trimmed approximately to this length). @default 100000 */
  CHANGE_LOG_RETENTION: decimal(
    positiveInt.min(1000, 'must be at least 1000').max(10_000_000, 'must be at most 10000000'),
  ).default(100_000),
  /**
   * With REDIS_URL: how long the leader's lease on the once-per-cluster work lasts unless renewed
   * (renewed every third of it); a killed leader is replaced within this plus a third. @default 10000
   */
  LEADER_LEASE_MS: decimal(positiveMs.min(300, 'must be at least 300').max(600_000, 'must be at most 600000')).default(
    10_000,
  ),
  /**
   * With REDIS_URL: an instance whose components the leader has not seen updated for this long
   * counts as gone, and they show STOPPED (at least three COLLECT_INTERVAL_MS). @default 30000
   */
  INSTANCE_SILENCE_MS: decimal(positiveMs).default(30_000),
  /** With REDIS_URL: how long a gone instance's STOPPED components stay in the runtime. @default 3600000 */
  STOPPED_COMPONENT_RETENTION_MS: decimal(nonNegativeMs).default(3_600_000),
  /** Bearer tokens, `userId:role:token,…`. @default none */
  AUTH_TOKENS: authTokens,
  /** Trusted gateway header carrying the user id (e.g. X-Bfl-User). @default none */
  AUTH_USER_HEADER: z
    .string()
    // An HTTP field name (RFC 9110 token): any other never arrives, and every request was refused.
    .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/, 'must be an HTTP header name (letters, digits, - and _; no spaces)')
    .optional(),
  /** User ids that the gateway header marks as admins, comma-separated. @default none */
  AUTH_ADMIN_USERS: commaList,
  /** Largest `first`/`last` a connection accepts. @default 100 */
  MAX_PAGE_SIZE: decimal(positiveInt.max(1000, 'must be at most 1000')).default(DEFAULT_MAX_PAGE_SIZE),
  /** Largest request body in bytes. @default 1048576 */
  MAX_BODY_BYTES: decimal(positiveInt).default(1024 * 1024),
  /** Largest chart package `uploadChart` accepts (a multipart POST may be this plus its framing). @default 10485760 (10 MiB) */
  CHART_UPLOAD_MAX_BYTES: decimal(positiveInt.max(1024 * 1024 * 1024, 'must be at most 1073741824 (1 GiB)')).default(
    10 * 1024 * 1024,
  ),
  /** Deepest selection a query may nest. @default 12 */
  MAX_QUERY_DEPTH: decimal(positiveInt).default(12),
  /** Most field values an operation's answer may hold, pages counted by their size (http/query-cost.ts). @default 50000 */
  MAX_QUERY_COST: decimal(positiveInt).default(50_000),
  /** Most items in one list input (a filter's values, envs, ids). @default 100 */
  MAX_INPUT_LIST_LENGTH: decimal(positiveInt).default(100),
  /** Longest string input, in characters (a wallet's JWS signature runs to several KiB). @default 16384 */
  MAX_INPUT_STRING_LENGTH: decimal(positiveInt).default(16_384),
  /** Deepest nesting of a JSON scalar input. @default 8 */
  MAX_INPUT_JSON_DEPTH: decimal(positiveInt.max(64, 'must be at most 64')).default(8),
  /** Origins (scheme://host[:port]) that browsers may call the API from; unset → same origin only. @default none */
  CORS_ORIGINS: originList,
  /** Subscriptions (and operations in flight) one WebSocket connection may hold. @default 100 */
  MAX_SUBSCRIPTIONS_PER_CONNECTION: decimal(positiveInt).default(100),
  /** WebSocket connections plus SSE streams one user may hold open on this instance (each counts its own). @default 50 */
  MAX_CONNECTIONS_PER_USER: decimal(positiveInt).default(50),
  /**
   * Queries and mutations of one user executing at once on this instance; more wait (up to 32, 30 s
   * each), then get 429; one whose client left while it waited never runs. @default 4
   */
  MAX_OPERATIONS_IN_FLIGHT_PER_USER: decimal(positiveInt).default(4),
  /** Bytes of the requests of every user's operations waiting for a place; past them 429. @default 67108864 (64 MiB) */
  MAX_WAITING_BYTES: decimal(positiveInt).default(64 * 1024 * 1024),
  /** Distinct subscriptions (run for every event) one user may hold at once per instance; equal ones count once. @default 32 */
  MAX_DISTINCT_SUBSCRIPTIONS_PER_USER: decimal(positiveInt).default(32),
  /** WebSocket connections and SSE streams the instance holds in all, authenticated or not. @default 20000 */
  MAX_CONNECTIONS: decimal(positiveInt).default(20_000),
  /** Mutations per second a user's bucket (one per instance) refills with; 0 turns the limit off. @default 10 */
  MUTATION_RATE_PER_S: decimal(z.number().min(0, 'must be 0 or more')).default(10),
  /** Mutations a user may send at once before the rate applies (the bucket's size), and the most one operation may carry. @default 60 */
  MUTATION_BURST: decimal(positiveInt).default(60),
  /** Serve GraphiQL on GET /graphql. @default on only in local development mode */
  GRAPHIQL: flag.optional(),
  /** Answer introspection queries. @default on only in local development mode */
  INTROSPECTION: flag.optional(),
  /**
   * Answer plain `POST /graphql` JSON requests on the lean path (Yoga's pipeline without its
   * Fetch-API layer; transports/http-fast-path.ts). Off: every request goes through Yoga. @default on
   */
  GRAPHQL_FAST_PATH: flag.default(true),
  /** Path of a persisted-documents manifest (hash → document): only those operations run. @default none */
  PERSISTED_DOCUMENTS: z.string().min(1).optional(),
  /** HS256 secret for JWT bearer tokens (32+ characters). @default none */
  AUTH_JWT_SECRET: secret(32).optional(),
  /** PEM public key (SPKI) for RS256/ES256 JWTs, or a path to one. @default none */
  AUTH_JWT_PUBLIC_KEY: z.string().min(1).optional(),
  /** Path of a JWKS file (RS256/ES256 keys by kid). @default none */
  AUTH_JWT_JWKS_FILE: z.string().min(1).optional(),
  /** Required `iss` of JWTs. @default none (not checked) */
  AUTH_JWT_ISSUER: z.string().min(1).optional(),
  /** Required `aud` of JWTs. @default none (not checked) */
  AUTH_JWT_AUDIENCE: z.string().min(1).optional(),
  /** Clock skew tolerated on exp/nbf/iat, in seconds. @default 30 */
  AUTH_JWT_CLOCK_SKEW_S: decimal(nonNegativeInt.max(600, 'must be at most 600')).default(30),
  /** Claim holding the user id. @default sub */
  AUTH_JWT_USER_CLAIM: z.string().trim().min(1).default('sub'),
  /** Claim holding the role (a string or a list); the value "admin" makes an admin. @default role */
  AUTH_JWT_ROLE_CLAIM: z.string().trim().min(1).default('role'),
  /** Tasks executed at once by this instance. @default 4 */
  TASK_CONCURRENCY: decimal(positiveInt.max(64, 'must be at most 64')).default(4),
  /** A task still running after this long fails (at least 100). @default 1800000 (30 min) */
  // No task finishes faster than its app-service round trip and the database writes around it, so a
  // value under 100 ms is a slip of unit (`1`, `30` meant in minutes or seconds) that fails every task
  // at once. 100 ms still lets a test time a task out quickly (the tests use 300).
  TASK_TIMEOUT_MS: decimal(positiveMs.min(100, 'must be at least 100')).default(30 * 60 * 1000),
  /** How often the engine looks for pending tasks it was not told about (other instances). @default 2000 */
  TASK_POLL_INTERVAL_MS: decimal(positiveMs).default(2000),
  /** A running task whose instance stopped renewing its heartbeat for this long is recovered. @default 30000 */
  // At least three of the engine's heartbeats, which are never closer than 50 ms (task-engine.ts).
  TASK_LEASE_MS: decimal(positiveMs.min(150, 'must be at least 150 (3 heartbeats of 50 ms)')).default(30_000),
  /** Sends of a task's start the app service did not take (HTTP 429, 503, no connection), the first included. @default 8 */
  // 1 never sends one again. With the waits below (1, 2, 4 … 32, 60 s, each drawn between half and all of it)
  // the eighth send comes 1-2 minutes after the first: an app service's rolling restart; then the task fails.
  TASK_START_ATTEMPTS: decimal(positiveInt.max(100, 'must be at most 100')).default(8),
  /** The wait before a start the app service did not take is sent again; it doubles with each refusal. @default 1000 */
  TASK_START_RETRY_FIRST_MS: decimal(positiveMs).default(1000),
  /** The longest such wait, also for what the app service's Retry-After asks. @default 60000 */
  TASK_START_RETRY_MAX_MS: decimal(positiveMs).default(60_000),
  /** PENDING plus RUNNING tasks one user may have; a submission over it is LIMIT_EXCEEDED. @default 100 */
  // Bounds how many tasks one user can queue ahead of everyone (the claim takes turns between users,
  // but every pending task costs it: 10,000 pending, 4-37 ms a claim on SQLite), and well above what
  // a person starts by hand.
  MAX_ACTIVE_TASKS_PER_USER: decimal(positiveInt.max(10_000, 'must be at most 10000')).default(100),
  /** Pace of the simulated app service, per state step. @default 800 */
  SIMULATED_STEP_MS: decimal(nonNegativeMs).default(800),
  /** Apps whose operations the simulated app service fails: comma-separated names, `*` wildcards. @default none */
  SIMULATED_FAIL_APPS: commaList,
  /** Base URL of the real app service; unset → the simulated one. @default none */
  APP_SERVICE_URL: serviceUrl.optional(),
  /** Credential this server sends to the app service as X-Authorization. @default none */
  APP_SERVICE_TOKEN: secret(1).optional(),
  /** Timeout of one app-service call. @default 120000 */
  APP_SERVICE_TIMEOUT_MS: decimal(positiveMs).default(120_000),
  /** Shared secret the app service sends (Bearer) with POST /events/app-state. Required with APP_SERVICE_URL. */
  APP_SERVICE_EVENT_SECRET: secret(16).optional(),
  /** Chart repository URL passed to the app service as `repoUrl`. @default http://127.0.0.1:82/ */
  APP_SERVICE_REPO_URL: httpUrl.default('http://127.0.0.1:82/'),
  /**
   * Period of status correction: the app service's full app list compared with the stored states
   * (both modes; it also runs once at start). Unset → RECONCILE_INTERVAL_MS, its former name. @default 60000
   */
  STATUS_CORRECTION_INTERVAL_MS: decimal(positiveMs).optional(),
  /** Former name of STATUS_CORRECTION_INTERVAL_MS, still read. @default 60000 */
  RECONCILE_INTERVAL_MS: decimal(positiveMs).default(60_000),
  /** Deliveries the outbox worker of one instance has in flight at once. @default 8 */
  OUTBOX_CONCURRENCY: decimal(positiveInt.max(256, 'must be at most 256')).default(8),
  /** Attempts of one outbound message before it is dead-lettered. @default 10 */
  OUTBOX_MAX_ATTEMPTS: decimal(positiveInt.max(100, 'must be at most 100')).default(10),
  /** Pause before the first retry; each later retry doubles it (with jitter). @default 1000 */
  OUTBOX_BACKOFF_BASE_MS: decimal(positiveMs).default(1000),
  /** Longest pause between two attempts. @default 600000 */
  OUTBOX_BACKOFF_MAX_MS: decimal(positiveMs).default(600_000),
  /** Deadline of one whole delivery attempt, connecting to reading the answer's end; locks derive from it. @default 10000 */
  OUTBOX_ATTEMPT_TIMEOUT_MS: decimal(positiveMs).default(10_000),
  /** Longest wait before the worker looks for due messages written by another instance. @default 1000 */
  OUTBOX_POLL_INTERVAL_MS: decimal(positiveMs).default(1000),
  /**
   * How long DELIVERED and DEAD outbox messages are kept after their last change (PENDING ones are
   * never removed). A week, not the history's month: a soak wrote ~370 messages a minute with two
   * webhooks, 16 million rows (~20 GB) at 30 days, more than history and tasks together. What reads
   * them looks back days, not weeks: a webhook's `deliveries` (its latest 50 at most), a dead
   * delivery to send again, a payment push's `delivery` (null once it is gone; the push itself stays
   * HISTORY_RETENTION_DAYS) and the webhook catch-up (which looks back this long less an hour). @default 7
   */
  OUTBOX_RETENTION_DAYS: decimal(positiveInt.max(36_500, 'must be at most 36500 (100 years)')).default(7),
  /** Most webhooks an installation may register. @default 100 */
  MAX_WEBHOOKS: decimal(positiveInt.max(10_000, 'must be at most 10000')).default(100),
  /**
   * How often the leader looks in the database for webhook events whose delivery was never
   * enqueued (a process that died between a change's commit and its dispatch); also at start.
   * 0 turns the catch-up off. @default 60000
   */
  WEBHOOK_CATCH_UP_INTERVAL_MS: decimal(nonNegativeMs).default(60_000),
  /**
   * This server's address as browsers and wallets reach it (behind the gateway), for the URLs it
   * hands out, e.g. the payment sign request's callback. Unset → http://HOST:PORT. @default none
   */
  PUBLIC_BASE_URL: publicUrl.optional(),
  /** Where payment pushes to the buyer's LarePass wallet are POSTed; unset → kept, not sent. @default none */
  PAYMENT_WALLET_PUSH_URL: pushUrl,
  /** Where payment state pushes to the buyer's Market frontend are POSTed; unset → kept, not sent. @default none */
  PAYMENT_FRONTEND_PUSH_URL: pushUrl,
  /** HMAC-SHA256 key that signs payment pushes (X-Signature); required with a push URL. @default none */
  PAYMENT_PUSH_SECRET: secret(16).optional(),
  /** Credential queries per polling round after a purchase is signed. @default 20 */
  PAYMENT_POLL_ATTEMPTS: decimal(positiveInt.max(1000, 'must be at most 1000')).default(20),
  /** Pause between credential queries. @default 5000 */
  PAYMENT_POLL_INTERVAL_MS: decimal(positiveMs).default(5000),
  /**
   * Developer credential endpoint with a {developer} placeholder. Unset: the simulated developer
   * service in local development mode or with SIMULATED_DEVELOPER_SERVICE, otherwise none (every
   * purchase is refused). @default none
   */
  DEVELOPER_SERVICE_URL_TEMPLATE: developerUrlTemplate.optional(),
  /**
   * Use the simulated developer service, which grants every purchase, even though users are
   * authenticated (demos, tests); ignored when DEVELOPER_SERVICE_URL_TEMPLATE is set. @default false
   */
  SIMULATED_DEVELOPER_SERVICE: flag.default(false),
  /** Timeout of one developer-service call. @default 10000 */
  DEVELOPER_SERVICE_TIMEOUT_MS: decimal(positiveMs).default(10_000),
  /** Outcomes of the simulated developer service, `productId=outcome,…`. @default every product: vc-after-2 */
  SIMULATED_DEVELOPER_OUTCOMES: z.string().optional(),
  /** Period of the poll-only runtime sources (component health, chart repo). @default 5000 */
  COLLECT_INTERVAL_MS: decimal(positiveMs).default(5000),
  /**
   * Runtime events kept for clients resuming with `since`: ~1.3 KB of heap each (README), so at
   * most 100,000 (~130 MB), within the ~524 MiB heap Node takes under the 1 GiB limit of
   * deploy/k8s/market-api.yaml; 1,000,000 took more heap than that. @default 10000
   */
  RUNTIME_EVENT_BUFFER: decimal(positiveInt.max(100_000, 'must be at most 100000')).default(10_000),
  /** Events one slow subscriber may have waiting before it gets RESYNC instead. @default 1000 */
  RUNTIME_SUBSCRIBER_BUFFER: decimal(positiveInt.max(100_000, 'must be at most 100000')).default(1000),
  /** Unsent bytes a WebSocket or SSE response may hold before its subscriptions queue instead. @default 1048576 */
  SUBSCRIPTION_MAX_BUFFERED_BYTES: decimal(positiveInt).default(1024 * 1024),
  /** Keep-alive period: silent WebSockets are pinged (and closed without an answer), idle SSE streams get a comment. @default 12000 */
  // A period shorter than a round trip under load closes healthy connections (`5`, meant as seconds,
  // closed every WebSocket ~200 ms after it opened).
  SUBSCRIPTION_KEEPALIVE_MS: decimal(positiveMs.min(100, 'must be at least 100')).default(12_000),
  /** Most runtimeSnapshot pushes per second per subscriber. @default 5 */
  SNAPSHOT_MAX_HZ: decimal(z.number().min(0.001, 'must be at least 0.001').max(100, 'must be at most 100')).default(5),
  /**
   * A component whose metrics alone changed is pushed as a runtime event at most this often; 0:
   * never (read them with `components` or `runtimeSnapshot`). State, health or message changes are
   * always pushed at once. @default 0
   */
  COMPONENT_METRICS_PUSH_MS: decimal(nonNegativeMs).default(0),
  /** Chart repository base URL; unset → the chart_repo source is disabled. @default none */
  CHART_REPO_URL: serviceUrl.optional(),
  /** Timeout of one chart-repo status call, reading its answer included. @default 5000 */
  CHART_REPO_TIMEOUT_MS: decimal(
    positiveMs.min(100, 'must be at least 100').max(600_000, 'must be at most 600000'),
  ).default(5000),
  /** History records, finished tasks and payment pushes older than this are removed (outbox messages: OUTBOX_RETENTION_DAYS). @default 30 */
  HISTORY_RETENTION_DAYS: decimal(positiveInt.max(36_500, 'must be at most 36500 (100 years)')).default(30),
  /** The retention cleanup runs every minute, or this often when shorter. @default 3600000 (1 h) */
  HISTORY_CLEANUP_INTERVAL_MS: decimal(positiveMs).default(60 * 60 * 1000),
  /**
   * The remote catalogue `market.olares` syncs from (an Olares market source); unset → the
   * catalogue file bundled with the project. Applied to `market.olares` at every start. Held to the
   * rule addMarketSource holds a baseUrl to (readMarketSourceUrl). @default none
   */
  MARKET_SOURCE_URL: marketSourceUrl.optional(),
  /**
   * The catalogue file `market.olares` reads when MARKET_SOURCE_URL is unset: a path, or `off`
   * for none (the source then stays empty; uploads still work); a path that cannot be read stops
   * the start. @default the project's
   * catalogue/bundled.json
   */
  BUNDLED_CATALOGUE_FILE: catalogueFile.optional(),
  /** The Olares version sent to market sources (`?version=`). @default 1.12.0 */
  MARKET_SOURCE_VERSION: z
    .string()
    .regex(/^[0-9A-Za-z.+-]{1,32}$/, 'must look like 1.12.0')
    .default('1.12.0'),
  /** How often each remote market source is checked for a new catalogue. @default 300000 (5 min) */
  SYNC_INTERVAL_MS: decimal(positiveMs.min(1000, 'must be at least 1000 (1 s)')).default(5 * 60 * 1000),
  /** Longest wait before retrying a source whose syncs keep failing. @default 3600000 (1 h) */
  SYNC_BACKOFF_MAX_MS: decimal(positiveMs.min(1000, 'must be at least 1000 (1 s)')).default(60 * 60 * 1000),
  /** Bound on each call to a market source, reading its answer included. @default 30000 */
  SYNC_TIMEOUT_MS: decimal(positiveMs).default(30_000),
  /** Largest answer read from a market source (an index of every app is the biggest). @default 33554432 (32 MiB) */
  SYNC_MAX_RESPONSE_BYTES: decimal(positiveInt).default(32 * 1024 * 1024),
  /** Most entry text one sync of a source reads (changed apps, held until its write). @default 268435456 (256 MiB) */
  SYNC_MAX_CATALOGUE_BYTES: decimal(positiveInt).default(256 * 1024 * 1024),
  /** Proxy of outbound http:// calls, and https:// ones without HTTPS_PROXY (outbound-agent.ts). @default none */
  HTTP_PROXY: proxyUrl.optional(),
  /** Proxy of outbound https:// calls (CONNECT). @default HTTP_PROXY */
  HTTPS_PROXY: proxyUrl.optional(),
  /** Hosts called directly despite a proxy: names, `.suffix`, `host:port`, `*` (comma- or space-separated). @default none */
  NO_PROXY: z.string().optional(),
});

export type Env = z.infer<typeof envSchema>;
