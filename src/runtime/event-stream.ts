import { Repeater } from 'graphql-yoga';
import type { RuntimeEvent } from './state-store.js';

/** Most events handed to a reader that has not taken them yet (a Repeater refuses more than 1,024). */
const MAX_WAITING = 1000;

/**
 * Cluster mode: how long a `since` ahead of this instance's store is waited for. Another instance
 * that applied more of the change log gave it (a client reconnecting after a 1012 lands anywhere);
 * the log brings this one there within milliseconds unless it is cut off from Redis.
 */
export const AHEAD_WAIT_MS = 10_000;

/** What an event stream reads from: the store, as one viewer and filter see it. */
export interface EventStreamSource<View> {
  /** The store's events after `sequence` (at most `limit`), or null when it no longer holds them all. */
  eventsSince(sequence: number, limit: number): readonly RuntimeEvent[] | null;
  /** The store's sequence now. */
  sequence(): number;
  /** What the reader gets of an event, or null when it may not see it (`replayed`: from before the stream joined). */
  view(event: RuntimeEvent, replayed: boolean): View | null;
  /** What the reader gets when what it missed is no longer held: RESYNC. */
  resync(): View;
  /** Starts taking the store's changes from now on; returns how to stop. */
  join(receive: (event: RuntimeEvent) => void, fail: (error: unknown) => void): () => void;
  /** Whether the store reaches `sequence` (ahead of it now) soon enough to resume from there; false once `stopped` settles. */
  reach(sequence: number, stopped: Promise<unknown>): Promise<boolean>;
}

/**
 * A stream of the store's changes with the Kubernetes watch's contract: from `since` (or from now),
 * every change in order, and RESYNC only when the store no longer holds what the reader has not
 * been handed. At most `buffer` events wait for the reader; beyond that, and for the replay from
 * `since`, the stream keeps its place (a sequence) and reads on from the store's retained events
 * (RUNTIME_EVENT_BUFFER) as the reader takes them. Handing a replay over at once made a resume
 * that had missed more than RUNTIME_SUBSCRIBER_BUFFER events (1,000) a RESYNC though the store
 * held all 1,760, and so did any burst of more changes than that within one turn.
 */
export function eventStream<View>(
  source: EventStreamSource<View>,
  since: number | null | undefined,
  buffer: number,
): AsyncIterable<View> {
  const limit = Math.min(buffer, MAX_WAITING);
  return new Repeater<View>(async (push, stop) => {
    // Cluster mode: a `since` another instance gave, ahead of this one's store, is resumed from
    // once the store has applied the change log that far (else the store answers RESYNC).
    if (since != null && since > source.sequence()) {
      await source.reach(since, stop);
    }
    let waiting = 0;
    /** While set, the stream reads from the store after this sequence instead of taking changes as they come. */
    let behind: number | null = since ?? null;
    /** Where the reader resumed from (`since`), until it has been handed a RESYNC. */
    let resumedFrom: number | null = since ?? null;
    /**
     * The last change taken, handed over or not (the reader may not see it): a change delivered
     * live after the stream read it from the store (live delivery comes a macrotask after the
     * store has it) is not handed over twice.
     */
    let taken = source.sequence();
    let backlog: readonly RuntimeEvent[] = [];
    let next = 0;
    const joinedAt = taken;
    const hand = (view: View) => {
      waiting += 1;
      void push(view)
        .then(() => {
          waiting -= 1;
          if (behind !== null) catchUp();
        })
        .catch(stop); // a view that cannot be worked out ends this stream, not the process
    };
    const offer = (event: RuntimeEvent) => {
      taken = Math.max(taken, event.sequence);
      const view = source.view(event, event.sequence <= joinedAt);
      if (view !== null) hand(view);
    };
    const catchUp = () => {
      while (behind !== null && waiting < limit) {
        if (next === backlog.length) {
          const more = source.eventsSince(behind, limit);
          backlog = more ?? [];
          next = 0;
          if (more === null) {
            taken = source.sequence(); // then live from here on
            resumedFrom = null;
            hand(source.resync());
          }
          if (backlog.length === 0) behind = null;
          continue;
        }
        const event = backlog[next] as RuntimeEvent;
        next += 1;
        behind = event.sequence;
        offer(event);
      }
    };
    // Joining and the first look at the store happen in the same tick (the store is synchronous):
    // nothing falls between the replay and the live stream.
    const leave = source.join((event) => {
      // The store forgot events it cannot vouch for (StateStore.forgetUpTo). Only a reader that
      // resumed from a `since` before them may have missed what they stood for (one still reading
      // from the store gets its RESYNC there), and only once: the snapshot it then takes is this
      // instance's, which holds the rest. A live stream's reader took its snapshot here too: told
      // at every such entry, for five seconds after each start, its clients refetched the
      // snapshot at every change.
      if (event.kind === 'RESYNC') {
        if (behind !== null || resumedFrom === null || resumedFrom >= event.sequence) return;
        resumedFrom = null;
        taken = source.sequence(); // the RESYNC's snapshot holds everything up to here
        return hand(source.resync());
      }
      if (behind !== null || event.sequence <= taken) return; // read from the store, or read there already
      if (waiting < limit) return offer(event);
      behind = event.sequence - 1;
    }, stop);
    catchUp();
    await stop;
    leave();
  });
}

/**
 * Whether the store's sequence reaches `sequence` within `ms` (at once when it has); false as soon
 * as `stopped` settles (the reader left: its timer and listener go with it).
 */
export function reached(
  store: { lastSequence: number; onEvent(listener: (event: RuntimeEvent) => void): () => void },
  sequence: number,
  ms: number,
  stopped: Promise<unknown>,
): Promise<boolean> {
  if (store.lastSequence >= sequence) return Promise.resolve(true);
  if (ms <= 0) return Promise.resolve(false);
  return new Promise((resolve) => {
    let settled = false;
    const done = (reached: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stopListening();
      resolve(reached);
    };
    const timer = setTimeout(() => done(false), ms);
    timer.unref();
    const stopListening = store.onEvent((event) => {
      if (event.sequence >= sequence) done(true);
    });
    stopped.then(
      () => done(false),
      () => done(false),
    );
  });
}
