import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../src/platform/config.js';
import { envSchema } from '../src/platform/config-env.js';

/**
 * A refused setting is one line of the start's error, naming its tightest bound: several settings
 * hold two (a duration is at most Node's longest timer, and some at most less), and each failed
 * bound used to print its own line.
 */

/** The lines of the error loadConfig refuses `env` with; null when it takes it. */
function problems(env: Record<string, string>): string[] | null {
  try {
    loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.message.split('\n').slice(1);
  }
  return null;
}

describe('a setting beyond two bounds', () => {
  test.each([
    ['SHUTDOWN_TIMEOUT_MS', '2147483648', 'must be at most 600000'],
    ['LEADER_LEASE_MS', '2147483648', 'must be at most 600000'],
    ['LEADER_LEASE_MS', '-1', 'must be at least 300'],
    ['CHANGE_LOG_RETENTION', '0', 'must be at least 1000'],
    ['SYNC_INTERVAL_MS', '-5', 'must be at least 1000 (1 s)'],
    // Slips of a unit (seconds for milliseconds) that would cut every WebSocket, or recover every task.
    ['SUBSCRIPTION_KEEPALIVE_MS', '5', 'must be at least 100'],
    ['TASK_LEASE_MS', '30', 'must be at least 150 (3 heartbeats of 50 ms)'],
    // `1` failed every task the moment it started.
    ['TASK_TIMEOUT_MS', '1', 'must be at least 100'],
    ['TASK_TIMEOUT_MS', '99', 'must be at least 100'],
    ['CHART_REPO_TIMEOUT_MS', '5', 'must be at least 100'],
    ['CHART_REPO_TIMEOUT_MS', '2147483648', 'must be at most 600000'],
    // 0 would refuse every task; there is no off.
    ['MAX_ACTIVE_TASKS_PER_USER', '0', 'must be greater than 0'],
    ['MAX_ACTIVE_TASKS_PER_USER', '10001', 'must be at most 10000'],
    // ~1.3 KB of heap an event: 1,000,000 of them were more than the heap under a 1 GiB limit.
    ['RUNTIME_EVENT_BUFFER', '100001', 'must be at most 100000'],
  ])('%s=%s is one line: %s', (variable, value, message) => {
    expect(problems({ [variable]: value })).toEqual([`  ${variable}: ${message}`]);
  });

  test('RUNTIME_EVENT_BUFFER takes its maximum, 100000', () => {
    expect(problems({ RUNTIME_EVENT_BUFFER: '100000' })).toBeNull();
  });

  test('TASK_TIMEOUT_MS takes its minimum, 100, and the 300 the tests time tasks out with', () => {
    expect(problems({ TASK_TIMEOUT_MS: '100' })).toBeNull();
    expect(problems({ TASK_TIMEOUT_MS: '300' })).toBeNull();
  });

  // Every variable, at values beyond any bound: whatever its checks, one line.
  test.each(['99999999999999999999', '-99999999999999999999', '-1', '0'])(
    'every variable set to %s is taken or refused in one line',
    (value) => {
      for (const variable of Object.keys(envSchema.shape)) {
        const lines = problems({ [variable]: value });
        if (lines === null) continue; // a value this setting takes
        expect(
          lines.filter((line) => line.startsWith(`  ${variable}:`)),
          variable,
        ).toHaveLength(1);
      }
    },
  );
});
