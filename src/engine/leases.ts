import type { OperationStatus } from '../adapters/app-service/port.js';
import type { Prisma, TaskRow } from '../db/models.js';
import { isOperationType, type OperationType } from '../domain/operations.js';
import { receiveReport } from './app-state-reports.js';
import { armTimeout } from './dispatch.js';
import type { EngineContext } from './engine-context.js';
import { acceptedResult, concerns, endDetails, outcomeOf } from './report-rules.js';
import { endOwnTask, forgetEndedElsewhere } from './task-end.js';

/**
 * How long after its request's timeout an adopted task's send is still taken to be open: the time
 * it was sent and now are both the database's clock as each instance reads it (DatabaseClock, to
 * within a round trip), and the app service lists an operation only once it has taken it.
 */
const SEND_WINDOW_MARGIN_MS = 5_000;

/**
 * Renews the lease of the tasks this instance answers for (running, or owed a write), and
 * forgets those that ended elsewhere. Only those: a task it lost track of (e.g. claimed by a
 * statement whose answer never came) lets its lease run out and is recovered like a dead one's.
 */
export async function heartbeat(ctx: EngineContext): Promise<void> {
  const { db, instanceId, tracked } = ctx;
  // The database's clock, read again (leases are stamped and judged on it); a failed read keeps the
  // last offset, and the renewal below says whether the database answers.
  await ctx.clock.sync().catch(() => {});
  const taskIds = tracked.ids();
  if (taskIds.length === 0) return;
  await db.task.updateMany({
    where: { taskId: { in: taskIds }, workerId: instanceId, status: 'RUNNING' },
    data: { heartbeatAt: ctx.clock.date() },
  });
  const ended = await db.task.findMany({
    where: { taskId: { in: taskIds }, status: { not: 'RUNNING' } },
    select: { taskId: true },
  });
  forgetEndedElsewhere(
    ctx,
    ended.map(({ taskId }) => taskId),
  );
}

/**
 * A graceful stop hands this instance's tasks over rather than leaving them to run out their
 * lease: a task the app service runs stays RUNNING with no worker and no heartbeat (the mark of
 * a task handed over, which any instance adopts at once, see recoverAbandoned), with its op id
 * (and its acceptance's result, see TrackedTasks.unrecorded) written again in case that write failed;
 * a task never sent goes back to PENDING. Called once no send is in progress (TaskEngine.stop),
 * so every task still running here has been sent, and only those owed a requeue were not. Should
 * the database refuse, the tasks keep this instance's lease and are adopted when it expires, like
 * a dead instance's.
 */
export async function handOver(ctx: EngineContext): Promise<void> {
  const { db, feed, logger, instanceId, tracked } = ctx;
  const taskIds = tracked.ids();
  if (taskIds.length === 0) return;
  const neverSent = [...tracked.owed.values()].flatMap((owed) => (owed.kind === 'requeue' ? [owed.task.taskId] : []));
  const mine = { status: 'RUNNING', workerId: instanceId };
  try {
    const requeued = await db.task.updateMany({
      where: { ...mine, taskId: { in: taskIds }, OR: [{ dispatchedAt: null }, { taskId: { in: neverSent } }] },
      data: { status: 'PENDING', startedAt: null, workerId: null, heartbeatAt: null, dispatchedAt: null },
    });
    const released = await db.$transaction(
      taskIds.map((taskId) => {
        const opId = tracked.inFlight.get(taskId)?.opId;
        // The result of an acceptance still unwritten goes with it (its adopter never writes one),
        // so that cancelTask takes the task; the adopter follows it by the op id on its row.
        const acceptance = tracked.unrecorded.get(taskId);
        return db.task.updateMany({
          where: { ...mine, taskId },
          data: {
            workerId: null,
            heartbeatAt: null,
            ...(opId ? { opId } : {}),
            ...(acceptance ? { result: acceptance.result as unknown as Prisma.InputJsonObject } : {}),
          },
        });
      }),
    );
    if (requeued.count) {
      const rows = await db.task.findMany({ where: { taskId: { in: taskIds }, status: 'PENDING' } });
      for (const row of rows) feed.task(row);
    }
    const handedOver = released.reduce((sum, { count }) => sum + count, 0);
    logger.info(
      { handedOver, requeued: requeued.count },
      'handed the running tasks over (another instance, or this one after its restart, adopts them)',
    );
  } catch (error) {
    logger.warn(
      { err: error, tasks: taskIds.length },
      'could not hand the running tasks over; they are adopted once their lease expires',
    );
    return;
  }
  for (const taskId of taskIds) tracked.forget(taskId);
}

