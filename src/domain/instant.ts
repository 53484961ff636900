/**
 * A time a client gave with digits below the millisecond (`…00.0009Z`, as Python's `isoformat()`
 * and Go's `RFC3339Nano` write). Times are stored to the millisecond, so it lies between two stored
 * times: `millisecondBefore` (the millisecond it falls in, …00.000) and the next one (…00.001).
 * A plain object, not a Date subclass: graphql-jit copies a literal argument's Dates into its
 * compiled code as `new Date(ms)`, which would drop a subclass and the fraction with it.
 */
export interface TimeBetweenMilliseconds {
  readonly millisecondBefore: Date;
}

/** A DateTime argument: a stored millisecond, or a time between two. */
export type TimeInput = Date | TimeBetweenMilliseconds;

/**
 * The stored time a range filter's bound compares with, so that it takes exactly the rows the
 * instant itself would: at or after a time between two milliseconds is at or after the next one
 * (`createdAfter: …00.0009` takes …00.001, not …00.000); at or before it, at or before the first.
 */
export function storedBound(op: 'atOrAfter' | 'atOrBefore', time: TimeInput): Date {
  if (time instanceof Date) return time;
  const before = time.millisecondBefore;
  return op === 'atOrAfter' ? new Date(before.getTime() + 1) : before;
}
