import { type ExecutionResult, GraphQLError } from 'graphql';

/**
 * A result without `data` is a request error (a variable that does not coerce, a required one
 * missing): the client's mistake. The executor reports a coercion error as a GraphQLError wrapping
 * the scalar's or enum's own GraphQLError, which the error masker would take for an unexpected
 * failure and log. Returned as plain VALIDATION errors (HTTP 400) instead; an error wrapping
 * anything but a GraphQLError (a bug in a scalar) is left to the masker.
 */
export function asRequestErrors(result: ExecutionResult): ExecutionResult | null {
  if (!result.errors?.length || 'data' in result) return null;
  const fromInput = (error: GraphQLError) => {
    let cause: unknown = error.originalError;
    while (cause instanceof GraphQLError) cause = cause.originalError;
    return cause === undefined || cause === null;
  };
  if (!result.errors.every(fromInput)) return null;
  return {
    ...result,
    errors: result.errors.map(
      (error) =>
        new GraphQLError(error.message, {
          nodes: error.nodes ?? null,
          source: error.source ?? null,
          positions: error.positions ?? null,
          // A refusal with a code and status of its own (another plugin's limit: 429 RATE_LIMITED) keeps them;
          // the executor's BAD_USER_INPUT (what its subscribe() calls a variable that does not coerce) does not.
          extensions:
            error.extensions.code === 'BAD_USER_INPUT'
              ? { ...error.extensions, code: 'VALIDATION' }
              : { code: 'VALIDATION', http: { status: 400 }, ...error.extensions },
        }),
    ),
  };
}
