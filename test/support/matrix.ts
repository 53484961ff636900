import {
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLOutputType,
  type GraphQLSchema,
  getNamedType,
  isAbstractType,
  isInputObjectType,
  isLeafType,
  isNonNullType,
  isObjectType,
} from 'graphql';
import { createClient as createSseClient } from 'graphql-sse';
import { type Client, createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { RootTypeName } from '../../src/auth/access-rules.js';
import type { Db } from '../../src/db/client.js';

/**
 * The machinery of test/authorization-matrix.test.ts: operations generated from the schema for
 * every root field, the three transports (HTTP, graphql-ws, SSE) each with a given viewer's
 * credentials, and the checks that tell one user's data from another's.
 */

// ── operations from the schema ──────────────────────────────────────────────────────────────

/** Object types nest this deep below the root field (the root field's own type is level 1). */
const MAX_DEPTH = 3;

export interface RootField {
  root: RootTypeName;
  name: string;
  field: GraphQLField<unknown, unknown>;
}

export function rootFields(schema: GraphQLSchema): RootField[] {
  const roots: [RootTypeName, GraphQLObjectType | null | undefined][] = [
    ['Query', schema.getQueryType()],
    ['Mutation', schema.getMutationType()],
    ['Subscription', schema.getSubscriptionType()],
  ];
  return roots.flatMap(([root, type]) =>
    Object.values(type?.getFields() ?? {}).map((field) => ({ root, name: field.name, field })),
  );
}

/**
 * Sample argument values, looked up as `Parent.name` first (`Query.task.taskId` for a root
 * argument, `CancelTaskInput.taskId` for an input field), then as `name`. Only required arguments
 * and input fields are filled; a required one without a sample fails the test with its name.
 */
export type SampleTable = Record<string, unknown>;

export interface Operation {
  label: string;
  query: string;
  variables: Record<string, unknown>;
}

export class OperationBuilder {
  private members: ReadonlySet<string> | undefined;

  constructor(private readonly schema: GraphQLSchema) {}

  /**
   * The operation of one root field, its required arguments from `samples`, `userId` set when
   * given. `members` narrows an abstract result (node's) to those object types: a selection of
   * every Node type at once needs more aliases (fields of one name and different types) than the
   * server allows a document (graphql-armor's maxAliases).
   */
  build(target: RootField, samples: SampleTable, userId?: string, members?: ReadonlySet<string>): Operation {
    this.members = members;
    const { root, name, field } = target;
    const variables: Record<string, unknown> = {};
    for (const arg of field.args) {
      if (isRequired(arg)) variables[arg.name] = this.value(arg.type, `${root}.${name}`, arg.name, samples);
    }
    if (userId !== undefined) {
      const path = userIdArgument(field);
      if (!path) throw new Error(`${root}.${name} has no userId argument`);
      if (path.inputArg) {
        variables[path.inputArg] = { ...(variables[path.inputArg] as object | undefined), userId };
      } else variables.userId = userId;
    }
    const used = field.args.filter((arg) => arg.name in variables);
    const declarations = used.map((arg) => `$${arg.name}: ${String(arg.type)}`).join(', ');
    const args = used.map((arg) => `${arg.name}: $${arg.name}`).join(', ');
    const selection = this.selection(field.type, 1);
    const keyword = root === 'Query' ? 'query' : root === 'Mutation' ? 'mutation' : 'subscription';
    const operationName = `Matrix_${name}`;
    return {
      label: `${root}.${name}(${JSON.stringify(variables).slice(1, -1)})`,
      query: `${keyword} ${operationName}${declarations ? `(${declarations})` : ''} { ${name}${args ? `(${args})` : ''}${selection ? ` { ${selection} }` : ''} }`,
      variables,
    };
  }

  private value(type: GraphQLInputType, parent: string, name: string, samples: SampleTable): unknown {
    const named = getNamedType(type);
    if (!isInputObjectType(named)) return sample(samples, parent, name);
    const object: Record<string, unknown> = {};
    for (const field of Object.values(named.getFields())) {
      if (isRequired(field)) object[field.name] = this.value(field.type, named.name, field.name, samples);
    }
    return object;
  }

  /** Every leaf field, and object fields down to MAX_DEPTH; every member of a union or interface. */
  private selection(type: GraphQLOutputType, depth: number): string {
    const named = getNamedType(type);
    if (isLeafType(named)) return '';
    if (isAbstractType(named)) {
      const members = this.schema
        .getPossibleTypes(named)
        .filter((member) => depth > 1 || !this.members || this.members.has(member.name));
      const clashes = clashingFields(members);
      return `__typename ${members.map((member) => `... on ${member.name} { ${this.fields(member, depth, clashes)} }`).join(' ')}`;
    }
    return this.fields(named as GraphQLObjectType, depth, new Set());
  }

  private fields(type: GraphQLObjectType, depth: number, clashes: Set<string>): string {
    const parts: string[] = [];
    for (const field of Object.values(type.getFields())) {
      if (field.args.some(isRequired)) continue;
      // Members of one union may have fields of one name and different types: those get aliases.
      const alias = clashes.has(field.name) ? `${field.name}_${type.name}: ` : '';
      if (isLeafType(getNamedType(field.type))) parts.push(`${alias}${field.name}`);
      else if (depth < MAX_DEPTH) {
        const nested = this.selection(field.type, depth + 1);
        if (nested) parts.push(`${alias}${field.name} { ${nested} }`);
      }
    }
    return parts.join(' ');
  }
}

function isRequired(input: { type: GraphQLInputType; defaultValue?: unknown }): boolean {
  return isNonNullType(input.type) && input.defaultValue === undefined;
}

function sample(samples: SampleTable, parent: string, name: string): unknown {
  const qualified = `${parent}.${name}`;
  if (qualified in samples) return samples[qualified];
  if (name in samples) return samples[name];
  throw new Error(`No sample value for ${qualified}: add one to the matrix's sample table`);
}

function clashingFields(members: readonly GraphQLObjectType[]): Set<string> {
  const types = new Map<string, Set<string>>();
  for (const member of members) {
    for (const field of Object.values(member.getFields())) {
      types.set(field.name, (types.get(field.name) ?? new Set()).add(String(field.type)));
    }
  }
  return new Set([...types].filter(([, printed]) => printed.size > 1).map(([name]) => name));
}

/** Where a field lets the caller name a user: a `userId` argument, or one in an input-object argument. */
export function userIdArgument(field: GraphQLField<unknown, unknown>): { inputArg: string | null } | null {
  if (field.args.some((arg) => arg.name === 'userId')) return { inputArg: null };
  for (const arg of field.args) {
    const named = getNamedType(arg.type);
    if (isInputObjectType(named) && 'userId' in named.getFields()) return { inputArg: arg.name };
  }
  return null;
}

/** Types implementing Node, with whether each belongs to a user (has a `userId` field). */
export function nodeTypes(schema: GraphQLSchema): { type: GraphQLObjectType; owned: boolean }[] {
  const node = schema.getType('Node');
  if (!node || !isAbstractType(node)) throw new Error('the schema has no Node interface');
  return schema.getPossibleTypes(node).map((type) => ({ type, owned: 'userId' in type.getFields() }));
}

/**
 * A root Query field that lists `type` (a list of it, or a connection of it), preferring one that
 * takes a filter with `userId`: where the ids of a user's objects of that type come from.
 */
export function listingField(
  schema: GraphQLSchema,
  type: GraphQLNamedType,
): { name: string; connection: boolean; userFilter: string | null } | null {
  const found: { name: string; connection: boolean; userFilter: string | null }[] = [];
  for (const field of Object.values(schema.getQueryType()?.getFields() ?? {})) {
    if (field.args.some(isRequired)) continue;
    const named = getNamedType(field.type);
    const userFilter = userIdArgument(field)?.inputArg ?? null;
    const edges = isObjectType(named) ? named.getFields().edges : undefined;
    const edge = edges && getNamedType(edges.type);
    const item = edge && isObjectType(edge) ? edge.getFields().node : undefined;
    if (named === type) found.push({ name: field.name, connection: false, userFilter });
    else if (item && getNamedType(item.type) === type) found.push({ name: field.name, connection: true, userFilter });
  }
  return found.find((listing) => listing.userFilter) ?? found[0] ?? null;
}

// ── transports ──────────────────────────────────────────────────────────────────────────────

export type Transport = 'http' | 'ws' | 'sse';
export const TRANSPORTS: readonly Transport[] = ['http', 'ws', 'sse'];

/** How one viewer authenticates: request headers (HTTP, SSE, the WebSocket upgrade) and graphql-ws `connectionParams`. */
export interface Credentials {
  headers: Record<string, string>;
  connectionParams: Record<string, unknown>;
}

export interface GraphQLErrorLike {
  message: string;
  extensions?: { code?: string };
}

/** What one request came back with, on any transport. */
export interface Outcome {
  transport: Transport;
  /** HTTP status (HTTP and SSE). */
  status?: number;
  /** graphql-ws: the close code when the server ended the connection instead of answering. */
  closeCode?: number;
  errors: GraphQLErrorLike[];
  data: Record<string, unknown> | null;
}

/**
 * How long a request that should end by itself may take (a refused subscription ends at once):
 * one still open after this is reported as such rather than hanging the test.
 */
const ONE_SHOT_MS = 10_000;
const STAYED_OPEN: GraphQLErrorLike = { message: `no end within ${ONE_SHOT_MS} ms: the operation stayed open` };

export async function overHttp(url: string, credentials: Credentials | null, operation: Operation): Promise<Outcome> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      ...credentials?.headers,
    },
    body: JSON.stringify({ query: operation.query, variables: operation.variables }),
  });
  const body = (await response.json()) as { data?: Record<string, unknown> | null; errors?: GraphQLErrorLike[] };
  return { transport: 'http', status: response.status, errors: body.errors ?? [], data: body.data ?? null };
}

