/**
 * The transports' keep-alive timer: one for every stream or connection of a transport, so that
 * thousands of idle subscribers cost one timer. It ticks twice a period. A stream or connection
 * written to since the last tick is skipped there (its flag cleared); one that was not gets a
 * keep-alive (an SSE comment, a WebSocket ping). Something is written to each at least once a
 * period, and an idle one gets one keep-alive a period. Ticking once a period with the same
 * logic let up to two periods pass between writes (written just after a tick, skipped at the next,
 * kept alive at the one after): behind nginx's 60 s proxy_read_timeout, quiet streams were cut
 * with a 35 s period.
 */
export const TICKS_PER_PERIOD = 2;

/** Calls `tick` twice every `periodMs`, `periodEnd` true at every second call (once a period). */
export function keepAliveTimer(periodMs: number, tick: (periodEnd: boolean) => void): NodeJS.Timeout {
  let ticks = 0;
  const timer = setInterval(() => {
    ticks += 1;
    tick(ticks % TICKS_PER_PERIOD === 0);
  }, periodMs / TICKS_PER_PERIOD);
  timer.unref();
  return timer;
}
