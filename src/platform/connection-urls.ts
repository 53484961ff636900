import { parse as parsePostgresUrl } from 'pg-connection-string';

/**
 * REDIS_URL and DATABASE_URL checked the way their drivers read them, so that a URL the driver
 * cannot read stops the start with a message naming the setting (config-env.ts), not the
 * driver's bare "Invalid URL" or "URI malformed" at the first connection. A message never quotes
 * the URL: it may hold a password.
 */

const SCHEMA_NOT_SUPPORTED =
  'has a schema parameter (?schema=…), which is not supported: the tables are in the public schema, so give each deployment a database of its own';

/**
 * Prisma documents `?connection_limit=` and `?pool_timeout=` for sizing its pool, but with the
 * driver adapter this server uses, the pool is pg's, which reads neither: the pool stayed at its
 * size whatever the URL said. Refused, so that no operator believes a pool sized that is not.
 */
const POOL_PARAMETERS_NOT_READ =
  "has ?connection_limit=… or ?pool_timeout=…, which this server does not read (its pool is pg's, not Prisma's): size the pool with DATABASE_POOL_SIZE and leave them out";
const PGBOUNCER_NOT_BOOLEAN =
  'has a pgbouncer parameter that is neither true nor false: write ?pgbouncer=true behind PgBouncer in transaction mode, or leave it out';

/** `?pgbouncer=…` as pg-connection-string reads it (it keeps every parameter it does not know). */
function pgbouncerParameter(settings: object): string | undefined {
  return (settings as { pgbouncer?: string }).pgbouncer;
}

/**
 * Whether DATABASE_URL says the server reaches PostgreSQL through PgBouncer in transaction mode:
 * Prisma's own switch, `?pgbouncer=true`. pg itself ignores the parameter; db/driver-sql.ts then
 * names no statement (a named one lives on one server connection, PgBouncer hands out another).
 */
export function pgbouncerMode(url: string | undefined): boolean {
  if (!url || url.startsWith('file:')) return false;
  try {
    return pgbouncerParameter(parsePostgresUrl(url)) === 'true';
  } catch {
    return false;
  }
}

/**
 * `?options=-c search_path=tenant1` (or `--search_path=…`), PostgreSQL's own way to the same end
 * as ?schema=: it got around that refusal, and the migrations then created the tables in
 * tenant1 while Prisma's statements name `public` (as the search path's name PostgreSQL reads it:
 * case-insensitive, `-` for `_`).
 */
const SEARCH_PATH_OPTION = /(?:^|\s)(?:-c\s*|--)search[_-]path\s*=/i;
const SEARCH_PATH_NOT_SUPPORTED =
  'sets a search_path in ?options=, which is not supported: the tables are in the public schema, so give each deployment a database of its own';

const NOT_A_URL = 'is not a valid URL (check the host name, and the port: at most 65535)';

/**
 * The password of deploy/compose.env.example and deploy/k8s/secret.example.yaml. The examples say
 * to replace it; with it copied as is, the database (compose creates it with that password) would
 * run on a password anyone can read in this repository.
 */
export const PLACEHOLDER_PASSWORD = 'REPLACE_ME';

/**
 * A password written raw: with `@` then `/`, `?` or `#` in it (`postgresql://u:p@ss/w:rd@db/market`)
 * the URL still parses, as another one (host `ss`, database `w:rd@db/market`), and the start then
 * failed naming that host and database, pieces of the password, in the log. Neither a `#` (a
 * fragment, read by no driver) nor an `@` in the path or in a query parameter's name means anything
 * in a database or Redis URL (a parameter's value may hold one); a percent-encoded one (%40, %23) is fine. Says so without quoting the URL.
 */
const RAW_SPECIAL_CHARACTER =
  'has an @ after its host, or a #, which no database or Redis URL holds: a password (or user name) written raw was read as host and path; percent-encode its special characters (@ as %40, / as %2F, : as %3A, ? as %3F, # as %23, % as %25; encodeURIComponent does it)';

