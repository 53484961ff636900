/**
 * PostgreSQL refusing a connection for want of a slot (too_many_connections, 53300): its
 * max_connections reached, or the CONNECTION LIMIT of the role or of the database. At start that
 * was the bare `too many connections for database "market"` (or Prisma's multi-line wrapping of
 * it), saying neither which step nor what to change.
 */

/** PostgreSQL's own words for 53300 (its messages up to version 17), found wherever Prisma or pg put them. */
const TOO_MANY =
  /too many connections for (?:role|database) "[^"]*"|sorry, too many clients already|remaining connection slots are reserved[^`\n]*/;

/** PostgreSQL's message when `error` is a refused connection slot; null for any other error. */
export function tooManyConnections(error: unknown): string | null {
  if (typeof error !== 'object' || error === null) return null;
  const { code, message } = error as { code?: unknown; message?: unknown };
  const words = typeof message === 'string' ? TOO_MANY.exec(message)?.[0] : undefined;
  if (words) return words;
  return code === '53300' ? 'too many connections (53300)' : null;
}

/** What to change, for whoever reads the start's one line. */
export const CONNECTION_LIMIT_ADVICE =
  "PostgreSQL's max_connections and the CONNECTION LIMIT of the role and of the database must allow every " +
  "instance's pool (instances × DATABASE_POOL_SIZE) plus the migrations and some headroom, and a start " +
  'opens several connections at once: raise the limit, or run fewer instances or smaller pools';
