import { describe, expect, test } from 'vitest';
import { deriveStage, isFailedFirstInstall } from '../src/domain/app-stage.js';

describe('stage and health derivation', () => {
  test.each([
    ['', 'RUNNING', 'HEALTHY'],
    ['running', 'RUNNING', 'HEALTHY'],
    ['installFailed', 'FAILED', 'UNHEALTHY'],
    ['downloadFailed', 'FAILED', 'UNHEALTHY'],
    ['installingCanceled', 'FAILED', 'UNHEALTHY'],
    ['pendingCanceled', 'FAILED', 'UNHEALTHY'],
    ['cancelled', 'FAILED', 'UNHEALTHY'],
    ['error', 'FAILED', 'UNHEALTHY'],
    ['stopped', 'STOPPED', 'UNHEALTHY'],
    ['downloading', 'FETCHING', 'UNKNOWN'],
    ['syncing', 'FETCHING', 'UNKNOWN'],
    ['installing', 'INSTALLING', 'UNKNOWN'],
    ['initializing', 'INSTALLING', 'UNKNOWN'],
    ['uninstalling', 'UNINSTALLING', 'UNKNOWN'],
    ['upgrading', 'UPGRADING', 'UNKNOWN'],
    ['resuming', 'RESUMING', 'UNKNOWN'],
    ['stopping', 'STOPPING', 'UNKNOWN'],
    ['stopFailed', 'FAILED', 'UNHEALTHY'],
    ['resumeFailed', 'FAILED', 'UNHEALTHY'],
    ['resumingCanceling', 'RESUMING', 'UNKNOWN'],
    ['RUNNING', 'RUNNING', 'HEALTHY'],
    // A canceled operation on an installed app leaves it as it was (its stop and resume still work).
    ['stoppingCanceled', 'RUNNING', 'HEALTHY'],
    ['resumingCanceled', 'STOPPED', 'UNHEALTHY'],
    // A canceled upgrade or uninstall left the app running or stopped, as it was: unknown here.
    ['upgradingCanceled', 'UNKNOWN', 'UNKNOWN'],
    ['uninstallingCanceled', 'UNKNOWN', 'UNKNOWN'],
    // What no state of the vocabulary tells (nor `uninstalled`, or `pending` with no task) is unknown.
    ['uninstalled', 'UNKNOWN', 'UNKNOWN'],
    ['pending', 'UNKNOWN', 'UNKNOWN'],
    ['crashLoopBackOff', 'UNKNOWN', 'UNKNOWN'],
  ])('state %j → %s / %s', (state, stage, health) => {
    expect(deriveStage({ state })).toEqual({ stage, health });
  });

  test('rules apply in order: failure words first, then stopped, running, fetching', () => {
    expect(deriveStage({ state: 'downloadingCanceling' })).toEqual({ stage: 'FETCHING', health: 'UNKNOWN' });
    expect(deriveStage({ state: 'installingCancelFailed' })).toEqual({ stage: 'FAILED', health: 'UNHEALTHY' });
  });

  test('a running app whose progress says it is downloading is fetching', () => {
    expect(deriveStage({ state: 'running', progress: 'Downloading images' })).toEqual({
      stage: 'FETCHING',
      health: 'UNKNOWN',
    });
  });

  test.each([
    ['INSTALL', 'INSTALLING'],
    ['CLONE', 'INSTALLING'],
    ['UPGRADE', 'UPGRADING'],
    ['UNINSTALL', 'UNINSTALLING'],
    ['STOP', 'STOPPING'],
    ['RESUME', 'RESUMING'],
  ])('a RUNNING %s task makes the stage %s with unknown health, whatever the state', (type, stage) => {
    for (const state of ['running', 'installFailed', 'stopped', 'downloading']) {
      expect(deriveStage({ state, activeTask: { type, status: 'RUNNING' } })).toEqual({ stage, health: 'UNKNOWN' });
    }
  });

  test('a PENDING task overrides only a fetching, running or unknown stage, keeping the health', () => {
    expect(deriveStage({ state: 'pending', activeTask: { type: 'INSTALL', status: 'PENDING' } })).toEqual({
      stage: 'INSTALLING',
      health: 'UNKNOWN',
    });
    expect(deriveStage({ state: 'running', activeTask: { type: 'UPGRADE', status: 'PENDING' } })).toEqual({
      stage: 'UPGRADING',
      health: 'HEALTHY',
    });
    expect(deriveStage({ state: 'downloading', activeTask: { type: 'INSTALL', status: 'PENDING' } })).toEqual({
      stage: 'INSTALLING',
      health: 'UNKNOWN',
    });
    expect(deriveStage({ state: 'stopped', activeTask: { type: 'UNINSTALL', status: 'PENDING' } })).toEqual({
      stage: 'STOPPED',
      health: 'UNHEALTHY',
    });
  });

  test('a PENDING stop or resume already shows STOPPING or RESUMING, though the app still runs or is stopped', () => {
    expect(deriveStage({ state: 'running', activeTask: { type: 'STOP', status: 'PENDING' } })).toEqual({
      stage: 'STOPPING',
      health: 'UNKNOWN',
    });
    expect(deriveStage({ state: 'stopped', activeTask: { type: 'RESUME', status: 'PENDING' } })).toEqual({
      stage: 'RESUMING',
      health: 'UNKNOWN',
    });
  });

  test('CANCEL tasks never change the stage', () => {
    expect(deriveStage({ state: 'downloading', activeTask: { type: 'CANCEL', status: 'RUNNING' } })).toEqual({
      stage: 'FETCHING',
      health: 'UNKNOWN',
    });
  });
});

describe('a failure the app service holds nothing after', () => {
  test.each([
    ['installFailed', true],
    ['downloadFailed', true],
    ['cloneFailed', true],
    ['InstallFailed', true],
    ['upgradeFailed', false],
    ['uninstallFailed', false],
    ['stopFailed', false],
    ['installingCancelFailed', false],
    ['running', false],
  ])('%s → %s', (state, holdsNothing) => {
    expect(isFailedFirstInstall(state)).toBe(holdsNothing);
  });
});
