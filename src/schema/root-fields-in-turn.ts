import { type GraphQLFieldResolver, type GraphQLSchema, Kind } from 'graphql';

/** Where an operation's context keeps the end of its root fields' queue. */
const TURN = Symbol('root field turn');
type InTurn = { [TURN]?: Promise<void> };

const settled = (): void => {};

/**
 * A query's root fields run one after another, each once the one before has resolved. graphql-js
 * (and graphql-jit) start them all at once, and each reads the database: one user's query of 15
 * aliased `catalog` pages held 15 to 30 PostgreSQL connections, so four such queries (the user's
 * MAX_OPERATIONS_IN_FLIGHT_PER_USER) took the whole pool of 10 while other users' reads queued
 * behind them (`npm run bench` has no such query; measured by hand, README "Operations in
 * flight"). In turn, an operation holds the connections of one root field at a time (its page and
 * its count). Nested fields are not queued: they batch through the request's loaders.
 *
 * An operation with one root field, nearly every one, is not touched: the check is two property
 * reads, and a synchronous field (`viewer`) stays synchronous. Mutations already run their root
 * fields in order (the GraphQL spec), subscriptions have one.
 */
export function rootFieldsInTurn(schema: GraphQLSchema): void {
  for (const field of Object.values(schema.getQueryType()?.getFields() ?? {})) {
    if (field.resolve) field.resolve = inTurn(field.resolve);
  }
}

function inTurn(resolve: GraphQLFieldResolver<unknown, unknown>): GraphQLFieldResolver<unknown, unknown> {
  return (source, args, context, info) => {
    const { selections } = info.operation.selectionSet;
    if (selections.length === 1 && selections[0]?.kind === Kind.FIELD) return resolve(source, args, context, info);
    const queue = context as InTurn;
    const previous = queue[TURN];
    const result = previous
      ? previous.then(() => resolve(source, args, context, info))
      : resolve(source, args, context, info);
    if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') {
      queue[TURN] = Promise.resolve(result).then(settled, settled);
    }
    return result;
  };
}
