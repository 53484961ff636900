import { createHash } from 'node:crypto';

/**
 * What a user asks the app service to do, in the words the task engine, the services and the app
 * service adapters share.
 */

export type OperationType = 'INSTALL' | 'UPGRADE' | 'UNINSTALL' | 'CLONE';

export interface EnvVar {
  name: string;
  value?: string | null;
  /** Take the value from another env var (`valueFrom.envName` on the wire). */
  valueFrom?: string | null;
  /**
   * The value must never be shown back: it is redacted from everything the app service answers.
   * Envs named like secrets (VERIFIABLE_CREDENTIAL, *TOKEN*, *SECRET*, *PASSWORD*, *KEY*,
   * *CREDENTIAL*) are treated as secret without it (src/platform/redact.ts). Not sent on the wire.
   */
  secret?: boolean | null;
}

export interface OperationRequest {
  type: OperationType;
  userId: string;
  sourceId: string;
  /** The app the operation acts on (for a clone: the new name). */
  appName: string;
  /** Target version (install, upgrade, clone). */
  version?: string | null;
  cfgType: string;
  envs: EnvVar[];
  clone?: { rawAppName: string; title: string; requestHash: string; entrances: { name: string; title: string }[] };
  uninstall?: { all: boolean; deleteData: boolean };
}

/**
 * Everything a task needs to be executed (and retried) besides its columns. Stored as the
 * task's `metadata`; never holds an auth token or a purchase credential (those are looked up
 * when the operation is sent).
 */
export interface TaskMetadata {
  cfgType: string;
  envs: EnvVar[];
  /** Catalogue app id, for the purchase credential of paid apps. */
  appId?: string;
  paid?: boolean;
  clone?: OperationRequest['clone'];
  uninstall?: OperationRequest['uninstall'];
}

export function readMetadata(raw: unknown): TaskMetadata {
  const value = (raw ?? {}) as Partial<TaskMetadata>;
  return {
    cfgType: typeof value.cfgType === 'string' ? value.cfgType : 'app',
    envs: Array.isArray(value.envs) ? value.envs : [],
    ...(value.appId ? { appId: value.appId } : {}),
    ...(value.paid ? { paid: true } : {}),
    ...(value.clone ? { clone: value.clone } : {}),
    ...(value.uninstall ? { uninstall: value.uninstall } : {}),
  };
}

export function isOperationType(type: string): type is OperationType {
  return type === 'INSTALL' || type === 'UPGRADE' || type === 'UNINSTALL' || type === 'CLONE';
}

/**
 * The clone's name: raw name + first 6 hex of a SHA-256 over the request (as the original), so
 * the same clone request names the same app and different titles or envs name different ones.
 */
export function cloneName(raw: {
  sourceId: string;
  appName: string;
  title: string;
  envs: EnvVar[];
  entrances: { name: string; title: string }[];
}): { name: string; requestHash: string } {
  const canonical = JSON.stringify({
    source: raw.sourceId,
    app_name: raw.appName,
    title: raw.title,
    envs: [...raw.envs].sort((a, b) => a.name.localeCompare(b.name)),
    entrances: [...raw.entrances].sort((a, b) => a.name.localeCompare(b.name)),
  });
  const requestHash = createHash('sha256').update(canonical).digest('hex');
  return { name: `${raw.appName}${requestHash.slice(0, 6)}`, requestHash };
}
