import { GraphQLError } from 'graphql';

/**
 * Errors as a streaming client (graphql-ws, SSE) receives them. `extensions.http` is the status
 * and headers an error asks of an HTTP response; Yoga applies it and drops it from HTTP bodies,
 * but a stream has no response to apply it to, so it is dropped here. Errors without it are
 * returned as they are (the common case costs one check per error).
 */
export function clientErrors(errors: readonly GraphQLError[]): readonly GraphQLError[] {
  if (!errors.some((error) => error.extensions?.http)) return errors;
  return errors.map((error) => {
    if (!error.extensions?.http) return error;
    const { http: _http, ...extensions } = error.extensions;
    return new GraphQLError(error.message, {
      nodes: error.nodes,
      source: error.source,
      positions: error.positions,
      path: error.path,
      originalError: error.originalError,
      extensions,
    });
  });
}

/** A result as a streaming client receives it (see clientErrors). */
export function clientResult<T extends { errors?: readonly GraphQLError[] }>(result: T): T {
  return result.errors?.length ? { ...result, errors: clientErrors(result.errors) } : result;
}

/**
 * The HTTP status (and headers) a result refused before it ran asks for: no `data`, and its first
 * error carries `extensions.http` (a query-cost refusal's 400, a rate limit's 429 with Retry-After).
 * Null for anything else, errors of a run included.
 */
export function refusalStatusOf(result: {
  data?: unknown;
  errors?: readonly GraphQLError[];
}): { status: number; headers: Record<string, string> } | null {
  if ('data' in result) return null;
  const http = result.errors?.[0]?.extensions?.http as
    | { status?: unknown; headers?: Record<string, string> }
    | undefined;
  if (typeof http?.status !== 'number' || http.status < 400) return null;
  return { status: http.status, headers: http.headers ?? {} };
}
