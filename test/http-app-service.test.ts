import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { HttpAppService } from '../src/adapters/app-service/http.js';
import { AppServiceError } from '../src/adapters/app-service/port.js';
import { parseAppStateEvent } from '../src/adapters/app-service/state-event.js';
import { ValidationError } from '../src/domain/errors.js';
import type { OperationRequest } from '../src/domain/operations.js';
import { createLogger } from '../src/platform/logger.js';
import { type Behaviour, type FakeAppService, startFakeAppService } from './support/fake-app-service.js';
import { startUnacceptingPort } from './support/unaccepting-port.js';

const TOKEN = 'market-service-credential-7f3a9c';
const REPO_URL = 'http://chart-repo.local:82/';

let fake: FakeAppService;
const logs: string[] = [];

function createService(options: { baseUrl?: string; token?: string | null; timeoutMs?: number } = {}) {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return new HttpAppService({
    baseUrl: options.baseUrl ?? fake.url,
    ...(options.token === null ? {} : { token: options.token ?? TOKEN }),
    timeoutMs: options.timeoutMs ?? 5_000,
    repoUrl: REPO_URL,
    logger: createLogger('debug', sink),
  });
}

function install(overrides: Partial<OperationRequest> = {}): OperationRequest {
  return {
    type: 'INSTALL',
    userId: 'alice',
    sourceId: 'market.olares',
    appName: 'jellyfin',
    version: '1.2.0',
    cfgType: 'app',
    envs: [],
    ...overrides,
  };
}

