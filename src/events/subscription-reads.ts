/**
 * How a GraphQL subscription turns the bus's events into what it shows. Plain iterators, not
 * graphql-yoga's `pipe(map, filter)` nor async generators, because of how each ends:
 * - yoga's operators are Repeaters, which start reading their source at their first `next()`:
 *   one returned before it (a client gone while its subscription was set up, Cohort.run) never
 *   returned its source, and the bus listener and its queue of events stayed for good;
 * - an async generator's `return()` waits behind a pending `next()`: a client leaving while no
 *   event came would never stop its source either.
 * Here `return()` goes straight to the source, whatever was read.
 */

/**
 * Each event of `events` read back by `read` (the row as it is now), skipping those it answers
 * null for (gone, or not the subscriber's to see). One read at a time, in the events' order.
 */
export function readEach<Event, Row>(
  events: AsyncIterator<Event>,
  read: (event: Event) => Promise<Row | null> | Row | null,
): AsyncIterableIterator<Row> {
  return {
    async next(): Promise<IteratorResult<Row>> {
      for (;;) {
        const event = await events.next();
        if (event.done) return { value: undefined, done: true };
        const row = await read(event.value);
        if (row !== null) return { value: row, done: false };
      }
    },
    async return(): Promise<IteratorResult<Row>> {
      await events.return?.();
      return { value: undefined, done: true };
    },
    async throw(error: unknown): Promise<IteratorResult<Row>> {
      await events.return?.();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** `first`, then what `rest` yields (a subscription that starts with the state as it is). */
export function startingWith<T>(first: T, rest: AsyncIterator<T>): AsyncIterableIterator<T> {
  let firstRead = false;
  return {
    next: () => {
      if (firstRead) return rest.next();
      firstRead = true;
      return Promise.resolve({ value: first, done: false });
    },
    return: () => {
      firstRead = true; // nothing more once it ended, not even `first`
      return rest.return?.() ?? Promise.resolve({ value: undefined, done: true });
    },
    throw: (error: unknown) => {
      firstRead = true;
      return rest.throw?.(error) ?? Promise.reject(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