/**
 * One operation as an SSE request (graphql-sse, distinct connections, on /graphql/stream): the
 * first `next` event of a stream that ends by itself (queries, mutations, refused subscriptions),
 * or the JSON error body of a request refused before any stream.
 */
export async function overSse(url: string, credentials: Credentials | null, operation: Operation): Promise<Outcome> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), ONE_SHOT_MS);
  let response: Response;
  let text: string;
  try {
    response = await fetch(`${url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...credentials?.headers },
      body: JSON.stringify({ query: operation.query, variables: operation.variables }),
      signal: abort.signal,
    });
    text = await response.text();
  } catch (error) {
    if (!abort.signal.aborted) throw error;
    return { transport: 'sse', errors: [STAYED_OPEN], data: null };
  } finally {
    clearTimeout(timer);
  }
  if (!(response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    const body = JSON.parse(text) as { errors?: GraphQLErrorLike[] };
    return { transport: 'sse', status: response.status, errors: body.errors ?? [], data: null };
  }
  const next = /event: next\ndata: (.*)\n\n/.exec(text)?.[1];
  const result = (next ? JSON.parse(next) : {}) as {
    data?: Record<string, unknown> | null;
    errors?: GraphQLErrorLike[];
  };
  return { transport: 'sse', status: response.status, errors: result.errors ?? [], data: result.data ?? null };
}

/** A `ws` WebSocket class that sends `headers` with its upgrade request (what a gateway adds). */
function webSocketWithHeaders(headers: Record<string, string>) {
  return class extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers });
    }
  };
}

export interface Received {
  value: { data?: unknown; errors?: GraphQLErrorLike[] };
  at: number;
}

/**
 * One graphql-ws connection of one viewer (their headers on the upgrade, their connectionParams),
 * kept open for their requests and subscriptions. A connection the server refuses is reported as
 * its close code.
 */
export class WsSession {
  private readonly client: Client;
  closeCode: number | undefined;

  constructor(url: string, credentials: Credentials | null) {
    this.client = createWsClient({
      url: `${url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: credentials ? webSocketWithHeaders(credentials.headers) : WebSocket,
      connectionParams: credentials?.connectionParams ?? {},
      lazy: false,
      retryAttempts: 0,
      // A refused connection reaches the requests through their sinks, not the console.
      onNonLazyError: () => {},
    });
    this.client.on('closed', (event) => {
      this.closeCode ??= (event as { code?: number }).code;
    });
  }

  /** One query, mutation or subscription that ends by itself (e.g. refused): its first result. */
  request(operation: Operation): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      let first: Outcome | null = null;
      const timer = setTimeout(() => {
        dispose();
        resolve({ transport: 'ws', errors: [STAYED_OPEN], data: null });
      }, ONE_SHOT_MS);
      const settle = (outcome: Outcome) => {
        clearTimeout(timer);
        resolve(outcome);
      };
      const dispose = this.client.subscribe(
        { query: operation.query, variables: operation.variables },
        {
          next: (result) => {
            first ??= {
              transport: 'ws',
              errors: (result.errors ?? []) as GraphQLErrorLike[],
              data: (result.data ?? null) as Record<string, unknown> | null,
            };
          },
          error: (error) => {
            const code = (error as { code?: number }).code;
            if (typeof code === 'number') return settle({ transport: 'ws', closeCode: code, errors: [], data: null });
            settle({ transport: 'ws', errors: Array.isArray(error) ? error : [error as GraphQLErrorLike], data: null });
          },
          complete: () => settle(first ?? { transport: 'ws', errors: [], data: null }),
        },
      );
    });
  }

  /** A subscription whose results are appended to `into`; returns its disposer. */
  subscribe(operation: Operation, into: Received[]): () => void {
    return this.client.subscribe(
      { query: operation.query, variables: operation.variables },
      {
        next: (value) => into.push({ value: value as Received['value'], at: Date.now() }),
        error: (error) => into.push({ value: { errors: [error as GraphQLErrorLike] }, at: Date.now() }),
        complete: () => {},
      },
    );
  }

  close(): Promise<void> {
    return this.client.dispose() as Promise<void>;
  }
}

