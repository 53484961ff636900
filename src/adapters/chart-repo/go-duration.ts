/** Go's time.Duration as the chart repo may write it: a string (`1m30s`) or integer nanoseconds. */

const DURATION_UNITS_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** Longer than any Go duration string (at most ~20 characters for 290 years), so a huge string is not scanned. */
const MAX_DURATION_TEXT = 64;

/**
 * A Go duration string (`1.5s`, `250ms`, `1m30s`, as time.ParseDuration reads them) as
 * milliseconds, rounded to the nanosecond (the finest a Go duration holds, so 1.1s is 1100 and not
 * 1100.0000000000002); null when it is not one.
 */
export function goDurationTextMs(value: string): number | null {
  if (value.length > MAX_DURATION_TEXT) return null;
  const sign = value.startsWith('-') ? -1 : 1;
  const text = value.replace(/^[+-]/, '');
  if (text === '0') return 0;
  if (text === '') return null;
  let total = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < text.length) {
    const part = DURATION_PART.exec(text);
    if (!part) return null;
    total += Number(part[1]) * (DURATION_UNITS_MS[part[2] as string] as number);
  }
  return (sign * Math.round(total * 1e6)) / 1e6;
}

/**
 * A Go time.Duration as encoding/json writes it (integer nanoseconds), or as a duration string, as
 * milliseconds; null for anything else and for negative or non-finite values.
 */
export function goDurationMs(value: unknown): number | null {
  const ms =
    typeof value === 'number'
      ? Number.isFinite(value)
        ? value / 1e6
        : null
      : typeof value === 'string'
        ? goDurationTextMs(value)
        : null;
  return ms !== null && ms >= 0 ? ms : null;
}
