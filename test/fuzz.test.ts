import fc from 'fast-check';
import {
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLOutputType,
  getNamedType,
  getNullableType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isLeafType,
  isListType,
  isNonNullType,
  isUnionType,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { schema } from '../src/schema/index.js';
import { encodeCursor } from '../src/services/pagination.js';
import { availableDatabases } from './support/databases.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS } from './support/server.js';
import { engineAtRest, errorLogs, fingerprint, type RawResponse, rawRequest } from './support/untyped.js';

/**
 * Property-based fuzzing of the whole API: operations generated from the schema's root fields
 * and their argument types, with valid values and hostile ones (wrong types, long lists and
 * strings, NUL bytes, unpaired surrogates, odd dates, deep JSON, unknown enum values, bad ids and
 * cursors, negative and huge page sizes), as literals or variables, over POST and GET, against a
 * real server on each database. Whatever comes in: never a 5xx, never a masked error, every error
 * has a code, nothing is logged at error level, and a refused mutation changes nothing.
 */

const databases = await availableDatabases();
const RUNS = 200;
const SEED = 20_260_131;

const b64 = (text: string) => Buffer.from(text).toString('base64url');
const LIMITS = { maxListLength: 100, maxStringLength: 4096 };

// ── values ──────────────────────────────────────────────────────────────────────────────────

/** Plausible values by argument or input field name, so that valid operations reach the data. */
const POOLS: Record<string, readonly unknown[]> = {
  sourceId: ['market.olares', 'upload', 'studio', 'nope'],
  appName: ['n8n', 'jellyfin', 'gitea', 'ollama', 'nextcloud', 'ghost', 'comfyui', 'plex', 'nope'],
  appId: ['comfyui', 'plex', 'rocketchat', 'actual-budget', 'jellyfin', 'nope'],
  app: ['jellyfin', 'gitea', 'comfyui', 'nope'],
  version: ['1.70.1', '1.2.0', '1.22.4', '30.0.2', '9.9.9'],
  // Never the demo tasks the engine runs or holds (demo-0006, demo-0009): nothing moves by itself.
  taskId: ['demo-0001', 'demo-0004', 'demo-0005', 'demo-0100', 'no-such-task'],
  productId: ['comfyui-license', 'plex-license', 'rocketchat-license', 'actual-budget-license', 'nope'],
  txHash: ['0xabc123', `0x${'f'.repeat(64)}`, 'not-hex'],
  jws: ['eyJhbGciOiJFUzI1NiJ9.payload.signature', 'x'],
  userId: ['alice', 'bob', 'admin', 'ops', 'nobody'],
  category: ['Media', 'Developer Tools', 'AI', 'nope'],
  search: ['jelly', 'JELLY', 'media system', '%', '_', '\\', 'a b'],
  type: ['ACTION_INSTALL', 'PAYMENT', 'system', 'action'],
  id: [
    b64('Task:demo-0001'),
    b64('Task:demo-0005'),
    b64('HistoryRecord:1'),
    b64('Payment:1'),
    b64('Payment:2'),
    b64('CatalogApp:3'),
    b64('MarketSource:market.olares'),
  ],
  after: ['task', 'history', 'payment', 'catalog', 'app'].flatMap((kind) => [
    encodeCursor(kind, 5),
    encodeCursor(kind, 1),
  ]),
};
POOLS.before = POOLS.after as unknown[];

/** Hostile values any position may get, whatever its type. */
const anyHostile = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant({ unexpected: 1 }),
  fc.constant([[1]]),
  fc.string({ unit: 'binary', maxLength: 8 }),
);

const hostileStrings = fc.oneof(
  fc.integer({ min: LIMITS.maxStringLength + 1, max: 12_000 }).map((length) => 'x'.repeat(length)),
  fc.integer({ min: 129, max: 400 }).map((length) => 'n'.repeat(length)),
  fc.string({ maxLength: 6 }).map((text) => `${text}\u0000`),
  fc.string({ maxLength: 6 }).map((text) => `${text}\ud800`),
  fc.constantFrom('', ' ', '\n', '%', '_%_', '\\', '\'; DROP TABLE "Task"; --'),
  fc.string({ unit: 'binary', maxLength: 16 }),
);

const ODD_DATES = [
  '0000-01-01T00:00:00Z',
  '0001-01-01T00:00:00+01:00',
  '9999-12-31T23:59:59-01:00',
  '2026-02-30T00:00:00Z',
  '2026-13-01T00:00:00Z',
  '2026-01-01T24:00:00Z',
  '+275760-09-13T00:00:00Z',
  '2026-01-01',
  '',
  '0001-01-01T00:00:00Z',
  '9999-12-31T23:59:59.999Z',
];

