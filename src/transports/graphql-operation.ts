import {
  type ExecutionArgs,
  type ExecutionResult,
  GraphQLError,
  getOperationAST,
  type OperationTypeNode,
} from 'graphql';
import type { Viewer } from '../auth/viewer.js';
import { type CohortSource, type FanOutMode, fanOutMode } from '../fanout/cohorts.js';
import { documentSource } from '../http/persisted-documents.js';

/**
 * The steps both streaming transports (WebSocket and SSE) take with one operation, through Yoga's
 * envelop pipeline so that they run the same schema, plugins and context as HTTP requests.
 */

/**
 * Stands in for the Fetch Request in the initial context every transport gives Yoga's pipeline,
 * with the one thing the pipeline reads from it: the method. Yoga's parse hook gives a syntax
 * error its code (GRAPHQL_PARSE_FAILED) and HTTP status only when a request is there, and Yoga's
 * parser cache then answers the same text with that same error object on every transport: a
 * malformed document sent first over a WebSocket made HTTP answer it without a code, with 200.
 * (On a stream the status is dropped again, see fanout/client-errors.ts.)
 */
export const PIPELINE_REQUEST = Object.freeze({ method: 'POST' as const });

/** Yoga's envelop pipeline for one operation (`yoga.getEnveloped(...)`). */
export interface OperationPipeline {
  schema: ExecutionArgs['schema'];
  parse(source: string): ExecutionArgs['document'];
  validate(schema: ExecutionArgs['schema'], document: ExecutionArgs['document']): readonly GraphQLError[];
  contextFactory(): Promise<unknown> | unknown;
  execute(args: ExecutionArgs): Promise<ExecutionResult> | ExecutionResult;
  subscribe(args: ExecutionArgs): Promise<AsyncIterable<ExecutionResult> | ExecutionResult>;
}

/**
 * One GraphQL request as a client sends it: graphql-ws's `subscribe` payload, an SSE request's
 * parameters. Not the domain's `OperationRequest`, which is an operation of the app service.
 */
export interface GraphQLRequest {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
}

/**
 * The operation a client's parameters ask for (a graphql-ws `subscribe` payload, an SSE request's
 * query string or body), with `query` the text to parse: the document itself, or the placeholder
 * of the persisted document it names by id (`documentId`, `extensions.persistedQuery`), which
 * Yoga's persisted-documents plugin resolves when parsing (http/persisted-documents.ts). The
 * placeholder is unique per id, so cohorts of different persisted documents never share a key.
 * `query` is empty when the parameters name no document.
 */
export function graphQLRequest(params: {
  query?: unknown;
  operationName?: unknown;
  variables?: unknown;
  documentId?: unknown;
  extensions?: unknown;
}): GraphQLRequest {
  return {
    query: documentSource(params) ?? '',
    operationName: params.operationName as GraphQLRequest['operationName'],
    variables: params.variables as GraphQLRequest['variables'],
  };
}

/** Who may see what: subscribers in the same scope may share results. */
export function scopeOf(viewer: Viewer): string {
  return `${viewer.isAdmin ? 'admin' : 'user'}:${viewer.userId}`;
}

/**
 * Parses and validates: the errors to answer with, or the document, its operation type and, for
 * a subscription, how it may be shared.
 */
export function prepareOperation(
  pipeline: OperationPipeline,
  request: GraphQLRequest,
):
  | { errors: readonly GraphQLError[] }
  | { document: ExecutionArgs['document']; type: OperationTypeNode; name: string | undefined; mode: FanOutMode } {
  let document: ExecutionArgs['document'];
  try {
    document = pipeline.parse(request.query);
  } catch (error) {
    return { errors: [error instanceof GraphQLError ? error : new GraphQLError((error as Error).message)] };
  }
  const errors = pipeline.validate(pipeline.schema, document);
  if (errors.length) return { errors };
  const operation = getOperationAST(document, request.operationName);
  if (!operation) return { errors: [new GraphQLError('Unable to identify operation')] };
  const mode =
    operation.operation === 'subscription'
      ? fanOutMode(pipeline.schema, document, request.operationName, request.variables)
      : 'alone';
  return { document, type: operation.operation, name: operation.name?.value, mode };
}

export async function executionArgs(
  pipeline: OperationPipeline,
  document: ExecutionArgs['document'],
  request: GraphQLRequest,
): Promise<ExecutionArgs> {
  return {
    schema: pipeline.schema,
    document,
    operationName: request.operationName,
    variableValues: request.variables,
    contextValue: await pipeline.contextFactory(),
  };
}

/** The shared execution a subscription's cohort runs. */
export function cohortSource(pipeline: OperationPipeline, args: ExecutionArgs): CohortSource {
  return {
    subscribe: async () => pipeline.subscribe(args),
    execute: async (rootValue) => pipeline.execute({ ...args, rootValue }),
  };
}
