import type { EngineContext } from './engine-context.js';
import { finishTask } from './task-end.js';

/**
 * Renews the lease of the tasks this instance answers for (running, or owed a write), and
 * forgets those that ended elsewhere. Only those: a task it lost track of (e.g. claimed by a
 * statement whose answer never came) lets its lease run out and is recovered like a dead one's.
 */
export async function heartbeat({ db, instanceId, tracked }: EngineContext): Promise<void> {
  const taskIds = tracked.ids();
  if (taskIds.length === 0) return;
  await db.task.updateMany({
    where: { taskId: { in: taskIds }, workerId: instanceId, status: 'RUNNING' },
    data: { heartbeatAt: new Date() },
  });
  const ended = await db.task.findMany({
    where: { taskId: { in: taskIds }, status: { not: 'RUNNING' } },
    select: { taskId: true },
  });
  for (const { taskId } of ended) tracked.forget(taskId);
}

/**
 * Tasks whose worker died (crash, kill -9, lost machine): RUNNING with a heartbeat older than
 * the lease. One that was never sent to the app service goes back to PENDING and runs again;
 * one that was sent may still be running there, so it fails with reason "interrupted" rather
 * than being sent twice. Tasks of live instances are left alone, and so are this instance's
 * own after an outage longer than the lease: it still answers for them.
 */
export async function recoverAbandoned(ctx: EngineContext): Promise<void> {
  const { db, feed, logger, tracked } = ctx;
  const expired = new Date(Date.now() - ctx.options.leaseMs);
  const orphans = await db.task.findMany({
    where: { status: 'RUNNING', OR: [{ heartbeatAt: null }, { heartbeatAt: { lt: expired } }] },
  });
  for (const task of orphans) {
    if (tracked.has(task.taskId)) continue;
    if (!task.dispatchedAt) {
      const { count } = await db.task.updateMany({
        where: { id: task.id, status: 'RUNNING', heartbeatAt: task.heartbeatAt },
        data: { status: 'PENDING', startedAt: null, workerId: null, heartbeatAt: null },
      });
      if (count) {
        feed.task(task);
        logger.warn({ taskId: task.taskId }, 'requeued a task whose worker died before sending it');
      }
    } else if (
      await finishTask(ctx, task.taskId, 'FAILED', {
        error:
          'interrupted: the server stopped while the app service was running this operation; check the app and retry the task',
      })
    ) {
      logger.warn({ taskId: task.taskId }, 'failed a task whose worker died while the app service ran it');
    }
  }
  if (orphans.length) ctx.notify();
}
