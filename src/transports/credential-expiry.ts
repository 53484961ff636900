import type { Viewer } from '../auth/viewer.js';
// setTimeout's largest delay (24.8 days): a credential valid for longer is not timed.
import { MAX_TIMER_MS } from '../platform/config-values.js';

/**
 * Calls `expire` when the viewer's credential expires. A connection or stream outlives the request
 * that authenticated it, so without this it would keep delivering to a token that no longer holds.
 * The timer is unref'd: it must not keep the process alive.
 */
export function onCredentialExpiry(viewer: Viewer, expire: () => void): NodeJS.Timeout | undefined {
  const lifetime = viewer.expiresAt === undefined ? Infinity : viewer.expiresAt - Date.now();
  return lifetime < MAX_TIMER_MS ? setTimeout(expire, lifetime).unref() : undefined;
}
