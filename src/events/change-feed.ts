import { getEventListeners, setMaxListeners } from 'node:events';
import { GraphQLError } from 'graphql';

/**
 * The typed topics services publish on after their writes commit, and subscriptions listen to.
 * Payloads carry ids only: subscription resolvers re-read the row, so a secret can never travel
 * through the bus, and every subscriber sees what it may see.
 */
export interface PaymentChanged {
  paymentId: number;
  userId: string;
  sourceId: string;
  appId: string;
}

export interface TaskChanged {
  taskId: string;
  userId: string;
  sourceId: string;
  appName: string;
  /**
   * The status the announcing change committed, when the announcer knows it (not a secret): the
   * webhook dispatcher skips a change that did not finish the task (its progress) without reading it.
   */
  status?: string;
}

export interface AppChanged {
  userId: string;
  sourceId: string;
  appName: string;
}

export interface HistoryAdded {
  id: number;
  userId: string;
}

/** A sync or an upload changed a source's catalogue: the app ids, by what happened to them. */
export interface CatalogueChanged {
  sourceId: string;
  added: string[];
  updated: string[];
  removed: string[];
  /** An admin added, selected or removed the source: what is offered changed as a whole (the lists are empty). */
  sourcesChanged?: boolean;
  /** The admin whose upload made the change (a sync's has none): the history record names them. */
  by?: string;
  /**
   * An upload's: the version of the package uploaded, by app id (not always the entry's: an older
   * version only joins its history). The history record names it; not announced.
   */
  versions?: Record<string, string>;
}

export type Topics = {
  'payment:updated': [event: PaymentChanged];
  'task:updated': [event: TaskChanged];
  'app:updated': [event: AppChanged];
  'history:added': [event: HistoryAdded];
  'catalogue:changed': [event: CatalogueChanged];
  /** Cluster mode: changes may have been missed (see redis-change-log.ts); re-read the state. */
  'runtime:resync': [event: { reason: string }];
};

/**
 * In-process pub/sub (one instance). `subscribe` (Yoga's, an async iterator) serves the GraphQL
 * subscriptions; `listen` serves the server's own followers (the collector, the webhook
 * dispatcher, the catalogue-change cache), which only mark or queue something per event.
 */
export function createEventBus(maxPendingEvents = MAX_PENDING_EVENTS) {
  const eventTarget = new EventTarget();
  // Every subscription cohort listens on its topic: many listeners are the normal case here,
  // not the leak Node's default warning (past 10) is meant to catch.
  setMaxListeners(0, eventTarget);
  return {
    publish<Topic extends keyof Topics>(topic: Topic, event: Topics[Topic][0]): void {
      eventTarget.dispatchEvent(new CustomEvent(topic, { detail: event }));
    },
    subscribe: subscriberOn(eventTarget, maxPendingEvents),
    listen: listenerOn(eventTarget),
    /** How many subscriptions and followers listen to `topic` (one that ended and still does leaks). */
    listenerCount: (topic: keyof Topics): number => getEventListeners(eventTarget, topic).length,
  };
}

/**
 * How many events of its topic a subscription may have waiting to be read: each is re-read from
 * the database by its subscription (one cohort's execution), so a burst (a catalogue sync
 * announcing every installed app, a status correction) waits here meanwhile.
 */
export const MAX_PENDING_EVENTS = 10_000;

/**
 * `subscribe(topic, wanted)`: the events of `topic` that `wanted` accepts (a subscription's cheap
 * test of the event's keys, so that only its own events wait) as an async iterator, for a GraphQL
 * subscription.
 *
 * Yoga's `createPubSub` holds at most 1,024 unread events per subscriber and then throws in the
 * publishing listener, which an EventTarget turns into an uncaught exception: a catalogue sync
 * announcing 1,500 installed apps to one `appUpdated` subscriber ended the process. Here up to
 * `maxPending` events wait; a subscription that would hold more drops them and ends with a
 * SLOW_CONSUMER error saying so (it must refetch and subscribe again: working through the backlog
 * first, one read of the database each, would only delay that), and the process goes on. A
 * Repeater with a FixedBuffer, stopped with the error, would first deliver all it holds.
 */
