import { type ExecutionResult, GraphQLError } from 'graphql';
import { type Plugin, maskError as yogaMaskError } from 'graphql-yoga';
import { isDatabaseBusy, isDatabaseUnavailable, isDiskFull } from '../db/availability.js';
import { DomainError, ValidationError } from '../domain/errors.js';
import { ClientGoneError } from '../domain/operation-client.js';

/**
 * The HTTP answer of an error refused before anything ran. RFC 9110: a 401 carries a challenge,
 * the scheme that would do (every mode but local development, which refuses nobody, takes Bearer).
 */
interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
}
const HTTP_ANSWER: Partial<Record<DomainError['code'], HttpAnswer>> = {
  UNAUTHENTICATED: { status: 401, headers: { 'www-authenticate': 'Bearer' } },
};

/**
 * The code of an error that says "not now": the database is away. Not one of the schema's
 * ErrorCode values (clients switch over those), only an `extensions.code` beside them.
 */
export const UNAVAILABLE = 'UNAVAILABLE';
/** The code of an operation whose client went away before it was answered (read by no one). */
export const CLIENT_GONE = 'CLIENT_GONE';

/** A GraphQL error carrying the domain error's code (and field issues) in `extensions`. */
export function domainGraphQLError(error: DomainError, from?: GraphQLError): GraphQLError {
  const http = HTTP_ANSWER[error.code];
  return new GraphQLError(error.message, {
    nodes: from?.nodes,
    source: from?.source,
    positions: from?.positions,
    path: from?.path,
    extensions: {
      code: error.code,
      ...(error instanceof ValidationError && error.issues.length ? { issues: error.issues } : {}),
      ...(http ? { http } : {}),
    },
  });
}

/**
 * A domain error answered outside Yoga (before a body is read, by the SSE transport): the status
 * goes into the response line, the body keeps only the code, as Yoga's does.
 */
export function domainErrorBody(
  error: DomainError,
): HttpAnswer & { body: { errors: { message: string; extensions: Record<string, unknown> }[] } } {
  const { http, ...extensions } = domainGraphQLError(error).extensions as { http?: HttpAnswer };
  return {
    status: http?.status ?? 400,
    headers: http?.headers ?? {},
    body: { errors: [{ message: error.message, extensions }] },
  };
}

/**
 * The request id of each error an operation answered with, for the log line of an unexpected one:
 * Yoga's mask is given the error alone, not the operation's context.
 */
const requestIds = new WeakMap<object, string>();

/** Tags `error` (an object) with the request it failed; returns it, to be thrown. */
export function rememberRequestOf(error: unknown, requestId: string): unknown {
  if (typeof error === 'object' && error !== null) requestIds.set(error, requestId);
  return error;
}

const tagErrors = ({ args, result }: { args: { contextValue: unknown }; result: unknown }): void => {
  const errors = (result as ExecutionResult).errors;
  if (!errors) return;
  const requestId = (args.contextValue as { requestId?: string } | undefined)?.requestId;
  if (requestId) for (const error of errors) requestIds.set(error, requestId);
};
/** The same hooks for every execution: nothing is allocated per request. */
const TAG_ERRORS = { onExecuteDone: tagErrors };

/**
 * Tags the errors of each execution with the operation's request id before Yoga masks them (its
 * masking plugin comes after every plugin of ours). A stream's results (an async iterable) are
 * not executions here: subscriptions run through the transports' cohorts, one execution per event.
 */
export function useErrorRequestIds(): Plugin {
  return { onExecute: () => TAG_ERRORS };
}

/** A write refused for the database's full disk, as its client reads it (no path, no figure). */
const DISK_FULL_ANSWER = "The database's disk is full: changes are refused until an operator frees space.";

/**
 * A query that found every connection of this instance's database pool in use for the whole of
 * its wait (db/availability.ts DatabaseBusyError): the database answers, this instance is loaded.
 * Still UNAVAILABLE, the code clients retry on, with its own message and a Retry-After; before, it
 * said "the database is unavailable" like an outage, and the operator looked for one.
 */
const DATABASE_BUSY_ANSWER = 'The database is busy (every connection of this server was in use); retry shortly.';

/**
 * How soon a client may retry a write refused for the full disk: freeing space waits for an
 * operator, so not in a second as a busy pool; about as long as `/readiness` holds the episode
 * (db/disk-full.ts DISK_FULL_HOLD_MS) after the last refusal.
 */
const DISK_FULL_RETRY_AFTER_S = '30';

/**
 * What an UNAVAILABLE error says and its HTTP answer: a busy pool (retry in a second), a full
 * disk (retry not soon: that waits for an operator), or the database away.
 */
function unavailableAnswer(error: unknown): { message: string; http: HttpAnswer | { status: number } } {
  if (isDatabaseBusy(error)) {
    return { message: DATABASE_BUSY_ANSWER, http: { status: 503, headers: { 'Retry-After': '1' } } };
  }
  if (isDiskFull(error)) {
    return { message: DISK_FULL_ANSWER, http: { status: 503, headers: { 'Retry-After': DISK_FULL_RETRY_AFTER_S } } };
  }
  return { message: 'The database is unavailable; retry shortly.', http: { status: 503 } };
}

