import { describe, expect, test } from 'vitest';
import type { AppStateEvent } from '../src/adapters/app-service/port.js';
import { SimulatedAppService } from '../src/adapters/app-service/simulated.js';
import { type AppKey, appKeyString } from '../src/domain/app-key.js';
import { imagesOfEntry, MAX_IMAGES, type OperationRequest } from '../src/domain/operations.js';
import { waitFor } from './support/server.js';

/**
 * A simulated app service at full speed whose reports are collected; `until` waits for one. With
 * `stored`, those apps are its stored states, which its reports update as the task engine would
 * (an uninstalled app's row goes), and which a test may change as another instance would.
 */
function cluster(options: { failApps?: string[]; stored?: AppStateEvent[] } = {}) {
  const reports: AppStateEvent[] = [];
  const stored = options.stored && new Map(options.stored.map((event) => [appKeyString(event), event]));
  let reads = 0;
  const waiters: { match: (event: AppStateEvent) => boolean; resolve: (event: AppStateEvent) => void }[] = [];
  const service = new SimulatedAppService(
    async (event) => {
      if (event.state === 'uninstalled') stored?.delete(appKeyString(event));
      else stored?.set(appKeyString(event), event);
      reports.push(event);
      for (const waiter of waiters.filter((w) => w.match(event))) waiter.resolve(event);
      return true;
    },
    {
      stepMs: 0,
      failApps: options.failApps ?? [],
      ...(stored
        ? {
            storedApps: async () => {
              reads += 1;
              return [...stored.values()];
            },
            storedEntrances: async (key: AppKey) => stored.get(appKeyString(key))?.entrances ?? null,
          }
        : {}),
    },
  );
  const until = (appName: string, state: string, userId = 'alice') =>
    new Promise<AppStateEvent>((resolve) => {
      const match = (event: AppStateEvent) =>
        event.appName === appName && event.state === state && event.userId === userId;
      const done = reports.find(match);
      if (done) return resolve(done);
      waiters.push({ match, resolve });
    });
  return { service, reports, until, stored, reads: () => reads };
}

const operation = (type: OperationRequest['type'], appName: string, userId = 'alice'): OperationRequest => ({
  type,
  userId,
  sourceId: 'market.olares',
  appName,
  version: '1.0.0',
  cfgType: 'app',
  envs: [],
});

const listed = async (service: SimulatedAppService) =>
  (await service.listApps()).map(({ userId, appName, state }) => `${userId}/${appName}:${state}`).sort();

