import { afterAll, beforeAll, expect, test } from 'vitest';
import { createPrismaClient } from '../src/db/client.js';
import { appKeyString } from '../src/domain/app-key.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { type FakeAppService, startFakeAppService } from './support/fake-app-service.js';
import { REMOTE_SOURCE } from './support/seed.js';
import { startTestServer, type TestServer, waitFor } from './support/server.js';

/**
 * A task adopted from a dead instance is followed by asking the app service about it, again on
 * every recovery round until it answers. While it does not, the log says so once, then once a
 * minute (RepeatedFailure), and says when it answers again: logged at every round, an app service
 * down for 12 minutes wrote 376 warnings.
 */

let database: TestDatabase;
let appService: FakeAppService;
let server: TestServer;
const LIST_APPS = '/app-service/v1/all/apps';
const FAILED = 'task engine: asking the app service about adopted tasks failed';

beforeAll(async () => {
  database = await createTestDatabase('sqlite');
  appService = await startFakeAppService();
  appService.setBehaviour('listApps', { respond: 'http-error', status: 500 });
  const db = createPrismaClient(database.url);
  const key = { userId: 'alice', sourceId: REMOTE_SOURCE, appName: 'orphaned' };
  const long = new Date(Date.now() - 60_000);
  // Sent by an instance that died a minute ago (its lease of 30 s expired; the task's time not).
  await db.task.create({
    data: {
      ...key,
      taskId: 'task-of-a-dead-instance',
      type: 'INSTALL',
      status: 'RUNNING',
      version: '1.0.0',
      activeKey: appKeyString(key),
      metadata: { cfgType: 'app', envs: [], appId: key.appName },
      opId: 'op-of-the-dead',
      workerId: 'dead-instance',
      heartbeatAt: long,
      dispatchedAt: long,
      createdAt: long,
      startedAt: long,
    },
  });
  await db.$disconnect();
  server = await startTestServer('sqlite', {
    database,
    env: {
      APP_SERVICE_URL: appService.url,
      APP_SERVICE_EVENT_SECRET: 'app-service-event-secret-0001',
      TASK_POLL_INTERVAL_MS: '50',
    },
  });
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await appService?.stop();
  await database?.drop();
});

test('the app service failing every round is one warning, and its answer again one line', async () => {
  const asked = () => appService.requests.filter((request) => request.path === LIST_APPS).length;
  await waitFor(async () => (asked() >= 6 ? true : undefined), 'several rounds asking about the adopted task');
  const lines = () => server.logs.filter((line) => line.includes('adopted tasks'));
  expect(lines().filter((line) => line.includes(FAILED))).toHaveLength(1);
  expect(lines().filter((line) => line.includes('still failing'))).toHaveLength(0);
  // Its answer lists the app (a list of no apps at all proves nothing, and would fail the round too).
  appService.apps = [
    {
      name: 'orphaned',
      owner: 'alice',
      marketSource: REMOTE_SOURCE,
      opID: 'op-of-the-dead',
      opType: 'install',
      state: 'installing',
      statusTime: new Date().toISOString(),
    },
  ];
  appService.setBehaviour('listApps', { respond: 'accept' });
  await waitFor(
    async () => (lines().some((line) => line.includes('adopted tasks recovered')) ? true : undefined),
    'the recovery line',
  );
});
