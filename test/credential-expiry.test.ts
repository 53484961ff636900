import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { MAX_TIMER_MS } from '../src/platform/config-values.js';
import { onCredentialExpiry } from '../src/transports/credential-expiry.js';

/**
 * When a long-lived connection's credential runs out. A month is longer than Node's longest timer,
 * so this runs on vitest's fake clock: the point is the arithmetic of the waits, not their length.
 */
describe('closing a connection when its credential expires', () => {
  beforeEach(() => vi.useFakeTimers({ now: Date.parse('2026-12-05T12:00:00Z') }));
  afterEach(() => vi.useRealTimers());
  const DAY = 24 * 3600_000;

  test('a JWT whose exp is a month away still ends its connection then (before: never, past 24.8 days)', () => {
    expect(30 * DAY).toBeGreaterThan(MAX_TIMER_MS);
    const expire = vi.fn();
    onCredentialExpiry({ userId: 'alice', isAdmin: false, expiresAt: Date.now() + 30 * DAY }, expire);
    vi.advanceTimersByTime(30 * DAY - 1);
    expect(expire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(expire).toHaveBeenCalledTimes(1);
  });

  test('cancelled (the connection closed first), it never fires; without exp there is nothing to time', () => {
    const expire = vi.fn();
    const cancel = onCredentialExpiry({ userId: 'alice', isAdmin: false, expiresAt: Date.now() + 30 * DAY }, expire);
    vi.advanceTimersByTime(MAX_TIMER_MS + DAY); // past the first step
    cancel();
    vi.advanceTimersByTime(30 * DAY);
    expect(expire).not.toHaveBeenCalled();
    onCredentialExpiry({ userId: 'bob', isAdmin: false }, expire);
    expect(vi.getTimerCount()).toBe(0);
  });
});
