import { buildSchema, parse } from 'graphql';
import { expect, test } from 'vitest';
import { perOperation } from '../src/http/per-operation.js';

const schema = buildSchema('type Query { a: Int }');
const document = parse('query One { a } query Two { a }');

test('computed once per operation of a document; a name the document lacks is computed, never kept', () => {
  const computed: string[] = [];
  const nameOf = perOperation(({ operationName }) => {
    computed.push(operationName ?? '');
    return operationName;
  });
  for (let round = 0; round < 3; round++) {
    expect(nameOf({ schema, document, operationName: 'One' })).toBe('One');
    expect(nameOf({ schema, document, operationName: 'Two' })).toBe('Two');
    expect(nameOf({ schema, document, operationName: `made-up-${round}` })).toBe(`made-up-${round}`);
  }
  expect(computed).toEqual(['One', 'Two', 'made-up-0', 'made-up-1', 'made-up-2']);
});