function rawSpecialCharacter(url: string): string | undefined {
  if (url.includes('#')) return RAW_SPECIAL_CHARACTER;
  const start = url.indexOf('//');
  const rest = start === -1 ? url : url.slice(start + 2);
  const authorityEnd = rest.search(/[/?]/);
  if (authorityEnd === -1) return undefined;
  const [path = '', query = ''] = rest.slice(authorityEnd).split(/\?(.*)/s);
  // A parameter's value may hold an @ (`?user=app@server`, `application_name=market@prod`, a
  // certificate path): pg reads it as written. A password's piece has no name (`?w@rd@db`).
  const rawInQuery = query.split('&').some((pair) => pair.split('=', 1)[0]?.includes('@') || !pair.includes('='));
  return path.includes('@') || (query.includes('@') && rawInQuery) ? RAW_SPECIAL_CHARACTER : undefined;
}

/** Says which part of the URL, never its text. */
function badEncoding(part: string): string {
  return `has a ${part} whose percent-encoding does not decode (write % as %25, other special characters as their UTF-8 %XX bytes)`;
}

/**
 * ioredis: `new URL`, then decodeURIComponent of the user name and password, and the database
 * number from the path (or `?db=`): ioredis sends whatever it finds there to SELECT, and `/abc`
 * became `SELECT NaN`, an error nothing caught, which ended the process with a stack trace.
 */
export function redisUrlProblem(url: string): string | undefined {
  const raw = rawSpecialCharacter(url);
  if (raw) return raw;
  const parsed = URL.parse(url);
  if (!parsed) return NOT_A_URL;
  try {
    decodeURIComponent(parsed.username);
    decodeURIComponent(parsed.password);
  } catch {
    return badEncoding('user name or password');
  }
  const db = parsed.pathname.replace(/^\//, '') || (parsed.searchParams.get('db') ?? '');
  if (!/^\d*$/.test(db)) {
    return 'has a database number (the path, or ?db=) that is not a number: write redis://host:6379/2, or leave it out for 0';
  }
  return undefined;
}

/**
 * pg reads DATABASE_URL with pg-connection-string (its own dependency, pinned in package.json to
 * the version pg uses, so this is pg's very parser): what it refuses here, pg would refuse at the
 * first connection, and nothing it accepts is refused (it is more lenient than `new URL`: a stray
 * `%` in a password is taken literally, a URL without a host names a socket directory). It also
 * reads the files `sslcert`, `sslkey` and `sslrootcert` name, as pg would.
 */
export function postgresUrlProblem(url: string): string | undefined {
  const raw = rawSpecialCharacter(url);
  if (raw) return raw;
  try {
    const settings = parsePostgresUrl(url);
    // Prisma's own URLs carry ?schema=…, but neither pg nor the migrations read it: the tables
    // went into `public` whatever it named, beside those of whatever else used that schema.
    if (settings.schema !== undefined && settings.schema !== 'public') return SCHEMA_NOT_SUPPORTED;
    const { connection_limit, pool_timeout } = settings as Record<string, unknown>;
    if (connection_limit !== undefined || pool_timeout !== undefined) return POOL_PARAMETERS_NOT_READ;
    if (SEARCH_PATH_OPTION.test(settings.options ?? '')) return SEARCH_PATH_NOT_SUPPORTED;
    if (!['true', 'false', undefined].includes(pgbouncerParameter(settings))) return PGBOUNCER_NOT_BOOLEAN;
    if (settings.password === PLACEHOLDER_PASSWORD) {
      return `has the placeholder password ${PLACEHOLDER_PASSWORD} of the deployment examples: set a real one (POSTGRES_PASSWORD in .env, or the Secret)`;
    }
    return undefined;
  } catch (error) {
    if (error instanceof URIError) return badEncoding('user name, password, host or database name');
    // A file of sslcert, sslkey or sslrootcert: a system error (ENOENT, EACCES, …), not Node's ERR_* of the URL.
    const { code, syscall } = error as NodeJS.ErrnoException;
    if (code && syscall) return `names a file (sslcert, sslkey or sslrootcert) that cannot be read (${code})`;
    return NOT_A_URL;
  }
}
