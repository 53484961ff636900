import { describe, expect, test } from 'vitest';
import type { ClaimedMessage } from '../src/db/outbox-sql.js';
import type { ReadyMessage } from '../src/services/outbox-delivery.js';
import { ReadyQueue } from '../src/services/outbox-ready-queue.js';

function ready(id: number, host: string): ReadyMessage {
  return { message: { id } as ClaimedMessage, secret: 's', refused: null, host };
}

function takeAll(queue: ReadyQueue, hasRoom: (host: string) => boolean): number[] {
  const ids: number[] = [];
  for (let next = queue.take(hasRoom); next; next = queue.take(hasRoom)) ids.push(next.message.id);
  return ids;
}

describe('the outbox worker’s ready queue', () => {
  test('hands messages out in claim order across hosts', () => {
    const queue = new ReadyQueue();
    queue.push([ready(1, 'a'), ready(2, 'b'), ready(3, 'a')]);
    queue.push([ready(4, 'c'), ready(5, 'b')]);
    expect(queue.size).toBe(5);
    expect(takeAll(queue, () => true)).toEqual([1, 2, 3, 4, 5]);
    expect(queue.size).toBe(0);
  });

  test('skips a host without room, keeping its messages in order for later', () => {
    const queue = new ReadyQueue();
    queue.push([ready(1, 'busy'), ready(2, 'busy'), ready(3, 'free'), ready(4, 'free')]);
    expect(takeAll(queue, (host) => host !== 'busy')).toEqual([3, 4]);
    expect(queue.size).toBe(2);
    expect(takeAll(queue, () => true)).toEqual([1, 2]);
  });

  test('drain gives every waiting message back in claim order and empties the queue', () => {
    const queue = new ReadyQueue();
    queue.push([ready(1, 'a'), ready(2, 'b'), ready(3, 'a')]);
    expect(queue.take(() => true)?.message.id).toBe(1);
    expect(queue.drain().map((each) => each.message.id)).toEqual([2, 3]);
    expect(queue.size).toBe(0);
    expect(queue.take(() => true)).toBeNull();
  });
});
