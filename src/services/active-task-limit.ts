import type { SqlRunner } from '../db/driver-sql.js';
import { countActiveTasks } from '../db/hot-path-sql.js';
import { LimitExceededError } from '../domain/errors.js';

/**
 * LIMIT_EXCEEDED when a user's pending and running tasks, a new one counted, pass `limit`
 * (MAX_ACTIVE_TASKS_PER_USER): one user's 600 clones had queued ahead of everyone, and nothing
 * bounded them (each clone is another app, so the one-active-task-per-app index does not).
 *
 * Run in the new task's transaction, after its insert (TaskSubmission.insert): exact on SQLite,
 * which runs one writer at a time. On PostgreSQL a submission does not see another of the same user
 * that has not committed yet, so submissions of one user racing each other can each pass, going
 * past the bound by at most the other submissions in flight: MAX_OPERATIONS_IN_FLIGHT_PER_USER − 1
 * per instance. A cancel writes no task and is never refused; it only frees a place.
 */
export async function assertWithinActiveLimit(tx: SqlRunner, userId: string, limit: number): Promise<void> {
  const active = await countActiveTasks(tx, userId);
  if (active <= limit) return;
  throw new LimitExceededError(
    `You already have ${active - 1} pending or running tasks, the most one user may have (MAX_ACTIVE_TASKS_PER_USER = ${limit}); submit this again once some have ended`,
  );
}