/** The AppServiceError a promise rejects with (fails the test when it resolves or throws something else). */
async function failureOf(promise: Promise<unknown>): Promise<AppServiceError> {
  const error = await promise.then(
    () => null,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(AppServiceError);
  return error as AppServiceError;
}

beforeAll(async () => {
  fake = await startFakeAppService();
});
afterAll(() => fake?.stop());
beforeEach(() => {
  fake.reset();
  fake.apps.length = 0;
  logs.length = 0;
});

describe('HttpAppService operations', () => {
  test('an install is POSTed with the user, source and credential headers and resolves with the op id', async () => {
    const result = await createService().start(
      install({
        envs: [
          { name: 'ADMIN_EMAIL', value: 'alice@example.com' },
          { name: 'DB_PASSWORD', valueFrom: 'SHARED_DB_PASSWORD' },
          { name: 'EMPTY', value: null },
        ],
      }),
    );

    expect(result).toEqual({ opId: 'op-1', response: { code: 200, message: 'success', data: { opID: 'op-1' } } });
    expect(fake.requests).toHaveLength(1);
    const [request] = fake.requests;
    expect(request).toMatchObject({ method: 'POST', path: '/app-service/v1/apps/jellyfin/install', query: {} });
    expect(request?.headers).toMatchObject({
      'x-bfl-user': 'alice',
      'x-market-user': 'alice',
      'x-market-source': 'market.olares',
      'x-authorization': TOKEN,
      'content-type': 'application/json',
    });
    expect(request?.body).toEqual({
      repoUrl: REPO_URL,
      source: 'market',
      x_market_user: 'alice',
      x_market_source: 'market.olares',
      images: [],
      envs: [
        { envName: 'ADMIN_EMAIL', value: 'alice@example.com' },
        { envName: 'DB_PASSWORD', valueFrom: { envName: 'SHARED_DB_PASSWORD' } },
        { envName: 'EMPTY' },
      ],
    });
  });

  test('an install from the upload source is sent as a custom app', async () => {
    await createService().start(install({ sourceId: 'upload' }));
    expect(fake.requests[0]?.body).toMatchObject({ source: 'custom', x_market_source: 'upload' });
    expect(fake.requests[0]?.headers['x-market-source']).toBe('upload');
  });

  test('without a configured token no X-Authorization header is sent', async () => {
    await createService({ token: null }).start(install());
    expect(fake.requests[0]?.headers).not.toHaveProperty('x-authorization');
  });

  test('app names are URL-encoded into a single path segment', async () => {
    await createService().start(install({ appName: 'odd name/../x' }));
    expect(fake.requests[0]?.path).toBe('/app-service/v1/apps/odd%20name%2F..%2Fx/install');
  });

  test('a clone installs under the new name with its entrances, raw app name, request hash and title', async () => {
    const result = await createService().start(
      install({
        type: 'CLONE',
        appName: 'jellyfin3f2a1b',
        envs: [{ name: 'TZ', value: 'Europe/Berlin' }],
        clone: {
          rawAppName: 'jellyfin',
          title: 'Jellyfin for the kids',
          requestHash: '3f2a1b',
          entrances: [{ name: 'web', title: 'Kids TV' }],
        },
      }),
    );

    expect(result.opId).toMatch(/^op-\d+$/);
    expect(fake.requests[0]).toMatchObject({ method: 'POST', path: '/app-service/v1/apps/jellyfin3f2a1b/install' });
    expect(fake.requests[0]?.body).toEqual({
      repoUrl: REPO_URL,
      source: 'market',
      x_market_user: 'alice',
      x_market_source: 'market.olares',
      images: [],
      envs: [{ envName: 'TZ', value: 'Europe/Berlin' }],
      entrances: [{ name: 'web', title: 'Kids TV' }],
      rawAppName: 'jellyfin',
      requestHash: '3f2a1b',
      title: 'Jellyfin for the kids',
    });
  });

  test('an upgrade sends the target version, and a missing op id is accepted', async () => {
    fake.setBehaviour('upgrade', { respond: 'accept', opId: null });
    const result = await createService().start(install({ type: 'UPGRADE', version: '1.3.0' }));

    expect(result).toEqual({ opId: null, response: { code: 200, message: 'success', data: {} } });
    expect(fake.requests[0]).toMatchObject({ method: 'POST', path: '/app-service/v1/apps/jellyfin/upgrade' });
    expect(fake.requests[0]?.body).toEqual({
      repoUrl: REPO_URL,
      version: '1.3.0',
      x_market_user: 'alice',
      source: 'market',
      x_market_source: 'market.olares',
      images: [],
      envs: [],
    });
  });

  test('an uninstall sends all and deleteData, both false unless asked for', async () => {
    const service = createService();
    await service.start(install({ type: 'UNINSTALL' }));
    await service.start(install({ type: 'UNINSTALL', appName: 'gitea', uninstall: { all: true, deleteData: true } }));

    expect(fake.requests.map(({ path, body }) => ({ path, body }))).toEqual([
      { path: '/app-service/v1/apps/jellyfin/uninstall', body: { all: false, deleteData: false } },
      { path: '/app-service/v1/apps/gitea/uninstall', body: { all: true, deleteData: true } },
    ]);
  });

  test('a cancel is POSTed with an empty JSON body to cancel?type=operate and tolerates a missing op id', async () => {
    fake.setBehaviour('cancel', { respond: 'accept', opId: null });
    await createService().cancel({
      userId: 'bob',
      sourceId: 'market.olares',
      appName: 'gitea',
      type: 'INSTALL',
      opId: 'op-7',
    });

    const [request] = fake.requests;
    expect(request).toMatchObject({
      method: 'POST',
      path: '/app-service/v1/apps/gitea/cancel',
      query: { type: 'operate' },
      body: {},
    });
    expect(request?.headers).toMatchObject({
      'x-bfl-user': 'bob',
      'x-authorization': TOKEN,
      'content-type': 'application/json',
    });
  });

  test('a stop is POSTed to suspend with {all: false}, a resume to resume, both with the same headers and no op id needed', async () => {
    fake.setBehaviour('suspend', { respond: 'accept', opId: null });
    const service = createService();
    const stopped = await service.start(install({ type: 'STOP', appName: 'gitea' }));
    const resumed = await service.start(install({ type: 'RESUME', appName: 'gitea' }));

    expect(stopped).toEqual({ opId: null, response: { code: 200, message: 'success', data: {} } });
    expect(resumed.opId).toMatch(/^op-\d+$/);
    expect(fake.requests.map(({ method, path, body }) => ({ method, path, body }))).toEqual([
      { method: 'POST', path: '/app-service/v1/apps/gitea/suspend', body: { all: false } },
      { method: 'POST', path: '/app-service/v1/apps/gitea/resume', body: {} },
    ]);
    for (const request of fake.requests) {
      expect(request.headers).toMatchObject({
        'x-bfl-user': 'alice',
        'x-market-user': 'alice',
        'x-market-source': 'market.olares',
        'x-authorization': TOKEN,
        'content-type': 'application/json',
      });
    }
  });

  test('a stop or resume the app service refuses fails with its message, classified like the others', async () => {
    fake.setBehaviour('suspend', { respond: 'business-error', code: 400, message: 'sys app can not be suspend' });
    fake.setBehaviour('resume', { respond: 'http-error', status: 503 });
    const service = createService();

    const refused = await failureOf(service.start(install({ type: 'STOP', appName: 'files' })));
    expect(refused.kind).toBe('rejected');
    expect(refused.message).toBe('app service rejected stop of files: sys app can not be suspend');
    const unavailable = await failureOf(service.start(install({ type: 'RESUME', appName: 'files' })));
    expect(unavailable.kind).toBe('unavailable');
    expect(unavailable.message).toContain('resume of files');
  });

  test('install, upgrade and clone send the images the operation carries as {name, size}', async () => {
    const images = [
      { name: 'docker.io/jellyfin/jellyfin:10.9.0', size: 734003200 },
      { name: 'docker.io/library/redis:7', size: 0 },
    ];
    const service = createService();
    await service.start(install({ images }));
    await service.start(install({ type: 'UPGRADE', version: '1.3.0', images }));
    await service.start(
      install({
        type: 'CLONE',
        appName: 'jellyfin3f2a1b',
        images,
        clone: { rawAppName: 'jellyfin', title: 'Films', requestHash: 'abc', entrances: [] },
      }),
    );
    expect(fake.requests.map((request) => (request.body as { images: unknown }).images)).toEqual([
      images,
      images,
      images,
    ]);
  });

  test("the accepted answer is kept with secret values redacted, even when the app service quotes a secret env's value", async () => {
    fake.setBehaviour('install', {
      respond: 'json',
      body: {
        code: 200,
        message: 'accepted with DB_PASSWORD=hunter2-secret-value',
        data: { opID: 'op-echo', echoed: { envs: [{ envName: 'DB_PASSWORD', value: 'hunter2-secret-value' }] } },
      },
    });
    const accepted = await createService().start(
      install({ envs: [{ name: 'DB_PASSWORD', value: 'hunter2-secret-value' }] }),
    );
    expect(accepted.opId).toBe('op-echo');
    expect(JSON.stringify(accepted.response)).not.toContain('hunter2-secret-value');
    expect(accepted.response.code).toBe(200);
    expect(JSON.stringify(accepted.response.data)).toContain('op-echo');
  });
});

describe('HttpAppService failures', () => {
  test('a business error (HTTP 200, code 422) keeps the app service message and its data for the user', async () => {
    const missing = { type: 'appenv', missingValues: [{ envName: 'DB_PASSWORD' }] };
    fake.setBehaviour('install', {
      respond: 'business-error',
      code: 422,
      message: 'missing env values',
      data: missing,
    });

    const error = await failureOf(createService().start(install()));

    expect(error.kind).toBe('rejected');
    expect(error.message).toBe('app service rejected install of jellyfin: missing env values');
    expect(error.details).toEqual({ status: 200, code: 422, data: missing });
  });

  const failures: { case: string; behaviour: Behaviour; kind: string; message: RegExp }[] = [
    {
      case: 'a 503',
      behaviour: { respond: 'http-error', status: 503, body: { code: 503, message: 'helm is busy', data: null } },
      kind: 'unavailable',
      message: /^app service failed on install of jellyfin: helm is busy \(HTTP 503\)$/,
    },
    {
      case: 'a 500 without a body',
      behaviour: { respond: 'http-error', status: 500 },
      kind: 'unavailable',
      message: /^app service failed on install of jellyfin \(HTTP 500\)$/,
    },
    {
      case: 'a 429 (its load, not the request)',
      behaviour: { respond: 'http-error', status: 429, body: { code: 429, message: 'slow down', data: null } },
      kind: 'unavailable',
      message: /^app service is too busy for install of jellyfin: slow down \(HTTP 429\)$/,
    },
    {
      case: 'a 404',
      behaviour: { respond: 'http-error', status: 404 },
      kind: 'not_found',
      message: /install of jellyfin.*HTTP 404/,
    },
    {
      case: 'a 401',
      behaviour: { respond: 'http-error', status: 401 },
      kind: 'unauthorized',
      message: /credentials for install of jellyfin \(HTTP 401\)/,
    },
    {
      case: 'a 403',
      behaviour: { respond: 'http-error', status: 403 },
      kind: 'unauthorized',
      message: /credentials for install of jellyfin \(HTTP 403\)/,
    },
    {
      case: 'a 400 with an envelope',
      behaviour: { respond: 'http-error', status: 400, body: { code: 400, message: 'bad chart', data: null } },
      kind: 'rejected',
      message: /^app service rejected install of jellyfin: bad chart \(HTTP 400\)$/,
    },
    {
      case: 'a body that is not JSON',
      behaviour: { respond: 'garbage' },
      kind: 'invalid_response',
      message: /install of jellyfin with a body that is not JSON/,
    },
    {
      case: 'JSON that is not the envelope',
      behaviour: { respond: 'json', body: { ok: true, opID: 'op-1' } },
      kind: 'invalid_response',
      message: /install of jellyfin without the \{code, message, data\} envelope/,
    },
    {
      case: 'an accepted install without an op id',
      behaviour: { respond: 'accept', opId: null },
      kind: 'invalid_response',
      message: /^app service accepted install of jellyfin but returned no operation id$/,
    },
  ];

  test.each(failures)(
    '$case from the app service fails the install with $kind',
    async ({ behaviour, kind, message }) => {
      fake.setBehaviour('install', behaviour);
      const error = await failureOf(createService().start(install()));
      expect(error.kind).toBe(kind);
      expect(error.message).toMatch(message);
    },
  );

  test('an HTTP error with an envelope keeps its code and data in the details', async () => {
    fake.setBehaviour('uninstall', {
      respond: 'http-error',
      status: 400,
      body: { code: 400, message: 'app is busy', data: { state: 'installing' } },
    });
    const error = await failureOf(createService().start(install({ type: 'UNINSTALL' })));
    expect(error.details).toEqual({ status: 400, code: 400, data: { state: 'installing' } });
  });

  test('a cancel the app service refuses fails with the same classification', async () => {
    fake.setBehaviour('cancel', { respond: 'business-error', code: 400, message: 'nothing to cancel' });
    const error = await failureOf(
      createService().cancel({
        userId: 'bob',
        sourceId: 'market.olares',
        appName: 'gitea',
        type: 'INSTALL',
        opId: null,
      }),
    );
    expect(error).toMatchObject({
      kind: 'rejected',
      message: 'app service rejected cancel of gitea: nothing to cancel',
    });
  });

  test('an app service that does not answer in time fails with timeout, saying after how long', async () => {
    fake.setBehaviour('install', { respond: 'hang' });
    const error = await failureOf(createService({ timeoutMs: 300 }).start(install()));
    expect(error.kind).toBe('timeout');
    expect(error.message).toBe('app service did not answer install of jellyfin within 300 ms');
  });

  test('an app service that is not listening is unavailable', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const error = await failureOf(createService({ baseUrl: `http://127.0.0.1:${closedPort}` }).start(install()));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toBe('app service is unreachable for install of jellyfin: ECONNREFUSED');
    expect(error.notTaken).toEqual({ retryAfterMs: null });
  });

  test('an app service that never accepts the connection is unreachable at our timeout, as not taken: nothing was sent', async () => {
    // Shorter than undici's own connect timeout (10 s): the call's time is up while it connects.
    const unaccepting = await startUnacceptingPort();
    try {
      const startedAt = Date.now();
      const service = createService({ baseUrl: `http://127.0.0.1:${unaccepting.port}`, timeoutMs: 300 });
      const error = await failureOf(service.start(install()));
      expect(error).toMatchObject({
        kind: 'unavailable',
        message: 'app service is unreachable for install of jellyfin: UND_ERR_CONNECT_TIMEOUT',
        notTaken: { retryAfterMs: null },
      });
      expect(Date.now() - startedAt).toBeLessThan(5000);
    } finally {
      await unaccepting.close();
    }
  });

  test('only a 429, a 503 or no connection at all says the app service took nothing, with the wait it asked for', async () => {
    const notTaken = async (behaviour: Behaviour) => {
      fake.setBehaviour('install', behaviour);
      return (await failureOf(createService({ timeoutMs: 300 }).start(install()))).notTaken;
    };
    const inSeconds = (seconds: number) => new Date(Date.now() + seconds * 1000).toUTCString();
    const busy = { code: 429, message: 'slow down', data: null };
    expect(await notTaken({ respond: 'http-error', status: 429, body: busy, headers: { 'Retry-After': '7' } })).toEqual(
      { retryAfterMs: 7000 },
    );
    expect(await notTaken({ respond: 'http-error', status: 503 })).toEqual({ retryAfterMs: null });
    const dated = await notTaken({ respond: 'http-error', status: 503, headers: { 'Retry-After': inSeconds(30) } });
    expect(dated?.retryAfterMs).toBeGreaterThan(25_000);
    expect(dated?.retryAfterMs).toBeLessThanOrEqual(30_000);
    expect(await notTaken({ respond: 'http-error', status: 429, headers: { 'Retry-After': 'soon' } })).toEqual({
      retryAfterMs: null,
    });
    // It may have started the operation before failing, or before the answer was late.
    for (const status of [500, 502, 504]) expect(await notTaken({ respond: 'http-error', status })).toBeUndefined();
    expect(await notTaken({ respond: 'hang' })).toBeUndefined();
    fake.setBehaviour('install', { respond: 'accept' });

    const unresolved = await failureOf(createService({ baseUrl: 'http://no-such-host.invalid' }).start(install()));
    expect(unresolved.message).toMatch(/unreachable for install of jellyfin: (ENOTFOUND|EAI_AGAIN)/);
    expect(unresolved.notTaken).toEqual({ retryAfterMs: null });
    // A connection that breaks once the request is sent: it may have been taken.
    const cutting = createServer((socket) => socket.once('data', () => socket.destroy()));
    await new Promise<void>((resolve) => cutting.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = cutting.address() as { port: number };
      const cut = await failureOf(createService({ baseUrl: `http://127.0.0.1:${port}` }).start(install()));
      expect(cut.kind).toBe('unavailable');
      expect(cut.notTaken).toBeUndefined();
    } finally {
      await new Promise((resolve) => cutting.close(resolve));
    }
  });

  test('the token appears in no error message, error detail or log line, even when the app service echoes it', async () => {
    const behaviours: Behaviour[] = [
      { respond: 'business-error', code: 401, message: `token ${TOKEN} has expired`, data: { token: TOKEN } },
      { respond: 'http-error', status: 401, body: { code: 401, message: `invalid token ${TOKEN}`, data: null } },
      { respond: 'http-error', status: 502 },
      { respond: 'garbage' },
      { respond: 'json', body: [TOKEN] },
      { respond: 'hang' },
    ];
    const service = createService({ timeoutMs: 300 });
    const errors: AppServiceError[] = [];
    for (const behaviour of behaviours) {
      fake.setBehaviour('install', behaviour);
      errors.push(await failureOf(service.start(install())));
    }
    fake.setBehaviour('listApps', { respond: 'http-error', status: 403 });
    errors.push(await failureOf(service.listApps()));

    expect(errors.map((error) => error.kind)).toEqual([
      'rejected',
      'unauthorized',
      'unavailable',
      'invalid_response',
      'invalid_response',
      'timeout',
      'unauthorized',
    ]);
    expect(errors[0]?.message).toBe('app service rejected install of jellyfin: token [redacted] has expired');
    expect(errors[0]?.details.data).toEqual({ token: '[redacted]' });
    for (const error of errors) {
      expect(error.message).not.toContain(TOKEN);
      expect(error.stack).not.toContain(TOKEN);
      expect(JSON.stringify(error.details)).not.toContain(TOKEN);
    }
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.join('\n')).not.toContain(TOKEN);
  });
});