/**
 * Tasks nobody follows any more: RUNNING with no heartbeat (handed over by a graceful stop) or
 * with one older than the lease (the worker died: crash, kill -9, lost machine). One never sent
 * to the app service goes back to PENDING and runs again. One that was sent may be running there
 * and is never sent twice: this instance adopts it (a conditional claim, so exactly one instance
 * does), renews its lease, keeps its timeout (counted from its start) and follows it to its end by
 * its op id, through its state reports (applied by whichever instance receives them) and by asking
 * the app service where it stands (followAdopted), for the reports that went to the instance that
 * was gone. Tasks of live instances are left alone, and so are this instance's own after an
 * outage longer than the lease: it still answers for them.
 */
export async function recoverAbandoned(ctx: EngineContext): Promise<void> {
  const { db, feed, logger, tracked } = ctx;
  const expired = new Date(ctx.clock.now() - ctx.options.leaseMs);
  const orphans = await db.task.findMany({
    where: { status: 'RUNNING', OR: [{ heartbeatAt: null }, { heartbeatAt: { lt: expired } }] },
  });
  for (const task of orphans) {
    if (ctx.stopped()) break; // a stopping instance adopts nothing: it would only hand it over again
    if (tracked.has(task.taskId)) continue;
    // Still the state we read: exactly one instance (or round) wins each task.
    const unchanged = { id: task.id, status: 'RUNNING', workerId: task.workerId, heartbeatAt: task.heartbeatAt };
    if (task.dispatchedAt) {
      await adopt(ctx, task, unchanged);
      continue;
    }
    const { count } = await db.task.updateMany({
      where: unchanged,
      data: { status: 'PENDING', startedAt: null, workerId: null, heartbeatAt: null },
    });
    if (count) {
      feed.task(task);
      logger.warn({ taskId: task.taskId }, 'requeued a task whose worker died before sending it');
    }
  }
  if (orphans.length) ctx.notify();
}

/** Makes a sent task nobody follows this instance's own (see recoverAbandoned); the app service is asked about it next. */
async function adopt(ctx: EngineContext, task: TaskRow, unchanged: Prisma.TaskWhereInput): Promise<void> {
  const now = ctx.clock.date();
  const { count } = await ctx.db.task.updateMany({
    where: unchanged,
    data: { workerId: ctx.instanceId, heartbeatAt: now },
  });
  if (!count) return; // another instance adopted it first, or it ended meanwhile
  const handedOver = task.heartbeatAt === null;
  const from = task.workerId;
  Object.assign(task, { workerId: ctx.instanceId, heartbeatAt: now });
  forgetEndedElsewhere(ctx, ctx.tracked.othersOfApp(task));
  ctx.tracked.inFlight.set(task.taskId, task);
  ctx.tracked.unconfirmed.add(task.taskId);
  armTimeout(ctx, task, (task.startedAt ?? now).getTime() + ctx.options.timeoutMs - now.getTime());
  const openUntil = sendOpenUntil(ctx, task);
  ctx.logger.info(
    {
      taskId: task.taskId,
      opId: task.opId,
      from,
      ...(openUntil > now.getTime() ? { sendMayBeOpenUntil: new Date(openUntil).toISOString() } : {}),
    },
    handedOver
      ? 'adopted a task handed over by a stopping instance'
      : 'adopted a task whose worker died while the app service ran it',
  );
}

/**
 * Asks the app service where the operations of the adopted tasks stand, and applies each answer as
 * a state report: a task that ended while its reports went to an instance that was gone ends now,
 * one still running moves on and is followed by its reports from here. An operation the app
 * service has no record of will never report its end, so its task fails with that reason
 * ("lost: …"). While the app service cannot be asked, the tasks are followed by their reports
 * alone (their timeout still runs) and asked about again on the next round.
 */
export async function followAdopted(ctx: EngineContext): Promise<void> {
  const { tracked } = ctx;
  const tasks: TaskRow[] = [];
  for (const taskId of tracked.unconfirmed) {
    const task = tracked.inFlight.get(taskId);
    if (task && isOperationType(task.type)) tasks.push(task);
    else tracked.unconfirmed.delete(taskId); // ended, or owed a write: nothing to ask
  }
  if (tasks.length === 0) {
    // Nothing left to ask about (the tasks ended otherwise): a failure told of ends here too.
    ctx.adoptedLookupFailures.succeeded();
    return;
  }
  let statuses: OperationStatus[];
  try {
    statuses = await ctx.appService.lookup(
      tasks.map((task) => ({
        userId: task.userId,
        sourceId: task.sourceId,
        appName: task.appName,
        type: task.type as OperationType,
        opId: task.opId,
      })),
    );
  } catch (error) {
    // Asked again on the next round, every few seconds: the first failure, then one line a minute.
    ctx.adoptedLookupFailures.failed(error, { tasks: tasks.length });
    return;
  }
  ctx.adoptedLookupFailures.succeeded();
  await Promise.all(tasks.map((task, index) => settleAdopted(ctx, task, statuses[index])));
}

