import { buildSchema, execute, parse } from 'graphql';
import { compileQuery, isCompiledQuery } from 'graphql-jit';
import { describe, expect, test } from 'vitest';
import { rootFieldsInTurn } from '../src/schema/root-fields-in-turn.js';

/**
 * A schema whose root fields say when they start and let the test say when they end: a read of the
 * database stands behind each root field of the real schema (src/schema/index.ts applies this).
 */
function recordingSchema() {
  const schema = buildSchema('type Query { a: String  b: String  c: String  now: String }');
  const started: string[] = [];
  const finish = new Map<string, () => void>();
  for (const name of ['a', 'b', 'c'] as const) {
    const field = schema.getQueryType()?.getFields()[name];
    if (!field) throw new Error(name);
    field.resolve = () => {
      started.push(name);
      return new Promise<string>((resolve) => finish.set(name, () => resolve(name)));
    };
  }
  const now = schema.getQueryType()?.getFields().now;
  if (now) now.resolve = () => 'now';
  rootFieldsInTurn(schema);
  return { schema, started, finish: (name: string) => finish.get(name)?.() };
}

/** Lets every promise callback queued so far run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

type Schema = ReturnType<typeof recordingSchema>['schema'];

/** Each runs a query over `schema` with `context` as its context, its answer always as a promise. */
const runners = {
  'graphql-js': (schema: Schema, query: string, context: object = {}) =>
    Promise.resolve(execute({ schema, document: parse(query), contextValue: context })),
  'graphql-jit (as the server runs them)': (schema: Schema, query: string, context: object = {}) => {
    const compiled = compileQuery(schema, parse(query));
    if (!isCompiledQuery(compiled)) throw new Error('did not compile');
    return Promise.resolve(compiled.query(undefined, context, {}));
  },
};

describe.each(Object.entries(runners))('root fields of a query on %s', (_name, run) => {
  test('start one after another, each once the one before has resolved, and all answer', async () => {
    const { schema, started, finish } = recordingSchema();
    const answer = run(schema, '{ a b c }');
    await settle();
    expect(started).toEqual(['a']);
    finish('a');
    await settle();
    expect(started).toEqual(['a', 'b']);
    finish('b');
    await settle();
    expect(started).toEqual(['a', 'b', 'c']);
    finish('c');
    expect(await answer).toEqual({ data: { a: 'a', b: 'b', c: 'c' } });
  });

  test('aliases of one field, and fields behind a fragment, queue as well', async () => {
    const { schema, started, finish } = recordingSchema();
    const answer = run(schema, '{ ...F } fragment F on Query { x: a y: a }');
    await settle();
    expect(started).toEqual(['a']);
    finish('a');
    await settle();
    expect(started).toEqual(['a', 'a']);
    finish('a');
    expect(await answer).toEqual({ data: { x: 'a', y: 'a' } });
  });

  test('a query of one root field is not queued: its context gets no queue, as one of two fields does', async () => {
    const { schema, started, finish } = recordingSchema();
    const alone = {};
    const one = run(schema, '{ a }', alone);
    await settle();
    expect(started).toEqual(['a']);
    finish('a');
    expect(await one).toEqual({ data: { a: 'a' } });
    expect(Object.getOwnPropertySymbols(alone)).toEqual([]);

    const beside = {};
    const two = run(schema, '{ a now }', beside);
    await settle();
    finish('a');
    expect(await two).toEqual({ data: { a: 'a', now: 'now' } });
    expect(Object.getOwnPropertySymbols(beside)).toHaveLength(1);
  });
});
