/**
 * Text in one order on both providers, by UTF-16 code unit. PostgreSQL sorts text by the
 * database's collation: on an en_US one "a-src" comes before "B-src", on C (and SQLite) after. So
 * lists that sort by text sort in the services, with this.
 */
export const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