/** A live SSE subscription (graphql-sse client, its own stream); resolves once the stream is open. */
export async function sseSubscription(
  url: string,
  credentials: Credentials,
  operation: Operation,
  into: Received[],
): Promise<() => void> {
  const client = createSseClient({ url: `${url}/graphql/stream`, headers: credentials.headers, retryAttempts: 0 });
  let dispose!: () => void;
  await new Promise<void>((connected, failed) => {
    dispose = client.subscribe(
      { query: operation.query, variables: operation.variables },
      {
        next: (value) => into.push({ value: value as Received['value'], at: Date.now() }),
        error: (error) => {
          into.push({ value: { errors: [{ message: String(error) }] }, at: Date.now() });
          failed(error);
        },
        complete: () => {},
      },
      { connected: () => connected() },
    );
  });
  return () => {
    dispose();
    client.dispose();
  };
}

// ── telling users' data apart ──────────────────────────────────────────────────────────────

/** Every owner named in a result: the values of `userId` (and `user_id`, in JSON payloads) at any depth. */
export function ownersIn(value: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const item of value) ownersIn(item, into);
  else if (value && typeof value === 'object') {
    for (const [key, field] of Object.entries(value)) {
      if ((key === 'userId' || key === 'user_id') && typeof field === 'string') into.add(field);
      else ownersIn(field, into);
    }
  }
  return into;
}

