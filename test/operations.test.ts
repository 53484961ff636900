import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import {
  AppQuery,
  CancelTaskMutation,
  CloneAppMutation,
  HistoryQuery,
  InstallAppMutation,
  RetryTaskMutation,
  TaskDetailQuery,
  TasksQuery,
  UninstallAppMutation,
  UpgradeAppMutation,
} from './support/operations.js';
import { REMOTE_SOURCE, type Seeder, seededTest, startSeededServer } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, installThroughApi, type TestServer, TOKENS, waitFor } from './support/server.js';

const databases = await availableDatabases();
const SOURCE = REMOTE_SOURCE;

/**
 * Two install tasks, PENDING at start, that the engine claims at once: with TASK_CONCURRENCY=2
 * and an app service that stands still they hold both workers for good, so new tasks stay PENDING.
 */
async function fillBothWorkers(seed: Seeder) {
  await seed.remoteSource();
  const bob = seed.user('bob');
  await (await bob.app({ appName: 'code-server', state: 'downloading', progress: '42.5' })).task({ status: 'PENDING' });
  const admin = seed.user('admin');
  await (await admin.app({ appName: 'home-assistant', state: 'installing', progress: '80' })).task({
    status: 'PENDING',
  });
}

/**
 * The apps the refusal cases are about, under names of the case's own (`gitea-<tag>`, …): gitea
 * is only in the catalogue, alice runs immich at 1.120.1, rocketchat is paid and not bought, and
 * alice's install of nextcloud failed.
 */
async function seedRefusalApps(seed: Seeder, tag: string) {
  const names = {
    gitea: `gitea-${tag}`,
    immich: `immich-${tag}`,
    rocketchat: `rocketchat-${tag}`,
    nextcloud: `nextcloud-${tag}`,
    plex: `plex-${tag}`,
  };
  await seed.catalogApp({ name: names.gitea, versions: ['1.22.4', '1.22.0'] });
  await seed.catalogApp({ name: names.immich, versions: ['1.120.1', '1.119.0'] });
  await seed.catalogApp({ name: names.rocketchat, versions: ['7.1.0', '7.0.3'], price: '19.00' });
  await seed.catalogApp({ name: names.nextcloud, versions: ['30.0.2', '29.0.8'] });
  await seed.catalogApp({ name: names.plex, versions: ['1.41.2', '1.41.0'] });
  const alice = seed.user('alice');
  await (await alice.app({ appName: names.immich, state: 'running', version: '1.120.1' })).task();
  const reason = 'missing env value NEXTCLOUD_ADMIN_PASSWORD';
  await (await alice.app({ appName: names.nextcloud, state: 'installFailed', version: '30.0.2', reason })).task({
    status: 'FAILED',
  });
  await (await alice.app({ appName: names.plex, state: 'upgradeFailed', version: '1.41.0' })).task({
    status: 'FAILED',
  });
  return names;
}
type RefusalApps = Awaited<ReturnType<typeof seedRefusalApps>>;

/** Waits until the task is in one of `statuses` and returns its details (read as the admin). */
function waitForTask(server: TestServer, taskId: string, statuses: string[]) {
  return waitFor(
    async () => {
      const { task } = dataOf(await execute(server, TaskDetailQuery, { taskId }, { token: TOKENS.ops }));
      return task && statuses.includes(task.status) ? task : undefined;
    },
    `task ${taskId} to be ${statuses.join(' or ')}`,
  );
}

/** Row counts of everything a mutation may write: a refused one must leave them all unchanged. */
async function snapshot(server: TestServer) {
  const { db } = server.app;
  return {
    tasks: await db.task.count(),
    apps: await db.appState.findMany({ orderBy: { id: 'asc' } }),
    history: await db.historyRecord.count(),
  };
}

