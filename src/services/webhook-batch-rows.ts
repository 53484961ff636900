import type { Db } from '../db/client.js';
import { lastKeysOfSubjects } from '../db/outbox-sql.js';
import { type AppKey, appKeyString } from '../domain/app-key.js';
import { type BatchRows, keyOf, subjectOf, type Wanted } from './webhook-messages.js';

/**
 * The rows a batch of the webhook dispatcher's changes needs (webhook-dispatcher.ts), one query
 * per table, run together, and the newest outbox key of each (webhook, subject) `wantsLastKey`
 * asks for (by `webhookId subject`), which "changed only" compares with.
 */
export async function readBatchRows(
  db: Db,
  wanted: readonly Wanted[],
  wantsLastKey: (pair: string) => boolean,
): Promise<BatchRows> {
  const taskIds = new Set<string>();
  const appKeys = new Map<string, AppKey>();
  const paymentIds = new Set<number>();
  const pairs = new Map<string, { webhookId: string; subject: string }>();
  for (const { change, webhooks } of wanted) {
    if (change.kind === 'task') {
      if (!change.row) taskIds.add(change.event.taskId);
      continue;
    }
    const subject = subjectOf(change);
    if (change.kind === 'app') appKeys.set(appKeyString(change.event), keyOf(change.event));
    else paymentIds.add(change.event.paymentId);
    for (const { webhookId } of webhooks) {
      const remembered = `${webhookId} ${subject}`;
      if (wantsLastKey(remembered)) pairs.set(remembered, { webhookId, subject });
    }
  }
  const keys = [...appKeys.values()];
  const [tasks, apps, activeTasks, payments, lastKeys] = await Promise.all([
    taskIds.size === 0 ? [] : db.task.findMany({ where: { taskId: { in: [...taskIds] } } }),
    keys.length === 0 ? [] : db.appState.findMany({ where: { OR: keys } }),
    keys.length === 0
      ? []
      : db.task.findMany({
          where: { activeKey: { in: [...appKeys.keys()] } },
          select: { activeKey: true, type: true, status: true },
        }),
    paymentIds.size === 0 ? [] : db.payment.findMany({ where: { id: { in: [...paymentIds] } } }),
    lastKeysOfSubjects(db, [...pairs.values()]),
  ]);
  return {
    tasks: new Map(tasks.map((task) => [task.taskId, task])),
    apps: new Map(apps.map((row) => [appKeyString(row), row])),
    activeTasks: new Map(activeTasks.map(({ activeKey, ...task }) => [activeKey ?? '', task])),
    payments: new Map(payments.map((payment) => [payment.id, payment])),
    lastKeys,
  };
}
