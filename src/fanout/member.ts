import type { GraphQLError } from 'graphql';
import type { Logger } from '../platform/logger.js';
import type { Cohort, CohortMember, Delivery } from './cohorts.js';

/** Where a subscriber's frames go: a WebSocket connection or a server-sent-events response. */
export interface Outlet {
  /** Writes one frame now. */
  write(frame: Buffer): void;
  /** Whether more is unsent than the transport allows; frames then wait in the member's queue. */
  readonly congested: boolean;
  /** Calls `member.flush()` once what was written so far has left the process. */
  waitForDrain(member: QueuedMember): void;
}

/**
 * Running counts over one transport's members, read by the metrics at scrape time: plain numbers,
 * since a delivery to ten thousand members must not pay for a metrics library call each.
 */
export class MemberCounts {
  /** Members now subscribed. */
  active = 0;
  /** Frames written (results, catch-ups). */
  delivered = 0;
  /** Members whose queue overflowed. */
  overflows = 0;
  /** Catch-ups given to members that overflowed. */
  catchUps = 0;
}

/**
 * Bytes of frames one member may have waiting before it overflows, whatever their number. Results
 * can be large (a runtime snapshot of 1,500 apps is 0.4 to 1.5 MB): counted by number alone, four
 * slow subscribers of such snapshots, each view its own cohort, took the heap from 118 to 516 MB in
 * 60 snapshots (test/slow-consumer-bytes.test.ts), and from 136 MB to 1.3 GB in 120 of a richer
 * view; with this bound, 123 to 161 MB. 4 MiB keeps the count the bound for ordinary events (a
 * runtimeEvents APP_CHANGED with the dashboard's selection is 830 to 900 bytes: 1,000 of them fit
 * with room to spare), and lets a few such snapshots wait.
 */
export const QUEUED_BYTES_LIMIT = 4 * 1024 * 1024;

/**
 * What a frame adds to the result's JSON, counted without building it: graphql-ws wraps it in
 * `{"id":…,"type":"next","payload":…}` (34 bytes and the id), SSE in `event: next\ndata: …\n\n` (20).
 */
const ENVELOPE_BYTES = 64;

/** What every member of one transport shares. */
export interface MemberPolicy {
  /** Results that may wait while the outlet is congested; beyond it the member overflows. */
  limit: number;
  /** Bytes of frames that may wait; beyond it the member overflows too. @default QUEUED_BYTES_LIMIT */
  bytesLimit?: number;
  logger: Logger;
  /** @default not counted */
  counts?: MemberCounts;
  /** A member holding a place (`placeOf`) ended: its place is given back. */
  left?: (member: QueuedMember) => void;
}

/**
 * One subscriber in a cohort, with the slow-consumer policy every transport shares: a frame is
 * written at once while the outlet keeps up; otherwise results queue, at most `limit` of them and
 * `bytesLimit` bytes of their frames (a result bigger than that may still wait alone).
 * When the queue overflows it is dropped and, once the outlet drains, the member gets what its
 * cohort gives a member that missed results (`Cohort.catchUp`: the latest snapshot, a RESYNC, or
 * an error naming what to refetch). Memory per subscriber stays bounded, and nobody else waits.
 *
 * Transports subclass it with their envelope (`frame`) and their end of stream (`finish`). An idle
 * member is a handful of fields: at 10,000 subscribers every byte here counts ten thousand times.
 */
export abstract class QueuedMember implements CohortMember {
  cohort: Cohort | null = null;
  /** The user whose place among their subscriptions it holds, given back once it ends (`MemberPolicy.left`). */
  placeOf: string | null = null;
  /** Results waiting for the outlet; null while nothing waits. */
  private queue: Delivery[] | null = null;
  /**
   * Bytes of the frames in `queue`, each counted in full though a cohort's members share its
   * JSON: it is what this queue keeps alive once the others have written it.
   */
  private queuedBytes = 0;
  private overflowed = false;
  private ended = false;
  /** Whether `policy.counts.active` counts this member (once, however it ends). */
  private counted: boolean;

  constructor(
    private readonly outlet: Outlet,
    private readonly policy: MemberPolicy,
  ) {
    this.counted = policy.counts !== undefined;
    if (policy.counts) policy.counts.active += 1;
  }

  /** The member's frame for one result: the transport's envelope around the shared JSON. */
  protected abstract frame(delivery: Delivery): Buffer;
  /** The stream is over or was given up: tell the client (complete, or the errors). */
  protected abstract finish(errors?: readonly GraphQLError[]): void;

  deliver(delivery: Delivery): void {
    if (this.ended || this.overflowed) return;
    const { outlet } = this;
    if (this.queue === null && !outlet.congested) {
      outlet.write(this.frame(delivery));
      if (this.policy.counts) this.policy.counts.delivered += 1;
      return;
    }
    this.queue ??= [];
    // Serializes a result no member has written yet: its write would, and the queue then holds
    // its JSON, not its objects.
    const bytes = delivery.bytes + ENVELOPE_BYTES;
    const bytesLimit = this.policy.bytesLimit ?? QUEUED_BYTES_LIMIT;
    if (this.queue.length >= this.policy.limit || (this.queue.length > 0 && this.queuedBytes + bytes > bytesLimit)) {
      this.queue = null;
      this.queuedBytes = 0;
      this.overflowed = true;
      if (this.policy.counts) this.policy.counts.overflows += 1;
    } else {
      this.queue.push(delivery);
      this.queuedBytes += bytes;
    }
    outlet.waitForDrain(this);
  }

  /** The outlet drained: write what waited, then (after an overflow) the cohort's catch-up. */
  flush(): void {
    if (this.ended) return;
    const { outlet, queue } = this;
    if (queue) {
      while (queue.length && !outlet.congested) {
        const delivery = queue.shift() as Delivery;
        this.queuedBytes -= delivery.bytes + ENVELOPE_BYTES;
        outlet.write(this.frame(delivery));
        if (this.policy.counts) this.policy.counts.delivered += 1;
      }
      if (queue.length) {
        outlet.waitForDrain(this);
        return;
      }
      this.queue = null;
      this.queuedBytes = 0;
    }
    if (!this.overflowed || !this.cohort) return;
    if (this.policy.counts) this.policy.counts.catchUps += 1;
    this.cohort
      .catchUp()
      .then((delivery) => {
        this.overflowed = false;
        this.deliver(delivery);
      })
      .catch((error: unknown) => {
        this.policy.logger.error({ err: error }, 'could not catch up a slow subscriber');
        this.stop();
        this.finish();
      });
  }

  end(errors?: readonly GraphQLError[]): void {
    if (this.ended) return;
    this.ended = true;
    this.uncount();
    this.finish(errors);
  }

  /** The client left (or gave up): leave the cohort, nothing more is written. */
  stop(): void {
    this.ended = true;
    this.uncount();
    this.queue = null;
    this.queuedBytes = 0;
    this.cohort?.remove(this);
  }

  private uncount(): void {
    if (this.placeOf !== null) this.policy.left?.(this);
    this.placeOf = null;
    if (!this.counted || !this.policy.counts) return;
    this.counted = false;
    this.policy.counts.active -= 1;
  }
}