async function settleAdopted(ctx: EngineContext, task: TaskRow, status: OperationStatus | undefined): Promise<void> {
  const { tracked } = ctx;
  tracked.unconfirmed.delete(task.taskId);
  if (!status || !tracked.inFlight.has(task.taskId)) return; // ended meanwhile
  const openUntil = sendOpenUntil(ctx, task);
  const sending = ctx.clock.now() < openUntil;
  if (status.known === null || (!status.known && sending)) {
    if (sending) {
      const until = new Date(openUntil).toISOString();
      ctx.logger.debug(
        { taskId: task.taskId, until, reason: status.reason },
        'an adopted task may still be being sent',
      );
    }
    tracked.unconfirmed.add(task.taskId); // followed by its reports meanwhile, and asked about again
    return;
  }
  if (!status.known) {
    const reason = openUntil ? `${status.reason}, ${sentAgo(ctx, task)}` : status.reason;
    ctx.logger.warn({ taskId: task.taskId, opId: task.opId, reason }, 'an adopted task cannot be followed');
    return endOwnTask(ctx, task, 'FAILED', { error: `lost: ${reason}; check the app and retry the task` });
  }
  const { report } = status;
  // Sent, but the instance died before it wrote the op id: the app service's state of the app
  // since the task started is taken to be its operation's, whose op id it names (as a report
  // without op id would count: see report-rules.ts; no later report would concern the task else).
  if (!task.opId && report.opId && task.startedAt && report.createTime >= task.startedAt) task.opId = report.opId;
  const outcome = concerns(task, report) ? outcomeOf(task.type, report.state) : null;
  if (!(await receiveReport(ctx, report))) {
    // The database could not take it (an end is owed meanwhile, see receiveReport): ask again.
    if (tracked.inFlight.has(task.taskId)) tracked.unconfirmed.add(task.taskId);
    return;
  }
  // A report is applied to the task only when newer than its app's row; an end the dead instance
  // wrote to the row but not to the task is written here.
  if (outcome && tracked.inFlight.has(task.taskId)) {
    await endOwnTask(ctx, task, outcome, endDetails(task, report, outcome));
  } else if (sending && !task.opId && tracked.inFlight.has(task.taskId)) {
    // Listed, but in a state of before the task (an upgrade's app as it was): its operation may
    // not have been taken yet, so it is asked about again.
    tracked.unconfirmed.add(task.taskId);
  }
}

/**
 * Until when (ms since the epoch) the request that sent an adopted task may still be open, 0 when
 * it has certainly ended (the task has its op id or the app service's answer, or the app service
 * runs in the process that sent it). A stop hands over a send still open once its budget is spent
 * (TaskEngine.stop), and a killed instance leaves its sends behind: the app service may answer the
 * request (to no one) and run the operation long after the task was adopted, and a first install
 * is not listed before that. Its window is this instance's own request timeout, counted from when
 * the sender marked it sent (the database's clock), plus SEND_WINDOW_MARGIN_MS: every instance is to have the
 * same APP_SERVICE_TIMEOUT_MS (the cluster component says when they differ).
 */
function sendOpenUntil(ctx: EngineContext, task: TaskRow): number {
  const timeoutMs = ctx.appService.requestTimeoutMs;
  if (timeoutMs === undefined || !task.dispatchedAt || task.opId || acceptedResult(task)) return 0;
  return task.dispatchedAt.getTime() + timeoutMs + SEND_WINDOW_MARGIN_MS;
}

/** How long ago an adopted task was sent, beyond the time its request could stay open: what makes it lost. */
function sentAgo(ctx: EngineContext, task: TaskRow): string {
  const seconds = Math.round((ctx.clock.now() - (task.dispatchedAt?.getTime() ?? 0)) / 1000);
  const timeoutMs = ctx.appService.requestTimeoutMs;
  return `${seconds} s after it was sent, longer than its request can stay open (${timeoutMs} ms)`;
}
