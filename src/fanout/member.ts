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

/** What every member of one transport shares. */
export interface MemberPolicy {
  /** Results that may wait while the outlet is congested; beyond it the member overflows. */
  limit: number;
  logger: Logger;
  /** @default not counted */
  counts?: MemberCounts;
}

/**
 * One subscriber in a cohort, with the slow-consumer policy every transport shares: a frame is
 * written at once while the outlet keeps up; otherwise results queue, at most `limit` of them.
 * When the queue overflows it is dropped and, once the outlet drains, the member gets what its
 * cohort gives a member that missed results (`Cohort.catchUp`: the latest snapshot, a RESYNC, or
 * an error naming what to refetch). Memory per subscriber stays bounded, and nobody else waits.
 *
 * Transports subclass it with their envelope (`frame`) and their end of stream (`finish`). An idle
 * member is a handful of fields: at 10,000 subscribers every byte here counts ten thousand times.
 */
export abstract class QueuedMember implements CohortMember {
  cohort: Cohort | null = null;
  /** Results waiting for the outlet; null while nothing waits. */
  private queue: Delivery[] | null = null;
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
    if (this.queue.length >= this.policy.limit) {
      this.queue = null;
      this.overflowed = true;
      if (this.policy.counts) this.policy.counts.overflows += 1;
    } else {
      this.queue.push(delivery);
    }
    outlet.waitForDrain(this);
  }

  /** The outlet drained: write what waited, then (after an overflow) the cohort's catch-up. */
  flush(): void {
    if (this.ended) return;
    const { outlet, queue } = this;
    if (queue) {
      while (queue.length && !outlet.congested) {
        outlet.write(this.frame(queue.shift() as Delivery));
        if (this.policy.counts) this.policy.counts.delivered += 1;
      }
      if (queue.length) {
        outlet.waitForDrain(this);
        return;
      }
      this.queue = null;
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
    this.cohort?.remove(this);
  }

  private uncount(): void {
    if (!this.counted || !this.policy.counts) return;
    this.counted = false;
    this.policy.counts.active -= 1;
  }
}
