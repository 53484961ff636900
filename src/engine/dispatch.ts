import { AppServiceError, type AppStateEvent } from '../adapters/app-service/port.js';
import type { Db } from '../db/client.js';
import {
  findAppState,
  markDispatched,
  setAppOperation,
  setEndedTaskAcceptance,
  setTaskAccepted,
} from '../db/hot-path-sql.js';
import type { Prisma, TaskRow } from '../db/models.js';
import {
  CREDENTIAL_ENV,
  isOperationType,
  type OperationRequest,
  RESERVED_ENV_NAMES,
  readMetadata,
} from '../domain/operations.js';
import { resultEnvelope, type TaskResultEnvelope } from '../domain/task-result.js';
import { isTerminal } from '../domain/tasks.js';
import type { Acceptance, EndDetails, EngineContext } from './engine-context.js';
import { concerns, endDetails, endedResult, outcomeOf, timedOutError } from './report-rules.js';
import { sendAgainLater, startFailureReason } from './start-retry.js';
import { endOwnTask, finishTask } from './task-end.js';

/**
 * Runs one claimed task: arms its timeout, records that it is sent, and sends it to the app
 * service. From then on the app service's state reports move it on (see app-state-reports.ts).
 * One the app service did not take waits to be sent again (start-retry.ts).
 */
export async function execute(ctx: EngineContext, task: TaskRow): Promise<void> {
  if (!isOperationType(task.type)) {
    return endOwnTask(ctx, task, 'FAILED', { error: `task type ${task.type} cannot be executed` });
  }
  armTimeout(ctx, task, ctx.options.timeoutMs);
  let operation: OperationRequest;
  try {
    operation = await operationOf(ctx.db, task);
    // A stopping instance sends nothing new: the task stays unsent, and handOver puts it back to PENDING.
    if (ctx.stopped()) return;
    // Recorded before sending: from here on, a crash must not send it a second time. A task
    // that is no longer ours to run (canceled meanwhile) is not sent at all.
    if (!(await markDispatched(ctx.sql, task.taskId, ctx.instanceId, ctx.clock.date()))) {
      return ctx.tracked.forget(task.taskId);
    }
  } catch (error) {
    return ctx.owe({ kind: 'requeue', task }, error); // the database failed before anything was sent
  }
  let accepted: Awaited<ReturnType<EngineContext['appService']['start']>>;
  try {
    accepted = await ctx.appService.start(operation);
  } catch (error) {
    if (await sendAgainLater(ctx, task, error)) return;
    return endOwnTask(ctx, task, 'FAILED', startFailure(ctx, task, operation, error));
  }
  const { opId, response } = accepted;
  await recordAcceptance(ctx, task, opId, resultEnvelope(operation, { opId, status: 'success', response }));
}

/**
 * Arms the timer that fails a task still running `delayMs` from now: a task's whole run, or what
 * is left of it for a task adopted from another instance (its timeout counts from its start).
 */
export function armTimeout(ctx: EngineContext, task: TaskRow, delayMs: number): void {
  const { timeoutMs } = ctx.options;
  ctx.tracked.setTimeout(
    task.taskId,
    setTimeout(
      () => {
        void endOwnTask(ctx, task, 'FAILED', { error: timedOutError(timeoutMs) });
      },
      Math.max(0, delayMs),
    ),
  );
}

/** Why a task failed when the app service did not accept it. */
function startFailure(ctx: EngineContext, task: TaskRow, operation: OperationRequest, error: unknown): EndDetails {
  if (!(error instanceof AppServiceError)) {
    ctx.logger.error({ err: error, taskId: task.taskId }, 'task execution failed unexpectedly');
    return { error: 'internal error while sending the operation to the app service' };
  }
  const response = {
    code: error.details.code ?? error.details.status ?? null,
    message: error.message,
    data: error.details.data ?? null,
  };
  const reason = startFailureReason(ctx, task, error);
  const envelope = resultEnvelope(operation, { opId: null, status: 'failed', error: reason, response });
  return { error: reason, result: envelope as unknown as Prisma.InputJsonValue };
}

/**
 * The op id and the success result (the app service's acceptance) on the task's row, and the op id
 * on its app's, while the task still runs (the first events may already have ended it: a task
 * ended by then keeps the result its end wrote). Events are matched against the op id in memory,
 * so a failed write does not stop the task; but cancelTask reads the acceptance from the row, and
 * would refuse the task for the rest of its run: the repair loop writes it again until it lands.
 */
