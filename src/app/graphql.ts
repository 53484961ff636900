import { randomUUID } from 'node:crypto';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { createFetch } from '@whatwg-node/fetch';
import { type DocumentNode, GraphQLError, getOperationAST } from 'graphql';
import {
  type CORSOptions,
  createYoga,
  type Plugin,
  type YogaInitialContext,
  type YogaServerInstance,
} from 'graphql-yoga';
import type { Authenticator, Viewer } from '../auth/viewer.js';
import type { DiskFullWatch } from '../db/disk-full.js';
import { DomainError } from '../domain/errors.js';
import { useMissedEventsExecution } from '../fanout/cohorts.js';
import { multipartLimits } from '../http/body.js';
import { useCompiledExecution } from '../http/compiled-execution.js';
import { EXPOSED_HEADERS, type OriginPolicy, UPLOAD_PREFLIGHT_HEADER } from '../http/cross-site.js';
import type { DocumentCache } from '../http/document-cache.js';
import { graphiqlDelivery } from '../http/graphiql-page.js';
import {
  createErrorMasker,
  domainGraphQLError,
  rememberRequestOf,
  useErrorRequestIds,
  usePartialResultStatus,
} from '../http/graphql-errors.js';
import { useInputBounds } from '../http/input-bounds.js';
import { mediaTypeOf } from '../http/media-type.js';
import { useOncePerOperation } from '../http/once-per-operation.js';
import { type UserPlaces, useOperationsInFlightLimit } from '../http/operations-in-flight.js';
import { persistedDocumentsOf, productionSwitches } from '../http/production-switches.js';
import { useQueryCost } from '../http/query-cost.js';
import { useMutationRateLimit } from '../http/rate-limit.js';
import { useReadYourWrites } from '../http/read-your-writes.js';
import { useRepeatedFieldsBound } from '../http/repeated-fields.js';
import { noteRefusal } from '../http/request-notes.js';
import { useSnapshotResultCache } from '../http/snapshot-result-cache.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import type { Context, ResolverServices } from '../schema/builder.js';
import { schema } from '../schema/index.js';
import { createLoaders } from '../services/loaders.js';
import { type GraphQLRequest, type OperationPipeline, PIPELINE_REQUEST } from '../transports/graphql-operation.js';
import { warnOfUnpersistedPages } from './dashboard-assets.js';
import { GRAPHIQL_EXAMPLES } from './graphiql-examples.js';
import type { AppMetrics } from './metrics.js';
import { loggedOperationName, type TrackedRequest } from './request-log.js';

/**
 * What a request brings into Yoga: the streaming transports authenticate once per connection and
 * hand the viewer in; a WebSocket connection's operations carry the connection's request id.
 */
type ServerContext = { req?: TrackedRequest; viewer?: Viewer; requestId?: string };

/** Yoga over the schema, with the plugins and the per-request context. */
export type GraphQLServer = YogaServerInstance<ServerContext, Context>;

export interface GraphQLDeps {
  config: Config;
  logger: Logger;
  /** What resolvers may call; nothing else reaches the context. */
  services: ResolverServices;
  authenticator: Authenticator;
  origins: OriginPolicy;
  /** Counts the operations; null leaves them uncounted (the benchmark's baseline). */
  metrics: AppMetrics | null;
  /** Parsed documents and validation results, shared by every transport. */
  documents: DocumentCache;
  /** Each user's places for executing operations (MAX_OPERATIONS_IN_FLIGHT_PER_USER), read by /metrics too. */
  operationPlaces: UserPlaces;
  /** Told of each database failure a client is answered UNAVAILABLE for (a full disk's episode). */
  diskFull?: Pick<DiskFullWatch, 'observe'>;
}

