import type { DocumentNode, GraphQLSchema } from 'graphql';
import type { Plugin } from 'graphql-yoga';

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
 * A bounded map, least recently used out first: Yoga's `Cache` (get, set) without a TTL, bounded
 * by its number of entries and by the total length of its keys (a key longer than that alone is
 * not kept).
 */
export class BoundedCache<V> {
  private readonly entries = new Map<string, V>();
  private keyChars = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxKeyChars = Number.POSITIVE_INFINITY,
  ) {}

  get(key: string): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    if (key.length > this.maxKeyChars) return;
    if (this.entries.delete(key)) this.keyChars -= key.length;
    this.entries.set(key, value);
    this.keyChars += key.length;
    while (this.entries.size > this.maxEntries || this.keyChars > this.maxKeyChars) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
      this.keyChars -= oldest.length;
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /** The total length of the keys kept. */
  get totalKeyChars(): number {
    return this.keyChars;
  }
}

/**
 * Yoga's `parserAndValidationCache` option: its parser cache over BoundedCache, its validation
 * cache off (useValidationCache takes its place).
 */
export function parserCacheOptions() {
  return {
    documentCache: new BoundedCache<DocumentNode>(DOCUMENTS_KEPT, DOCUMENT_CHARS_KEPT),
    errorCache: new BoundedCache<unknown>(DOCUMENTS_KEPT, DOCUMENT_CHARS_KEPT),
    validationCache: false,
  };
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
        bySchema.set(documentAST, { rules: ruleCount, errors: result });
      };
    },
  };
}