const BAD_IDS = ['!!!', '', b64('Task:'), b64('X:1'), b64('HistoryRecord:99999999999'), b64('Payment:-1'), b64(':1')];
const BAD_CURSORS = [
  'zzz',
  '',
  b64('task:abc'),
  encodeCursor('task', 2 ** 31),
  encodeCursor('history', -1),
  b64('task:1 '),
];

function nested(levels: number): unknown {
  let value: unknown = 'leaf';
  for (let level = 0; level < levels; level++) value = level % 2 ? [value] : { a: value };
  return value;
}

const hostileJson = fc.oneof(
  fc.integer({ min: 9, max: 600 }).map(nested),
  fc
    .integer({ min: 101, max: 400 })
    .map((count) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, i]))),
  fc.constant({ text: 'a\u0000b' }),
  fc.constant({ 'key\ud800': 1 }),
  fc.constant({ long: 'y'.repeat(5000) }),
);

/** A value for a position of `type` named `name`: valid, or (when `hostile`) sometimes not. */
function arbitraryValue(type: GraphQLInputType, name: string, hostile: boolean): fc.Arbitrary<unknown> {
  const valid = validValue(type, name, hostile);
  if (!hostile) return valid;
  return fc.oneof({ weight: 5, arbitrary: valid }, { weight: 2, arbitrary: hostileValue(type, name) });
}

function validValue(type: GraphQLInputType, name: string, hostile: boolean): fc.Arbitrary<unknown> {
  if (isNonNullType(type)) return validValue(type.ofType, name, hostile);
  if (isListType(type)) return fc.array(arbitraryValue(type.ofType, name, hostile), { maxLength: 3 });
  if (isInputObjectType(type)) {
    const fields = Object.values(type.getFields());
    return fc.record(
      Object.fromEntries(fields.map((field) => [field.name, arbitraryValue(field.type, field.name, hostile)])),
      {
        requiredKeys: fields.filter((field) => isNonNullType(field.type)).map((field) => field.name),
      },
    );
  }
  if (isEnumType(type)) return fc.constantFrom(...type.getValues().map((value) => value.name));
  const pool = POOLS[name];
  switch (type.name) {
    case 'Int':
      return name === 'first' || name === 'last'
        ? fc.oneof(fc.integer({ min: 0, max: 100 }), fc.constantFrom(-1, 101, 2_147_483_647))
        : fc.integer({ min: -10, max: 1000 });
    case 'Float':
      return fc.oneof(fc.integer({ min: 0, max: 1_000_000 }), fc.double({ noNaN: true, noDefaultInfinity: true }));
    case 'Boolean':
      return fc.boolean();
    case 'DateTime':
      return fc.constantFrom('2026-01-31T12:00:00Z', '2020-01-01T00:00:00.000Z', '2030-06-01T08:30:00+02:00');
    case 'JSON':
      return fc.jsonValue({ maxDepth: 3 });
    default:
      return pool ? fc.oneof(fc.constantFrom(...pool), fc.string({ maxLength: 10 })) : fc.string({ maxLength: 12 });
  }
}

function hostileValue(type: GraphQLInputType, name: string): fc.Arbitrary<unknown> {
  const nullable = getNullableType(type);
  const leaf = getNamedType(type);
  const sample = isEnumType(leaf) ? (leaf.getValues()[0]?.name ?? 'X') : 'x';
  const variants: fc.Arbitrary<unknown>[] = [anyHostile];
  if (isListType(nullable)) {
    variants.push(
      fc.integer({ min: LIMITS.maxListLength + 1, max: 3000 }).map((length) => Array(length).fill(sample)),
      fc.constant(Array(40_000).fill(sample)),
    );
  }
  if (isEnumType(leaf)) variants.push(fc.constantFrom('NOPE', sample.toLowerCase(), ''));
  switch (leaf.name) {
    case 'DateTime':
      variants.push(fc.constantFrom(...ODD_DATES));
      break;
    case 'JSON':
      variants.push(hostileJson);
      break;
    case 'Int':
      variants.push(fc.constantFrom(-1, -2_147_483_648, 2 ** 31, 1.5, '5'));
      break;
    case 'ID':
      variants.push(fc.constantFrom(...BAD_IDS), hostileStrings);
      break;
    case 'String':
      variants.push(hostileStrings);
      if (name === 'after' || name === 'before') variants.push(fc.constantFrom(...BAD_CURSORS));
      break;
  }
  return fc.oneof(...variants);
}

// ── operations ──────────────────────────────────────────────────────────────────────────────