/** Yoga on /graphql: the schema, its plugins, CORS, error masking and the per-request context. */
export function createGraphQL({
  config,
  logger,
  services,
  authenticator,
  origins,
  metrics,
  documents,
  operationPlaces,
  diskFull,
}: GraphQLDeps): GraphQLServer {
  const counting = metrics?.plugins();
  const graphiql = graphiqlDelivery(renderGraphiQL);
  const manifest = persistedDocumentsOf(config);
  if (manifest) warnOfUnpersistedPages(manifest, logger);
  return createYoga<ServerContext, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    logging: false,
    // Off (GRAPHIQL=0, the default unless in local development mode): Yoga answers as without it.
    graphiql: config.graphiql && { title: 'Market Runtime GraphQL API', defaultQuery: GRAPHIQL_EXAMPLES },
    renderGraphiQL: graphiql.render,
    maskedErrors: {
      maskError: createErrorMasker(
        (error, requestId) =>
          logger.error({ err: error, ...(requestId ? { requestId } : {}) }, 'unexpected error in a GraphQL operation'),
        (error) => diskFull?.observe(error),
      ),
    },
    cors: corsFor(origins),
    // Yoga's documented way to bound its multipart parser: a Fetch API whose Request carries the limits.
    fetchAPI: createFetch({ formDataLimits: multipartLimits(config) }),
    parserAndValidationCache: documents.parserOptions(),
    plugins: [
      // Before useBrowserHeaders, which then adds the framing headers to the compressed page too.
      graphiql.plugin,
      useBrowserHeaders(),
      useMultipartRefusals(config),
      useAuthenticationFirst(authenticator),
      useRequestNotes(),
      useErrorRequestIds(),
      useStreamingTransportsForSubscriptions(),
      // Around the rest (AppMetrics.plugins): no parse hook, so the switches below still act first.
      ...(counting ? [counting.first] : []),
      // First, so that a refused document is never parsed.
      ...productionSwitches(config, manifest),
      // Before useMissedEventsExecution, whose plain execute must win for a cohort's catch-up.
      useCompiledExecution(),
      useMissedEventsExecution,
      EnvelopArmorPlugin({
        // The depth of the fields: a fragment spread or inline fragment adds no level (by default each
        // did, and a Relay-style client's fragments nested six deep were refused at a real depth of 2).
        maxDepth: { n: config.maxQueryDepth, ignoreIntrospection: true, flattenFragments: true },
        // Replaced by useQueryCost, which sees the variables (see there).
        costLimit: { enabled: false },
        // Suggestions are hidden with introspection off by graphql-js itself (useHiddenSuggestions).
        blockFieldSuggestion: { enabled: false },
      }),
      usePartialResultStatus(),
      useInputBounds(config.inputLimits),
      // Around the input bounds' validation function: checked before graphql-js compares any fields.
      useRepeatedFieldsBound(),
      useQueryCost({
        maxCost: config.maxQueryCost,
        maxPageSize: config.maxPageSize,
        listLimits: { maxWebhooks: config.maxWebhooks },
      }),
      // Before the rate limit, like the cost: an operation refused here takes no token.
      useOncePerOperation(),
      // After the bounds and the cost: a mutation they refuse takes no token (see there).
      ...(config.mutationRateLimit ? [useMutationRateLimit(config.mutationRateLimit)] : []),
      useSnapshotResultCache(),
      useReadYourWrites(),
      // After every plugin that may answer without executing: those answers take no place.
      useOperationsInFlightLimit(operationPlaces),
      ...(counting ? [counting.last] : []),
      // Last: every validation rule has been added by the plugins above (see there).
      documents.useValidationCache(),
    ],
    context: contextFactory({ services, authenticator }),
  });
}

/**
 * Yoga's pipeline for one operation outside Yoga's own HTTP handling (graphql-ws, SSE, the lean
 * HTTP path), with PIPELINE_REQUEST as its request (see there for why every transport needs it).
 *
 * The initial context is written out key by key, not spread from `initial`: envelop adds the
 * context factory's keys to it with Object.assign, and on an object built by a spread (whose
 * shape V8 does not share between calls) that cost 5.6–8.5 µs per operation, against 0.5 µs on
 * this literal (measured inside envelop's extendContext, `app(...)` under load on the lean path).
 */
export function operationPipeline(
  yoga: GraphQLServer,
  {
    params,
    viewer,
    req,
    requestId,
    call,
  }: {
    params: GraphQLRequest;
    viewer: Viewer;
    req?: TrackedRequest;
    requestId?: string;
    /** A WebSocket operation, which knows whether its client withdrew it (http/operations-in-flight.ts). */
    call?: { readonly withdrawn: boolean; readonly bytes: number };
  },
): OperationPipeline {
  const request = PIPELINE_REQUEST as unknown as Request;
  return yoga.getEnveloped({ params, viewer, req, requestId, call, request });
}