describe('HttpAppService.listApps', () => {
  const running = {
    name: 'jellyfin',
    rawAppName: 'jellyfin',
    owner: 'alice',
    state: 'running',
    opType: 'install',
    opID: 'op-3',
    progress: '',
    reason: '',
    message: '',
    statusTime: '2026-11-22T10:00:00.123456789Z',
    updateTime: '2026-11-22T09:00:00Z',
    settings: { market_source: 'market.local' },
  };
  const downloading = {
    name: 'gitea',
    owner: 'bob',
    state: 'downloading',
    progress: 42.5,
    marketSource: 'upload',
    updateTime: '2026-11-22T11:30:00+01:00',
  };

  test('turns the enveloped list into state events, taking the source and time from where the app service puts them', async () => {
    fake.apps.push(running, downloading, {
      name: 'ollama',
      owner: 'alice',
      state: 'stopped',
      statusTime: '2026-11-20T08:00:00Z',
    });
    const events = await createService().listApps();

    expect(fake.requests[0]).toMatchObject({ method: 'GET', path: '/app-service/v1/all/apps' });
    expect(fake.requests[0]?.headers['x-authorization']).toBe(TOKEN);
    expect(events).toEqual([
      {
        userId: 'alice',
        sourceId: 'market.local',
        appName: 'jellyfin',
        rawAppName: 'jellyfin',
        opId: 'op-3',
        opType: 'install',
        state: 'running',
        progress: null,
        reason: null,
        message: null,
        createTime: new Date('2026-11-22T10:00:00.123Z'),
      },
      {
        userId: 'bob',
        sourceId: 'upload',
        appName: 'gitea',
        rawAppName: null,
        opId: null,
        opType: null,
        state: 'downloading',
        progress: '42.5',
        reason: null,
        message: null,
        createTime: new Date('2026-11-22T10:30:00Z'),
      },
      expect.objectContaining({ appName: 'ollama', sourceId: 'market.olares', state: 'stopped' }),
    ]);
  });

  test('accepts a bare array instead of the envelope', async () => {
    fake.setBehaviour('listApps', { respond: 'json', body: [downloading] });
    const events = await createService().listApps();
    expect(events.map((event) => `${event.userId}/${event.appName}`)).toEqual(['bob/gitea']);
  });

  test('skips items without a name, owner, state or valid time, and logs a warning for each', async () => {
    fake.apps.push(
      { ...running, name: '' },
      { ...downloading, owner: undefined },
      { ...running, state: undefined },
      { ...running, statusTime: 'yesterday' },
      { ...downloading, updateTime: undefined },
      'not an app',
      downloading,
    );
    const events = await createService().listApps();

    expect(events.map((event) => event.appName)).toEqual(['gitea']);
    const warnings = logs.map((line) => JSON.parse(line)).filter((entry) => entry.level === 40);
    expect(warnings.map((entry) => entry.problem)).toEqual([
      'no name',
      'no owner',
      'no state',
      'invalid time "yesterday"',
      'no statusTime or updateTime',
      'not an object',
    ]);
    expect(warnings[0]).toMatchObject({ msg: 'skipping an app the app service listed', owner: 'alice' });
  });

  test('the full listing names the items it skipped by whatever owner and name they give, and reads the listed version and title', async () => {
    fake.apps.push(
      { ...running, name: '' },
      { ...running, state: undefined },
      { ...downloading, owner: undefined },
      'not an app',
      {
        ...running,
        name: 'vaultwarden',
        settings: { market_source: 'market.local', version: '1.32.0', title: 'Vaultwarden' },
      },
    );
    const listing = await createService().listAppsInFull();

    expect(listing.apps).toEqual([
      expect.objectContaining({ appName: 'vaultwarden', listedVersion: '1.32.0', listedTitle: 'Vaultwarden' }),
    ]);
    expect(listing.unreadable).toEqual([
      { userId: 'alice', appName: null },
      { userId: 'alice', appName: 'jellyfin' },
      { userId: null, appName: 'gitea' },
      { userId: null, appName: null },
    ]);
  });

  test('an envelope with another code is rejected, and one without a list is an invalid response', async () => {
    fake.setBehaviour('listApps', { respond: 'business-error', code: 500, message: 'cache not ready' });
    expect(await failureOf(createService().listApps())).toMatchObject({
      kind: 'rejected',
      message: 'app service rejected listing of all apps: cache not ready',
    });

    fake.setBehaviour('listApps', { respond: 'json', body: { code: 200, message: 'success', data: { apps: [] } } });
    expect((await failureOf(createService().listApps())).kind).toBe('invalid_response');
  });

  test('the listing of every app may be larger than the 8 MiB any other answer is held to', async () => {
    // About 9 MiB of plausible apps: a big cluster's listing, which must still reconcile.
    const count = 36_000;
    for (let i = 0; i < count; i++) fake.apps.push({ ...running, name: `app-${i}`, opID: `op-${i}` });
    const events = await createService({ timeoutMs: 30_000 }).listApps();
    expect(JSON.stringify(fake.apps).length).toBeGreaterThan(8 * 1024 * 1024);
    expect(events).toHaveLength(count);
    expect(events.at(-1)).toMatchObject({ userId: 'alice', appName: `app-${count - 1}`, state: 'running' });
  });

  test('the listing of a cluster of 12,000 apps with their entrances, over a million JSON values, is read whole', async () => {
    // What a real listing holds per app (~100 JSON values: entrances, settings): the listing used
    // to be held to the 1,000,000 values any answer is, which refused every cluster past ~11,000 apps.
    const count = 12_000;
    const entranceStatuses = Array.from({ length: 4 }, (_, j) => ({
      name: `e${j}`,
      title: `Entrance ${j}`,
      state: 'running',
      statusTime: '2026-11-22T10:00:00Z',
      reason: '',
      message: '',
      url: `https://e${j}.alice.olares.com`,
      authLevel: 'private',
      invisible: false,
      openMethod: 'default',
    }));
    for (let i = 0; i < count; i++) fake.apps.push({ ...running, name: `app-${i}`, opID: `op-${i}`, entranceStatuses });
    const events = await createService({ timeoutMs: 60_000 }).listApps();
    expect(events).toHaveLength(count);
    expect(events.at(-1)).toMatchObject({ userId: 'alice', appName: `app-${count - 1}`, state: 'running' });
  }, 60_000);

  test('any other answer over 8 MiB is an invalid response, not read whole', async () => {
    fake.setBehaviour('install', { respond: 'json', body: { code: 200, data: 'x'.repeat(8 * 1024 * 1024) } });
    const error = await failureOf(createService().start(install()));
    expect(error.kind).toBe('invalid_response');
    expect(error.message).toBe('app service answered install of jellyfin with a body larger than 8388608 bytes');
  });
});

