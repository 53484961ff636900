import type { OperationRequest } from './operations.js';

/** The app service's own answer to an operation: `{code, message, data}`, secrets already redacted. */
export interface BackendResponse {
  code: number | null;
  message: string;
  data: unknown;
}

/**
 * A task's `result` (market-domain.md §3.9): the operation as it was sent, the op id, whether it
 * succeeded, and the app service's answer. Only the fields relevant to the operation are present;
 * never an env value (the buyer's credential travels as one).
 */
export interface TaskResultEnvelope {
  operation: string;
  app_name: string;
  user: string;
  source: string;
  cfgType: string;
  version?: string;
  all?: boolean;
  deleteData?: boolean;
  rawAppName?: string;
  requestHash?: string;
  title?: string;
  opID: string | null;
  status: 'success' | 'failed' | 'canceled';
  error?: string;
  backend_response: BackendResponse;
}

export function resultEnvelope(
  operation: OperationRequest,
  outcome: { opId: string | null; status: 'success' | 'failed'; error?: string; response: BackendResponse },
): TaskResultEnvelope {
  const { type, clone, uninstall } = operation;
  const versioned = type === 'INSTALL' || type === 'UPGRADE' || type === 'CLONE';
  return {
    operation: type.toLowerCase(),
    app_name: operation.appName,
    user: operation.userId,
    source: operation.sourceId,
    cfgType: operation.cfgType,
    ...(versioned && operation.version ? { version: operation.version } : {}),
    ...(type === 'UNINSTALL' ? { all: uninstall?.all ?? false, deleteData: uninstall?.deleteData ?? false } : {}),
    ...(type === 'STOP' ? { all: false } : {}),
    ...(type === 'CLONE' && clone
      ? { rawAppName: clone.rawAppName, requestHash: clone.requestHash, title: clone.title }
      : {}),
    opID: outcome.opId,
    status: outcome.status,
    ...(outcome.error ? { error: outcome.error } : {}),
    backend_response: outcome.response,
  };
}

/**
 * Whether a task's `result` is the app service's acceptance of its operation: written when it
 * answered the send with success (status `success`, with or without an op id: stop and resume get
 * none), before any end.
 */
export function isAcceptance(result: unknown): result is Record<string, unknown> & { status: 'success' } {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return false;
  return (result as { status?: unknown }).status === 'success';
}
