import { Redis } from 'ioredis';
import { hostOf } from '../platform/redact.js';

/**
 * How the cluster's change log (redis-change-log.ts) connects to Redis: one connection for the
 * appends and one for the blocking reads, which occupy theirs. Both fail fast rather than wait.
 */

/** How long a blocking read (XREAD) waits for entries before it is asked again. */
export const READ_BLOCK_MS = 5000;
/** How long a command or a connection attempt may take before it counts as failed. */
const COMMAND_TIMEOUT_MS = 5000;
/** How a command fails when Redis cannot be reached (as opposed to Redis answering with an error). */
export const UNREACHABLE =
  /timed out|Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE/i;
/** Delay before an append or read is tried again after a failure (doubling up to the cap). */
export const RETRY_MS = { first: 100, max: 5000 };

/**
 * The log's two connections to `url`, not connected yet, and how to connect them: that fails when
 * Redis refuses the URL's database (`/99` of 16), which ioredis takes as an `error` event of its
 * connect, going on, on database 0, beside whatever else uses it.
 */
export function logConnections(url: string): { writer: Redis; reader: Redis; connect(): Promise<void> } {
  const connection = {
    // Commands fail at once while disconnected (the log keeps what it must send), instead of
    // piling up in ioredis's offline queue without a bound.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
    retryStrategy: (attempt: number) => Math.min(RETRY_MS.first * 2 ** attempt, RETRY_MS.max),
    // A Redis behind a dead network never answers: without these, a command (above all the
    // reader's XREAD) would wait forever instead of failing and reconnecting.
    connectTimeout: COMMAND_TIMEOUT_MS,
    keepAlive: COMMAND_TIMEOUT_MS,
  };
  const writer = new Redis(url, {
    ...connection,
    connectionName: 'market-log-writer',
    commandTimeout: COMMAND_TIMEOUT_MS,
  });
  const reader = new Redis(url, {
    ...connection,
    connectionName: 'market-log-reader',
    commandTimeout: READ_BLOCK_MS + COMMAND_TIMEOUT_MS,
    // A read cut off fails instead of being sent again on the new connection: the loop then
    // checks for a gap before reading on.
    maxRetriesPerRequest: 0,
  });
  const connect = async () => {
    await Promise.all([writer.connect(), reader.connect()]);
    if (writer.options.db) await writer.select(writer.options.db);
  };
  return { writer, reader, connect };
}

/**
 * What Redis (or TLS) answered that stops the start, what that means and how to fix it: Redis was
 * reached, so "Could not reach" would send the operator after the network instead.
 */
const REFUSALS: [RegExp, string, string][] = [
  [
    /WRONGPASS|NOAUTH|invalid username-password/i,
    'refused the credentials',
    'check the user and password in REDIS_URL',
  ],
  [/NOPERM/, 'refused a command to this user', 'give it the permissions the README lists under "Redis permissions"'],
  [
    /certificate|self[- ]signed/i,
    'has a TLS certificate this process does not trust',
    'for a private CA set NODE_EXTRA_CA_CERTS',
  ],
  [/unknown command/i, "does not know the change log's commands", 'REDIS_URL must lead to Redis, not to a Sentinel'],
  [/DB index is out of range/i, 'has no such database', "use a database number below Redis's `databases` setting"],
  [/LOADING/, 'is still loading its data', 'the next start, once it has, goes through'],
];

/**
 * Why the log could not start, naming the setting. ioredis rejects with only "Connection is
 * closed." when Redis refused the credentials; its `error` event (`lastError`) said why (WRONGPASS,
 * NOAUTH), which names what to fix. A refusal (REFUSALS) says what was refused and the fix.
 */
export function startFailure(url: string, error: unknown, lastError: string | null): Error {
  const message = error instanceof Error ? error.message : String(error);
  const reason = lastError && /closed/i.test(message) ? lastError : message;
  const refusal = REFUSALS.find(([pattern]) => pattern.test(reason));
  if (!refusal) return new Error(`Could not reach Redis at ${hostOf(url)} (REDIS_URL): ${reason}`);
  const [, what, fix] = refusal;
  return new Error(`Redis at ${hostOf(url)} (REDIS_URL) ${what}: ${reason.trim()} (${fix})`);
}
