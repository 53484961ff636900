import { type ExecutionArgs, getOperationAST } from 'graphql';

type Operation = Pick<ExecutionArgs, 'schema' | 'document' | 'operationName'>;

/**
 * A value computed once per (document, operation name), for the plugins that decide per operation
 * (read-your-writes.ts, snapshot-result-cache.ts, input-bounds.ts, rate-limit.ts). Documents are
 * the objects Yoga's parser cache hands out for the same text, which bounds how many are kept; this
 * WeakMap lets the rest go. Only the names a document has are kept: names are the client's to
 * choose, a document's are not. The schema is not part of the key: a server has one, and a
 * document parsed by its Yoga is only ever executed against it.
 */
export function perOperation<T>(compute: (operation: Operation) => T): (operation: Operation) => T {
  const byDocument = new WeakMap<Operation['document'], Map<string, T>>();
  return (operation) => {
    const { document, operationName } = operation;
    const name = operationName ?? '';
    const byName = byDocument.get(document);
    if (byName?.has(name)) return byName.get(name) as T;
    const value = compute(operation);
    if (getOperationAST(document, operationName) === null) return value;
    if (byName) byName.set(name, value);
    else byDocument.set(document, new Map([[name, value]]));
    return value;
  };
}
