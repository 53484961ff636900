import {
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  execute,
  getOperationAST,
  getVariableValues,
  type VariableDefinitionNode,
} from 'graphql';
import { type CompiledQuery, compileQuery, isCompiledQuery } from 'graphql-jit';
import { makeExecute, type Plugin } from 'graphql-yoga';

/**
 * Executes with graphql-jit: each (document, operation) is compiled once into a JavaScript function
 * that resolves exactly its selection, instead of graphql-js walking the document for every
 * object of every result. It is an envelop plugin, so queries and mutations run compiled on HTTP,
 * graphql-ws and SSE alike.
 *
 * Subscriptions stay on graphql-js: with graphql-jit's `subscribe` three subscription tests
 * failed (a runtimeEvents summary, FORBIDDEN delivered as an event, one execution shared by a
 * cohort), and the fan-out already meets its targets with one execution per cohort.
 *
 * Measured in-process, `runtimeSnapshot` over 10k apps (a throwaway script, both in one process on
 * a loaded 2-core machine): graphql-js 261 ms, compiled 119 ms, JSON.stringify of the result 20 ms.
 *
 * Not @envelop/graphql-jit: it caches the compiled query by document alone, so a document with
 * several operations (GraphiQL sends whole documents) would run the first compiled operation for
 * every `operationName`. Here the cache is per document and operation name.
 *
 * Compiled entries live as long as their document: Yoga's parser cache hands out the same
 * DocumentNode for the same text and bounds how many it keeps, and this WeakMap lets the rest go.
 * Compilation failures (an unknown operation name) are answered, never cached, since the names
 * are the client's to choose.
 *
 * Variables are coerced by graphql-js first, as its `execute` does: its messages carry the reason
 * a scalar gives ('Variable "$after" got invalid value …; out of range: …'), graphql-jit's do not,
 * and clients and the input bounds rely on them. Only operations with variables pay for it.
 */
interface Compiled {
  query: CompiledQuery;
  variables: readonly VariableDefinitionNode[];
}

export function useCompiledExecution(): Plugin {
  const compiled = new WeakMap<DocumentNode, Map<string, Compiled>>();

  /** The compiled operation; an error result when it does not compile; null for a subscription. */
  function compiledFor(args: ExecutionArgs): Compiled | ExecutionResult | null {
    let byOperation = compiled.get(args.document);
    if (!byOperation) {
      byOperation = new Map();
      compiled.set(args.document, byOperation);
    }
    const name = args.operationName ?? '';
    const cached = byOperation.get(name);
    if (cached) return cached;
    const operation = getOperationAST(args.document, args.operationName);
    if (operation?.operation === 'subscription') return null;
    const query = compileQuery(args.schema, args.document, args.operationName ?? undefined);
    if (!isCompiledQuery(query)) return query;
    const entry = { query, variables: operation?.variableDefinitions ?? [] };
    byOperation.set(name, entry);
    return entry;
  }

  const run = (args: ExecutionArgs) => {
    const entry = compiledFor(args);
    if (entry === null) return execute(args); // not reached: onExecute leaves subscriptions alone
    if (!('query' in entry)) return entry;
    if (entry.variables.length > 0) {
      const { hideSuggestions } = args as { hideSuggestions?: boolean }; // see useHiddenSuggestions
      const coerced = getVariableValues(args.schema, entry.variables, args.variableValues ?? {}, {
        maxErrors: 50,
        hideSuggestions,
      });
      if (coerced.errors) return { errors: coerced.errors };
    }
    return entry.query.query(args.rootValue, args.contextValue, args.variableValues);
  };
  const compiledExecute = makeExecute(run as never);

  return {
    onExecute({ args, setExecuteFn }) {
      if (compiledFor(args) !== null) setExecuteFn(compiledExecute);
    },
  };
}
