import { type DocumentNode, type FragmentDefinitionNode, GraphQLError, Kind, type SelectionSetNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Most selections of one response name in one selection set, counting those its inline fragments
 * and fragment spreads bring in. graphql-js checks that such selections can be merged by comparing
 * every pair of them (OverlappingFieldsCanBeMergedRule), so their cost grows with the square of
 * their number, within the 1,000 tokens graphql-armor allows: `{ viewer { userId } }` repeated 249
 * times took 42 ms to validate (0.4 ms for 10 times; measured 2026-12-05), and four clients sending
 * it held `/health` for half a second. 50 leaves room for fragments colocated by many components
 * of one page, each asking for the same `id`.
 */
export const MAX_REPEATED_SELECTIONS = 50;
/**
 * `__typename`'s own bound: clients add it to every selection set and fragment, so a page's
 * colocated fragments repeat it often, and it has no selection to compare (500 copies validate in
 * a few ms). Past ~700 graphql-js spent its comparison budget and answered "Validation aborted.".
 */
export const MAX_REPEATED_TYPENAMES = 500;

/**
 * Refuses a document that selects one response name more than MAX_REPEATED_SELECTIONS times in
 * one selection set, before graphql-js validates it. (graphql-js has a budget for these
 * comparisons of its own, but it is spent only after ~500,000 of them, and its error says no more
 * than `Validation aborted.`)
 */
export function useRepeatedFieldsBound(): Plugin {
  return {
    // Only where graphql-js validates: a document validated before is answered by the cache.
    onValidate({ validateFn, setValidationFn }) {
      setValidationFn((schema, document, ...rest) => {
        const refused = repeatedSelection(document);
        if (refused) return [refused];
        return validateFn(schema, document, ...rest);
      });
    },
  };
}

/** The refusal of the first selection set over the bound, or null. */
export function repeatedSelection(document: DocumentNode): GraphQLError | null {
  const names = new SelectedNames(document);
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION && definition.kind !== Kind.FRAGMENT_DEFINITION) continue;
    const refused = checkNested(definition.selectionSet, names);
    if (refused) return refused;
  }
  return null;
}

/** Checks `set` and every selection set nested in it (a tree: each is reached once). */
function checkNested(set: SelectionSetNode, names: SelectedNames): GraphQLError | null {
  for (const [name, count] of names.of(set)) {
    const bound = name === '__typename' ? MAX_REPEATED_TYPENAMES : MAX_REPEATED_SELECTIONS;
    if (count > bound) {
      return new GraphQLError(
        `"${name}" is selected ${count} times in one selection set (its fragments included, each once); at most ${bound} are allowed: select it once.`,
        { nodes: set, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } },
      );
    }
  }
  for (const selection of set.selections) {
    const nested = selection.kind === Kind.FRAGMENT_SPREAD ? null : selection.selectionSet;
    const refused = nested ? checkNested(nested, names) : null;
    if (refused) return refused;
  }
  return null;
}

/**
 * How many times a selection set selects each response name, through its inline fragments and
 * fragment spreads. Each named fragment it reaches counts once, however often and by however many
 * paths it is spread, as graphql-js compares it once (a fragment shared by 60 components of a page
 * validated in 4.8 ms). `__typename` counts against its own, larger bound (MAX_REPEATED_TYPENAMES).
 */
class SelectedNames {
  private readonly fragments = new Map<string, FragmentDefinitionNode>();

  constructor(document: DocumentNode) {
    for (const definition of document.definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) this.fragments.set(definition.name.value, definition);
    }
  }

  of(set: SelectionSetNode): Map<string, number> {
    const counts = new Map<string, number>();
    const reached = new Set<string>();
    this.addOwn(counts, set, reached);
    // Each fragment once, those it spreads in turn included (a cycle is graphql-js's to report).
    for (const name of reached) {
      const fragment = this.fragments.get(name);
      if (fragment) this.addOwn(counts, fragment.selectionSet, reached);
    }
    return counts;
  }

  /** The fields of `set` and of its inline fragments; the fragments it spreads go into `reached`. */
  private addOwn(counts: Map<string, number>, set: SelectionSetNode, reached: Set<string>): void {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        const name = selection.alias?.value ?? selection.name.value;
        counts.set(name, (counts.get(name) ?? 0) + 1);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        this.addOwn(counts, selection.selectionSet, reached);
      } else {
        reached.add(selection.name.value);
      }
    }
  }
}
