import { ValidationError } from '../domain/errors.js';

/**
 * Relay cursor pagination over rows with an integer `id`, newest (highest id) first.
 * Cursors are opaque base64url of `<kind>:<id>`; the kind makes a cursor of one connection
 * invalid on another instead of silently paging the wrong list.
 */

export interface PageArgs {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

export interface Edge<T> {
  cursor: string;
  node: T;
}

export interface Connection<T> {
  edges: Edge<T>[];
  pageInfo: {
    hasNextPage: boolean;
    hasPreviousPage: boolean;
    startCursor: string | null;
    endCursor: string | null;
  };
  /** A thunk: GraphQL's default resolver calls it, so the COUNT runs only when selected. */
  totalCount: () => Promise<number> | number;
}

export const DEFAULT_PAGE_SIZE = 20;

/**
 * The largest row id: ids are `Int`, a 32-bit `integer` on PostgreSQL, which refuses to compare
 * with anything larger (SQLite would not mind). A cursor or global id beyond it names no row.
 */
export const MAX_ROW_ID = 2_147_483_647;

export function encodeCursor(kind: string, id: number): string {
  return Buffer.from(`${kind}:${id}`).toString('base64url');
}

export function decodeCursor(kind: string, cursor: string, argName: string): number {
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  const [cursorKind, rawId] = decoded.split(':');
  const id = Number(rawId);
  if (cursorKind !== kind || !Number.isInteger(id) || id < 0 || id > MAX_ROW_ID || encodeCursor(kind, id) !== cursor) {
    throw new ValidationError(`Argument "${argName}" is not a valid cursor for this list`, [
      { path: argName, message: 'malformed cursor' },
    ]);
  }
  return id;
}

/** The validated window a page reads: ids strictly between the bounds, `take` rows from one end. */
export interface PageWindow {
  /** Read from the newest end (first/after) or the oldest end (last/before). */
  fromNewest: boolean;
  take: number;
  /** Only ids below this (from `after`, since the order is newest first). */
  idBelow?: number;
  /** Only ids above this (from `before`). */
  idAbove?: number;
}

export function pageWindow(kind: string, args: PageArgs, maxPageSize: number): PageWindow {
  const { first, last, after, before } = args;
  for (const [name, value] of [
    ['first', first],
    ['last', last],
  ] as const) {
    if (value == null) continue;
    if (value < 0)
      throw new ValidationError(`Argument "${name}" must not be negative`, [{ path: name, message: 'negative' }]);
    if (value > maxPageSize) {
      throw new ValidationError(`Argument "${name}" must be at most ${maxPageSize} (the maximum page size)`, [
        { path: name, message: `above ${maxPageSize}` },
      ]);
    }
  }
  if (first != null && last != null) {
    throw new ValidationError('Use either "first" or "last", not both', [{ path: 'last', message: 'with first' }]);
  }
  return {
    fromNewest: last == null,
    take: first ?? last ?? DEFAULT_PAGE_SIZE,
    ...(after != null ? { idBelow: decodeCursor(kind, after, 'after') } : {}),
    ...(before != null ? { idAbove: decodeCursor(kind, before, 'before') } : {}),
  };
}

/** Prisma `where` fragment for the window's id bounds. */
export function idBounds(window: PageWindow): { id?: { lt?: number; gt?: number } } {
  if (window.idBelow === undefined && window.idAbove === undefined) return {};
  return {
    id: {
      ...(window.idBelow !== undefined ? { lt: window.idBelow } : {}),
      ...(window.idAbove !== undefined ? { gt: window.idAbove } : {}),
    },
  };
}

/**
 * Builds the connection from rows read in window order with one extra row (`take + 1`), which
 * tells whether another page exists in the reading direction.
 */
export function toConnection<T extends { id: number }>(
  kind: string,
  window: PageWindow,
  rowsPlusOne: T[],
  totalCount: () => Promise<number> | number,
): Connection<T> {
  const hasMore = rowsPlusOne.length > window.take;
  const rows = rowsPlusOne.slice(0, window.take);
  if (!window.fromNewest) rows.reverse();
  const edges = rows.map((node) => ({ cursor: encodeCursor(kind, node.id), node }));
  return {
    edges,
    pageInfo: {
      // Per the Relay spec, the flag of the direction not read reports the cursor's presence.
      hasNextPage: window.fromNewest ? hasMore : window.idAbove !== undefined,
      hasPreviousPage: window.fromNewest ? window.idBelow !== undefined : hasMore,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
    totalCount,
  };
}

/** Reads one page with a finder given the window itself (hand-written SQL, see db/list-sql.ts). */
export async function paginateWindow<T extends { id: number }>(
  kind: string,
  args: PageArgs,
  maxPageSize: number,
  find: (window: PageWindow) => Promise<T[]>,
  count: () => Promise<number>,
): Promise<Connection<T>> {
  // A page of 0 still reads its one extra row: `first: 0` tells whether the list has rows (Relay).
  const window = pageWindow(kind, args, maxPageSize);
  return toConnection(kind, window, await find(window), count);
}

/** Reads one page with a Prisma-style finder: newest-first keyset over `id`. */
export async function paginateQuery<T extends { id: number }>(
  kind: string,
  args: PageArgs,
  maxPageSize: number,
  find: (query: { where: ReturnType<typeof idBounds>; orderBy: { id: 'asc' | 'desc' }; take: number }) => Promise<T[]>,
  count: () => Promise<number>,
): Promise<Connection<T>> {
  const window = pageWindow(kind, args, maxPageSize);
  const rows = await find({
    where: idBounds(window),
    orderBy: { id: window.fromNewest ? 'desc' : 'asc' },
    take: window.take + 1,
  });
  return toConnection(kind, window, rows, count);
}

/** The same page over rows already in memory (any order); used where filters are derived. */
export function paginateArray<T extends { id: number }>(
  kind: string,
  args: PageArgs,
  maxPageSize: number,
  all: T[],
): Connection<T> {
  const window = pageWindow(kind, args, maxPageSize);
  const inWindow = all
    .filter(
      (row) =>
        (window.idBelow === undefined || row.id < window.idBelow) &&
        (window.idAbove === undefined || row.id > window.idAbove),
    )
    .sort((a, b) => (window.fromNewest ? b.id - a.id : a.id - b.id));
  return toConnection(kind, window, inWindow.slice(0, window.take + 1), () => all.length);
}