/** The viewer of each request Yoga's own path authenticated, for its context (contextFactory). */
const authenticated = new WeakMap<Request, Viewer>();

/**
 * Authenticates a request before its document is parsed or validated: answered first, a document
 * told a client with no credentials whether the fields it named exist ("Cannot query field …"),
 * with introspection off. The lean path (http-fast-path.ts) and the streaming transports
 * authenticate first already.
 */
function useAuthenticationFirst(authenticator: Authenticator): Plugin<object, ServerContext> {
  return {
    async onParams({ request, setResult, context }) {
      try {
        // A POST was authenticated by the router before its body was read (routes.ts).
        const viewer = context.viewer ?? (await authenticator.fromHeaders(request.headers));
        authenticated.set(request, viewer);
        // Known now, for the log line of a request refused before it runs.
        if (context.req) context.req.userId = viewer.userId;
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        setResult({ errors: [domainGraphQLError(error)] });
      }
    },
  };
}

/**
 * What a GraphQL request's log line says (request-log.ts), on every path that has a request to
 * log: its operation's name as /metrics counts it (the parsed document's when it identifies one
 * operation, else the client's `operationName`), and for Yoga's own answers the first error, which
 * the line shows when the status is a refusal (the lean path and the SSE transport note theirs).
 */
function useRequestNotes(): Plugin<object, ServerContext> {
  return {
    onParams({ params, context }) {
      if (context.req) context.req.operationName = loggedOperationName(params.operationName);
    },
    onParse: ({ context }) => ((context as ServerContext).req ? nameFromDocument : undefined),
    onResultProcess({ result, serverContext }) {
      const req = (serverContext as ServerContext | undefined)?.req;
      if (req && !Array.isArray(result) && !(Symbol.asyncIterator in result)) {
        const { errors, data } = result as { errors?: readonly GraphQLError[]; data?: unknown };
        noteRefusal(req, errors, data == null);
      }
    },
  };
}

/** After a parse: one function for every request (a closure per request would cost on the lean path). */
function nameFromDocument({ context, result }: { context: object; result: unknown }): void {
  const { req, params } = context as ServerContext & { params?: GraphQLRequest };
  if (!req || !result || result instanceof Error) return;
  const operation = getOperationAST(result as DocumentNode, params?.operationName);
  req.operationName = loggedOperationName(operation?.name?.value ?? params?.operationName);
}

/**
 * A subscription that reaches Yoga's own HTTP handling is refused. The SSE transport takes the
 * subscriptions to /graphql that name `text/event-stream` (transports/sse-accept.ts); one with no
 * Accept, or accepting any type (curl's default), came here, and Yoga streamed it itself: outside
 * the connection limits, keep-alive, token expiry and shutdown of the streaming transports. Refused as Yoga refuses one
 * under `Accept: application/json`: 406, naming the Accept to send. The transports' operations
 * carry PIPELINE_REQUEST as their request (operationPipeline).
 */
function useStreamingTransportsForSubscriptions(): Plugin {
  return {
    onSubscribe({ args, setResultAndStopExecution }) {
      if ((args.contextValue as { request?: unknown }).request === PIPELINE_REQUEST) return;
      const message =
        'A subscription over HTTP is a stream of Server-Sent Events: send Accept: text/event-stream ' +
        '(or use /graphql/stream, or graphql-ws on /graphql)';
      const http = { status: 406, headers: { accept: 'text/event-stream' } };
      setResultAndStopExecution({
        errors: [new GraphQLError(message, { extensions: { code: 'NOT_ACCEPTABLE', http } })],
      });
    },
  };
}

/**
 * Headers for browsers on what Yoga answers itself. GraphiQL's page may not be framed by another
 * site, whose page could otherwise lay a button over GraphiQL's Run and have a user run a mutation
 * it put in the editor (`?query=`), as that user (the dashboard's pages say the same in their CSP).
 * Its address, whose `?query=` may hold anything typed in the editor, goes to no other site a link
 * leads to (`same-origin`, as the dashboard's pages), and it is never read as another type than it
 * is sent as (`nosniff`, as the dashboard's files). And an answer with CORS headers names its
 * origin: `Vary: Origin` keeps a shared cache from handing one origin's answer to another. Every
 * answer is the viewer's own (a GET query included, which caches may keep): `Cache-Control:
 * no-store` unless it says otherwise.
 */
