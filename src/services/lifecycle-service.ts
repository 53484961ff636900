import { z } from 'zod';
import type { Viewer } from '../auth/viewer.js';
import type { Db } from '../db/client.js';
import type { AppRow, TaskRow } from '../db/models.js';
import { type AppStage, deriveStage } from '../domain/app-stage.js';
import { InvalidStateError } from '../domain/errors.js';
import { parseInput } from '../domain/parse-input.js';
import type { ChangeFeed } from '../events/change-feed.js';
import type { HistoryService } from './history-service.js';
import { requestDigest } from './request-digest.js';
import { commonOperationFields, type TaskRunner, TaskSubmission } from './task-submission.js';

const lifecycleInput = z.object(commonOperationFields);

export type LifecycleInput = z.input<typeof lifecycleInput>;

/** What each lifecycle operation needs the app to be doing, and what it is called in messages. */
const RULES = {
  STOP: { from: 'RUNNING', retries: 'stopfailed', verb: 'stop', hint: 'only a running app can be stopped' },
  RESUME: { from: 'STOPPED', retries: 'resumefailed', verb: 'resume', hint: 'only a stopped app can be resumed' },
} as const satisfies Record<string, { from: AppStage; retries: string; verb: string; hint: string }>;

/**
 * Stopping and resuming installed apps (the app service's suspend and resume): tasks like
 * installs, with the same idempotency, one active task per app (CONFLICT) and history, refused
 * with INVALID_STATE unless the app is in the stage the operation starts from (or its own
 * operation failed there: `stopFailed` may be stopped again, `resumeFailed` resumed).
 */
export class LifecycleService {
  private readonly submission: TaskSubmission;

  constructor(db: Db, history: HistoryService, feed: ChangeFeed, engine: TaskRunner) {
    this.submission = new TaskSubmission(db, history, feed, engine);
  }

  stop(viewer: Viewer, rawInput: LifecycleInput, retryOfTaskId?: string): Promise<TaskRow> {
    return this.submit('STOP', viewer, rawInput, retryOfTaskId);
  }

  resume(viewer: Viewer, rawInput: LifecycleInput, retryOfTaskId?: string): Promise<TaskRow> {
    return this.submit('RESUME', viewer, rawInput, retryOfTaskId);
  }

  private async submit(
    type: keyof typeof RULES,
    viewer: Viewer,
    rawInput: LifecycleInput,
    retryOfTaskId: string | undefined,
  ): Promise<TaskRow> {
    const input = parseInput(lifecycleInput, rawInput);
    const key = { userId: viewer.userId, sourceId: input.sourceId, appName: input.appName };
    const digest = requestDigest(type, input);
    const existing = await this.submission.replay(viewer, input.idempotencyKey, type, key, digest);
    if (existing) return existing;
    const rule = RULES[type];
    const row = await this.submission
      .installedRow(key, rule.verb)
      .catch((refusal: unknown) => this.submission.conflictOr(key, refusal));
    // Another operation in progress is a CONFLICT (as for install), not a wrong stage: its stage
    // is only where that operation stands.
    await this.submission.assertNoActiveTask(key);
    this.assertStage(type, row);
    const cfgType = row.cfgType ?? 'app';
    return this.submission.create({
      type,
      key,
      version: row.installedVersion,
      metadata: { cfgType, envs: [] },
      idempotencyKey: input.idempotencyKey ?? null,
      requestDigest: digest,
      app: { cfgType, title: row.title },
      // The whole rule again inside (TaskRequest.admits); the CONFLICT check is the insert itself there.
      admits: async (db) => {
        const now = await this.submission.installedRow(key, rule.verb, db);
        this.assertStage(type, now);
        return now;
      },
      builtOn: row,
      ...(retryOfTaskId ? { retryOfTaskId } : {}),
    });
  }

  /** INVALID_STATE unless the app is in the stage the operation starts from. */
  private assertStage(type: keyof typeof RULES, row: AppRow): void {
    const rule = RULES[type];
    const { stage } = deriveStage({ state: row.state, progress: row.progress });
    // An app whose stop (resume) failed on the app service may be stopped (resumed) again.
    if (stage !== rule.from && row.state.toLowerCase() !== rule.retries) {
      throw new InvalidStateError(`${row.appName} is ${stage}, so it cannot ${rule.verb}: ${rule.hint}`);
    }
  }
}
