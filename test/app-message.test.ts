import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type FakeAppService, startFakeAppService } from './support/fake-app-service.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * An app whose state the app service explains only in its event's `message` (no `reason`): the
 * text was stored and shown on no field, so an app failed with nothing saying why.
 */

const SECRET = 'app-service-event-secret-message';

describe('the app service message on an app', () => {
  let appService: FakeAppService;
  let server: TestServer;

  beforeAll(async () => {
    appService = await startFakeAppService();
    server = await startTestServer('sqlite', {
      env: { ...AUTH_ENV, APP_SERVICE_URL: appService.url, APP_SERVICE_EVENT_SECRET: SECRET },
    });
  });
  afterAll(async () => {
    await server?.stop();
    await appService?.stop();
  });

  const sendEvent = (event: Record<string, string>) =>
    fetch(`${server.url}/events/app-state`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRET}` },
      body: JSON.stringify(event),
    });
  const appOf = async (appName: string) => {
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.alice}` },
      body: JSON.stringify({
        query: 'query ($name: String!) { app(sourceId: "market.olares", appName: $name) { state reason message } }',
        variables: { name: appName },
      }),
    });
    return ((await response.json()) as { data: { app: Record<string, string | null> | null } }).data.app;
  };

  test('a failure told only in the message is shown on the app, and an app without one says null', async () => {
    const event = {
      name: 'excalidraw',
      user: 'alice',
      state: 'installFailed',
      createTime: new Date().toISOString(),
      message: 'image pull failed: manifest unknown for docker.io/excalidraw/excalidraw:v0.17',
    };
    expect((await sendEvent(event)).status).toBe(202);
    const app = await waitFor(async () => (await appOf('excalidraw')) ?? undefined, 'the app stored');
    expect(app).toEqual({ state: 'installFailed', reason: null, message: event.message });

    await sendEvent({ name: 'gitea', user: 'alice', state: 'running', createTime: new Date().toISOString() });
    expect(await waitFor(async () => (await appOf('gitea')) ?? undefined, 'gitea stored')).toEqual({
      state: 'running',
      reason: null,
      message: null,
    });
  });
});
