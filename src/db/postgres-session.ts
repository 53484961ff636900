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
}

export const SESSION_SETTINGS_SQL = `SELECT current_schema() AS schema, current_setting('search_path') AS "searchPath",
  current_user AS role`;

/**
 * Why the session cannot serve this server, or null. The schema: Prisma's queries name `public`,
 * while the migrations and the hand-written statements (driver-sql.ts) are unqualified and land in
 * `current_schema()`: with another one first on the search_path, the migrations created their
 * tables there (and recorded themselves there, so a second run found nothing to do) and the start
 * failed on `public.MarketSource`; or, with the tables in `public` as well, the hand-written
 * statements read and wrote another deployment's.
 */
export function sessionRefusal(settings: SessionSettings): string | null {
  const { schema, searchPath, role } = settings;
  if (schema === 'public') return null;
  const where =
    schema === null
      ? `no schema: the search_path (${searchPath}) names none that exists`
      : `the schema "${schema}" (first on the search_path ${searchPath})`;
  const byRole =
    schema === role
      ? ` Here the schema is named after the role "${role}", which PostgreSQL's default search_path ("$user", public) picks first: drop or rename it, or give the role a search_path of "public".`
      : '';
  return (
    `the server's tables must be in the schema public, but this session's unqualified statements land in ${where}. ` +
    'A search_path set outside DATABASE_URL does this: ALTER ROLE … SET search_path, ALTER DATABASE … SET ' +
    'search_path, or PGOPTIONS="-c search_path=…" in the environment; reset it (ALTER ROLE … RESET search_path, ' +
    `ALTER DATABASE … RESET search_path, unset PGOPTIONS), and give each deployment a database of its own.${byRole}`
  );
}
