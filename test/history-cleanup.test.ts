import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FINISHED_MESSAGES_PER_CLEANUP } from '../src/services/webhook-service.js';
import { startTestServer, type TestServer, waitFor } from './support/server.js';

describe('history retention', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', {
      env: { HISTORY_RETENTION_DAYS: '30', HISTORY_CLEANUP_INTERVAL_MS: '50' },
    });
  });
  afterAll(() => server?.stop());

  test('records older than HISTORY_RETENTION_DAYS are removed on schedule; newer ones stay', async () => {
    const day = 24 * 60 * 60 * 1000;
    const { db } = server.app;
    await db.historyRecord.createMany({
      data: [
        { type: 'system', message: 'too old', userId: 'alice', time: new Date(Date.now() - 31 * day) },
        { type: 'system', message: 'still kept', userId: 'alice', time: new Date(Date.now() - 29 * day) },
      ],
    });
    await waitFor(
      async () => ((await db.historyRecord.count({ where: { message: 'too old' } })) === 0 ? true : undefined),
      'the cleanup job',
    );
    expect(await db.historyRecord.count({ where: { message: 'still kept' } })).toBe(1);
    expect(server.logs.some((line) => line.includes('removed old history records'))).toBe(true);
  });

  test('finished outbox messages older than the cutoff are removed in bounded statements until none is left or the time of the run is up; recent and pending ones stay', async () => {
    const day = 24 * 60 * 60 * 1000;
    const { db } = server.app;
    // Younger than the job's own cutoff (30 days, every 50 ms here), which so leaves them to this call.
    const old = new Date(Date.now() - 20 * day);
    const message = (key: string, status: string, updatedAt: Date) => ({
      kind: 'payment',
      topic: 'cleanup',
      url: 'http://127.0.0.1:9/',
      body: '{}',
      idempotencyKey: key,
      status,
      nextAttemptAt: updatedAt,
      updatedAt,
    });
    await db.outboxMessage.createMany({
      data: [
        ...Array.from({ length: FINISHED_MESSAGES_PER_CLEANUP + 5 }, (_, index) =>
          message(`cleanup:old:${index}`, 'DELIVERED', old),
        ),
        message('cleanup:old-pending', 'PENDING', old),
        message('cleanup:recent', 'DEAD', new Date()),
      ],
    });
    const cutoff = new Date(Date.now() - 10 * day);
    // A run past its deadline stops after its statement (so a backlog of millions never held the
    // start-up for minutes), and says there is more.
    expect(await server.app.services.webhooks.removeFinishedMessages(cutoff, Date.now())).toEqual({
      removed: FINISHED_MESSAGES_PER_CLEANUP,
      more: true,
    });
    await db.outboxMessage.createMany({
      data: Array.from({ length: FINISHED_MESSAGES_PER_CLEANUP }, (_, index) =>
        message(`cleanup:old-again:${index}`, 'DELIVERED', old),
      ),
    });
    // More than one statement's bound: within its time the rest goes in the same run, not an hour later.
    const removed = await server.app.services.webhooks.removeFinishedMessages(cutoff, Date.now() + 60_000);
    expect(removed).toEqual({ removed: FINISHED_MESSAGES_PER_CLEANUP + 5, more: false });
    const left = await db.outboxMessage.findMany({ where: { topic: 'cleanup' }, orderBy: { id: 'asc' } });
    expect(left.map((row) => row.idempotencyKey)).toEqual(['cleanup:old-pending', 'cleanup:recent']);
  });
});