/** The strings of `markers` that occur as whole string values anywhere in a result. */
export function markersIn(value: unknown, markers: ReadonlySet<string>, into = new Set<string>()): Set<string> {
  if (typeof value === 'string') {
    if (markers.has(value)) into.add(value);
  } else if (Array.isArray(value)) for (const item of value) markersIn(item, markers, into);
  else if (value && typeof value === 'object')
    for (const field of Object.values(value)) markersIn(field, markers, into);
  return into;
}

/** Fields that move between two reads (times, sequence numbers, figures) or are everyone's (components). */
const NOT_COMPARED = new Set(['generatedAt', 'sequence', 'lastCheck', 'metrics', 'components', 'chartRepo']);

/** A result without NOT_COMPARED fields, to compare two views of the same rows. */
export function comparable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(comparable);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key]) => !NOT_COMPARED.has(key))
        .map(([key, field]) => [key, comparable(field)]),
    );
  }
  return value;
}

/**
 * What a user's rows say, to prove a request changed none of them: tasks, app states, payments
 * with their pushes, and history. Columns that move without anyone asking (a running task's
 * heartbeat) are left out.
 */
export async function rowsOf(db: Db, userId: string): Promise<string> {
  const [tasks, apps, payments, notifications, history] = await Promise.all([
    db.task.findMany({
      where: { userId },
      orderBy: { id: 'asc' },
      select: { taskId: true, type: true, status: true, progress: true, error: true, version: true, opId: true },
    }),
    db.appState.findMany({
      where: { userId },
      orderBy: { id: 'asc' },
      select: { appName: true, state: true, installedVersion: true, targetVersion: true, opType: true, opId: true },
    }),
    db.payment.findMany({ where: { userId }, orderBy: { id: 'asc' } }),
    db.paymentNotification.count({ where: { userId } }),
    db.historyRecord.count({ where: { userId } }),
  ]);
  return JSON.stringify({ tasks, apps, payments, notifications, history });
}
