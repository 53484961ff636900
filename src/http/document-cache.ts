import { type DocumentNode, type GraphQLSchema, type Token, TokenKind } from 'graphql';
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
 *
 * Refused documents are kept apart from those that validated (REFUSED_DOCUMENT_BYTES_KEPT). That
 * costs nothing per operation for a document that validated (one lookup, as before) and one Map
 * miss more for a refused one. Measured in-process, this cache's own work for one operation (the
 * parser cache's lookup and the validation cache's, 1,000,000 in a loop, 500 documents of each
 * kind kept, one map and two interleaved in one process, medians of 12 rounds on the loaded 2-core
 * machine): `{ viewer { userId isAdmin } }` 5.9 → 3.4 µs, refused `{ viewer { userId nickname } }`
 * 5.7 → 3.3 µs; faster, not slower, because each map held half the documents and BoundedLru.get
 * then moved every hit to the end of its Map, which in V8 costs with the Map's size. BoundedLru
 * has since stopped moving hits among the newer half of its entries (see there), which removed
 * most of that cost for either layout.
 */

/** Documents (and parse errors) kept at most, in each of the two maps: Yoga's own default. */
export const DOCUMENTS_KEPT = 1024;
/**
 * Heap the kept documents that validated may hold, as HEAP_COST estimates it: an eighth of the
 * 524 MiB heap Node gives itself under the deployment's 1 GiB limit. Ordinary documents are bounded
 * by their number instead: the dashboard's weigh ~30 kB each (28.7 kB measured), so 1,024 of them
 * fit in half of this. A client sending valid documents dense in tokens pins at most this much
 * (weighed by their characters, 1,024 of them could have held ~560 MB, more than that heap).
 */
export const DOCUMENT_BYTES_KEPT = 64 * 2 ** 20;
/**
 * Heap the documents not (yet) validated may hold: refused ones, and new ones until they validate.
 * Their own budget, so that refused documents never push out documents that validated: sharing
 * DOCUMENT_BYTES_KEPT, ~97 dense refused documents (`query Q<i> { __typename ×990 }`, 688 kB each
 * with their errors) took the whole of it, and every client's documents (the dashboard's) were
 * parsed, validated and compiled anew. A refused document kept saves its sender a parse and a
 * validation, nobody else anything; this keeps ~24 of those dense ones, or ~800 ordinary refused
 * ones (an unknown field, a depth past the limit: ~20 kB each with its error).
 */
export const REFUSED_DOCUMENT_BYTES_KEPT = 16 * 2 ** 20;
/** Heap the kept parse errors may hold, as HEAP_COST estimates it: ~1,000 of a few kB each fit. */
export const PARSE_ERROR_BYTES_KEPT = 16 * 2 ** 20;

/**
 * What a kept document holds on the heap, estimated from its parts: the text's characters, its
 * tokens (graphql-js keeps them all, linked from every node's `loc`) and, when refused, its
 * validation errors. Each figure is the highest measured (node 20, `--expose-gc`, heap after GC
 * on a server on port 0, 40–400 distinct documents of one shape POSTed, divided by what they
 * held; 2026-12):
 * - `token`: a field `{ __typename ×990 }` 551 B per token, a valid `{ v0: viewer { userId
 *   isAdmin ×30 } … ×15 }` 536 (its graphql-jit function included), `{ a ×995 }` 482, arguments,
 *   lists, objects, directives, spreads and variables 243–293 (parse alone);
 * - `comment`: a comment line 90 B (`#` alone; armor's token limit does not count comments, so a
 *   1 MiB body of them held 31 MB in one document);
 * - `char`: a one-byte text 1.5 B per character (2.6 when refused: one copy more), a two-byte one
 *   (CJK) 2.5, in a block string 6.6 (its value is a second two-byte string);
 * - `escape`: a string's escape 32 B (graphql-js builds the value by concatenation, one cons
 *   string per escape: `"\n" ×5000` held 17 B per character);
 * - `document`: 8–11 kB a document beside its tokens (`{ __typename }`, `{ viewer { … } }`, the
 *   dashboard's), for its compiled function or its validation result;
 * - `error`: 2.4 kB a validation error (100 unknown fields), with its stack read (see
 *   useValidationCache), and `errorChar` 2 bytes per character of its message twice (the message
 *   and the stack), when a client's name is in it.
 */
export const HEAP_COST = {
  document: 12 * 1024,
  token: 600,
  comment: 100,
  char: 7,
  escape: 32,
  error: 2560,
  errorChar: 4,
} as const;

/** The heap a parsed document holds, its text included: HEAP_COST's estimate, by walking its tokens once. */
export function documentHeapBytes(text: string, document: DocumentNode): number {
  let bytes = HEAP_COST.document + HEAP_COST.char * text.length + HEAP_COST.escape * backslashesIn(text);
  let token: Token | null | undefined = document.loc?.startToken;
  if (!token) return bytes + HEAP_COST.token * text.length; // parsed without locations: a token per character at most
  for (; token !== null; token = token.next) {
    bytes += token.kind === TokenKind.COMMENT ? HEAP_COST.comment : HEAP_COST.token;
  }
  return bytes;
}