function subscriberOn(eventTarget: EventTarget, maxPending: number) {
  return <Topic extends keyof Topics>(
    topic: Topic,
    wanted: (event: Topics[Topic][0]) => boolean = () => true,
  ): AsyncIterableIterator<Topics[Topic][0]> => {
    const events = new PendingEvents<Topics[Topic][0]>(maxPending, () =>
      eventTarget.removeEventListener(topic, listener),
    );
    const listener = (message: Event) => {
      const event = (message as CustomEvent<Topics[Topic][0]>).detail;
      if (wanted(event)) events.push(event);
    };
    eventTarget.addEventListener(topic, listener);
    return events;
  };
}

/** The events a subscription has not read yet, at most `maxPending` (see subscriberOn). */
class PendingEvents<T> implements AsyncIterableIterator<T> {
  private queue: T[] = [];
  /** queue[head] is the next to read (`shift()` costs the queue's length). */
  private head = 0;
  private wake: (() => void) | null = null;
  private failure: GraphQLError | null = null;
  private ended = false;

  constructor(
    private readonly maxPending: number,
    private readonly unlisten: () => void,
  ) {}

  push(event: T): void {
    if (this.ended) return;
    if (this.queue.length - this.head < this.maxPending) this.queue.push(event);
    else {
      this.failure = new GraphQLError(
        `More than ${this.maxPending} changes waited to be read by this subscription: it ends; refetch what it showed and subscribe again.`,
        { extensions: { code: 'SLOW_CONSUMER' } },
      );
      this.end();
    }
    this.wake?.();
  }

  async next(): Promise<IteratorResult<T>> {
    while (this.head === this.queue.length && !this.ended) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
    this.wake = null;
    if (this.head < this.queue.length) {
      const value = this.queue[this.head] as T;
      this.head += 1;
      if (this.head === this.queue.length) this.clear();
      // A reader that stays behind never empties the queue: what it read goes once it is half of it.
      else if (this.head > 1024 && this.head * 2 > this.queue.length) this.compact();
      return { value, done: false };
    }
    const failure = this.failure;
    this.failure = null;
    if (failure) throw failure;
    return { value: undefined, done: true };
  }

  async return(): Promise<IteratorResult<T>> {
    this.end();
    return { value: undefined, done: true };
  }

  async throw(error: unknown): Promise<IteratorResult<T>> {
    this.end();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private end(): void {
    this.ended = true;
    this.clear();
    this.unlisten();
    this.wake?.();
  }

  private clear(): void {
    this.queue = [];
    this.head = 0;
  }

  private compact(): void {
    this.queue = this.queue.slice(this.head);
    this.head = 0;
  }
}

/**
 * `listen(topic, handler, onError)`: calls `handler` with every event of `topic`, within its
 * publication (the ChangeFeed publishes one turn after the change, off the request path);
 * returns the function that stops it. Not an async iterator: one Repeater per follower turned
 * each event into a buffered push, a promise and a loop turn, about a tenth of a single server's
 * CPU per change in `npm run bench -- --only cluster` (inclusive under `publish` in its profile).
 * Measured in-process (a task and an app announcement per change, two followers of each, bursts of
 * 8 per turn): 26.8 µs of CPU per change as iterators, 0.9–1.1 µs as listeners. A handler that
 * throws is reported to `onError`: an EventTarget would turn it into an uncaught exception.
 */
function listenerOn(eventTarget: EventTarget) {
  return <Topic extends keyof Topics>(
    topic: Topic,
    handler: (event: Topics[Topic][0]) => void,
    onError: (error: unknown) => void,
  ): (() => void) => {
    const listener = (event: Event) => {
      try {
        handler((event as CustomEvent<Topics[Topic][0]>).detail);
      } catch (error) {
        onError(error);
      }
    };
    eventTarget.addEventListener(topic, listener);
    return () => eventTarget.removeEventListener(topic, listener);
  };
}

export type EventBus = ReturnType<typeof createEventBus>;

/**
 * Items handed over by a publishing call and delivered in a later macrotask: the first `add`
 * schedules one `setImmediate`, which delivers every item added until then, in the order added.
 * A publisher (a mutation, the collector's read-back) so never runs its subscribers' work, and a
 * burst of changes costs one turn of the event loop, not one per change.
 */
export class DeliveryQueue<T> {
  private pending: T[] = [];
  private waiting: (() => void)[] = [];
  private scheduled = false;

