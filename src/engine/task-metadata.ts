import type { EnvVar, OperationRequest, OperationType } from './app-service.js';

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
