import type { GraphQLError } from 'graphql';
import type { Logger } from '../logger.js';
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

export interface MemberOptions {
  outlet: Outlet;
  /** The member's frame for one result (the transport's envelope around the shared JSON). */
  frame(delivery: Delivery): Buffer;
  /** Results that may wait while the outlet is congested; beyond it the member overflows. */
  limit: number;
  /** The stream is over or was given up: tell the client (complete, or the errors). */
  finish(errors?: readonly GraphQLError[]): void;
  logger: Logger;
}

/**
 * One subscriber in a cohort, with the slow-consumer policy every transport shares: a frame is
 * written at once while the outlet keeps up; otherwise results queue, at most `limit` of them.
 * When the queue overflows it is dropped and, once the outlet drains, the member gets what its
 * cohort gives a member that missed results (`Cohort.catchUp`: the latest snapshot, a RESYNC, or
 * an error naming what to refetch). Memory per subscriber stays bounded, and nobody else waits.
 */
export class QueuedMember implements CohortMember {
  cohort: Cohort | null = null;
  private queue: Delivery[] = [];
  private overflowed = false;
  private ended = false;

  constructor(private readonly options: MemberOptions) {}

  deliver(delivery: Delivery): void {
    if (this.ended || this.overflowed) return;
    const { outlet, limit } = this.options;
    if (this.queue.length === 0 && !outlet.congested) {
      outlet.write(this.options.frame(delivery));
      return;
    }
    if (this.queue.length >= limit) {
      this.queue = [];
      this.overflowed = true;
    } else {
      this.queue.push(delivery);
    }
    outlet.waitForDrain(this);
  }

  /** The outlet drained: write what waited, then (after an overflow) the cohort's catch-up. */
  flush(): void {
    if (this.ended) return;
    const { outlet, frame } = this.options;
    while (this.queue.length && !outlet.congested) outlet.write(frame(this.queue.shift() as Delivery));
    if (this.queue.length) {
      outlet.waitForDrain(this);
      return;
    }
    if (!this.overflowed || !this.cohort) return;
    this.cohort
      .catchUp()
      .then((delivery) => {
        this.overflowed = false;
        this.deliver(delivery);
      })
      .catch((error: unknown) => {
        this.options.logger.error({ err: error }, 'could not catch up a slow subscriber');
        this.stop();
        this.options.finish();
      });
  }

  end(errors?: readonly GraphQLError[]): void {
    if (this.ended) return;
    this.ended = true;
    this.options.finish(errors);
  }

  /** The client left (or gave up): leave the cohort, nothing more is written. */
  stop(): void {
    this.ended = true;
    this.queue = [];
    this.cohort?.remove(this);
  }
}
