import { createHash } from 'node:crypto';
import { type ExecutionArgs, type ExecutionResult, getOperationAST, print } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { VersionedLru, type VersionedLruOptions } from '../platform/versioned-lru.js';
import type { Context } from '../schema/builder.js';
import { perOperation } from './per-operation.js';
import { readsOnlyRuntimeState } from './snapshot-selection.js';

/**
 * `runtimeSnapshot` queries answered from a cache of their serialized results, shared by every
 * viewer of the same scope (every admin; or one user) while the runtime store stays at the same
 * revision. A snapshot of a large fleet is cheap to take from the store's indexes, but executing a
 * selection over every app and task of it is not: measured with `npm run bench -- --only snapshot
 * --quick` before this cache (2 shared cores), 10k apps took 94.8 ms over HTTP against 4.4 ms for
 * the store's snapshot in-process and 7.3 ms for JSON.stringify of the response, so caching the
 * snapshot object alone could not have brought it near the 2× target; a hit here costs writing the
 * text it keeps.
 *
 * What may be cached is decided per document and operation name (snapshot-selection.ts): a query
 * whose every root field is `runtimeSnapshot` and whose every selected field is computed from the
 * store's content alone (not the catalogue, not the database). Its key is the viewer's scope
 * (RuntimeService.viewScope), the operation and its variables; its version is the store's
 * revision, which moves with every change a snapshot shows, so a query after a change is never
 * answered from before it. `generatedAt` is the time the cached result was computed.
 *
 * The operation is the document as graphql-js prints it (without comments, whitespace and commas:
 * two texts of it that differ only by those execute alike), hashed, and the name of the operation
 * it runs; its variables are those the operation defines, as sent. Keyed by the document object,
 * each text of one query had its own entry, so a client varying a comment computed a full snapshot
 * every time (and pushed out other scopes' entries). Printed and hashed once per document object
 * (perOperation), so an operation pays what it paid before: two lookups. Whatever changes the
 * answer's text still makes another entry (field order, aliases, variables' key order, a
 * `__typename`): a client can always ask for a snapshot no one asked before, which query cost and
 * MAX_OPERATIONS_IN_FLIGHT_PER_USER bound, not this cache.
 *
 * Only results without errors are kept, and only when the store did not move while they were
 * computed. Kept as UTF-8 bytes only, not as the result's objects (far less memory): Yoga's HTTP
 * answer and the lean path write them as they are through the result's `stringify` (Yoga's own
 * hook for a precompiled serializer, whose return value both hand to a body that takes bytes:
 * `new Response(body)`, `res.end(body)`); any other reader of `data` (a query over a WebSocket)
 * gets it parsed back once. Bytes rather than a string: writing a string encodes it on every
 * answer, 1.4–2.1 ms for a 1.4 MB text on the loaded 2-core machine (Buffer.from in a loop).
 */

/**
 * Entries at most (per distinct scope, operation and variables, all of the current revision) and
 * the bytes of their results at most: a 100k-app admin snapshot is about 22 MB. 64 as before: a
 * dashboard asks for a few snapshots per scope, and the texts of one operation now share one entry.
 */
export const SNAPSHOT_RESULT_CACHE_BOUNDS: VersionedLruOptions = { maxEntries: 64, maxWeight: 96 * 2 ** 20 };

type StringifiedResult = ExecutionResult & { stringify(result: unknown): string };

/** What Yoga's result processors write as the body (typed as a string, given to a body that takes bytes). */
const asBody = (bytes: Buffer) => bytes as unknown as string;

/** A cached result as a result: written as is, parsed only if something reads `data`. */
function resultOf(bytes: Buffer): StringifiedResult {
  let parsed: ExecutionResult | undefined;
  const result = { stringify: () => asBody(bytes) } as StringifiedResult;
  Object.defineProperty(result, 'data', {
    enumerable: true,
    get: () => {
      parsed ??= JSON.parse(bytes.toString('utf8')) as ExecutionResult;
      return parsed.data;
    },
  });
  return result;
}

function isPlainResult(result: unknown): result is ExecutionResult {
  return typeof result === 'object' && result !== null && !(Symbol.asyncIterator in result);
}

/** The same text for the same operation however it is written (see above), or null: not cacheable. */
function operationOf({
  schema,
  document,
  operationName,
}: Pick<ExecutionArgs, 'schema' | 'document' | 'operationName'>) {
  const operation = getOperationAST(document, operationName);
  if (operation == null || !readsOnlyRuntimeState(schema, document, operationName)) return null;
  const printed = createHash('sha256').update(print(document)).digest('base64url');
  const variables = (operation.variableDefinitions ?? []).map((definition) => definition.variable.name.value);
  return { key: `${printed}\n${operation.name?.value ?? ''}`, variables };
}

/** The values of the variables the operation defines, in their order (others change nothing). */
function variablesOf(names: readonly string[], values: ExecutionArgs['variableValues']): string {
  if (names.length === 0 || values == null) return '{}';
  const defined: Record<string, unknown> = {};
  for (const name of names) if (Object.hasOwn(values, name)) defined[name] = values[name];
  return JSON.stringify(defined);
}

export function useSnapshotResultCache(bounds: VersionedLruOptions = SNAPSHOT_RESULT_CACHE_BOUNDS): Plugin {
  const cache = new VersionedLru<Buffer>(bounds);
  const operations = perOperation(operationOf);

  return {
    onExecute({ args, setResultAndStopExecution }) {
      const operation = operations(args);
      if (operation === null || args.rootValue != null) return;
      const { services, viewer } = args.contextValue as unknown as Context;
      const runtime = services.runtime;
      const revision = runtime.revision;
      const key = `${runtime.viewScope(viewer)}\n${operation.key}\n${variablesOf(operation.variables, args.variableValues)}`;
      const kept = cache.get(revision, key);
      if (kept !== undefined) return setResultAndStopExecution(resultOf(kept));
      return {
        onExecuteDone({ result, setResult }) {
          if (!isPlainResult(result) || result.errors?.length || result.extensions) return;
          // The store moved while this ran: the result may hold parts of two revisions.
          if (runtime.revision !== revision) return;
          const bytes = Buffer.from(JSON.stringify(result));
          cache.set(revision, key, bytes, bytes.length + key.length);
          setResult(Object.assign({ ...result }, { stringify: () => asBody(bytes) }));
        },
      };
    },
  };
}
