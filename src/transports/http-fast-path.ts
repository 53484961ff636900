import type { IncomingMessage, ServerResponse } from 'node:http';
import { type DocumentNode, type ExecutionResult, getOperationAST } from 'graphql';
import { type FetchAPI, processRegularResult } from 'graphql-yoga';
import type { Authenticator, Viewer } from '../auth/viewer.js';
import type { OriginPolicy } from '../http/cross-site.js';
import { withPartialResultStatus } from '../http/graphql-errors.js';
import { jsonMediaTypeFor, mediaTypeOf } from '../http/media-type.js';
import { noteRefusal, type RequestNotes } from '../http/request-notes.js';
import { BoundedLru } from '../platform/bounded-lru.js';
import type { Logger } from '../platform/logger.js';
import { type GraphQLRequest, graphQLRequest, type OperationPipeline } from './graphql-operation.js';

/**
 * The lean path for the common request: `POST /graphql` with a JSON body, answered as JSON. It runs
 * Yoga's envelop pipeline directly (parse, validate, context, execute: every plugin, as the
 * WebSocket transport does) and renders the result with Yoga's own result processor, so status
 * codes, headers and bodies are Yoga's; what it skips is Yoga's Fetch-API layer around them (a
 * Request and Response object, header maps, an abort signal and a body stream per request).
 *
 * Measured with `npm run bench -- --only g1` (2 cores: server on one, autocannon with 50
 * connections on the other): `{ viewer { userId isAdmin } }` went from 2,461 req/s through Yoga
 * (0.40 ms CPU per request, as stock Yoga) to 9,066 req/s (0.094 ms) on this path, compiled
 * execution on in both; Mercurius with graphql-jit over the same schema did 11,154 req/s.
 *
 * Anything unusual goes to Yoga untouched, before anything has run: another method or content
 * type, an Accept that Yoga would not answer with JSON, a cross-origin request that needs CORS
 * headers, a body that is not a plain request object, a document that does not parse or
 * validate, a subscription, a failed authentication. Yoga then answers exactly as without this
 * path (test/fast-path.test.ts compares both, request by request).
 */

/** A POST whose body was read, and whose sender was authenticated before (routes.ts), when known. */
export type FastPathRequest = IncomingMessage & RequestNotes & { body?: Buffer; viewer?: Viewer };

/** The initial context of Yoga's pipeline for one request (`yoga.getEnveloped(...)`). */
export interface FastPathContext {
  params: GraphQLRequest;
  viewer: Viewer;
  req: FastPathRequest;
}

/** What the route needs of Yoga: its pipeline for one request, with the viewer already known. */
export type PipelineFor = (initial: FastPathContext) => OperationPipeline;

export interface FastPathDeps {
  pipeline: PipelineFor;
  authenticator: Authenticator;
  origins: OriginPolicy;
  logger: Logger;
}

/**
 * Accept headers whose answer is kept: clients send a handful of distinct ones, and reading one
 * was ~7 % of the path's own CPU (in-process, `{ viewer }`). Bounded: the header is the client's.
 */
const ACCEPT_HEADERS_KEPT = 64;

