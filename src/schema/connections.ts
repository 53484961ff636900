import type { ObjectRef } from '@pothos/core';
import { MAX_USER_ID_LENGTH } from '../auth/user-id.js';
import { MAX_APP_NAME_LENGTH, MAX_SOURCE_ID_LENGTH } from '../domain/app-key.js';
import { builder } from './builder.js';

/**
 * The description of a filter input: the rules src/domain/filters.ts applies to every filter (and
 * userScope in auth/viewer.ts to its `userId`).
 */
export function filterDescription(what: string): string {
  return (
    `Filters on ${what}; all given conditions must hold. A field left out or null and an empty list constrain ` +
    'nothing (an empty list is every value, not none). A field naming a user, source, app or record type is ' +
    `refused (VALIDATION) when empty or longer than one can be (user ids ${MAX_USER_ID_LENGTH} characters, app ` +
    `names and ids ${MAX_APP_NAME_LENGTH}, source ids ${MAX_SOURCE_ID_LENGTH}).`
  );
}

/**
 * The key of a list field's `extensions` that gives how many items the query cost limit
 * (http/query-cost.ts) counts the list for. A list without pages counts one item otherwise, which
 * is wrong only for lists that can be long: a page inside each item of such a list multiplies.
 */
export const ASSUMED_LIST_SIZE = 'assumedListSize';

/**
 * The configured limits a list's size can be: the most items it can hold is set by the operator
 * (MAX_WEBHOOKS), not fixed in the schema. The query cost limit is given their values (app/graphql.ts).
 */
export interface ListLimits {
  /** MAX_WEBHOOKS: the most webhooks there can be. */
  maxWebhooks: number;
}

/**
 * A list field's `extensions`: the query cost limit counts it as `items` items, or as the value of
 * the configured limit of that name.
 */
export function assumedListSize(items: number | keyof ListLimits): {
  [ASSUMED_LIST_SIZE]: number | keyof ListLimits;
} {
  return { [ASSUMED_LIST_SIZE]: items };
}

/**
 * The key of a field's `extensions` that gives how many field values the query cost limit counts
 * its value as (1 otherwise). The limit reckons in plain values (an id, a name, a flag): ~20 bytes
 * of the answer and ~3.4 µs of CPU each (a 49,515-cost page of plain catalogue fields answered in
 * 0.95 MB for 170 ms). A field whose value can run to kilobytes counted once let a 1.9 KB query of
 * cost 12,015 answer 61 MB for 1.3 s of CPU (1,500 catalogue entries of 21.5 KB): such a field
 * declares its weight here, where it is defined, from its size in plain values. Values of a few
 * hundred bytes at most (a task's result, a history record's details, a component's metrics:
 * 66–330 bytes measured) count 1, which the 20-byte average already allows for.
 */
export const COST_WEIGHT = 'costWeight';

/** The bytes of the answer one plain value takes, as measured above: a field's weight is its size over this. */
export const PLAIN_VALUE_BYTES = 20;

/** A field's `extensions`: the query cost limit counts its value as `values` plain values. */
export function costWeight(values: number): { [COST_WEIGHT]: number } {
  return { [COST_WEIGHT]: values };
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
