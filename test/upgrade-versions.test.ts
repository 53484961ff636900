import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UpgradeAppMutation } from './support/operations.js';
import { seed } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, startTestServer, type TestServer, TOKENS } from './support/server.js';

/**
 * upgradeApp goes to a newer version only. A version written otherwise but of the same
 * precedence (`1.2` and `1.2.0`, `v1.2.0`, builds `+build.1` and `+build.2` of one release) is
 * the installed version again: refused as the same text is, nothing sent to the app service.
 */

const SOURCE = 'market.olares';

describe('an upgrade to a version of the same precedence as the installed one', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { ...AUTH_ENV, DEMO_DATA: '0' } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  test.each([
    ['1.2', '1.2.0', 'same-precedence-short'],
    ['1.2.0', 'v1.2', 'same-precedence-prefixed'],
    ['1.2.0+build.1', '1.2.0+build.2', 'same-precedence-builds'],
  ])('installed %s, asked %s: refused with INVALID_STATE and no task', async (installed, asked, appName) => {
    await seed(server.app.db).catalogApp({ name: appName, versions: [asked, installed] });
    await (await seed(server.app.db).user('alice').app({ appName, state: 'running', version: installed })).task();
    const tasksBefore = await server.app.db.task.count();

    const input = { sourceId: SOURCE, appName, version: asked };
    const { upgradeApp } = dataOf(await execute(server, UpgradeAppMutation, { input }, { token: TOKENS.alice }));
    expect(upgradeApp).toEqual({
      __typename: 'InvalidStateError',
      code: 'INVALID_STATE',
      message: `${appName} is already at version ${installed}, the same as ${asked}`,
    });
    expect(await server.app.db.task.count()).toBe(tasksBefore);
  });

  test('a newer version that differs only past the installed parts is still an upgrade', async () => {
    const appName = 'newer-by-a-part';
    await seed(server.app.db).catalogApp({ name: appName, versions: ['1.2.0.1', '1.2'] });
    await (await seed(server.app.db).user('alice').app({ appName, state: 'running', version: '1.2' })).task();
    const input = { sourceId: SOURCE, appName, version: '1.2.0.1' };
    const { upgradeApp } = dataOf(await execute(server, UpgradeAppMutation, { input }, { token: TOKENS.alice }));
    expect(upgradeApp).toMatchObject({
      __typename: 'UpgradeAppSuccess',
      task: { type: 'UPGRADE', version: '1.2.0.1' },
    });
  });
});
