/**
 * Preloaded into a server process (NODE_OPTIONS=--import <this file>) to run it on a clock that is
 * TEST_CLOCK_SKEW_MS ahead (negative: behind) of the machine's, as on a host whose NTP failed:
 * `Date.now()` and `new Date()` say so; timers and `performance.now()` (durations) are unchanged,
 * as a wrong wall clock leaves them.
 */
const skew = Number(process.env.TEST_CLOCK_SKEW_MS ?? 0);
const RealDate = Date;

class SkewedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + skew);
    else super(...args);
  }

  static now() {
    return RealDate.now() + skew;
  }
}

globalThis.Date = SkewedDate;
