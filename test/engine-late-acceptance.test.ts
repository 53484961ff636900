import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AppService, AppStateEvent } from '../src/adapters/app-service/port.js';
import { createPrismaClient, type Db } from '../src/db/client.js';
import type { OperationRequest } from '../src/domain/operations.js';
import { TaskEngine } from '../src/engine/task-engine.js';
import { ChangeFeed, createEventBus } from '../src/events/change-feed.js';
import { createLogger } from '../src/platform/logger.js';
import { HistoryService } from '../src/services/history-service.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { createPendingInstall } from './support/rows.js';
import { waitFor } from './support/server.js';

/**
 * An app service may report an operation's end before it answers the request that started it (an
 * HTTP app service posts its state event first). The task then ends from the report, and the
 * acceptance that follows still leaves the op id and the result on the ended task: a user sees
 * which operation failed and what the app service said, whichever arrived first.
 */

const databases = await availableDatabases();
const key = { userId: 'alice', sourceId: 'market.olares', appName: 'n8n' };
const OP_ID = 'op-reported-before-accepted';

describe.each(databases)('an end reported before the acceptance on %s', (kind) => {
  let database: TestDatabase;
  let db: Db;
  let engine: TaskEngine;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    db = createPrismaClient(database.url);
  });
  afterAll(async () => {
    await engine?.stop();
    await db?.$disconnect();
    await database?.drop();
  });

  /** Reports the operation's failure, and only once the engine has taken that report, accepts it. */
  function reportingFirst(): AppService {
    return {
      kind: 'simulated',
      async start(operation: OperationRequest) {
        const failed: AppStateEvent = {
          userId: operation.userId,
          sourceId: operation.sourceId,
          appName: operation.appName,
          state: 'installFailed',
          reason: 'image pull failed',
          opId: OP_ID,
          createTime: new Date(),
        };
        expect(await engine.onAppState(failed)).toBe(true);
        return { opId: OP_ID, response: { code: 200, message: 'success', data: { opID: OP_ID } } };
      },
      cancel: async () => {},
      listApps: async () => [],
      listAppsInFull: async () => ({ apps: [], unreadable: [] }),
      lookup: async () => [],
      close: async () => {},
    };
  }

  test('the failed task keeps the op id and a result saying the accepted operation failed', async () => {
    const bus = createEventBus();
    const feed = new ChangeFeed(bus);
    engine = new TaskEngine(db, reportingFirst(), new HistoryService(db, 100, bus), feed, createLogger('silent'), {
      concurrency: 1,
      timeoutMs: 60_000,
      pollIntervalMs: 50,
      leaseMs: 60_000,
    });
    await createPendingInstall(db, key, 'task-late-acceptance');
    await engine.start();

    const error = 'install of n8n failed on the app service (installFailed): image pull failed';
    const task = await waitFor(async () => {
      const row = await db.task.findUnique({ where: { taskId: 'task-late-acceptance' } });
      return row?.status === 'FAILED' && row.result !== null ? row : undefined;
    }, 'the failed task to get its result');
    expect(task).toMatchObject({ status: 'FAILED', opId: OP_ID, error });
    expect(task.result).toMatchObject({
      operation: 'install',
      app_name: 'n8n',
      opID: OP_ID,
      status: 'failed',
      error,
      backend_response: { code: 200, message: 'success' },
    });
  });
});
