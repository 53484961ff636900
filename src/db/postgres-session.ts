/**
 * What the server requires of a PostgreSQL session, whatever the role, the database or the
 * environment set for it outside DATABASE_URL (`ALTER ROLE … SET`, `ALTER DATABASE … SET`,
 * PGOPTIONS), checked on the migration step's connection before anything else, so that `npm start`
 * and `npm run db:migrate` refuse such a session in one line naming the setting and the fix. Not
 * corrected by a `SET` on each connection: behind PgBouncer in transaction mode a session's
 * settings stay with the server connection, not with the client's.
 */

/** The session's settings as the check reads them. */
export interface SessionSettings {
  /** Where unqualified statements land (`current_schema()`): null when the search_path names no schema that exists. */
  schema: string | null;
  searchPath: string;
  role: string;
  /** default_transaction_isolation: what a statement outside a transaction, or a bare BEGIN, runs at. */
  isolation: string;
  dateStyle: string;
  /** transaction_read_only as a statement outside a transaction sees it: 'on' on a hot standby too. */
  readOnly: string;
}

export const SESSION_SETTINGS_SQL = `SELECT current_schema() AS schema, current_setting('search_path') AS "searchPath",
  current_user AS role, current_setting('default_transaction_isolation') AS isolation,
  current_setting('DateStyle') AS "dateStyle", current_setting('transaction_read_only') AS "readOnly"`;

/** Where such settings come from, and how they go (`setting` named). */
function outsideTheUrl(setting: string, example: string): string {
  return (
    `A ${setting} set outside DATABASE_URL does this: ALTER ROLE … SET ${setting}, ALTER DATABASE … SET ` +
    `${setting}, or PGOPTIONS="-c ${setting}=${example}" in the environment; reset it (ALTER ROLE … RESET ${setting}, ` +
    `ALTER DATABASE … RESET ${setting}, unset PGOPTIONS)`
  );
}

/** Why the session cannot serve this server, or null: the first of the checks below that fails. */
export function sessionRefusal(settings: SessionSettings): string | null {
  return (
    schemaRefusal(settings) ?? isolationRefusal(settings) ?? dateStyleRefusal(settings) ?? readOnlyRefusal(settings)
  );
}

/** Why a database refuses writes: what /readiness says (without the fix, which is for the logs). */
export const READ_ONLY = 'the database accepts no writes (read-only: a standby, or default_transaction_read_only)';

/**
 * A database that answers but refuses every write (SQLSTATE 25006): a hot standby (a failover onto
 * a replica, a URL pointing at one) or default_transaction_read_only set on it. Before, the start
 * ended with a bare "cannot execute UPDATE in a read-only transaction".
 */
function readOnlyRefusal({ readOnly }: SessionSettings): string | null {
  if (readOnly !== 'on') return null;
  return (
    `${READ_ONLY}: the server writes at start and in every mutation. Point DATABASE_URL at the primary ` +
    `(after a failover: the new one), or reset default_transaction_read_only (ALTER DATABASE … RESET ` +
    'default_transaction_read_only, ALTER ROLE … RESET default_transaction_read_only, unset PGOPTIONS).'
  );
}

/** What /readiness's probe throws while the database answers but refuses writes. */
export class DatabaseReadOnlyError extends Error {
  constructor() {
    super(READ_ONLY);
    this.name = 'DatabaseReadOnlyError';
  }
}

/**
 * /readiness's question on PostgreSQL: does the database answer, and take writes? An instance on a
 * database that refuses them (a failover onto a read-only one) answered every mutation with an
 * error while it said ready, and kept its load balancer's traffic.
 */
export async function answerWritable(pool: {
  query(text: string): Promise<{ rows: { readOnly?: string }[] }>;
}): Promise<void> {
  const { rows } = await pool.query(`SELECT current_setting('transaction_read_only') AS "readOnly"`);
  if (rows[0]?.readOnly === 'on') throw new DatabaseReadOnlyError();
}

/**
 * Timestamps come back as text in the session's DateStyle, and pg (driver-sql.ts) and Prisma's
 * adapter read only its ISO output: at `SQL, DMY` or `German` pg's parser returned null, and the
 * start, having migrated and seeded, ended with "Cannot read properties of null (reading
 * 'getTime')" (database-clock.ts); every timestamp read would have failed. The order part (`DMY`)
 * changes only how input is read, which the server writes in ISO: `ISO, DMY` works.
 */
function dateStyleRefusal({ dateStyle }: SessionSettings): string | null {
  if (/^ISO\b/i.test(dateStyle)) return null;
  return (
    `the server reads timestamps in PostgreSQL's ISO output format, but this session's DateStyle is ${dateStyle}. ` +
    `${outsideTheUrl('DateStyle', "'SQL, DMY'")}, or set it to ISO with the order wanted ('ISO, DMY').`
  );
}

/**
 * The isolation the server's statements are written for is READ COMMITTED. Its transactions say
 * so in their BEGIN (driver-sql.ts, and Prisma's through client.ts), but a statement outside a
 * transaction runs at the session's default: at `serializable` (a DBA's ALTER DATABASE), 25
 * concurrent installs answered "Unexpected error." two times in three and app-state events were
 * dropped ("could not serialize access", 40001, which nothing retries). PostgreSQL runs `read
 * uncommitted` as read committed.
 */
function isolationRefusal({ isolation }: SessionSettings): string | null {
  if (isolation === 'read committed' || isolation === 'read uncommitted') return null;
  return (
    `the server's statements are written for the isolation level read committed, but this session's ` +
    `default_transaction_isolation is ${isolation}, at which a statement outside a transaction runs (concurrent ` +
    `writes fail with "could not serialize access"). ${outsideTheUrl('default_transaction_isolation', "'serializable'")}.`
  );
}

/**
 * The schema: Prisma's queries name `public`,
 * while the migrations and the hand-written statements (driver-sql.ts) are unqualified and land in
 * `current_schema()`: with another one first on the search_path, the migrations created their
 * tables there (and recorded themselves there, so a second run found nothing to do) and the start
 * failed on `public.MarketSource`; or, with the tables in `public` as well, the hand-written
 * statements read and wrote another deployment's.
 */
function schemaRefusal({ schema, searchPath, role }: SessionSettings): string | null {
  if (schema === 'public') return null;
  const where =
    schema === null
      ? `no schema: the search_path (${searchPath}) names none that exists`
      : `the schema "${schema}" (first on the search_path ${searchPath})`;
  // A schema named after the role needs no setting at all: PostgreSQL's default search_path
  // ("$user", public) picks it first, so there is nothing to reset.
  const cause =
    schema === role
      ? `The schema is named after the role "${role}", which PostgreSQL's default search_path ("$user", public) picks first: drop or rename it, or give the role a search_path of "public" (ALTER ROLE ${role} SET search_path = public)`
      : outsideTheUrl('search_path', '…');
  return (
    `the server's tables must be in the schema public, but this session's unqualified statements land in ${where}. ` +
    `${cause}, and give each deployment a database of its own.`
  );
}
