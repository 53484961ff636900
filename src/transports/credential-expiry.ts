import type { Viewer } from '../auth/viewer.js';
// setTimeout's largest delay (24.8 days): a longer wait is made of several timers.
import { MAX_TIMER_MS } from '../platform/config-values.js';

/**
 * Calls `expire` when the viewer's credential expires; returns what cancels it. A connection or
 * stream outlives the request that authenticated it, so without this it would keep delivering to
 * a token that no longer holds. A credential valid for longer than one timer can wait (a JWT
 * whose `exp` is a month away) is timed in steps. The timers are unref'd: they must not keep the
 * process alive.
 */
export function onCredentialExpiry(viewer: Viewer, expire: () => void): () => void {
  const { expiresAt } = viewer;
  if (expiresAt === undefined) return () => {};
  let timer: NodeJS.Timeout;
  const wait = () => {
    const left = expiresAt - Date.now();
    timer = left > MAX_TIMER_MS ? setTimeout(wait, MAX_TIMER_MS).unref() : setTimeout(expire, left).unref();
  };
  wait();
  return () => clearTimeout(timer);
}