describe('the simulated app service', () => {
  test('a stop reports stopping then stopped, a resume resuming then running, each with the app entrance in its state', async () => {
    const { service, reports, until } = cluster();
    const { opId, response } = await service.start(operation('STOP', 'jellyfin'));
    expect(response).toEqual({ code: 200, message: 'success', data: { uid: 'jellyfin', opID: opId } });
    await until('jellyfin', 'stopped');
    await service.start(operation('RESUME', 'jellyfin'));
    await until('jellyfin', 'running');

    expect(reports.map((event) => [event.opType, event.state, event.entrances?.[0]?.state])).toEqual([
      ['stop', 'stopping', 'notReady'],
      ['stop', 'stopped', 'stopped'],
      ['resume', 'resuming', 'notReady'],
      ['resume', 'running', 'running'],
    ]);
    const [entrance] = reports.at(-1)?.entrances ?? [];
    expect(entrance).toEqual({
      name: 'jellyfin',
      title: 'jellyfin',
      url: expect.stringMatching(/^https:\/\/[0-9a-f]{8}\.alice\.olares\.local$/),
      state: 'running',
      authLevel: 'private',
      icon: null,
      openMethod: 'default',
      invisible: false,
      shared: false,
    });
    // The same user and app always get the same address; another user's is another.
    await service.start(operation('RESUME', 'jellyfin', 'bob'));
    const bobs = await until('jellyfin', 'resuming', 'bob');
    expect(bobs?.entrances?.[0]?.url).not.toBe(entrance?.url);
    expect(bobs?.entrances?.[0]?.url).toMatch(/\.bob\.olares\.local$/);
    await service.close();
  });

  test('its app list holds the stored apps and those it ran operations for; stopped and failed apps stay, uninstalled ones leave', async () => {
    const { service, until, reads } = cluster({
      failApps: ['broken-*'],
      stored: [
        {
          userId: 'bob',
          sourceId: 'market.olares',
          appName: 'gitea',
          state: 'running',
          createTime: new Date('2026-11-01T10:00:00Z'),
        },
      ],
    });
    await service.start(operation('INSTALL', 'n8n'));
    await until('n8n', 'running');
    await service.start(operation('INSTALL', 'broken-app'));
    await until('broken-app', 'installFailed');
    await service.start(operation('STOP', 'n8n'));
    await until('n8n', 'stopped');
    expect(await listed(service)).toEqual(['alice/broken-app:installFailed', 'alice/n8n:stopped', 'bob/gitea:running']);

    const [gitea] = (await service.listApps()).filter((app) => app.appName === 'gitea');
    expect(gitea?.createTime).toEqual(new Date('2026-11-01T10:00:00Z'));
    expect(gitea?.entrances?.[0]).toMatchObject({ name: 'gitea', state: 'running' });

    await service.start(operation('UNINSTALL', 'gitea', 'bob'));
    await until('gitea', 'uninstalled', 'bob');
    expect(await listed(service)).toEqual(['alice/broken-app:installFailed', 'alice/n8n:stopped']);
    // Every listing (three here) reads the stored apps again; an install reads none of the list.
    expect(reads()).toBe(3);
    await service.close();
  });

  test("a clone's entrances show the titles it was given, and keep them through a stop and a resume, here and after a restart", async () => {
    const { service, until, stored } = cluster({ stored: [] });
    const clone: OperationRequest = {
      ...operation('CLONE', 'immich1a2b3c'),
      clone: {
        rawAppName: 'immich',
        title: 'Family photos',
        requestHash: '1a2b3c',
        entrances: [{ name: 'admin', title: 'Family admin' }],
      },
    };
    await service.start(clone);
    await until('immich1a2b3c', 'running');
    await service.start(operation('STOP', 'immich1a2b3c'));
    await until('immich1a2b3c', 'stopped');
    await service.start(operation('RESUME', 'immich1a2b3c'));
    const resumed = await until('immich1a2b3c', 'running');
    const titles = (event: AppStateEvent | undefined) =>
      event?.entrances?.map(({ name, title, state }) => ({ name, title, state }));
    expect(titles(resumed)).toEqual([
      { name: 'immich', title: 'Family photos', state: 'running' },
      { name: 'admin', title: 'Family admin', state: 'running' },
    ]);
    // Each entrance opens at an address of its own.
    expect(new Set(resumed.entrances?.map((entrance) => entrance.url)).size).toBe(2);
    await service.close();

    // A restarted process knows the clone from its stored state only.
    const restarted = cluster({ stored: [...(stored?.values() ?? [])] });
    await restarted.service.start(operation('STOP', 'immich1a2b3c'));
    expect(titles(await restarted.until('immich1a2b3c', 'stopped'))).toEqual([
      { name: 'immich', title: 'Family photos', state: 'stopped' },
      { name: 'admin', title: 'Family admin', state: 'stopped' },
    ]);
    await restarted.service.close();
  });

  test('a failed upgrade of an app it had keeps the app, in the failed state', async () => {
    const { service: second, until: untilSecond } = cluster({
      failApps: ['shaky'],
      stored: [
        { userId: 'alice', sourceId: 'market.olares', appName: 'shaky', state: 'running', createTime: new Date() },
      ],
    });
    await second.start(operation('UPGRADE', 'shaky'));
    await untilSecond('shaky', 'upgradeFailed');
    expect(await listed(second)).toEqual(['alice/shaky:upgradeFailed']);
    await second.close();
  });
});

test('operations of an earlier process are lost: their apps are listed failed from then on, settled apps stay as they are', async () => {
  const { service } = cluster({
    stored: [
      { userId: 'alice', sourceId: 'market.olares', appName: 'halfway', state: 'upgrading', createTime: new Date(0) },
      { userId: 'alice', sourceId: 'market.olares', appName: 'steady', state: 'running', createTime: new Date(0) },
    ],
  });
  const target = (appName: string, type: OperationRequest['type']) => ({
    userId: 'alice',
    sourceId: 'market.olares',
    appName,
    type,
    opId: `sim-of-an-earlier-process-${appName}`,
  });
  const answers = await service.lookup([
    target('halfway', 'UPGRADE'),
    target('steady', 'STOP'),
    target('never-listed', 'INSTALL'),
  ]);
  expect(answers.map((answer) => answer.known)).toEqual([false, false, false]);
  // A lost first install is not stored yet (its task is in flight, so the stored states leave it
  // out): it is listed failed all the same, or status correction would take it for gone.
  expect(await listed(service)).toEqual([
    'alice/halfway:upgradeFailed',
    'alice/never-listed:installFailed',
    'alice/steady:running',
  ]);
  const apps = await service.listApps();
  const halfway = apps.find((app) => app.appName === 'halfway');
  expect(halfway?.createTime.getTime()).toBeGreaterThan(0);
  expect(halfway?.entrances?.[0]?.state).toBe('notReady');
  const lost = apps.find((app) => app.appName === 'never-listed');
  expect(lost?.reason).toMatch(/^the simulated app service keeps its operations in memory only/);
  await service.close();
});

