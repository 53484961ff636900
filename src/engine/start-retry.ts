import { AppServiceError } from '../adapters/app-service/port.js';
import type { TaskRow } from '../db/models.js';
import type { EngineContext, StartRetrySettings, StartWait } from './engine-context.js';

/**
 * START RETRY: a task whose start the app service did not take (HTTP 429 or 503, or no connection
 * made: notTakenBy in http-answers.ts is the one place that says which failures prove it) goes back
 * to PENDING instead of failing, and is sent again once its wait is over, by whichever instance
 * claims it then: an app service restarting or busy for a moment failed every install sent meanwhile.
 * The wait is on the task's row (`notBefore`, which the claim honours, and `startAttempts`), none of
 * it only in memory, so a stop or a crash loses nothing; its users see why it waits and until when
 * (`Task.message`), and a cancel ends it at once, as any pending task. The statement that puts it
 * back also clears the `dispatchedAt` markDispatched wrote (which keeps a crash from sending a task
 * twice): safe only because the app service said it did not take it. A failure after which it may
 * have (a timeout, HTTP 500) still fails the task: an install started twice is worse than a failed
 * one. After TASK_START_ATTEMPTS sends the task fails, saying how many and the last answer.
 */

/**
 * Puts a task whose start the app service refused back to wait (see START RETRY); false when the
 * failure is not such a refusal or its attempts are spent: the caller fails it.
 */
export async function sendAgainLater(ctx: EngineContext, task: TaskRow, error: unknown): Promise<boolean> {
  if (!(error instanceof AppServiceError) || !error.notTaken) return false;
  const settings = ctx.options.startRetry;
  const refused = task.startAttempts + 1; // sends refused so far, this one included
  if (refused >= settings.attempts) return false;
  const delayMs = retryDelayMs(settings, refused, error.notTaken.retryAfterMs);
  const notBefore = new Date(ctx.clock.now() + delayMs);
  const next = `attempt ${refused + 1} of ${settings.attempts} at ${secondsOf(notBefore)}`;
  const wait: StartWait = { notBefore, startAttempts: refused, message: `${error.message}; ${next}` };
  try {
    const { count } = await ctx.db.task.updateMany({
      where: { taskId: task.taskId, status: 'RUNNING', workerId: ctx.instanceId },
      data: { ...REQUEUED, ...wait },
    });
    ctx.tracked.forget(task.taskId);
    ctx.notify(); // a worker is free
    if (!count) return true; // ended meanwhile (its timeout): nothing to send again
  } catch (dbError) {
    ctx.owe({ kind: 'requeue', task, wait }, dbError); // the repair loop writes the same wait
    return true;
  }
  ctx.counts.startRetries += 1;
  // error.message is the adapter's, secrets already redacted (http.ts, failure).
  ctx.logger.info(
    {
      taskId: task.taskId,
      app: task.appName,
      attempt: refused + 1,
      of: settings.attempts,
      notBefore,
      reason: error.message,
    },
    'the app service did not take a task; sending it again later',
  );
  ctx.feed.task({ ...task, status: 'PENDING' });
  ctx.wakeAfter(delayMs);
  return true;
}

/** A running task back to PENDING, as no worker's and never sent (see the repair loop's requeue too). */
export const REQUEUED = { status: 'PENDING', startedAt: null, workerId: null, heartbeatAt: null, dispatchedAt: null };

/**
 * The wait after the `refused`-th refusal: what the app service asked (`Retry-After`), else
 * `firstDelayMs` doubled for each refusal before; never longer than `maxDelayMs`. A computed wait is
 * drawn between half and all of it, so the tasks one restart refused together do not all come back
 * at the same moment.
 */
export function retryDelayMs(
  settings: StartRetrySettings,
  refused: number,
  retryAfterMs: number | null,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== null) return Math.min(retryAfterMs, settings.maxDelayMs);
  const full = Math.min(settings.firstDelayMs * 2 ** (refused - 1), settings.maxDelayMs);
  return Math.round(full / 2 + (random() * full) / 2);
}

/**
 * Why a task failed to start, as its row keeps it: the app service's answer, and how many sends it
 * took when there were more than one (its last refusal, or a failure after earlier ones).
 */
export function startFailureReason(ctx: EngineContext, task: TaskRow, error: AppServiceError): string {
  const sent = task.startAttempts + 1;
  const { attempts } = ctx.options.startRetry;
  if (error.notTaken && attempts > 1) return `${error.message}; gave up after ${sent} attempts`;
  return sent > 1 ? `${error.message} (attempt ${sent} of ${attempts})` : error.message;
}

/** A time as the message shows it: UTC, to the second (rounded up: not before it). */
function secondsOf(time: Date): string {
  return `${new Date(Math.ceil(time.getTime() / 1000) * 1000).toISOString().slice(0, 19)}Z`;
}