/** The heap errors hold beside what they point to: HEAP_COST's estimate. */
export function errorsHeapBytes(errors: readonly unknown[]): number {
  let bytes = 0;
  for (const error of errors) {
    bytes += HEAP_COST.error + (error instanceof Error ? HEAP_COST.errorChar * error.message.length : 0);
  }
  return bytes;
}

function backslashesIn(text: string): number {
  let count = 0;
  for (let at = text.indexOf('\\'); at !== -1; at = text.indexOf('\\', at + 1)) count++;
  return count;
}

/**
 * Yoga's parser cache (`parserOptions`: documents and parse errors by their text, over
 * BoundedLrus without Yoga's TTL, weighed by HEAP_COST) and the validation cache that takes the
 * place of Yoga's (`useValidationCache`). A new document waits in `unvalidated` and moves to
 * `validated` when it validates; a refused one stays there, its errors added to its weight.
 */
export class DocumentCache {
  private readonly validated = new BoundedLru<string, DocumentNode>({
    maxEntries: DOCUMENTS_KEPT,
    maxWeight: DOCUMENT_BYTES_KEPT,
  });
  private readonly unvalidated = new BoundedLru<string, DocumentNode>({
    maxEntries: DOCUMENTS_KEPT,
    maxWeight: REFUSED_DOCUMENT_BYTES_KEPT,
  });
  private readonly parseErrors = new BoundedLru<string, unknown>({
    maxEntries: DOCUMENTS_KEPT,
    maxWeight: PARSE_ERROR_BYTES_KEPT,
  });
  /** Each document parsed here, with its text and its weight before validation. */
  private readonly keptAs = new WeakMap<DocumentNode, { text: string; bytes: number }>();

  /** Documents kept now and the heap HEAP_COST says they hold: those that validated, the others. */
  get kept(): Record<'validated' | 'unvalidated', { documents: number; bytes: number }> {
    return {
      validated: { documents: this.validated.size, bytes: this.validated.totalWeight },
      unvalidated: { documents: this.unvalidated.size, bytes: this.unvalidated.totalWeight },
    };
  }

  /** Whether the document parsed from `text` is kept (without making it the most recently used). */
  keeps(text: string): boolean {
    return (this.validated.peek(text) ?? this.unvalidated.peek(text)) !== undefined;
  }

  /** Yoga's `parserAndValidationCache` option: its parser cache over these maps, its validation cache off. */
  parserOptions() {
    return {
      documentCache: {
        // `validated` first: an operation that validated costs one lookup, as before.
        get: (text: string) => this.validated.get(text) ?? this.unvalidated.get(text),
        set: (text: string, document: DocumentNode) => {
          const bytes = documentHeapBytes(text, document);
          this.keptAs.set(document, { text, bytes });
          this.unvalidated.set(text, document, bytes);
        },
      },
      errorCache: {
        get: (text: string) => this.parseErrors.get(text),
        set: (text: string, error: unknown) =>
          this.parseErrors.set(text, error, HEAP_COST.char * text.length + errorsHeapBytes([error])),
      },
      validationCache: false,
    } as const;
  }

  /**
   * Validation results by schema and document, for the last of the plugins: by then every plugin has
   * added its rules (graphql-armor's, the input bounds', INTROSPECTION off's), and each adds the same
   * rules to every operation on every transport, so that a document's result depends on the
   * document alone. (graphql-armor makes its rules anew for each operation, so they cannot be told
   * apart by identity; Yoga tells them apart by name, and theirs have none.) The number of rules is
   * checked all the same; a plugin that adds a rule to some operations only must not come before
   * this one. Keyed by the document object, which the parser cache hands out for the same text:
   * documents it lets go (from either map) take their results and compiled functions along.
   */
  useValidationCache(): Plugin {
    const results = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, { rules: number; errors: readonly Error[] }>>();
    return {
      onValidate: ({ params: { schema, documentAST, rules }, setResult }) => {
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
          if (result.length > 0) this.weighErrors(documentAST, result);
          else this.promote(documentAST);
        };
      },
    };
  }

  /** Moves `document`, which validated, to `validated` (from `unvalidated`, if still there). */
  private promote(document: DocumentNode): void {
    const kept = this.keptAs.get(document);
    if (kept === undefined || this.validated.peek(kept.text) === document) return;
    if (this.unvalidated.peek(kept.text) === document) this.unvalidated.delete(kept.text);
    this.validated.set(kept.text, document, kept.bytes);
  }

  /** Adds `errors` to the weight of `document` if it is kept (again from its own weight: once however often validated). */
  private weighErrors(document: DocumentNode, errors: readonly Error[]): void {
    const kept = this.keptAs.get(document);
    if (kept === undefined || this.unvalidated.peek(kept.text) !== document) return;
    this.unvalidated.set(kept.text, document, kept.bytes + errorsHeapBytes(errors));
  }
}