interface Argument {
  name: string;
  /** Its type, as written in a variable definition. */
  type: string;
  value: unknown;
  /** Written into the document, or passed as a variable. */
  literal: boolean;
}

interface Operation {
  kind: 'query' | 'mutation';
  /** The root field. */
  field: string;
  args: Argument[];
  token: string;
  get: boolean;
  /** A GET whose `variables` parameter is cut short (malformed JSON). */
  mangled: boolean;
}

const NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;

/** `value` as a GraphQL literal at a position of `type` (unknown keys renamed to valid names). */
function literal(value: unknown, type: GraphQLInputType | undefined): string {
  const nullable = type && getNullableType(type);
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) {
    const item = nullable && isListType(nullable) ? nullable.ofType : undefined;
    return `[${value.map((entry) => literal(entry, item)).join(', ')}]`;
  }
  if (typeof value === 'object') {
    const fields = nullable && isInputObjectType(nullable) ? nullable.getFields() : {};
    const entries = Object.entries(value).filter(([, entry]) => entry !== undefined);
    return `{ ${entries.map(([key, entry], index) => `${NAME.test(key) ? key : `k${index}`}: ${literal(entry, fields[key]?.type)}`).join(', ')} }`;
  }
  if (typeof value === 'string') {
    return nullable && isEnumType(nullable) && NAME.test(value) ? value : JSON.stringify(value);
  }
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '0';
  return String(value);
}

/**
 * A selection of every field without required arguments, objects nested two deep. Inside the
 * fragments of a union or interface each field gets an alias of its type, since two members may
 * type a field of the same name differently (which GraphQL refuses to merge).
 */
function selection(type: GraphQLOutputType | GraphQLNamedType, depth = 0): string {
  const named = getNamedType(type);
  if (isLeafType(named)) return '';
  if (isUnionType(named) || isInterfaceType(named)) {
    const members = isUnionType(named) ? named.getTypes() : schema.getPossibleTypes(named);
    const fragments = members.map((member) => `... on ${member.name} ${objectSelection(member, depth, member.name)}`);
    return `{ __typename ${fragments.join(' ')} }`;
  }
  return objectSelection(named as GraphQLObjectType, depth);
}

function objectSelection(type: GraphQLObjectType, depth: number, alias?: string): string {
  const fields = Object.values(type.getFields()).filter(
    (field) =>
      !field.args.some((arg) => isNonNullType(arg.type)) && (isLeafType(getNamedType(field.type)) || depth < 2),
  );
  const selected = fields.map(
    (field) => `${alias ? `${alias}_${field.name}: ` : ''}${field.name} ${selection(field.type, depth + 1)}`,
  );
  return `{ __typename ${selected.join(' ')} }`;
}

function operationArbitrary(): fc.Arbitrary<Operation> {
  const roots = [
    ...Object.values((schema.getQueryType() as GraphQLObjectType).getFields()).map((field) => ({
      kind: 'query' as const,
      field,
    })),
    ...Object.values((schema.getMutationType() as GraphQLObjectType).getFields()).map((field) => ({
      kind: 'mutation' as const,
      field,
    })),
  ];
  return fc
    .record({ root: fc.constantFrom(...roots), hostile: fc.boolean() })
    .chain(({ root, hostile }) =>
      fc.record({
        kind: fc.constant(root.kind),
        field: fc.constant(root.field.name),
        args: fc.tuple(
          ...root.field.args.map((arg) =>
            fc.record({
              name: fc.constant(arg.name),
              type: fc.constant(String(arg.type)),
              // An optional argument is often left out; a required one is always there (if only as null).
              value: isNonNullType(arg.type)
                ? arbitraryValue(arg.type, arg.name, hostile)
                : fc.option(arbitraryValue(arg.type, arg.name, hostile), { nil: undefined, freq: 2 }),
              literal: fc.boolean(),
            }),
          ),
        ),
        token:
          root.kind === 'mutation'
            ? fc.constantFrom(TOKENS.alice, TOKENS.bob)
            : fc.constantFrom(...Object.values(TOKENS)),
        get: root.kind === 'query' ? fc.boolean() : fc.constant(false),
        mangled: fc.boolean(),
      }),
    )
    .map((operation) => ({ ...operation, args: operation.args.filter((arg) => arg.value !== undefined) }));
}

/** The root field an operation calls. */
function rootField(operation: Operation): GraphQLField<unknown, unknown> {
  const root = operation.kind === 'query' ? schema.getQueryType() : schema.getMutationType();
  return root?.getFields()[operation.field] as GraphQLField<unknown, unknown>;
}

