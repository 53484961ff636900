import { afterAll, beforeAll, describe, expect, test } from 'vitest';
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
});
