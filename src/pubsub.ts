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

export type Topics = {
  'payment:updated': [event: PaymentChanged];
};

/** In-process pub/sub (one instance). */
export function createEventBus() {
  return createPubSub<Topics>();
}

export type EventBus = ReturnType<typeof createEventBus>;