function render(operation: Operation): { query: string; call: string; variables: Record<string, unknown> } {
  const field = rootField(operation);
  const variables: Record<string, unknown> = {};
  const definitions: string[] = [];
  const args = operation.args.map((arg) => {
    const type = field.args.find((candidate) => candidate.name === arg.name)?.type;
    if (arg.literal) return `${arg.name}: ${literal(arg.value, type)}`;
    definitions.push(`$${arg.name}: ${arg.type}`);
    variables[arg.name] = arg.value;
    return `${arg.name}: $${arg.name}`;
  });
  const head = definitions.length ? `${operation.kind} Fuzz(${definitions.join(', ')})` : `${operation.kind} Fuzz`;
  const call = args.length ? `${operation.field}(${args.join(', ')})` : operation.field;
  return { query: `${head} { ${call} ${selection(field.type)} }`, call, variables };
}

/** Longest query string the fuzzer sends in a GET (browsers and proxies cap URLs near 8 KiB). */
const MAX_GET_SEARCH = 8 * 1024;

async function send(server: TestServer, operation: Operation): Promise<RawResponse> {
  const { query, variables: values } = render(operation);
  const request = { query, variables: values };
  if (!operation.get) return rawRequest(server, request, { token: operation.token });
  const variables = JSON.stringify(request.variables);
  const search = new URLSearchParams({
    query: request.query,
    variables: operation.mangled && operation.args.length ? variables.slice(0, -1) : variables,
  }).toString();
  // Past Node's 16 KiB request head a GET gets HTTP 431 without a body (README "Limits"); clients
  // send such operations as POSTs, and so does the fuzzer.
  if (search.length > MAX_GET_SEARCH) return rawRequest(server, request, { token: operation.token });
  return rawRequest(server, request, { token: operation.token, method: 'GET', search });
}

// ── the property ────────────────────────────────────────────────────────────────────────────

describe.each(databases)('fuzzing every operation on %s', (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(kind, {
      env: {
        ...AUTH_ENV,
        MUTATION_RATE_PER_S: '0',
        MAX_INPUT_STRING_LENGTH: String(LIMITS.maxStringLength),
        // Nothing moves unless a request moves it, so a refused mutation can be seen to change
        // nothing: one worker, busy with a demo task that never advances; credential polling
        // that only ever counts its attempts (left out of the fingerprint).
        TASK_CONCURRENCY: '1',
        PAYMENT_POLL_INTERVAL_MS: '3600000',
        PAYMENT_POLL_ATTEMPTS: '1000',
        SIMULATED_DEVELOPER_OUTCOMES: 'demo-developer=no-record',
      },
    });
    await engineAtRest(server);
  });
  afterAll(() => server?.stop());

  test(`${RUNS} generated operations: no 5xx, no masked error, every error has a code, nothing logged, refusals change nothing`, async () => {
    const { db } = server.app;
    let refusedMutations = 0;
    let servedOperations = 0;
    await fc.assert(
      fc.asyncProperty(operationArbitrary(), async (operation) => {
        const logsFrom = server.logs.length;
        const before = operation.kind === 'mutation' ? await fingerprint(db) : null;
        const response = await send(server, operation);
        const { call, variables } = render(operation);
        const shown = `${operation.kind} ${call.slice(0, 300)} ${JSON.stringify(variables).slice(0, 300)} → HTTP ${response.status} ${response.text.slice(0, 600)}`;
        expect(response.status, shown).toBeLessThan(500);
        expect(response.body, shown).not.toBeNull();
        const errors = response.body?.errors ?? [];
        for (const error of errors) {
          expect(error.message, shown).not.toBe('Unexpected error.');
          expect(error.extensions?.code, shown).toEqual(expect.any(String));
          expect(error.extensions?.code, shown).not.toBe('INTERNAL_SERVER_ERROR');
        }
        expect(errorLogs(server, logsFrom), shown).toEqual([]);
        const payload = response.body?.data?.[operation.field] as { __typename?: string } | null | undefined;
        if (errors.length === 0) servedOperations++;
        if (before !== null && (errors.length > 0 || payload?.__typename?.endsWith('Error'))) {
          refusedMutations++;
          expect(await fingerprint(db), `a refused mutation changed the database: ${shown}`).toBe(before);
        }
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    // The generator reaches both sides: operations served and mutations refused.
    expect(servedOperations).toBeGreaterThan(RUNS / 10);
    expect(refusedMutations).toBeGreaterThan(RUNS / 10);

    // And the server still answers.
    const viewer = await rawRequest(server, { query: '{ viewer { userId } }' }, { token: TOKENS.alice });
    expect(viewer.body).toEqual({ data: { viewer: { userId: 'alice' } } });
    expect((await fetch(`${server.url}/readiness`)).status).toBe(200);
  }, 120_000);
});
