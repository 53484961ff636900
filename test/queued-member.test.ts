import { Writable } from 'node:stream';
import type { ExecutionResult } from 'graphql';
import { describe, expect, test } from 'vitest';
import { Cohort, Delivery } from '../src/fanout/cohorts.js';
import { MemberCounts, type Outlet, QueuedMember } from '../src/fanout/member.js';
import { createLogger } from '../src/platform/logger.js';

/**
 * QueuedMember's byte bound, against an outlet that takes a given number of frames and then
 * stays congested until the test drains it: a member overflows once its waiting frames would pass
 * `bytesLimit`, however few they are, exactly as at `limit` (the queue dropped, the cohort's
 * catch-up once the outlet drains).
 */

class TestOutlet implements Outlet {
  readonly written: string[] = [];
  private waiting: QueuedMember | null = null;
  constructor(private room: number) {}
  get congested(): boolean {
    return this.room <= 0;
  }
  write(frame: Buffer): void {
    this.written.push(frame.toString());
    this.room -= 1;
  }
  waitForDrain(member: QueuedMember): void {
    this.waiting = member;
  }
  /** The client read: `room` more frames fit before the outlet is congested again. */
  drain(room: number): void {
    this.room = room;
    const member = this.waiting;
    this.waiting = null;
    member?.flush();
  }
}

class TestMember extends QueuedMember {
  protected frame(delivery: Delivery): Buffer {
    return delivery.framed('', '\n');
  }
  protected finish(): void {}
}

const logger = createLogger('info', new Writable({ write: (_chunk, _encoding, done) => done() }));
/** A result whose frame is about 3 kB (3,000 characters of JSON string, its envelope and the member's 64). */
const result = (n: number): Delivery => new Delivery({ data: { n, text: 'x'.repeat(3_000) } });
const MISSED: ExecutionResult = { data: { missed: true } };

function setUp(policy: { limit: number; bytesLimit: number }) {
  const outlet = new TestOutlet(0);
  const counts = new MemberCounts();
  const member = new TestMember(outlet, { ...policy, logger, counts });
  const cohort = new Cohort('key', 'events', { subscribe: async () => MISSED, execute: async () => MISSED }, () => {});
  member.cohort = cohort;
  const settled = () => new Promise<void>((resolve) => setImmediate(resolve));
  return { outlet, counts, member, settled };
}

describe('a member whose outlet is congested', () => {
  test('overflows when its waiting frames pass bytesLimit, far below limit, and catches up once the outlet drains', async () => {
    const { outlet, counts, member, settled } = setUp({ limit: 100, bytesLimit: 10_000 });
    for (let n = 1; n <= 3; n += 1) member.deliver(result(n));
    expect(counts.overflows).toBe(0);
    member.deliver(result(4)); // 4 × ~3.1 kB > 10 kB
    expect(counts.overflows).toBe(1);
    member.deliver(result(5)); // dropped: it overflowed already
    outlet.drain(10);
    await settled(); // the catch-up is executed and delivered in later turns
    expect(counts.catchUps).toBe(1);
    expect(outlet.written.map((frame) => JSON.parse(frame))).toEqual([{ data: { missed: true } }]);
    member.deliver(result(6));
    expect(JSON.parse(outlet.written.at(-1) as string)).toMatchObject({ data: { n: 6 } });
  });

  test('the count bound still holds for small results', () => {
    const { counts, member } = setUp({ limit: 3, bytesLimit: 10_000_000 });
    for (let n = 1; n <= 3; n += 1) member.deliver(new Delivery({ data: { n } }));
    expect(counts.overflows).toBe(0);
    member.deliver(new Delivery({ data: { n: 4 } }));
    expect(counts.overflows).toBe(1);
  });

  test('frames written give their bytes back: what waits again may fill the bound again', () => {
    const { outlet, counts, member } = setUp({ limit: 100, bytesLimit: 10_000 });
    for (let n = 1; n <= 3; n += 1) member.deliver(result(n));
    outlet.drain(2); // two are written, one still waits
    for (let n = 4; n <= 5; n += 1) member.deliver(result(n));
    expect(counts.overflows).toBe(0);
    outlet.drain(10);
    expect(outlet.written.map((frame) => (JSON.parse(frame) as { data: { n: number } }).data.n)).toEqual([
      1, 2, 3, 4, 5,
    ]);
  });

  test('a result bigger than bytesLimit waits alone instead of overflowing for ever', () => {
    const { outlet, counts, member } = setUp({ limit: 100, bytesLimit: 1_000 });
    member.deliver(result(1));
    expect(counts.overflows).toBe(0);
    outlet.drain(10);
    expect(outlet.written).toHaveLength(1);
  });
});
