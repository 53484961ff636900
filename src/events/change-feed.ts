import { setMaxListeners } from 'node:events';
import { createPubSub } from 'graphql-yoga';

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

export type Topics = {
  'payment:updated': [event: PaymentChanged];
  'task:updated': [event: TaskChanged];
  'app:updated': [event: AppChanged];
  'history:added': [event: HistoryAdded];
};

/** In-process pub/sub (one instance). */
export function createEventBus() {
  const eventTarget = new EventTarget();
  // Every subscription cohort listens on its topic: many listeners are the normal case here,
  // not the leak Node's default warning (past 10) is meant to catch.
  setMaxListeners(0, eventTarget);
  return createPubSub<Topics>({ eventTarget });
}

export type EventBus = ReturnType<typeof createEventBus>;

/**
 * Announces committed changes: call after the transaction that made them. The one way anything
 * is published; the bus itself is only for subscribing.
 */
export class ChangeFeed {
  constructor(private readonly bus: EventBus) {}

  payment({ paymentId, userId, sourceId, appId }: PaymentChanged): void {
    this.bus.publish('payment:updated', { paymentId, userId, sourceId, appId });
  }

  task({ taskId, userId, sourceId, appName }: TaskChanged): void {
    this.bus.publish('task:updated', { taskId, userId, sourceId, appName });
  }

  app({ userId, sourceId, appName }: AppChanged): void {
    this.bus.publish('app:updated', { userId, sourceId, appName });
  }

  history(records: readonly HistoryAdded[]): void {
    for (const { id, userId } of records) this.bus.publish('history:added', { id, userId });
  }
}
