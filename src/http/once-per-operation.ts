import { type FragmentDefinitionNode, GraphQLError, getOperationAST, Kind, type SelectionSetNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { perOperation } from './per-operation.js';

/**
 * Mutations an operation may select at most once. `uploadChart` unpacks and parses the whole
 * package each time it runs: one request of fifteen aliases (`a: uploadChart(chart: $c) b: …`,
 * graphql-armor's alias bound) read the same file fifteen times, and uploads run one after another
 * (chart-upload-service.ts), so the uploads of every other admin waited behind it.
 */
export const ONCE_PER_OPERATION: readonly string[] = ['uploadChart'];

/**
 * How often each of ONCE_PER_OPERATION is selected at the root of a mutation: every alias, and
 * those in its fragments (a field that `@skip`/`@include` may leave out counts too, as in the
 * rate limit's count), with the response names that select it. Empty for a query or subscription.
 */
const selectionsOf = perOperation(({ document, operationName }) => {
  const found = new Map<string, string[]>();
  const operation = getOperationAST(document, operationName);
  if (operation?.operation !== 'mutation') return found;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const walk = (set: SelectionSetNode, seen: Set<string>): void => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        const field = selection.name.value;
        if (!ONCE_PER_OPERATION.includes(field)) continue;
        found.set(field, [...(found.get(field) ?? []), selection.alias?.value ?? field]);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        walk(selection.selectionSet, seen);
      } else {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        // Validation refuses unknown and cyclic fragments; `seen` only keeps this walk finite.
        if (fragment && !seen.has(name)) walk(fragment.selectionSet, new Set([...seen, name]));
      }
    }
  };
  walk(operation.selectionSet, new Set());
  return found;
});

/**
 * Refuses a mutation that selects one of ONCE_PER_OPERATION more than once, before any of its
 * fields runs: `LIMIT_EXCEEDED`, HTTP 400 (never to run, however it is retried). It hooks
 * execution, so it holds over every transport, after validation and the query cost and before the
 * rate limit (a refused operation takes no token).
 */
export function useOncePerOperation(): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      for (const [field, names] of selectionsOf(args)) {
        if (names.length <= 1) continue;
        const message =
          `${field} may run at most once per operation; this one selects it ${names.length} times ` +
          `(${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}): send one per request.`;
        const extensions = { code: 'LIMIT_EXCEEDED', field, selections: names.length, http: { status: 400 } };
        setResultAndStopExecution({ errors: [new GraphQLError(message, { extensions })] });
        return;
      }
    },
  };
}
