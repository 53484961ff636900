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

/**
 * How much of the app service's `data` a result keeps, in characters of JSON. Its answers are
 * `{opID}` or an empty object; one that quoted a request back (envs, up to 100 of 4,096
 * characters) or sent anything up to the 8 MiB a response may have would be held in the task row,
 * in each of its runtime events (RUNTIME_EVENT_BUFFER of them) and in every answer that reads it.
 */
export const MAX_KEPT_RESPONSE_DATA = 16 * 1024;

/**
 * The app service's data, or what it was when it is longer than a result keeps. The HTTP adapter
 * cuts it before redacting it (redactSecretsIn over 8 MiB, 2,000 envs of 4 KB: 0.5–0.7 s of the
 * event loop here); resultEnvelope again, for any app service.
 */
export function keptData(data: unknown): unknown {
  const length = data === undefined ? 0 : (JSON.stringify(data)?.length ?? 0);
  if (length <= MAX_KEPT_RESPONSE_DATA) return data;
  return { omitted: `${length} characters of JSON, more than the ${MAX_KEPT_RESPONSE_DATA} a task result keeps` };
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
    backend_response: { ...outcome.response, data: keptData(outcome.response.data) },
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