describe('the fake app service', () => {
  test('sendEvent POSTs a state event with the bearer secret and resolves with the HTTP status', async () => {
    // The fake has no intake of its own, so it records the event and answers 404.
    const event = { name: 'gitea', user: 'bob', state: 'running', createTime: '2026-11-22T10:00:00Z' };
    const status = await fake.sendEvent(`${fake.url}/events/app-state`, 'intake-secret', event);

    expect(status).toBe(404);
    expect(fake.requests[0]).toMatchObject({ method: 'POST', path: '/events/app-state', body: event });
    expect(fake.requests[0]?.headers).toMatchObject({
      authorization: 'Bearer intake-secret',
      'content-type': 'application/json',
    });
  });
});

describe('parseAppStateEvent', () => {
  const valid = {
    eventID: 'evt-1',
    createTime: '2026-11-22T10:00:00.123456789Z',
    name: 'jellyfin3f2a1b',
    rawAppName: 'jellyfin',
    title: 'Jellyfin for the kids',
    opID: 'op-9',
    opType: 'install',
    state: 'downloading',
    user: 'alice',
    progress: '42.5',
    marketSource: 'market.local',
    reason: 'pulling images',
    message: '2 of 5 layers',
    entranceStatuses: [{ name: 'web', state: 'notReady' }],
    sharedEntrances: [],
  };

  test('a full event maps to an AppStateEvent with its entrances and ignores the fields the market does not keep', () => {
    expect(parseAppStateEvent(valid)).toEqual({
      userId: 'alice',
      sourceId: 'market.local',
      appName: 'jellyfin3f2a1b',
      rawAppName: 'jellyfin',
      opId: 'op-9',
      opType: 'install',
      state: 'downloading',
      progress: '42.5',
      reason: 'pulling images',
      message: '2 of 5 layers',
      createTime: new Date('2026-11-22T10:00:00.123Z'),
      entrances: [
        {
          name: 'web',
          title: null,
          url: null,
          state: 'notReady',
          authLevel: null,
          icon: null,
          openMethod: null,
          invisible: false,
          shared: false,
        },
      ],
    });
  });

  test.each([
    ['2026-11-22T10:00:00.123456789Z', '2026-11-22T10:00:00.123Z'],
    ['2026-11-22T10:00:00.999999999Z', '2026-11-22T10:00:00.999Z'],
    ['2026-11-22T10:00:00.5Z', '2026-11-22T10:00:00.500Z'],
    ['2026-11-22T10:00:00Z', '2026-11-22T10:00:00.000Z'],
    ['2026-11-22T11:00:00.000000001+01:00', '2026-11-22T10:00:00.000Z'],
  ])('createTime %s is read as %s, cutting digits below milliseconds', (createTime, expected) => {
    expect(parseAppStateEvent({ ...valid, createTime }).createTime.toISOString()).toBe(expected);
  });

  test('only name, user, state and createTime are required; the source defaults and empty strings mean absent', () => {
    const event = parseAppStateEvent({
      name: 'gitea',
      user: 'bob',
      state: 'running',
      createTime: '2026-11-22T10:00:00Z',
      opID: '',
      reason: null,
      progress: 100,
    });
    expect(event).toEqual({
      userId: 'bob',
      sourceId: 'market.olares',
      appName: 'gitea',
      rawAppName: null,
      opId: null,
      opType: null,
      state: 'running',
      progress: '100',
      reason: null,
      message: null,
      createTime: new Date('2026-11-22T10:00:00Z'),
    });
  });

  const { name: _name, ...withoutName } = valid;
  const badEvents: { case: string; body: unknown; path: string; message: string }[] = [
    { case: 'a missing name', body: withoutName, path: 'name', message: 'is required' },
    { case: 'an empty user', body: { ...valid, user: '' }, path: 'user', message: 'must not be empty' },
    { case: 'a numeric state', body: { ...valid, state: 3 }, path: 'state', message: 'must be a string' },
    {
      case: 'an overlong state',
      body: { ...valid, state: 'x'.repeat(65) },
      path: 'state',
      message: 'must be at most 64 characters',
    },
    {
      case: 'an overlong name',
      body: { ...valid, name: 'x'.repeat(129) },
      path: 'name',
      message: 'must be at most 128 characters',
    },
    {
      case: 'a time without a zone',
      body: { ...valid, createTime: '2026-11-22T10:00:00' },
      path: 'createTime',
      message: 'must be an RFC 3339 time',
    },
    {
      case: 'an impossible date',
      body: { ...valid, createTime: '2026-02-31T10:00:00Z' },
      path: 'createTime',
      message: 'must be an RFC 3339 time',
    },
    {
      case: 'a missing createTime',
      body: { ...valid, createTime: undefined },
      path: 'createTime',
      message: 'is required',
    },
    {
      case: 'an overlong reason',
      body: { ...valid, reason: 'x'.repeat(2001) },
      path: 'reason',
      message: 'must be at most 2000 characters',
    },
    {
      case: 'an overlong message',
      body: { ...valid, message: 'x'.repeat(2001) },
      path: 'message',
      message: 'must be at most 2000 characters',
    },
    { case: 'a numeric opID', body: { ...valid, opID: 7 }, path: 'opID', message: 'must be a string' },
    {
      case: 'an object as progress',
      body: { ...valid, progress: { percent: 4 } },
      path: 'progress',
      message: 'must be a string',
    },
    { case: 'a body that is an array', body: [valid], path: 'body', message: 'must be a JSON object' },
    { case: 'a body that is null', body: null, path: 'body', message: 'must be a JSON object' },
  ];

  test.each(badEvents)('$case is a ValidationError naming $path', ({ body, path, message }) => {
    let error: unknown;
    try {
      parseAppStateEvent(body);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues).toEqual([{ path, message: expect.stringContaining(message) }]);
    expect((error as ValidationError).message).toContain(`${path} ${message}`);
  });

  test('several bad fields give one issue each', () => {
    expect(() => parseAppStateEvent({ user: 'x'.repeat(500), state: '', createTime: 'now' })).toThrow(
      expect.objectContaining({
        issues: [
          { path: 'name', message: 'is required' },
          { path: 'user', message: 'must be at most 128 characters' },
          { path: 'state', message: 'must not be empty' },
          { path: 'createTime', message: expect.stringContaining('RFC 3339') },
        ],
      }),
    );
  });
});
