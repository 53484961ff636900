import type { DocumentNode, GraphQLSchema } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { BoundedLru } from '../platform/bounded-lru.js';

/**
 * What Yoga's parser and validation cache does (parsed documents by their text, validation results
 * by document), at a lower cost per operation. Yoga keeps both in `lru-cache` with a TTL, and keys
 * validation results by the names of all the validation rules, joined anew for every operation
 * (~30 rules: graphql-js's and ours). Measured in-process on the lean path's `handle` for
 * `{ viewer { userId isAdmin } }` (100,000 operations in a loop, without sockets): 9.2 µs per
 * operation with Yoga's caches, of which they took ~20 % (the rule names alone ~12 %), 6.9 µs
 * with these.
 */

/** Documents (and parse errors) kept at most: Yoga's own default. */
export const DOCUMENTS_KEPT = 1024;
/**
 * Characters of document text kept at most, per cache: the count alone would let 1,024 bodies of
 * MAX_BODY_BYTES (mostly a comment, or one long string) pin a gigabyte.
 */
export const DOCUMENT_CHARS_KEPT = 16 * 2 ** 20;

/**
 * A cache of Yoga's parser (get, set by document text), over a BoundedLru without Yoga's TTL,
 * weighed by the length of its texts.
 */
function textCache<V>() {
  const kept = new BoundedLru<string, V>({ maxEntries: DOCUMENTS_KEPT, maxWeight: DOCUMENT_CHARS_KEPT });
  return {
    get: (text: string) => kept.get(text),
    set: (text: string, value: V) => kept.set(text, value, text.length),
  };
}

/**
 * Yoga's `parserAndValidationCache` option: its parser cache over textCache, its validation cache
 * off (useValidationCache takes its place).
 */
export function parserCacheOptions() {
  return { documentCache: textCache<DocumentNode>(), errorCache: textCache<unknown>(), validationCache: false };
}

/**
 * Validation results by schema and document, for the last of the plugins: by then every plugin has
 * added its rules (graphql-armor's, the input bounds', INTROSPECTION off's), and each adds the same
 * rules to every operation on every transport, so that a document's result depends on the
 * document alone. (graphql-armor makes its rules anew for each operation, so they cannot be told
 * apart by identity; Yoga tells them apart by name, and theirs have none.) The number of rules is
 * checked all the same; a plugin that adds a rule to some operations only must not come before
 * this one. Keyed by the document object, which the parser cache hands out for the same text:
 * documents it lets go take their results along.
 */
export function useValidationCache(): Plugin {
  const results = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, { rules: number; errors: readonly Error[] }>>();
  return {
    onValidate({ params: { schema, documentAST, rules }, setResult }) {
      let bySchema = results.get(schema);
      if (bySchema === undefined) {
        bySchema = new WeakMap();
        results.set(schema, bySchema);
      }
      const ruleCount = rules?.length ?? 0;
      const known = bySchema.get(documentAST);
      if (known !== undefined && known.rules === ruleCount) {
        setResult(known.errors);
        return;
      }
      return ({ result }) => {
        // V8 formats an error's stack when it is first read; until then it keeps the frames, and
        // with them this request's closures, its context and body (a cached 900 kB request kept
        // 2.6 MB). Read now, the stack is a string and the request can go.
        for (const error of result) void error.stack;
        bySchema.set(documentAST, { rules: ruleCount, errors: result });
      };
    },
  };
}