async function recordAcceptance(
  ctx: EngineContext,
  task: TaskRow,
  opId: string | null,
  result: TaskResultEnvelope,
): Promise<void> {
  if (opId) task.opId = opId;
  task.result = result as unknown as Prisma.JsonValue;
  const acceptance = { task, opId, result };
  try {
    await writeAcceptance(ctx, acceptance);
  } catch (error) {
    ctx.oweAcceptance(acceptance, error);
  }
}

/**
 * Writes an acceptance (see recordAcceptance): the task first, then its app's state row (see
 * LOCK ORDER on TaskEngine). Throws when the database fails.
 */
export async function writeAcceptance(ctx: EngineContext, { task, opId, result }: Acceptance): Promise<void> {
  const now = ctx.clock.date();
  const { taken, reportedFirst } = await ctx.sql.$transaction(async (tx) => {
    const accepted = await setTaskAccepted(tx, task.taskId, opId, result, now);
    const marked = opId ? await setAppOperation(tx, task, opId, task.type.toLowerCase(), now) : 1;
    return { taken: accepted, reportedFirst: marked === 0 };
  });
  if (!taken) return await recordAfterEnd(ctx, task.taskId, opId, result);
  ctx.feed.task(task);
  if (reportedFirst) await endByEarlierReport(ctx, task);
}

/**
 * Reports of the task's operation came before the app service's answer (an HTTP app service may
 * post them first): its op id was unknown then, so they went to the app's row only (report-rules.ts,
 * `concerns`). The row, which follows that op id, ends the task now if its state says so.
 */
async function endByEarlierReport(ctx: EngineContext, task: TaskRow): Promise<void> {
  const row = await findAppState(ctx.sql, task);
  if (!row || row.opId !== task.opId) return;
  const { userId, sourceId, appName, opId, state, progress, reason, message, eventTime } = row;
  const report: AppStateEvent = {
    userId,
    sourceId,
    appName,
    opId,
    state,
    progress,
    reason,
    message,
    createTime: eventTime,
  };
  const outcome = concerns(task, report) ? outcomeOf(task.type, row.state) : null;
  if (outcome) await finishTask(ctx, task.taskId, outcome, endDetails(task, report, outcome));
}

/**
 * The app service's report of the end arrived before its answer to the request (an HTTP app
 * service may post the event first): the ended task still gets the op id and, when its end wrote
 * no result, the acceptance saying how the operation ended.
 */
async function recordAfterEnd(
  ctx: EngineContext,
  taskId: string,
  opId: string | null,
  accepted: TaskResultEnvelope,
): Promise<void> {
  const ended = await ctx.db.task.findUnique({ where: { taskId } });
  if (!ended || !isTerminal(ended.status)) return;
  if (ended.result !== null && (ended.opId !== null || opId === null)) return; // its end wrote both
  const result = ended.result ?? endedResult(accepted as unknown as Prisma.InputJsonObject, ended.status, ended.error);
  const updated = await setEndedTaskAcceptance(ctx.sql, taskId, opId, result, ctx.clock.date());
  if (updated) ctx.feed.task(updated);
}

/** The request sent to the app service; a paid app gets the buyer's credential as an env. */
async function operationOf(db: Db, task: TaskRow): Promise<OperationRequest> {
  const metadata = readMetadata(task.metadata);
  // Requests may not name a reserved env, but a task stored before they were refused may: the
  // server's value replaces it rather than going next to it.
  const envs = metadata.envs.filter((env) => !RESERVED_ENV_NAMES.has(env.name));
  if (metadata.paid && metadata.appId && (task.type === 'INSTALL' || task.type === 'CLONE')) {
    const payment = await db.payment.findFirst({
      where: { userId: task.userId, appId: metadata.appId, vc: { not: null } },
      orderBy: { id: 'desc' },
    });
    if (payment?.vc) envs.push({ name: CREDENTIAL_ENV, value: payment.vc });
  }
  return {
    type: task.type as OperationRequest['type'],
    userId: task.userId,
    sourceId: task.sourceId,
    appName: task.appName,
    version: task.version,
    cfgType: metadata.cfgType,
    envs,
    ...(metadata.clone ? { clone: metadata.clone } : {}),
    ...(metadata.uninstall ? { uninstall: metadata.uninstall } : {}),
    ...(metadata.images ? { images: metadata.images } : {}),
  };
}
