import { GraphQLError } from 'graphql';

/** A client's input error: a code, the path in `issues` (as a ValidationError has), no cause to mask. */
export function validationError(
  message: string,
  issue: { path: string; message: string },
  options: { nodes?: GraphQLError['nodes']; status?: number },
) {
  return new GraphQLError(message, {
    nodes: options.nodes ?? null,
    extensions: {
      code: 'VALIDATION',
      issues: [issue],
      ...(options.status ? { http: { status: options.status } } : {}),
    },
  });
}