/** The parameters of a JSON body read here: none, or charset=utf-8; `utf8` and others go to Yoga (other charsets were refused: text-encoding.ts). */
const UTF8_OR_NO_PARAMETERS = /^[^;]*(;\s*charset=utf-8\s*)?$/i;
const BODY_KEYS = new Set(['query', 'operationName', 'variables', 'extensions', 'documentId']);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The body as a GraphQL request when it is a well-formed one; null sends it to Yoga. */
function parseBody(body: Buffer | undefined): GraphQLRequest | null {
  if (!body || body.length === 0) return null;
  let params: unknown;
  try {
    params = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  if (!isPlainObject(params)) return null;
  for (const key in params) if (!BODY_KEYS.has(key)) return null;
  const { operationName, variables, extensions } = params;
  if (operationName != null && typeof operationName !== 'string') return null;
  if (variables != null && !isPlainObject(variables)) return null;
  if (extensions != null && !isPlainObject(extensions)) return null;
  const request = graphQLRequest(params);
  return request.query ? request : null;
}

/** Captures what Yoga's result processor builds instead of a Fetch Response. */
class CapturedResponse {
  constructor(
    readonly body: string | null,
    readonly init: { status?: number; headers?: Record<string, string> } = {},
  ) {}
}
const CAPTURE = { Response: CapturedResponse } as unknown as FetchAPI;

export class HttpFastPath {
  /** Requests answered here rather than by Yoga (since start). */
  served = 0;
  private readonly mediaTypes = new BoundedLru<string, string | null>({ maxEntries: ACCEPT_HEADERS_KEPT });

  constructor(private readonly deps: FastPathDeps) {}

  private mediaTypeFor(accept: string | undefined): string | null {
    const key = accept ?? '';
    let mediaType = this.mediaTypes.get(key);
    if (mediaType === undefined) {
      mediaType = jsonMediaTypeFor(accept);
      this.mediaTypes.set(key, mediaType);
    }
    return mediaType;
  }

  /**
   * Answers the request and returns true, or returns false without having written anything or run
   * any resolver: Yoga must answer it. The body has been read into `req.body` by the router.
   */
  async handle(req: FastPathRequest, res: ServerResponse): Promise<boolean> {
    const mediaType = this.mediaTypeFor(req.headers.accept);
    const contentType = req.headers['content-type'];
    if (!mediaType || mediaTypeOf(contentType) !== 'application/json') return false;
    if (!UTF8_OR_NO_PARAMETERS.test(contentType ?? '')) return false;
    const origin = req.headers.origin;
    // Yoga adds the CORS headers an allowed cross-origin caller needs; same-origin callers get none.
    if (origin && this.deps.origins.allowsCrossOrigin(origin)) return false;
    const request = parseBody(req.body);
    if (!request) return false;

    let viewer: Viewer;
    try {
      viewer = req.viewer ?? (await this.deps.authenticator.fromHeaders(req.headers));
    } catch {
      return false; // Yoga's context answers with the authentication error
    }
    const pipeline = this.deps.pipeline({ params: request, viewer, req });
    const document = prepared(pipeline, request);
    if (!document) return false;
    let contextValue: unknown;
    try {
      contextValue = await pipeline.contextFactory();
    } catch {
      return false;
    }
    // From here on resolvers run: the request is answered here, whatever happens.
    let result: ExecutionResult;
    try {
      result = await pipeline.execute({
        schema: pipeline.schema,
        document,
        contextValue,
        operationName: request.operationName,
        variableValues: request.variables,
      });
    } catch (error) {
      // Yoga's answer to an error outside any resolver: masked, HTTP 500 (no data, not a GraphQLError).
      this.deps.logger.error({ err: error, requestId: req.requestId }, 'unexpected error in a GraphQL operation');
      result = { errors: [{ message: 'Unexpected error.' } as never] };
    }
    // For the log line of an answer that is a refusal (a variable that does not coerce, UNAVAILABLE).
    if (result.errors) noteRefusal(req, result.errors, result.data == null);
    const response = processRegularResult(
      withPartialResultStatus(result),
      CAPTURE,
      mediaType,
    ) as unknown as CapturedResponse;
    // Sized as Yoga's answers are (not chunked): the body is a string, or the bytes a cached
    // snapshot keeps (snapshot-result-cache.ts).
    const body = response.body ?? '';
    res.setHeader('content-length', typeof body === 'string' ? Buffer.byteLength(body) : (body as Buffer).length);
    res.setHeader('cache-control', 'no-store'); // as Yoga's answers (useBrowserHeaders)
    res.writeHead(response.init.status ?? 200, response.init.headers);
    res.end(body);
    this.served += 1;
    return true;
  }
}

/** The parsed and validated document of a query or mutation; null for anything Yoga should answer. */
function prepared(pipeline: OperationPipeline, request: GraphQLRequest): DocumentNode | null {
  let document: DocumentNode;
  try {
    document = pipeline.parse(request.query);
  } catch {
    return null;
  }
  if (pipeline.validate(pipeline.schema, document).length > 0) return null;
  const operation = getOperationAST(document, request.operationName);
  return operation && operation.operation !== 'subscription' ? document : null;
}
