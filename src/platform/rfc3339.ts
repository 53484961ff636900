const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Parses an RFC 3339 time as Go writes it (`time.RFC3339Nano`: up to nine fraction digits).
 * A JavaScript Date holds milliseconds, so digits below that are cut, not rounded: rounding up
 * could move an event past a newer one. Returns null for anything else, including impossible
 * dates such as February 31 that `Date.parse` would silently roll over.
 */
export function parseRfc3339Time(value: string): Date | null {
  const match = RFC3339.exec(value);
  if (!match) return null;
  const [, year, month, day, hour, minute, second, fraction = '', zone] = match;
  const calendarDay = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
  if (calendarDay.getUTCMonth() !== Number(month) - 1 || calendarDay.getUTCDate() !== Number(day)) return null;
  if (Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59) return null;
  const millis = fraction.slice(0, 3).padEnd(3, '0');
  const time = Date.parse(`${year}-${month}-${day}T${hour}:${minute}:${second}.${millis}${zone?.toUpperCase()}`);
  return Number.isNaN(time) ? null : new Date(time);
}