/** An error answered with `code` (and `http`) in its extensions, where the error it replaces stood. */
function withCode(message: string, error: unknown, code: string, http?: HttpAnswer | { status: number }): GraphQLError {
  const from = error instanceof GraphQLError ? error : undefined;
  return new GraphQLError(message, {
    nodes: from?.nodes,
    source: from?.source,
    positions: from?.positions,
    path: from?.path,
    extensions: { code, ...(http ? { http } : {}) },
  });
}

/**
 * Yoga's error mask: expected domain errors keep their message and get `extensions.code`; an
 * unreachable or busy database becomes UNAVAILABLE (HTTP 503 for a query alone); a read stopped
 * because its client went away, CLIENT_GONE; everything else is masked by Yoga's default
 * ("Unexpected error.") after `onUnexpected` logs it, with the request id of the operation it
 * failed when known (useErrorRequestIds, rememberRequestOf). `onUnavailable` sees each database
 * failure answered UNAVAILABLE (db/disk-full.ts counts and logs a full disk's once per episode).
 */
export function createErrorMasker(
  onUnexpected: (error: unknown, requestId: string | undefined) => void,
  onUnavailable: (error: unknown) => void = () => {},
) {
  return (error: unknown, message: string, isDev?: boolean): Error => {
    const original = error instanceof GraphQLError ? error.originalError : error;
    if (original instanceof DomainError) {
      return domainGraphQLError(original, error instanceof GraphQLError ? error : undefined);
    }
    if (original instanceof GraphQLError && original.extensions?.code) return original;
    // Not a bug: a read stopped for a client that left (derived-pages.ts); counted, read by no one.
    if (original instanceof ClientGoneError) return withCode(original.message, error, CLIENT_GONE);
    // Not a bug: the database is away (readiness says so too), or busy (see DATABASE_BUSY_ANSWER).
    if (isDatabaseUnavailable(original)) {
      onUnavailable(original);
      const { message, http } = unavailableAnswer(original);
      return withCode(message, error, UNAVAILABLE, http);
    }
    if (error instanceof GraphQLError && !error.originalError) return error;
    onUnexpected(original, requestIds.get(error as object) ?? requestIds.get(original as object));
    return yogaMaskError(error, message, isDev);
  };
}

/**
 * The `extensions.code` an error has once the masker (createErrorMasker) is through with it, read
 * without masking it (which logs unexpected errors): the error counts see a resolver's errors
 * before the mask, when a refused argument is still a DomainError with no code in its extensions.
 * null: masked as unexpected.
 */
export function maskedCodeOf(error: { readonly extensions?: Readonly<Record<string, unknown>> }): string | null {
  const code = error.extensions?.code;
  if (typeof code === 'string') return code;
  const original = error instanceof GraphQLError ? error.originalError : error;
  if (original instanceof DomainError) return original.code;
  if (original instanceof ClientGoneError) return CLIENT_GONE;
  const originalCode = original instanceof GraphQLError ? original.extensions?.code : undefined;
  if (typeof originalCode === 'string') return originalCode;
  return isDatabaseUnavailable(original) ? UNAVAILABLE : null;
}

/**
 * An answer with data beside field errors is a partial success: HTTP 200, as the GraphQL-over-HTTP
 * specification has it. The 503 of UNAVAILABLE is for an answer that is only errors; Yoga took the
 * highest status among the errors whatever the data, so a snapshot served from memory with one
 * field that needed the database came as a 503, which clients drop as a failure. Data counts when
 * a root field holds a value, or a null no error explains: `{ task: null }` beside the error of
 * `task` is only the error (a nullable field's null).
 */
export function withPartialResultStatus(result: ExecutionResult): ExecutionResult {
  // The errors first: a cached snapshot's `data` is parsed from its bytes when read (a 10k-app
  // snapshot answered in 14 ms instead of 7 while this read it first).
  if (!result.errors?.some((error) => error.extensions?.http) || result.data == null) return result;
  const data = result.data as Record<string, unknown>;
  const failed = new Set(result.errors.map((error) => error.path?.[0]));
  if (Object.keys(data).every((field) => data[field] === null && failed.has(field))) return result;
  const errors = result.errors.map((error) => {
    if (!error.extensions?.http) return error;
    const { http: _, ...extensions } = error.extensions;
    return new GraphQLError(error.message, {
      nodes: error.nodes ?? null,
      source: error.source ?? null,
      positions: error.positions ?? null,
      path: error.path ?? null,
      extensions,
    });
  });
  return { ...result, errors };
}

/** withPartialResultStatus for Yoga's own HTTP answers (the lean path applies it itself). */
export function usePartialResultStatus(): Plugin {
  return {
    onResultProcess({ result, setResult }) {
      if (!Array.isArray(result) && !(Symbol.asyncIterator in result)) {
        setResult(withPartialResultStatus(result as ExecutionResult));
      }
    },
  };
}
