/** The payment of a payment mutation's success result; anything else (an error result) fails the test, showing it. */
export function success<T extends { __typename: string }>(result: T): Extract<T, { payment: unknown }>['payment'] {
  if (!('payment' in result)) throw new Error(`expected success, got ${JSON.stringify(result)}`);
  return (result as { payment: unknown }).payment as never;
}
