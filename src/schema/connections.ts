import type { ObjectRef } from '@pothos/core';
import { builder } from './builder.js';

/**
 * The description of a filter input: the rules src/domain/filters.ts applies to every filter. A
 * `userId` is the exception: it is who may be read (userScope in auth/viewer.ts), so an empty one
 * is refused.
 */
export function filterDescription(what: string): string {
  return (
    `Filters on ${what}; all given conditions must hold. A field left out or null, an empty list and an empty ` +
    'string constrain nothing (an empty list is every value, not none); an empty userId is refused.'
  );
}

/**
 * The key of a list field's `extensions` that gives how many items the query cost limit
 * (http/query-cost.ts) counts the list for. A list without pages counts one item otherwise, which
 * is wrong only for lists that can be long: a page inside each item of such a list multiplies.
 */
export const ASSUMED_LIST_SIZE = 'assumedListSize';

/** A list field's `extensions`: the query cost limit counts it as `items` items. */
export function assumedListSize(items: number): { [ASSUMED_LIST_SIZE]: number } {
  return { [ASSUMED_LIST_SIZE]: items };
}

/** `<Type>Connection` with `totalCount` (counted only when selected) and `<Type>Edge`. */
export function connectionType<T>(
  type: ObjectRef<typeof builder extends { $inferSchemaTypes: infer S } ? S : never, T>,
  name: string,
  items: string,
) {
  return builder.connectionObject(
    {
      type,
      name: `${name}Connection`,
      description: `A page of ${items}.`,
      fields: (t) => ({
        totalCount: t.int({
          description: `Number of ${items} matching the filter, over all pages.`,
          resolve: (connection) => connection.totalCount(),
        }),
      }),
    },
    { description: `One of ${items} and its cursor.` },
  );
}