test('a lost first install is listed failed until its failure is stored; once its stored row goes, so does it', async () => {
  const { service, stored } = cluster({ stored: [] });
  if (!stored) throw new Error('no store');
  const target = { userId: 'alice', sourceId: 'market.olares', appName: 'n8n', type: 'INSTALL' as const, opId: 'x' };
  await service.lookup([target]);
  expect(await listed(service)).toEqual(['alice/n8n:installFailed']);

  // The task engine stores the failure (a later event): the stored row is listed, as stored.
  const failure = {
    ...target,
    state: 'installFailed',
    reason: 'lost: stored',
    createTime: new Date(Date.now() + 1000),
  };
  stored.set(appKeyString(target), failure);
  expect((await service.listApps()).map((app) => app.reason)).toEqual(['lost: stored']);
  // The row goes (another instance uninstalled the failed app): the app is not listed again.
  stored.delete(appKeyString(target));
  expect(await listed(service)).toEqual([]);
  await service.close();
});

test('instances of a cluster list what the stored states hold: an app another instance installed is listed, one it uninstalled is not', async () => {
  const first = cluster({ stored: [] });
  const store = first.stored;
  if (!store) throw new Error('no store');
  await first.service.start(operation('INSTALL', 'vikunja'));
  await first.until('vikunja', 'running');
  // A second instance of the same cluster: its own simulated app service over the same stored states.
  const second = new SimulatedAppService(
    async (event) => {
      if (event.state === 'uninstalled') store.delete(appKeyString(event));
      else store.set(appKeyString(event), event);
      return true;
    },
    { stepMs: 0, failApps: [], storedApps: async () => [...store.values()] },
  );
  expect(await listed(second)).toEqual(['alice/vikunja:running']);

  // The second instance stops it (a newer state than the first one's own report) …
  await second.start(operation('STOP', 'vikunja'));
  await waitFor(
    async () => (store.get(appKeyString(operation('STOP', 'vikunja')))?.state === 'stopped' ? true : undefined),
    'the stop stored',
  );
  expect(await listed(first.service)).toEqual(['alice/vikunja:stopped']);
  // … and uninstalls it: the first instance, which once reported it running, no longer lists it.
  await second.start(operation('UNINSTALL', 'vikunja'));
  await waitFor(async () => (store.size === 0 ? true : undefined), 'the uninstall stored');
  expect(await listed(first.service)).toEqual([]);
  await first.service.close();
  await second.close();
});

describe('images of a catalogue entry', () => {
  test('are read from a list of names or {name, size}, or from the image analysis map, by name', () => {
    expect(
      imagesOfEntry({ images: ['redis:7', { name: 'postgres:16', size: 1024 }, { name: 'x', size: -1 }] }),
    ).toEqual([
      { name: 'redis:7', size: 0 },
      { name: 'postgres:16', size: 1024 },
      { name: 'x', size: 0 },
    ]);
    expect(
      imagesOfEntry({
        image_analysis: { images: { 'z:1': { name: 'z:1', total_size: 5 }, 'a:1': { name: 'a:1', total_size: 7 } } },
      }),
    ).toEqual([
      { name: 'a:1', size: 7 },
      { name: 'z:1', size: 5 },
    ]);
  });

  test('an entry without images, or with junk where they would be, gives none; duplicates and overlong names are dropped and the list is bounded', () => {
    expect(imagesOfEntry({ name: 'plain' })).toEqual([]);
    expect(imagesOfEntry(null)).toEqual([]);
    expect(imagesOfEntry({ images: 'redis' })).toEqual([]);
    expect(imagesOfEntry({ images: [42, null, { size: 3 }, '', 'a'.repeat(513), 'dup', 'dup'] })).toEqual([
      { name: 'dup', size: 0 },
    ]);
    const many = Array.from({ length: MAX_IMAGES + 50 }, (_, i) => `image-${i}`);
    expect(imagesOfEntry({ images: many })).toHaveLength(MAX_IMAGES);
  });
});