function useBrowserHeaders(): Plugin {
  return {
    onResponse({ response }) {
      const { headers } = response;
      if (!headers.has('cache-control')) headers.set('cache-control', 'no-store');
      if (headers.get('content-type')?.startsWith('text/html')) {
        // GraphiQL's page has its own, stricter (graphiql-page.ts pagePolicy).
        if (!headers.has('content-security-policy')) headers.set('content-security-policy', "frame-ancestors 'none'");
        headers.set('x-frame-options', 'DENY');
        headers.set('referrer-policy', 'same-origin');
        headers.set('x-content-type-options', 'nosniff');
      }
      if (headers.has('access-control-allow-origin') && !headers.get('vary')?.toLowerCase().includes('origin')) {
        headers.append('vary', 'Origin');
      }
    },
  };
}

/**
 * A multipart request over multipartLimits is refused by Yoga's parser as BAD_REQUEST (400) or
 * REQUEST_ENTITY_TOO_LARGE (413), naming only bytes. Answered instead as the body limit is
 * (VALIDATION, naming the setting), before any operation runs: so nothing is stored.
 */
function useMultipartRefusals({ maxBodyBytes, chartUploadMaxBytes }: Config): Plugin {
  const refusal = (error: unknown): GraphQLError | null => {
    const message = error instanceof Error ? error.message : '';
    const refuse = (status: number, text: string) =>
      new GraphQLError(text, { extensions: { code: 'VALIDATION', http: { status } } });
    if (message.includes('File size limit exceeded')) {
      return refuse(413, `The chart file is larger than ${chartUploadMaxBytes} bytes (CHART_UPLOAD_MAX_BYTES)`);
    }
    if (message.includes('Field value size exceeded')) {
      return refuse(413, `A multipart field (operations, map) is larger than ${maxBodyBytes} bytes (MAX_BODY_BYTES)`);
    }
    if (/(Fields|Files|Parts) limit exceeded/.test(message)) {
      return refuse(400, 'A multipart request may carry only the operations and map fields and one file');
    }
    return null;
  };
  return {
    onRequestParse({ request, requestParser, setRequestParser }) {
      if (!requestParser || mediaTypeOf(request.headers.get('content-type')) !== 'multipart/form-data') return;
      setRequestParser(async (request) => {
        try {
          return await requestParser(request);
        } catch (error) {
          throw refusal(error) ?? error;
        }
      });
    },
  };
}

/** Browsers: only the allow-list gets CORS headers (the server's own pages need none). */
function corsFor(origins: OriginPolicy) {
  return (request: Request): CORSOptions => {
    const origin = request.headers.get('origin');
    if (!origin || !origins.allowsCrossOrigin(origin)) return false;
    return {
      origin: [origin],
      credentials: true,
      methods: ['GET', 'POST'],
      // x-graphql-yoga-csrf: the header a chart upload (multipart) must carry (http/cross-site.ts).
      allowedHeaders: ['content-type', 'authorization', 'accept', 'x-request-id', UPLOAD_PREFLIGHT_HEADER],
      exposedHeaders: EXPOSED_HEADERS,
      maxAge: 600,
    };
  };
}

/**
 * Each operation's context: the viewer (handed in by a streaming transport, else from the
 * request's headers), the resolver services, fresh loaders and the request id. It also tells the
 * request log who asked what. No logger: none of the resolvers logs (the services have theirs),
 * and a child logger per request cost ~5 % of the server's CPU on `{ viewer }` under load (pino
 * runs its redaction over the bindings of each child).
 */
function contextFactory({ services, authenticator }: Pick<GraphQLDeps, 'services' | 'authenticator'>) {
  return async ({
    request,
    req,
    viewer: given,
    requestId: connectionRequestId,
  }: YogaInitialContext & ServerContext): Promise<Context> => {
    const requestId = connectionRequestId ?? req?.requestId ?? randomUUID();
    let viewer: Viewer;
    try {
      viewer = given ?? authenticated.get(request) ?? (await authenticator.fromHeaders(request.headers));
    } catch (error) {
      if (error instanceof DomainError) throw domainGraphQLError(error);
      throw rememberRequestOf(error, requestId);
    }
    if (req) req.userId = viewer.userId;
    return {
      viewer,
      services,
      loaders: createLoaders(services),
      requestId,
    };
  };
}
