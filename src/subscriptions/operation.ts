import {
  type ExecutionArgs,
  type ExecutionResult,
  GraphQLError,
  getOperationAST,
  type OperationTypeNode,
} from 'graphql';
import type { Viewer } from '../auth/viewer.js';
import { type CohortSource, type FanOutMode, fanOutMode } from './cohorts.js';

/**
 * The steps both streaming transports (WebSocket and SSE) take with one operation, through Yoga's
 * envelop pipeline so that they run the same schema, plugins and context as HTTP requests.
 */

/** Yoga's envelop pipeline for one operation (`yoga.getEnveloped(...)`). */
export interface OperationPipeline {
  schema: ExecutionArgs['schema'];
  parse(source: string): ExecutionArgs['document'];
  validate(schema: ExecutionArgs['schema'], document: ExecutionArgs['document']): readonly GraphQLError[];
  contextFactory(): Promise<unknown> | unknown;
  execute(args: ExecutionArgs): Promise<ExecutionResult> | ExecutionResult;
  subscribe(args: ExecutionArgs): Promise<AsyncIterable<ExecutionResult> | ExecutionResult>;
}

/** What a client sends: graphql-ws's `subscribe` payload, an SSE request's parameters. */
export interface OperationRequest {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
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
  request: OperationRequest,
):
  | { errors: readonly GraphQLError[] }
  | { document: ExecutionArgs['document']; type: OperationTypeNode; mode: FanOutMode } {
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
  return { document, type: operation.operation, mode };
}

export async function executionArgs(
  pipeline: OperationPipeline,
  document: ExecutionArgs['document'],
  request: OperationRequest,
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