  /**
   * `deliver` is called once per item; `onError` gets what it throws, and the items after it are
   * delivered all the same (one failing item must not silence every later change).
   */
  constructor(
    private readonly deliver: (item: T) => void,
    private readonly onError: (error: unknown) => void,
  ) {}

  add(item: T): void {
    this.pending.push(item);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.drain());
  }

  /** Resolves once everything added so far has been delivered (at once when nothing waits). */
  drained(): Promise<void> {
    if (!this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private drain(): void {
    const { pending, waiting } = this;
    this.pending = [];
    this.waiting = [];
    this.scheduled = false;
    for (const item of pending) {
      try {
        this.deliver(item);
      } catch (error) {
        this.onError(error);
      }
    }
    for (const resolve of waiting) resolve();
  }
}

/** A change as it is announced: its topic and its event. */
export type Announcement = { [Topic in keyof Topics]: [Topic, ...Topics[Topic]] }[keyof Topics];

/** Where announcements go besides this process's bus: the cluster's change log (cluster mode). */
export interface AnnouncementSink {
  append(announcement: Announcement): void;
}

/**
 * Announces committed changes: call after the transaction that made them. The one way anything
 * is published; the bus itself is only for subscribing. Announcements reach the bus in a later
 * macrotask, in the order made: the request that made the change answers without running its
 * subscribers' work (filters, read-backs, executions, writes to sockets), which follows together
 * for everything announced in the same turn.
 */
export class ChangeFeed {
  private readonly queue: DeliveryQueue<Announcement>;

  /**
   * Cluster mode: `cluster` is the change log other instances read this one's payment and history
   * announcements from, and `localBus` carries only this instance's own (for the runtime
   * collector, whose read-backs carry the task and app changes to the other instances).
   */
  constructor(bus: EventBus, cluster: AnnouncementSink | null = null, localBus: EventBus = bus) {
    // publish() does not throw: the bus's EventTarget reports a failing listener itself.
    this.queue = new DeliveryQueue(
      (announcement) => {
        const [topic, event] = announcement;
        bus.publish(topic, event as never);
        if (localBus !== bus) localBus.publish(topic, event as never);
        // Task and app changes reach the other instances with the rows read back after them
        // (the runtime changes of the log), which their buses announce in turn.
        if (topic !== 'task:updated' && topic !== 'app:updated') cluster?.append(announcement);
      },
      (error) => process.emitWarning(`a change could not be published: ${String(error)}`),
    );
  }

  /** Resolves once every change announced so far is on the bus. */
  delivered(): Promise<void> {
    return this.queue.drained();
  }

  payment({ paymentId, userId, sourceId, appId }: PaymentChanged): void {
    this.queue.add(['payment:updated', { paymentId, userId, sourceId, appId }]);
  }

  task({ taskId, userId, sourceId, appName, status }: TaskChanged): void {
    this.queue.add(['task:updated', { taskId, userId, sourceId, appName, status }]);
  }

  app({ userId, sourceId, appName }: AppChanged): void {
    this.queue.add(['app:updated', { userId, sourceId, appName }]);
  }

  catalogue({ sourceId, added, updated, removed, sourcesChanged }: CatalogueChanged): void {
    this.queue.add(['catalogue:changed', { sourceId, added, updated, removed, sourcesChanged }]);
  }

  history(records: readonly HistoryAdded[]): void {
    for (const { id, userId } of records) this.queue.add(['history:added', { id, userId }]);
  }
}
