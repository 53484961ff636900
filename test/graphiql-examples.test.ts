import { parse, validate } from 'graphql';
import { describe, expect, test } from 'vitest';
import { GRAPHIQL_EXAMPLES } from '../src/app/graphiql-examples.js';
import { schema } from '../src/schema/index.js';

describe('the operations GraphiQL opens with', () => {
  test('are valid against the schema: a query, the catalogue, an install and a live subscription', () => {
    const document = parse(GRAPHIQL_EXAMPLES);
    expect(validate(schema, document)).toEqual([]);
    const operations = document.definitions.map((definition) =>
      definition.kind === 'OperationDefinition' ? `${definition.operation} ${definition.name?.value}` : definition.kind,
    );
    expect(operations).toEqual(['query Apps', 'query Catalog', 'mutation Install', 'subscription Live']);
  });
});
