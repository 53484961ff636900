import type { ObjectRef } from '@pothos/core';
import { builder } from './builder.js';

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
