import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Context } from '../schema/builder.js';
import { perOperation } from './per-operation.js';

/**
 * The longest a mutation's answer waits for the runtime store: a collector that is stopped, or a
 * change log cut off from Redis, never holds a mutation longer. Measured wait when it works: one
 * macrotask plus the read-back (about a millisecond in one process; plus a Redis round trip in
 * cluster mode).
 */
export const READ_YOUR_WRITES_WAIT_MS = 1000;

/**
 * Read-your-writes: a mutation answers once the runtime store holds every change announced before
 * it finished (runtime/store-barrier.ts), so a query sent after the answer (a `runtimeSnapshot`,
 * an app's stage) sees what the mutation did, on any transport and, in cluster mode, on this
 * instance. Queries and subscriptions are not held.
 */
export function useReadYourWrites(timeoutMs = READ_YOUR_WRITES_WAIT_MS): Plugin {
  const isMutation = perOperation(
    ({ document, operationName }) => getOperationAST(document, operationName)?.operation === 'mutation',
  );

  return {
    onExecute({ args }) {
      if (!isMutation(args)) return;
      const { services } = args.contextValue as unknown as Context;
      return { onExecuteDone: () => services.runtime.caughtUp(timeoutMs) };
    },
  };
}
