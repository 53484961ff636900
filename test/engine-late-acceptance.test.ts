import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { AppService, AppStateEvent } from '../src/adapters/app-service/port.js';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { insertTask } from '../src/db/hot-path-sql.js';
import { appKeyString } from '../src/domain/app-key.js';
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

/**
 * An app service that, for every operation, first runs `beforeAnswering` (the state reports it
 * posts before it answers), then accepts it as `opId`.
 */
function acceptingAs(opId: string, beforeAnswering: (operation: OperationRequest) => Promise<void>): AppService {
  return {
    kind: 'simulated',
    async start(operation: OperationRequest) {
      await beforeAnswering(operation);
      return { opId, response: { code: 200, message: 'success', data: { opID: opId } } };
    },
    cancel: async () => {},
    listApps: async () => [],
    listAppsInFull: async () => ({ apps: [], unreadable: [] }),
    lookup: async () => [],
    close: async () => {},
  };
}

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
    return acceptingAs(OP_ID, async (operation) => {
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
    });
  }

  test('the failed task keeps the op id and a result saying the accepted operation failed', async () => {
    const bus = createEventBus();
    const feed = new ChangeFeed(bus);
    engine = new TaskEngine(db, reportingFirst(), new HistoryService(db, 100, bus), feed, createLogger('silent'), {
      concurrency: 1,
      timeoutMs: 60_000,
      pollIntervalMs: 50,
      leaseMs: 60_000,
      maxActivePerUser: 100,
      startRetry: { attempts: 1, firstDelayMs: 1000, maxDelayMs: 1000 },
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

/**
 * Which reports are a running task's own: the op ids decide once both are known, whatever the
 * clocks say; before the app service accepted the task, a report naming an operation is not its.
 */
describe.each(databases)('which reports end a task, by op id, on %s', (kind) => {
  let database: TestDatabase;
  let db: Db;
  let engine: TaskEngine | null = null;
  const upgrade = { userId: 'alice', sourceId: 'market.olares', appName: 'code-server' };
  const INSTALL_OP = 'op-of-the-earlier-install';
  const UPGRADE_OP = 'op-of-the-upgrade';

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    db = createPrismaClient(database.url);
  });
  afterEach(async () => {
    await engine?.stop();
    engine = null;
  });
  afterAll(async () => {
    await db?.$disconnect();
    await database?.drop();
  });

  /** code-server running 4.95.3 (installed by INSTALL_OP), and a PENDING upgrade to 4.93.1. */
  async function pendingUpgrade(taskId: string): Promise<void> {
    await db.appState.deleteMany({ where: upgrade });
    await db.appState.create({
      data: { ...upgrade, installedVersion: '4.95.3', state: 'running', opId: INSTALL_OP, eventTime: new Date(0) },
    });
    await insertTask(db, {
      taskId,
      type: 'UPGRADE',
      ...upgrade,
      version: '4.93.1',
      metadata: { cfgType: 'app', envs: [] },
      idempotencyKey: null,
      activeKey: appKeyString(upgrade),
      retryOfTaskId: null,
      createdAt: new Date(),
    });
  }

  /** Accepts every operation as UPGRADE_OP, after `beforeAnswering` (a report it posts first). */
  const appService = (beforeAnswering: (operation: OperationRequest) => Promise<void>) =>
    acceptingAs(UPGRADE_OP, beforeAnswering);

  async function startEngine(service: AppService): Promise<TaskEngine> {
    const bus = createEventBus();
    const started = new TaskEngine(
      db,
      service,
      new HistoryService(db, 100, bus),
      new ChangeFeed(bus),
      createLogger('silent'),
      {
        concurrency: 1,
        timeoutMs: 60_000,
        pollIntervalMs: 50,
        leaseMs: 60_000,
        maxActivePerUser: 100,
        startRetry: { attempts: 1, firstDelayMs: 1000, maxDelayMs: 1000 },
      },
    );
    engine = started;
    await started.start();
    return started;
  }

  const report = (state: string, opId: string, createTime = new Date()): AppStateEvent => ({
    ...upgrade,
    state,
    opId,
    createTime,
  });
  const taskRow = (taskId: string) => db.task.findUniqueOrThrow({ where: { taskId } });

  test("a routine report naming the app's earlier operation, before the upgrade is accepted, does not complete it", async () => {
    await pendingUpgrade('task-upgrade-foreign');
    const running = await startEngine(
      appService(async () => {
        expect(await engine?.onAppState(report('running', INSTALL_OP))).toBe(true);
      }),
    );
    const accepted = await waitFor(async () => {
      const task = await taskRow('task-upgrade-foreign');
      return task.opId ? task : undefined;
    }, 'the acceptance');
    expect(accepted).toMatchObject({ status: 'RUNNING', opId: UPGRADE_OP });
    expect((await db.appState.findFirstOrThrow({ where: upgrade })).installedVersion).toBe('4.95.3');

    // its own report completes it
    expect(await running.onAppState(report('running', UPGRADE_OP))).toBe(true);
    expect(await taskRow('task-upgrade-foreign')).toMatchObject({ status: 'COMPLETED', opId: UPGRADE_OP });
    expect((await db.appState.findFirstOrThrow({ where: upgrade })).installedVersion).toBe('4.93.1');
  });

  test("the upgrade's own end, reported before the acceptance, completes it at the acceptance", async () => {
    await pendingUpgrade('task-upgrade-outran');
    await startEngine(
      appService(async () => {
        expect(await engine?.onAppState(report('upgrading', UPGRADE_OP))).toBe(true);
        expect(await engine?.onAppState(report('running', UPGRADE_OP))).toBe(true);
      }),
    );
    const ended = await waitFor(async () => {
      const task = await taskRow('task-upgrade-outran');
      return task.status === 'RUNNING' || task.status === 'PENDING' ? undefined : task;
    }, 'the upgrade to end');
    expect(ended).toMatchObject({ status: 'COMPLETED', opId: UPGRADE_OP });
  });

  test("reports naming the task's op id count though the app service's clock is behind", async () => {
    await pendingUpgrade('task-upgrade-skew');
    const running = await startEngine(appService(async () => {}));
    const accepted = await waitFor(async () => {
      const task = await taskRow('task-upgrade-skew');
      return task.opId ? task : undefined;
    }, 'the acceptance');
    const behind = new Date((accepted.startedAt as Date).getTime() - 3000);
    expect(await running.onAppState(report('running', UPGRADE_OP, behind))).toBe(true);
    expect(await taskRow('task-upgrade-skew')).toMatchObject({ status: 'COMPLETED' });
  });
});