// Each test seeds the apps it is about, under names no other test of its server uses, so the
// tests of a shared server run alone or in any order.
describe.each(databases)('operations on %s', (kind) => {
  describe('with a fast simulated app service', () => {
    let server: TestServer;
    let seed: Seeder;
    beforeAll(async () => {
      ({ server, seed } = await startSeededServer(kind, {
        env: { ...AUTH_ENV, SIMULATED_STEP_MS: '0', SIMULATED_FAIL_APPS: 'photoprism,bad-*' },
        preseed: (seed) => seed.remoteSource(),
      }));
    });
    afterAll(() => server?.stop());

    /** Installs `appName` as alice and waits until its task has finished. */
    async function installAndWait(appName: string, version: string) {
      await seed.catalogApp({ name: appName, versions: [version] });
      const taskId = await installThroughApi(server, { sourceId: SOURCE, appName, version }, TOKENS.alice);
      return waitForTask(server, taskId, ['COMPLETED', 'FAILED']);
    }

    test('installApp returns its task, pending or already taken by the engine, that runs to COMPLETED; the app then runs at that version', async () => {
      await seed.catalogApp({ name: 'vaultwarden', versions: ['1.32.5', '1.32.0'] });
      const result = dataOf(
        await execute(
          server,
          InstallAppMutation,
          {
            input: {
              sourceId: SOURCE,
              appName: 'vaultwarden',
              version: '1.32.0',
              envs: [{ name: 'ADMIN_EMAIL', value: 'a@example.org' }],
            },
          },
          { token: TOKENS.alice },
        ),
      ).installApp;
      expect(result).toMatchObject({
        __typename: 'InstallAppSuccess',
        // PENDING as written, or RUNNING if the engine took it before the answer read it again (loaders.showTask).
        task: {
          type: 'INSTALL',
          status: expect.stringMatching(/^(PENDING|RUNNING)$/),
          userId: 'alice',
          version: '1.32.0',
        },
      });
      const taskId = result.__typename === 'InstallAppSuccess' ? result.task.taskId : '';
      const done = await waitForTask(server, taskId, ['COMPLETED', 'FAILED']);
      expect(done).toMatchObject({ status: 'COMPLETED', progress: 100, error: null });
      expect(done.opId).toMatch(/^sim-/);
      expect(done.startedAt && done.completedAt && done.startedAt <= done.completedAt).toBe(true);
      expect(done.app).toMatchObject({
        stage: 'RUNNING',
        health: 'HEALTHY',
        state: 'running',
        installedVersion: '1.32.0',
      });

      const history = dataOf(
        await execute(server, HistoryQuery, { filter: { app: 'vaultwarden' }, first: 10 }, { token: TOKENS.alice }),
      ).history;
      expect(history.edges.map((edge) => edge.node.type).reverse()).toEqual([
        'ACTION_INSTALL',
        'action',
        'SYSTEM_INSTALL_SUCCEED',
      ]);
      expect(history.edges.every((edge) => (edge.node.extended as { taskId: string }).taskId === taskId)).toBe(true);
    });

    test('a failure on the app service fails the task with a reason a person can act on', async () => {
      await seed.catalogApp({ name: 'photoprism', versions: ['240915', '240711'] });
      const result = dataOf(
        await execute(
          server,
          InstallAppMutation,
          { input: { sourceId: SOURCE, appName: 'photoprism', version: '240915' } },
          { token: TOKENS.alice },
        ),
      ).installApp;
      const taskId = result.__typename === 'InstallAppSuccess' ? result.task.taskId : '';
      const failed = await waitForTask(server, taskId, ['FAILED', 'COMPLETED']);
      expect(failed.status).toBe('FAILED');
      expect(failed.error).toMatch(/install of photoprism failed on the app service \(installFailed\)/);
      expect(failed.error).toContain('SIMULATED_FAIL_APPS');
      expect(failed.app).toMatchObject({
        stage: 'FAILED',
        health: 'UNHEALTHY',
        state: 'installFailed',
        installedVersion: null,
      });

      // retryTask: a new task with the same parameters, linked to the old one
      const retried = dataOf(
        await execute(server, RetryTaskMutation, { input: { taskId } }, { token: TOKENS.alice }),
      ).retryTask;
      expect(retried).toMatchObject({
        __typename: 'RetryTaskSuccess',
        task: { retryOfTaskId: taskId, type: 'INSTALL', appName: 'photoprism', version: '240915' },
      });
      const retryId = retried.__typename === 'RetryTaskSuccess' ? retried.task.taskId : '';
      expect(retryId).not.toBe(taskId);
      expect((await waitForTask(server, retryId, ['FAILED', 'COMPLETED'])).status).toBe('FAILED');
    });

    test('upgradeApp moves an installed app to a newer version; uninstallApp removes it', async () => {
      await seed.catalogApp({ name: 'jellyfin', versions: ['1.2.0', '1.1.3', '1.1.0'] });
      await (await seed.user('alice').app({ appName: 'jellyfin', state: 'running', version: '1.1.0' })).task();
      const upgrade = dataOf(
        await execute(
          server,
          UpgradeAppMutation,
          { input: { sourceId: SOURCE, appName: 'jellyfin', version: '1.1.3' } },
          { token: TOKENS.alice },
        ),
      ).upgradeApp;
      const upgradeId = upgrade.__typename === 'UpgradeAppSuccess' ? upgrade.task.taskId : '';
      expect(await waitForTask(server, upgradeId, ['COMPLETED', 'FAILED'])).toMatchObject({
        status: 'COMPLETED',
        app: { installedVersion: '1.1.3', stage: 'RUNNING' },
      });

      const uninstall = dataOf(
        await execute(
          server,
          UninstallAppMutation,
          { input: { sourceId: SOURCE, appName: 'jellyfin', version: '1.1.3', deleteData: true } },
          { token: TOKENS.alice },
        ),
      ).uninstallApp;
      expect(uninstall).toMatchObject({
        __typename: 'UninstallAppSuccess',
        task: { type: 'UNINSTALL', version: '1.1.3' },
      });
      const uninstallId = uninstall.__typename === 'UninstallAppSuccess' ? uninstall.task.taskId : '';
      const done = await waitForTask(server, uninstallId, ['COMPLETED', 'FAILED']);
      expect(done).toMatchObject({ status: 'COMPLETED', app: null });
      expect(
        dataOf(await execute(server, AppQuery, { sourceId: SOURCE, appName: 'jellyfin' }, { token: TOKENS.alice })).app,
      ).toBeNull();
    });

    test('cloneApp installs a second instance named raw name + 6 hex; the same clone twice is refused', async () => {
      await seed.catalogApp({ name: 'immich', versions: ['1.120.1', '1.119.0'], entrances: [{ name: 'web' }] });
      await (await seed.user('alice').app({ appName: 'immich', state: 'running', version: '1.120.1' })).task();
      const input = {
        sourceId: SOURCE,
        appName: 'immich',
        title: 'Family photos',
        entrances: [{ name: 'web', title: 'Family' }],
      };
      const clone = dataOf(await execute(server, CloneAppMutation, { input }, { token: TOKENS.alice })).cloneApp;
      expect(clone.__typename).toBe('CloneAppSuccess');
      const task = clone.__typename === 'CloneAppSuccess' ? clone.task : null;
      expect(task?.appName).toMatch(/^immich[0-9a-f]{6}$/);
      expect(task?.version).toBe('1.120.1'); // the original's installed version
      const done = await waitForTask(server, task?.taskId ?? '', ['COMPLETED', 'FAILED']);
      expect(done).toMatchObject({ status: 'COMPLETED', app: { stage: 'RUNNING', installedVersion: '1.120.1' } });

      const again = dataOf(await execute(server, CloneAppMutation, { input }, { token: TOKENS.alice })).cloneApp;
      expect(again).toMatchObject({ __typename: 'InvalidStateError', code: 'INVALID_STATE' });
      const otherTitle = dataOf(
        await execute(server, CloneAppMutation, { input: { ...input, title: 'Work photos' } }, { token: TOKENS.alice }),
      ).cloneApp;
      expect(otherTitle.__typename).toBe('CloneAppSuccess');
      if (otherTitle.__typename !== 'CloneAppSuccess') return;
      expect(otherTitle.task.appName).not.toBe(task?.appName);
      await waitForTask(server, otherTitle.task.taskId, ['COMPLETED']);
    });

    test("a clone's entrance titles name distinct entrances of the app, and their order does not change the clone", async () => {
      await seed.catalogApp({
        name: 'outline',
        versions: ['0.81.1'],
        entrances: [{ name: 'web' }, { name: 'admin' }],
      });
      await (await seed.user('alice').app({ appName: 'outline', state: 'running', version: '0.81.1' })).task();
      const clone = async (entrances: { name: string; title: string }[]) =>
        dataOf(
          await execute(
            server,
            CloneAppMutation,
            { input: { sourceId: SOURCE, appName: 'outline', title: 'Docs', entrances } },
            { token: TOKENS.alice },
          ),
        ).cloneApp;
      const tasksBefore = await server.app.db.task.count();
      expect(
        await clone([
          { name: 'web', title: 'b' },
          { name: 'web', title: 'c' },
        ]),
      ).toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/entrance names must be unique/) });
      expect(await clone([{ name: 'nope', title: 'Nope' }])).toMatchObject({
        code: 'VALIDATION',
        message: 'nope is not an entrance of outline (its entrances: web, admin)',
        issues: [{ path: 'entrances.0.name', message: 'nope is not an entrance of outline' }],
      });
      expect(await server.app.db.task.count()).toBe(tasksBefore);

      const first = await clone([
        { name: 'web', title: 'Docs' },
        { name: 'admin', title: 'Docs admin' },
      ]);
      if (first.__typename !== 'CloneAppSuccess') throw new Error(JSON.stringify(first));
      await waitForTask(server, first.task.taskId, ['COMPLETED']);
      // The same request with its entrances the other way round is the same clone.
      expect(
        await clone([
          { name: 'admin', title: 'Docs admin' },
          { name: 'web', title: 'Docs' },
        ]),
      ).toMatchObject({ code: 'INVALID_STATE', message: expect.stringContaining(`(${first.task.appName})`) });
    });

    test('a clone title or entrance title holding control or invisible format characters, or nothing visible, is refused', async () => {
      await seed.catalogApp({ name: 'gitea', versions: ['1.22.0'], entrances: [{ name: 'web' }] });
      await (await seed.user('alice').app({ appName: 'gitea', state: 'running', version: '1.22.0' })).task();
      const clone = async (title: string, entranceTitle = 'Web') =>
        dataOf(
          await execute(
            server,
            CloneAppMutation,
            {
              input: { sourceId: SOURCE, appName: 'gitea', title, entrances: [{ name: 'web', title: entranceTitle }] },
            },
            { token: TOKENS.alice },
          ),
        ).cloneApp;
      const rule = 'must not contain control characters, line or paragraph separators or invisible format characters';
      const tasksBefore = await server.app.db.task.count();
      // U+202E reversed the entrance URL shown beside the title; a newline split the row it was in.
      expect(await clone('Mirror \u202egit')).toMatchObject({
        code: 'VALIDATION',
        issues: [{ path: 'title', message: expect.stringContaining(`title ${rule}`) }],
      });
      expect(await clone('Mirror', 'Web\u2067x')).toMatchObject({
        code: 'VALIDATION',
        issues: [{ path: 'entrances.0.title', message: expect.stringContaining(`entrance title ${rule}`) }],
      });
      expect(await clone('Two\nlines')).toMatchObject({ code: 'VALIDATION', issues: [{ path: 'title' }] });
      // Bidirectional marks, zero-width and soft-hyphen characters, line and paragraph separators,
      // a tag character outside a flag: each was taken, several as a title that showed blank.
      for (const title of [
        '\u200f',
        '\u200e',
        '\u061c',
        '\u200b',
        '\u00ad',
        'Mirror\ufeffgit',
        'x\u2029y',
        'x\u2028y',
        'Mirror\u200fgit',
        'a\u{E0041}',
      ]) {
        expect(await clone(title), JSON.stringify(title)).toMatchObject({
          code: 'VALIDATION',
          issues: [{ path: 'title', message: expect.stringContaining(`title ${rule}`) }],
        });
      }
      // Nothing that draws: a combining grapheme joiner, a Hangul filler, a lone combining accent, a
      // variation selector, the blank braille pattern.
      for (const title of ['\u034f', '\u3164', '\u0301', '\ufe0f', '\u2800']) {
        expect(await clone(title), JSON.stringify(title)).toMatchObject({
          code: 'VALIDATION',
          issues: [
            {
              path: 'title',
              message: 'title must contain a visible character (a letter, digit, punctuation mark or symbol)',
            },
          ],
        });
      }
      expect(await clone('Mirror', '\u200b')).toMatchObject({
        code: 'VALIDATION',
        issues: [{ path: 'entrances.0.title' }],
      });
      expect(await server.app.db.task.count()).toBe(tasksBefore);
      // Right-to-left text itself is a title like any other, and so are the joiners real titles need:
      // ZWNJ in a Persian word, ZWJ in an emoji sequence, the tags of a subdivision flag.
      for (const title of [
        'مرآة',
        'می\u200cخواهم',
        'Dev \u{1F469}\u200d\u{1F4BB}',
        'Scots \u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}',
      ]) {
        const taken = await clone(title, title === 'مرآة' ? 'الويب' : 'Web');
        if (taken.__typename !== 'CloneAppSuccess')
          throw new Error(`${JSON.stringify(title)}: ${JSON.stringify(taken)}`);
        // Settled before the next test, which compares the database before and after a refusal.
        await waitForTask(server, taken.task.taskId, ['COMPLETED']);
      }
      // A failed clone stored with such a title (before the rule) reads back as it is; its retry
      // checks the title again and is refused like a new clone.
      const failed = await seed.user('alice').task({ appName: 'gitea0blank', type: 'CLONE', status: 'FAILED' });
      const clone_ = { rawAppName: 'gitea', title: '\u200f', requestHash: 'stored-before', entrances: [] };
      await server.app.db.task.update({
        where: { taskId: failed.taskId },
        data: { metadata: { cfgType: 'app', envs: [], appId: 'gitea0blank', clone: clone_ } },
      });
      const read = dataOf(await execute(server, TaskDetailQuery, { taskId: failed.taskId }, { token: TOKENS.alice }));
      expect(read.task).toMatchObject({ taskId: failed.taskId, status: 'FAILED' });
      const retried = dataOf(
        await execute(server, RetryTaskMutation, { input: { taskId: failed.taskId } }, { token: TOKENS.alice }),
      ).retryTask;
      expect(retried).toMatchObject({ code: 'VALIDATION', message: expect.stringContaining(`title ${rule}`) });
    });
    test('a clone of a clone is a clone of its chart; a name past 128 characters and an unpaid paid app are refused', async () => {
      await seed.catalogApp({ name: 'vikunja', versions: ['0.24.1'] });
      await (await seed.user('alice').app({ appName: 'vikunja', state: 'running', version: '0.24.1' })).task();
      const clone = async (appName: string, title: string) =>
        dataOf(
          await execute(
            server,
            CloneAppMutation,
            { input: { sourceId: SOURCE, appName, title } },
            { token: TOKENS.alice },
          ),
        ).cloneApp;
      const first = await clone('vikunja', 'Team');
      if (first.__typename !== 'CloneAppSuccess') throw new Error(JSON.stringify(first));
      await waitForTask(server, first.task.taskId, ['COMPLETED']);
      // The same request again (a client's retry, same idempotency key) after the original is gone: its task.
      const keyed = { sourceId: SOURCE, appName: 'vikunja', title: 'Keyed', idempotencyKey: 'clone-keyed-1' };
      const once = dataOf(await execute(server, CloneAppMutation, { input: keyed }, { token: TOKENS.alice })).cloneApp;
      if (once.__typename !== 'CloneAppSuccess') throw new Error(JSON.stringify(once));
      await waitForTask(server, once.task.taskId, ['COMPLETED']);
      const original = await server.app.db.appState.findFirst({ where: { userId: 'alice', appName: 'vikunja' } });
      await server.app.db.appState.delete({ where: { id: original?.id ?? -1 } });
      const again = dataOf(await execute(server, CloneAppMutation, { input: keyed }, { token: TOKENS.alice })).cloneApp;
      expect(again).toMatchObject({ __typename: 'CloneAppSuccess', task: { taskId: once.task.taskId } });
      await server.app.db.appState.create({ data: { ...original, id: undefined } as never });
      const second = await clone(first.task.appName, 'Team of team');
      if (second.__typename !== 'CloneAppSuccess') throw new Error(JSON.stringify(second));
      // Named after the chart, not after the clone it was asked of, and sent with the chart.
      expect(second.task.appName).toMatch(/^vikunja[0-9a-f]{6}$/);
      const sent = await server.app.db.task.findUnique({ where: { taskId: second.task.taskId } });
      expect(sent?.metadata).toMatchObject({ clone: { rawAppName: 'vikunja', title: 'Team of team' } });

      const long = `l${'o'.repeat(122)}ng`; // 125 characters: its clone's name would be 131
      await seed.catalogApp({ name: long, versions: ['1.0.0'] });
      await (await seed.user('alice').app({ appName: long, state: 'running', version: '1.0.0' })).task();
      expect(await clone(long, 'Long')).toMatchObject({
        code: 'VALIDATION',
        message: expect.stringMatching(/131 in all, at most 128/),
      });

      await seed.catalogApp({ name: 'paid-notes', versions: ['2.0.0'], price: '3.99' });
      await (await seed.user('alice').app({ appName: 'paid-notes', state: 'running', version: '2.0.0' })).task();
      expect(await clone('paid-notes', 'Second')).toMatchObject({
        code: 'INVALID_STATE',
        message: expect.stringMatching(/payment required/),
      });
    });

    test('an app installed from one source cannot be installed from another: the app service runs one of a name per user', async () => {
      await seed.source({ sourceId: 'second-source', type: 'local' });
      await seed.catalogApp({ name: 'memos', versions: ['0.22.0'] });
      await seed.catalogApp({ name: 'memos', sourceId: 'second-source', versions: ['0.23.0'] });
      await (await seed.user('alice').app({ appName: 'memos', state: 'running', version: '0.22.0' })).task();
      const input = { sourceId: 'second-source', appName: 'memos', version: '0.23.0' };
      const refused = dataOf(await execute(server, InstallAppMutation, { input }, { token: TOKENS.alice })).installApp;
      expect(refused).toMatchObject({
        code: 'INVALID_STATE',
        message: expect.stringMatching(new RegExp(`already installed from ${SOURCE}.*uninstall it there first`)),
      });
      // Another user has no such app: theirs installs.
      const bobs = dataOf(await execute(server, InstallAppMutation, { input }, { token: TOKENS.bob })).installApp;
      if (bobs.__typename !== 'InstallAppSuccess') throw new Error(JSON.stringify(bobs));
      await waitForTask(server, bobs.task.taskId, ['COMPLETED']);
    });

    // Each case seeds its own apps (seedRefusalApps); `input` and `message` are about those.
    test.each(
      (
        [
          [
            'an unknown app',
            InstallAppMutation,
            (_n) => ({ sourceId: SOURCE, appName: 'no-such-app', version: '1.0.0' }),
            'NOT_FOUND',
            () => /not in the catalogue/,
          ],
          [
            'an unknown version',
            InstallAppMutation,
            (n) => ({ sourceId: SOURCE, appName: n.gitea, version: '0.0.1' }),
            'NOT_FOUND',
            (n) => new RegExp(`Version 0.0.1 of ${n.gitea}.*available: 1.22.4, 1.22.0`),
          ],
          [
            'an unknown source',
            InstallAppMutation,
            (n) => ({ sourceId: 'nowhere', appName: n.gitea, version: '1.22.4' }),
            'NOT_FOUND',
            () => /Market source nowhere/,
          ],
          [
            'an empty app name',
            InstallAppMutation,
            (_n) => ({ sourceId: SOURCE, appName: ' ', version: '1.22.4' }),
            'VALIDATION',
            () => /^Invalid input: appName: appName must not be empty$/, // that issue alone
          ],
          [
            'an app name longer than any',
            InstallAppMutation,
            (_n) => ({ sourceId: SOURCE, appName: 'a'.repeat(129), version: '1.22.4' }),
            'VALIDATION',
            () => /^Invalid input: appName: appName must be at most 128 characters$/,
          ],
          [
            'an app name with a slash',
            InstallAppMutation,
            (_n) => ({ sourceId: SOURCE, appName: 'a/b', version: '1.22.4' }),
            'VALIDATION',
            () => /^Invalid input: appName: appName must start with a letter or digit and may contain/,
          ],
          [
            'a malformed env name',
            InstallAppMutation,
            (n) => ({ sourceId: SOURCE, appName: n.gitea, version: '1.22.4', envs: [{ name: '9LIVES', value: 'x' }] }),
            'VALIDATION',
            () => /envs.0.name/,
          ],
          [
            'an env name longer than any',
            InstallAppMutation,
            (n) => ({ sourceId: SOURCE, appName: n.gitea, version: '1.22.4', envs: [{ name: 'E'.repeat(129) }] }),
            'VALIDATION',
            () => /^Invalid input: envs\.0\.name: env names must be at most 128 characters$/,
          ],
          [
            'duplicate env names',
            InstallAppMutation,
            (n) => ({ sourceId: SOURCE, appName: n.gitea, version: '1.22.4', envs: [{ name: 'A' }, { name: 'A' }] }),
            'VALIDATION',
            () => /unique/,
          ],
          [
            'an app already installed',
            InstallAppMutation,
            (n) => ({ sourceId: SOURCE, appName: n.immich, version: '1.119.0' }),
            'INVALID_STATE',
            () => /already installed.*upgradeApp/,
          ],
          [
            // The app service still runs the version the upgrade left: an install there was refused,
            // and overwrote the upgrade's failure (beclab/Olares#3440).
            'an install over an app whose upgrade failed',
            InstallAppMutation,
            (n) => ({ sourceId: SOURCE, appName: n.plex, version: '1.41.2' }),
            'INVALID_STATE',
            () => /already installed \(version 1.41.0\).*upgradeApp/,
          ],
          [
            'a paid app not bought',
            InstallAppMutation,
            (n) => ({ sourceId: SOURCE, appName: n.rocketchat, version: '7.1.0' }),
            'INVALID_STATE',
            () => /payment required/,
          ],
          [
            'an upgrade of an app not installed',
            UpgradeAppMutation,
            (n) => ({ sourceId: SOURCE, appName: n.gitea, version: '1.22.4' }),
            'INVALID_STATE',
            () => /not installed/,
          ],
          [
            'an upgrade to the installed version',
            UpgradeAppMutation,
            (n) => ({ sourceId: SOURCE, appName: n.immich, version: '1.120.1' }),
            'INVALID_STATE',
            () => /already at version/,
          ],
          [
            // Sent, the app service was asked to "upgrade" to it, and the task said it completed.
            'an upgrade to an older version',
            UpgradeAppMutation,
            (n) => ({ sourceId: SOURCE, appName: n.immich, version: '1.119.0' }),
            'INVALID_STATE',
            () => /is at version 1\.120\.1, newer than 1\.119\.0: upgradeApp does not downgrade/,
          ],
          [
            'an uninstall of an app that never installed',
            UninstallAppMutation,
            (n) => ({ sourceId: SOURCE, appName: n.nextcloud }),
            'INVALID_STATE',
            () => /has no installed version \(its install ended \w+\), so it cannot uninstall: install it again/,
          ],
          [
            'an uninstall naming the wrong version',
            UninstallAppMutation,
            (n) => ({ sourceId: SOURCE, appName: n.immich, version: '1.0.0' }),
            'INVALID_STATE',
            () => /installed at version 1.120.1/,
          ],
          [
            'a clone of an app not installed',
            CloneAppMutation,
            (n) => ({ sourceId: SOURCE, appName: n.gitea, title: 'Second' }),
            'INVALID_STATE',
            () => /not installed/,
          ],
          [
            'a clone without a title',
            CloneAppMutation,
            (n) => ({ sourceId: SOURCE, appName: n.immich, title: '   ' }),
            'VALIDATION',
            () => /title/,
          ],
        ] as const satisfies readonly (readonly [
          string,
          unknown,
          (n: RefusalApps) => object,
          string,
          (n: RefusalApps) => RegExp,
        ])[]
      ).map(([name, document, input, code, message], index) => ({ name, document, input, code, message, index })),
    )('$name is refused with $code and changes nothing', async ({ document, input, code, message, index }) => {
      const apps = await seedRefusalApps(seed, `r${index}`);
      const before = await snapshot(server);
      const response = dataOf(
        await execute(
          server,
          document as typeof InstallAppMutation,
          { input: input(apps) as never },
          { token: TOKENS.alice },
        ),
      );
      const result = Object.values(response)[0] as { __typename: string; code?: string; message?: string };
      expect(result.code).toBe(code);
      expect(result.message).toMatch(message(apps));
      expect(await snapshot(server)).toEqual(before);
    });

    test('retry and cancel check ownership, existence and state', async () => {
      const { taskId: completed } = await seed.user('alice').task({ appName: 'navidrome', status: 'COMPLETED' });
      const retryDone = dataOf(
        await execute(server, RetryTaskMutation, { input: { taskId: completed } }, { token: TOKENS.alice }),
      ).retryTask;
      expect(retryDone).toMatchObject({
        code: 'INVALID_STATE',
        message: expect.stringMatching(/Only FAILED or CANCELED/),
      });
      const cancelDone = dataOf(
        await execute(server, CancelTaskMutation, { input: { taskId: completed } }, { token: TOKENS.alice }),
      ).cancelTask;
      expect(cancelDone).toMatchObject({ code: 'INVALID_STATE', message: expect.stringMatching(/already COMPLETED/) });
      const notYours = dataOf(
        await execute(server, RetryTaskMutation, { input: { taskId: completed } }, { token: TOKENS.bob }),
      ).retryTask;
      // Someone else's task is answered like an unknown one (reads say null for it).
      expect(notYours).toMatchObject({ code: 'NOT_FOUND', message: `Task ${completed} does not exist` });
      const unknown = dataOf(
        await execute(server, CancelTaskMutation, { input: { taskId: 'no-such-task' } }, { token: TOKENS.bob }),
      ).cancelTask;
      expect(unknown).toMatchObject({ code: 'NOT_FOUND' });
    });

    test('no auth token is stored in tasks, app states or history, nor logged', async () => {
      // Something for the check to be about: an install that ran, and a failed one retried.
      expect(await installAndWait('audiobookshelf', '2.17.5')).toMatchObject({ status: 'COMPLETED' });
      const failed = await installAndWait('bad-calibre-web', '0.6.24');
      expect(failed).toMatchObject({ status: 'FAILED' });
      const retried = dataOf(
        await execute(server, RetryTaskMutation, { input: { taskId: failed.taskId } }, { token: TOKENS.alice }),
      ).retryTask;
      if (retried.__typename !== 'RetryTaskSuccess') throw new Error(`retry refused: ${JSON.stringify(retried)}`);
      await waitForTask(server, retried.task.taskId, ['FAILED']);
      const { db } = server.app;
      const stored = JSON.stringify([
        await db.task.findMany(),
        await db.appState.findMany(),
        await db.historyRecord.findMany(),
      ]);
      const logs = server.logs.join('\n');
      for (const token of Object.values(TOKENS)) {
        expect(stored).not.toContain(token);
        expect(logs).not.toContain(token);
      }
    });
  });

  describe('with an app service that stands still (tasks stay active)', () => {
    const STILL_ENV = { ...AUTH_ENV, TASK_CONCURRENCY: '2' };
    let server: TestServer;
    let seed: Seeder;
    beforeAll(async () => {
      // Two workers, both taken by pending installs seeded before the start: new tasks stay PENDING.
      ({ server, seed } = await startSeededServer(kind, { env: STILL_ENV, preseed: fillBothWorkers }));
    });
    afterAll(() => server?.stop());

    const install = (
      target: Pick<TestServer, 'graphqlUrl'>,
      appName: string,
      version: string,
      token: string,
      idempotencyKey?: string,
    ) =>
      execute(
        target,
        InstallAppMutation,
        { input: { sourceId: SOURCE, appName, version, ...(idempotencyKey ? { idempotencyKey } : {}) } },
        { token },
      );

    // This test frees a worker and watches which task takes it: the queue is server-wide, so it
    // has a server of its own.
    const ownServerTest = seededTest(kind, { env: STILL_ENV, preseed: fillBothWorkers });

    ownServerTest(
      'workers never run more than TASK_CONCURRENCY tasks; the rest wait in FIFO order',
      async ({ server, seed }) => {
        for (const [name, version] of [
          ['n8n', '1.70.1'],
          ['ghost', '5.104.2'],
          ['wordpress', '6.7.1'],
        ] as const) {
          await seed.catalogApp({ name, versions: [version] });
        }
        const results = [];
        for (const app of [
          ['n8n', '1.70.1'],
          ['ghost', '5.104.2'],
          ['wordpress', '6.7.1'],
        ] as const) {
          results.push(dataOf(await install(server, app[0], app[1], TOKENS.alice)).installApp);
        }
        expect(results.map((r) => r.__typename === 'InstallAppSuccess' && r.task.status)).toEqual([
          'PENDING',
          'PENDING',
          'PENDING',
        ]);
        const running = dataOf(
          await execute(server, TasksQuery, { filter: { status: ['RUNNING'] } }, { token: TOKENS.ops }),
        ).tasks;
        expect(running.totalCount).toBe(2);

        // Canceling a running task frees a worker: the oldest pending task (n8n) takes it. Once the
        // app service has accepted it (a cancel before that is refused).
        const oldestRunning = running.edges.at(-1)?.node;
        await waitFor(async () => {
          const row = await server.app.db.task.findUnique({ where: { taskId: oldestRunning?.taskId ?? '' } });
          return row?.opId ? row : undefined;
        }, 'the running task to be accepted');
        const cancel = dataOf(
          await execute(
            server,
            CancelTaskMutation,
            { input: { taskId: oldestRunning?.taskId as string } },
            { token: TOKENS.ops },
          ),
        ).cancelTask;
        expect(cancel.__typename).toBe('CancelTaskSuccess');
        const canceled = await waitForTask(server, oldestRunning?.taskId as string, ['CANCELED']);
        expect(canceled.app).toBeNull(); // its first install never finished: nothing is left behind
        const n8n = results[0]?.__typename === 'InstallAppSuccess' ? results[0].task.taskId : '';
        await waitForTask(server, n8n, ['RUNNING']);
        const stillPending = dataOf(
          await execute(
            server,
            TasksQuery,
            { filter: { status: ['PENDING'], userId: 'alice' } },
            { token: TOKENS.ops },
          ),
        ).tasks;
        expect(stillPending.edges.map((edge) => edge.node.appName).sort()).toEqual(['ghost', 'wordpress']);
        expect(
          dataOf(await execute(server, TasksQuery, { filter: { status: ['RUNNING'] } }, { token: TOKENS.ops })).tasks
            .totalCount,
        ).toBe(2);
      },
    );

    test('a PENDING task is canceled at once, by its owner or an admin but not by another user', async () => {
      await seed.catalogApp({ name: 'ghost', versions: ['5.104.2'] });
      expect(dataOf(await install(server, 'ghost', '5.104.2', TOKENS.alice)).installApp.__typename).toBe(
        'InstallAppSuccess',
      );
      const pending = dataOf(
        await execute(
          server,
          TasksQuery,
          { filter: { status: ['PENDING'], appName: 'ghost' } },
          { token: TOKENS.alice },
        ),
      ).tasks.edges[0]?.node;
      const taskId = pending?.taskId as string;
      const byBob = dataOf(
        await execute(server, CancelTaskMutation, { input: { taskId } }, { token: TOKENS.bob }),
      ).cancelTask;
      expect(byBob).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
      const byAlice = dataOf(
        await execute(server, CancelTaskMutation, { input: { taskId } }, { token: TOKENS.alice }),
      ).cancelTask;
      expect(byAlice).toMatchObject({
        __typename: 'CancelTaskSuccess',
        task: { status: 'CANCELED', error: 'canceled by alice' },
      });
      expect(
        dataOf(await execute(server, AppQuery, { sourceId: SOURCE, appName: 'ghost' }, { token: TOKENS.alice })).app,
      ).toBeNull();
      const history = dataOf(
        await execute(
          server,
          HistoryQuery,
          { filter: { app: 'ghost', type: ['ACTION_CANCEL'] } },
          { token: TOKENS.alice },
        ),
      ).history;
      expect(history.totalCount).toBe(1);
      // and it can be retried
      const retry = dataOf(
        await execute(server, RetryTaskMutation, { input: { taskId } }, { token: TOKENS.ops }),
      ).retryTask;
      expect(retry).toMatchObject({
        __typename: 'RetryTaskSuccess',
        task: { retryOfTaskId: taskId, status: expect.stringMatching(/^(PENDING|RUNNING|COMPLETED|FAILED)$/) },
      });
    });

    test('many concurrent installs of one app: exactly one is accepted, the rest get CONFLICT', async () => {
      await seed.catalogApp({ name: 'mastodon', versions: ['4.3.2'] });
      const responses = await Promise.all(
        Array.from({ length: 25 }, () => install(server, 'mastodon', '4.3.2', TOKENS.bob)),
      );
      const results = responses.map((response) => dataOf(response).installApp);
      expect(results.filter((r) => r.__typename === 'InstallAppSuccess')).toHaveLength(1);
      const conflicts = results.filter((r) => r.__typename === 'ConflictError');
      expect(conflicts).toHaveLength(24);
      expect(conflicts[0]).toMatchObject({
        code: 'CONFLICT',
        message: expect.stringMatching(/mastodon already has an active task/),
      });
      expect(await server.app.db.task.count({ where: { userId: 'bob', appName: 'mastodon' } })).toBe(1);
      expect(await server.app.db.historyRecord.count({ where: { userId: 'bob', app: 'mastodon' } })).toBe(1);
    });

    test('the same idempotencyKey returns the original task, even under concurrency', async () => {
      await seed.catalogApp({ name: 'excalidraw', versions: ['0.17.6'] });
      await seed.catalogApp({ name: 'stirling-pdf', versions: ['0.36.6'] });
      const responses = await Promise.all(
        Array.from({ length: 10 }, () => install(server, 'excalidraw', '0.17.6', TOKENS.bob, 'bob-excalidraw-1')),
      );
      const ids = new Set(
        responses.map((response) => {
          const result = dataOf(response).installApp;
          return result.__typename === 'InstallAppSuccess' ? result.task.taskId : result.__typename;
        }),
      );
      expect(ids.size).toBe(1);
      expect([...ids][0]).toMatch(/^\d{14}-/);
      expect(await server.app.db.task.count({ where: { userId: 'bob', appName: 'excalidraw' } })).toBe(1);
      // the key is per user: alice's identical key is her own request
      const alice = dataOf(await install(server, 'excalidraw', '0.17.6', TOKENS.alice, 'bob-excalidraw-1')).installApp;
      expect(alice.__typename === 'InstallAppSuccess' && alice.task.userId).toBe('alice');
      // reusing a key for a different request is a client error
      const reused = dataOf(await install(server, 'stirling-pdf', '0.36.6', TOKENS.bob, 'bob-excalidraw-1')).installApp;
      expect(reused).toMatchObject({
        code: 'VALIDATION',
        message: expect.stringMatching(/already used for another request/),
      });
    });
  });

  describe('with TASK_TIMEOUT_MS', () => {
    let server: TestServer;
    let seed: Seeder;
    beforeAll(async () => {
      ({ server, seed } = await startSeededServer(kind, {
        env: { TASK_TIMEOUT_MS: '300' },
        preseed: (seed) => seed.remoteSource(),
      }));
    });
    afterAll(() => server?.stop());

    test('an operation the app service does not finish in time fails with the reason', async () => {
      await seed.catalogApp({ name: 'grafana', versions: ['11.4.0', '11.3.1'] });
      const result = dataOf(
        await execute(server, InstallAppMutation, {
          input: { sourceId: SOURCE, appName: 'grafana', version: '11.4.0' },
        }),
      ).installApp;
      const taskId = result.__typename === 'InstallAppSuccess' ? result.task.taskId : '';
      const failed = await waitForTask(server, taskId, ['FAILED', 'COMPLETED']);
      expect(failed.status).toBe('FAILED');
      expect(failed.error).toMatch(/timed out.*300 ms \(TASK_TIMEOUT_MS\)/);
      expect(failed.app).toMatchObject({ stage: 'FAILED', state: 'installFailed' });
    });
  });

  describe('with TASK_TIMEOUT_MS shorter than an install the app service then finishes', () => {
    let server: TestServer;
    let seed: Seeder;
    beforeAll(async () => {
      ({ server, seed } = await startSeededServer(kind, {
        env: { TASK_TIMEOUT_MS: '300', SIMULATED_STEP_MS: '100', STATUS_CORRECTION_INTERVAL_MS: '500' },
        preseed: (seed) => seed.remoteSource(),
      }));
    });
    afterAll(() => server?.stop());

    test('the app runs with the version the app service lists (status correction), so it can be managed', async () => {
      await seed.catalogApp({ name: 'loki', versions: ['3.3.2'] });
      const result = dataOf(
        await execute(server, InstallAppMutation, { input: { sourceId: SOURCE, appName: 'loki', version: '3.3.2' } }),
      ).installApp;
      const taskId = result.__typename === 'InstallAppSuccess' ? result.task.taskId : '';
      expect((await waitForTask(server, taskId, ['FAILED', 'COMPLETED'])).error).toMatch(/timed out/);
      const managed = await waitFor(async () => {
        const { app } = dataOf(await execute(server, TaskDetailQuery, { taskId })).task ?? {};
        return app?.stage === 'RUNNING' && app.installedVersion ? app : undefined;
      }, 'the app running with its version');
      expect(managed.installedVersion).toBe('3.3.2');
      const { uninstallApp } = dataOf(
        await execute(server, UninstallAppMutation, { input: { sourceId: SOURCE, appName: 'loki' } }),
      );
      expect(uninstallApp.__typename).toBe('UninstallAppSuccess');
    });
  });
});
