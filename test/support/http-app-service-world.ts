import { afterAll, beforeAll } from 'vitest';
import { availableDatabases } from './databases.js';
import { type FakeAppService, type FakeAppServiceOptions, startFakeAppService } from './fake-app-service.js';
import { TaskDetailQuery } from './operations.js';
import { seed } from './seed.js';
import { AUTH_ENV, dataOf, execute, installThroughApi, startTestServer, type TestServer, TOKENS } from './server.js';

export const APP_SERVICE_SECRET = 'app-service-event-secret-0001';
export const SOURCE = 'market.olares';

/** The server and the fake app service of engine-http.test.ts and engine-http-failures.test.ts. */
export interface HttpAppServiceWorld {
  readonly fake: FakeAppService;
  readonly server: TestServer;
  /** Where the app service posts its state events. */
  readonly intake: string;
}

/**
 * A server whose tasks run against a real app service over HTTP (the fake, APP_SERVICE_URL) with
 * tokens, on the first database available; started before the file's tests, stopped after them.
 * The world's fields are set once `beforeAll` has run.
 */
export function httpAppServiceWorld(options: FakeAppServiceOptions = {}): HttpAppServiceWorld {
  const world = {} as { fake: FakeAppService; server: TestServer; intake: string };
  beforeAll(async () => {
    const [kind] = await availableDatabases();
    world.fake = await startFakeAppService(options);
    world.server = await startTestServer(kind ?? 'sqlite', {
      env: {
        ...AUTH_ENV,
        APP_SERVICE_URL: world.fake.url,
        APP_SERVICE_EVENT_SECRET: APP_SERVICE_SECRET,
        APP_SERVICE_TOKEN: 'service-credential-0001',
        APP_SERVICE_TIMEOUT_MS: '2000',
        RECONCILE_INTERVAL_MS: '3600000',
      },
    });
    world.intake = `${world.server.url}/events/app-state`;
  });
  afterAll(async () => {
    await world.server?.stop();
    await world.fake?.stop();
  });
  return world;
}

/** A task as ops sees it. */
export async function taskOf(server: TestServer, taskId: string) {
  return dataOf(await execute(server, TaskDetailQuery, { taskId }, { token: TOKENS.ops })).task;
}

/** Installs, as alice, a catalogue app of the test's own (no demo user has it). */
export async function installOwnApp(server: TestServer, appName: string, version: string) {
  await seed(server.app.db).catalogApp({ name: appName, versions: [version] });
  return installThroughApi(server, { sourceId: SOURCE, appName, version }, TOKENS.alice);
}

/** An ISO time `offsetMs` from now. */
export const at = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString();
