import type { AppRow, RuntimeTaskRow } from '../db/models.js';
import { type AppKey, MAX_APP_NAME_LENGTH, MAX_SOURCE_ID_LENGTH } from '../domain/app-key.js';
import type { AppStage, Health, StageAndHealth } from '../domain/app-stage.js';
import { type CompiledFilter, defineFilter, derived, equals, equalsId, oneOf } from '../domain/filters.js';
import type { TaskStatus, TaskType } from '../domain/tasks.js';

/*
 * What a runtime snapshot, summary or stream is about: SnapshotFilter, and its compiled form
 * (moved out of state-store.ts, which re-exports them, to keep that file under 400 lines).
 */

/** An app as the runtime sees it: its state row with the stage derived when it last changed. */
export type RuntimeApp = AppRow & { derived: StageAndHealth };

export interface SnapshotFilter {
  userId?: string | null;
  sourceId?: string | null;
  appName?: string | null;
  taskStatus?: TaskStatus[] | null;
  taskType?: TaskType[] | null;
  stage?: AppStage[] | null;
  health?: Health | null;
}

/** What SnapshotFilter means for apps (the task fields do not concern them). */
const RUNTIME_APP_FILTER = defineFilter<Omit<SnapshotFilter, 'taskStatus' | 'taskType'>, RuntimeApp>({
  userId: equals('userId'),
  sourceId: equalsId('sourceId', MAX_SOURCE_ID_LENGTH),
  appName: equalsId('appName', MAX_APP_NAME_LENGTH),
  stage: derived(oneOf('stage')),
  health: derived(equals('health')),
});

/**
 * What SnapshotFilter means for tasks: user, source, app, status and type (unlike the original,
 * source too); stage and health are the apps'.
 */
const RUNTIME_TASK_FILTER = defineFilter<Omit<SnapshotFilter, 'stage' | 'health'>, RuntimeTaskRow>({
  userId: equals('userId'),
  sourceId: equalsId('sourceId', MAX_SOURCE_ID_LENGTH),
  appName: equalsId('appName', MAX_APP_NAME_LENGTH),
  taskStatus: oneOf('status'),
  taskType: oneOf('type'),
});

/**
 * A SnapshotFilter compiled once (per request or subscription) for matching the store's apps and
 * tasks: every event runs it over its app or task; a snapshot or summary over the candidates the
 * store's indexes give for it.
 */
export class SnapshotScope {
  readonly apps: CompiledFilter<RuntimeApp>;
  /** For the key of a removed app: the conditions on the key alone. */
  readonly appKeys: CompiledFilter<AppKey>;
  readonly tasks: CompiledFilter<RuntimeTaskRow>;
  /**
   * Set when the filter names at most a user: its summary is then read from the store's running
   * counts (everything for `userId` null) instead of counted over the matches.
   */
  readonly tallied: { userId: string | null } | null;

  constructor(filter: SnapshotFilter = {}) {
    const { userId, ...rest } = filter;
    const isSet = (value: unknown) => Boolean(value) && !(Array.isArray(value) && value.length === 0);
    this.tallied = Object.values(rest).some(isSet) ? null : { userId: userId || null };
    this.apps = RUNTIME_APP_FILTER.compile(filter);
    this.appKeys = this.apps.only(['userId', 'sourceId', 'appName']);
    this.tasks = RUNTIME_TASK_FILTER.compile(filter);
  }
}
