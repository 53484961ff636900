import type { DocumentNode, ExecutionArgs, ExecutionResult } from 'graphql';
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
 * (RuntimeService.viewScope), the document, the operation name and the variables as sent; its
 * version is the store's revision, which moves with every change a snapshot shows, so a query
 * after a change is never answered from before it. `generatedAt` is the time the cached result
 * was computed.
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
 * Entries at most (per distinct scope, document and variables, all of the current revision) and
 * the bytes of their results at most: a 100k-app admin snapshot is about 22 MB.
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

export function useSnapshotResultCache(bounds: VersionedLruOptions = SNAPSHOT_RESULT_CACHE_BOUNDS): Plugin {
  const cache = new VersionedLru<Buffer>(bounds);
  const documentIds = new WeakMap<DocumentNode, number>();
  const cacheable = perOperation(({ schema, document, operationName }) =>
    readsOnlyRuntimeState(schema, document, operationName),
  );
  let nextDocumentId = 0;

  /** `document` and operation name as part of a key; null when its result may not be cached. */
  function operationKey(args: ExecutionArgs): string | null {
    const name = args.operationName ?? '';
    if (!cacheable(args) || args.rootValue != null) return null;
    let id = documentIds.get(args.document);
    if (id === undefined) {
      id = nextDocumentId++;
      documentIds.set(args.document, id);
    }
    return `${id}\n${name}`;
  }

  return {
    onExecute({ args, setResultAndStopExecution }) {
      const operation = operationKey(args);
      if (operation === null) return;
      const { services, viewer } = args.contextValue as unknown as Context;
      const runtime = services.runtime;
      const revision = runtime.revision;
      const key = `${runtime.viewScope(viewer)}\n${operation}\n${JSON.stringify(args.variableValues ?? null)}`;
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
